//go:build tools

// Package tools only keeps the CLI's module in go.mod: build.sh builds the package by path.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
