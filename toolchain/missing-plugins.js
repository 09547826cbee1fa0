// Exits 1, naming each one, when a resource plugin that the program's npm packages ask for is
// not installed where the engine looks for it ($PULUMI_HOME/plugins/resource-NAME-vVERSION/,
// the exact version), so that `toolchain/pulumi up` fails at once instead of after starting the
// program. The packages are the program's dependencies with `pulumi.resource: true` in their
// package.json: the same ones pulumi-language-nodejs's GetRequiredPlugins reports.
//   node toolchain/missing-plugins.js PROGRAM_DIR PULUMI_HOME
"use strict";
const fs = require("fs");
const path = require("path");

/**
 * Why toolchain/build.sh does not build these providers: the Go module proxy here refuses
 * their modules at every version tried (checked 2026-12-04; README, "The engine toolchain").
 */
const NOT_BUILDABLE = {
  command:
    "github.com/pulumi/pulumi-command/provider (the v1.2.1 commit's v0.0.0-20260303235922-7f3eb6f3b77c and every other version tried)",
  docker: "github.com/pulumi/pulumi-docker/provider/v5 (the v5.x commits' pseudo-versions, and the version list)",
  postgresql:
    "github.com/pulumi/pulumi-postgresql/provider/v3 and its Terraform provider github.com/cyrilgdn/terraform-provider-postgresql (no version of either)",
};

function requiredPlugins(programDir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(programDir, "package.json"), "utf8"));
  const out = [];
  for (const dependency of Object.keys(manifest.dependencies ?? {})) {
    let pkg;
    try {
      pkg = JSON.parse(fs.readFileSync(require.resolve(`${dependency}/package.json`, { paths: [programDir] }), "utf8"));
    } catch {
      continue; // not installed, or no package.json export: the program itself will say so
    }
    if (pkg.pulumi?.resource)
      out.push({
        name: pkg.pulumi.name ?? dependency.replace(/^@pulumi\//, ""),
        version: pkg.pulumi.version ?? pkg.version,
        by: `${dependency} ${pkg.version}`,
      });
  }
  return out;
}

function main([programDir, pulumiHome]) {
  const missing = requiredPlugins(programDir).filter(({ name, version }) => {
    const binary = path.join(pulumiHome, "plugins", `resource-${name}-v${version}`, `pulumi-resource-${name}`);
    return !fs.existsSync(binary);
  });
  for (const { name, version, by } of missing) {
    const why = NOT_BUILDABLE[name]
      ? ` toolchain/build.sh cannot build it here: the Go module proxy does not serve ${NOT_BUILDABLE[name]}.`
      : "";
    console.error(
      `toolchain: the resource plugin ${name} v${version} (asked for by ${by}) is not installed in ${pulumiHome}/plugins.${why} ` +
        `Install a binary of it with \`toolchain/pulumi plugin install resource ${name} ${version} --file <pulumi-resource-${name}>\`; ` +
        "nothing is downloaded (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION).",
    );
  }
  return missing.length === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
