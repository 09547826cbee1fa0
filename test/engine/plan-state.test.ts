/**
 * `npm run plan` names the version the stack runs now from the state the real engine
 * (toolchain/pulumi) writes in a file backend: where it keeps the stack's file, and how it
 * compresses it when PULUMI_DIY_BACKEND_GZIP or PULUMI_DIY_BACKEND_ZSTD is set. The states are
 * written by `pulumi stack import`, so no program runs and no Docker is needed.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { beforeAll, describe, expect, test } from "vitest";
import { program, PROJECT_DIR, pulumiOk, toolchainDir, type Workspace } from "../support/real-engine";

const MINUTE = 60_000;
/** A checkout of this package with the plan CLI built into it, and a stacks directory with the dev stack bumped to 1.1.0. */
let checkout = "";
let stacks = "";

beforeAll(async () => {
  await toolchainDir();
  // Built into a checkout of its own: the shared dist/ may be in use, and ./.pulumi is its own.
  checkout = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-plan-state-"));
  for (const file of ["package.json", "Pulumi.yaml"])
    fs.copyFileSync(path.join(PROJECT_DIR, file), path.join(checkout, file));
  fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(checkout, "node_modules"));
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json", "--outDir", path.join(checkout, "dist")], {
    cwd: PROJECT_DIR,
    stdio: "pipe",
  });
  stacks = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-plan-stacks-"));
  const dev = fs.readFileSync(path.join(PROJECT_DIR, "stacks/Pulumi.dev.yaml"), "utf8");
  fs.writeFileSync(
    path.join(stacks, "Pulumi.dev.yaml"),
    dev.replace("utilitarian:version: 1.0.0", "utilitarian:version: 1.1.0"),
  );
}, 30 * MINUTE);

/**
 * The dev stack after an `up` of `version`, as `pulumi stack export` gives it, cut down to the
 * stack, the component and the schema guard (whose outputs hold the version) with its provider.
 */
function exported(version: string) {
  const stack = "urn:pulumi:dev::utilitarian::pulumi:pulumi:Stack::utilitarian-dev";
  const component = "urn:pulumi:dev::utilitarian::utilitarian:index:UtilitarianDeployment::utilitarian-dev";
  const provider = "urn:pulumi:dev::utilitarian::pulumi:providers:pulumi-nodejs::default";
  const providerId = "8fe910c7-2732-4e27-9c87-b112f27d666f";
  return {
    version: 3,
    deployment: {
      resources: [
        { urn: stack, custom: false, type: "pulumi:pulumi:Stack" },
        {
          urn: component,
          custom: false,
          type: "utilitarian:index:UtilitarianDeployment",
          outputs: { version },
          parent: stack,
        },
        { urn: provider, custom: true, id: providerId, type: "pulumi:providers:pulumi-nodejs" },
        {
          urn: "urn:pulumi:dev::utilitarian::utilitarian:index:UtilitarianDeployment$pulumi-nodejs:dynamic/utilitarian-schema-guard:Resource::utilitarian-dev-schema-guard",
          custom: true,
          id: "schema-guard",
          type: "pulumi-nodejs:dynamic/utilitarian-schema-guard:Resource",
          inputs: { version },
          outputs: { previousVersion: "none", version },
          parent: component,
          provider: `${provider}::${providerId}`,
        },
      ],
    },
  };
}

/** The engine writes the dev stack's state of `version` into the workspace's backend (or `env`'s). */
async function importState(ws: Workspace, version: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const file = path.join(ws.dir, `export-${version}.json`);
  fs.writeFileSync(file, JSON.stringify(exported(version)));
  await pulumiOk(ws, ["stack", "import", "--stack", "dev", "--file", file], { env });
}

/** The stack's files in a backend directory, without the blob library's `.attrs` beside each. */
const stateFiles = (backend: string) =>
  fs
    .readdirSync(path.join(backend, ".pulumi/stacks/utilitarian"))
    .filter((f) => !f.endsWith(".attrs"))
    .sort();

function plan(env: NodeJS.ProcessEnv) {
  const r = spawnSync("node", [path.join(checkout, "dist/cli/plan.js"), "--stack", "dev", "--stacks-dir", stacks], {
    cwd: checkout,
    encoding: "utf8",
    env: { ...env, PGPASSWORD: "" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run plan and the engine's state", () => {
  test("PULUMI_BACKEND_URL's file backend: plain, gzip-compressed, zstd-compressed", async () => {
    const ws = program("utilitarian", "export {};\n");
    await pulumiOk(ws, ["stack", "init", "dev"]);

    await importState(ws, "1.0.0");
    expect(stateFiles(ws.backend)).toContain("dev.json");
    const plain = plan(ws.env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^Maintenance: Utilitarian 1\.0\.0 -> 1\.1\.0/);

    // The engine moves the plain file aside and writes dev.json.gz.
    await importState(ws, "1.0.1", { PULUMI_DIY_BACKEND_GZIP: "true" });
    expect(stateFiles(ws.backend)).toEqual(["dev.json.bak", "dev.json.gz"]);
    expect(plan(ws.env).stdout).toMatch(/^Maintenance: Utilitarian 1\.0\.1 -> 1\.1\.0/);

    // zstd, which this command does not decompress: it says so and how to name the version.
    await importState(ws, "1.0.2", { PULUMI_DIY_BACKEND_ZSTD: "true" });
    expect(stateFiles(ws.backend)).toEqual(["dev.json.bak", "dev.json.gz.bak", "dev.json.zst"]);
    const zstd = plan(ws.env);
    expect(zstd.code, zstd.stderr).toBe(0);
    expect(zstd.stdout).toMatch(/^Maintenance: Utilitarian <the running version> -> 1\.1\.0/);
    expect(zstd.stderr).toMatch(
      /note: .*dev\.json\.zst is zstd-compressed \(PULUMI_DIY_BACKEND_ZSTD\), which this command does not read; `--from <version>` names the running version/,
    );
  });

  test("./.pulumi, where scripts/dev-up.sh keeps the state (file://$PWD/.pulumi), read without PULUMI_BACKEND_URL", async () => {
    const ws = program("utilitarian", "export {};\n");
    fs.mkdirSync(path.join(checkout, ".pulumi"));
    const local = { PULUMI_BACKEND_URL: `file://${path.join(checkout, ".pulumi")}` };
    await pulumiOk(ws, ["stack", "init", "dev"], { env: local });
    await importState(ws, "1.0.0", local);
    const r = plan({ ...ws.env, PULUMI_BACKEND_URL: "" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Maintenance: Utilitarian 1\.0\.0 -> 1\.1\.0/);
  });
});
