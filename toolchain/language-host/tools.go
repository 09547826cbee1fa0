//go:build tools

// Package tools only keeps the language host's module in go.mod: build.sh builds the package by
// path. sdk/v3 v3.68.0 is the newest release whose module still holds
// nodejs/cmd/pulumi-language-nodejs; later releases moved it to a module of its own,
// github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3, which the Go module proxy
// here does not serve at any version (README, "The engine toolchain").
package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
