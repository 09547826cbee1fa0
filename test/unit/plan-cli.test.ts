/**
 * `npm run plan`: the maintenance printed from a stack file, as an operator runs it before the
 * window (built to JavaScript first, as the npm script does).
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { beforeAll, describe, expect, test } from "vitest";
import { writeBackup } from "./support/backups";

const ROOT = path.resolve(__dirname, "../..");
const DEV = fs.readFileSync(path.join(ROOT, "stacks/Pulumi.dev.yaml"), "utf8");

/** A stacks directory with the dev stack file edited by `edit`. */
function stacksWith(edit: (yaml: string) => string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-"));
  fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), edit(DEV));
  return dir;
}

const bumped = (yaml: string) => yaml.replace("utilitarian:version: 1.0.0", "utilitarian:version: 1.1.0");

/** `npm run plan` of the checkout `root` (this one unless given); no PULUMI_BACKEND_URL unless `env` sets one. */
function plan(args: string[], { root = ROOT, env = {} }: { root?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync("node", [path.join(root, "dist/cli/plan.js"), "--stack", "dev", ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, PGPASSWORD: "", PULUMI_BACKEND_URL: "", ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Another checkout of this package, built, with no state of its own yet. */
function checkout(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-checkout-"));
  for (const file of ["package.json", "Pulumi.yaml"]) fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
  fs.cpSync(path.join(ROOT, "dist"), path.join(dir, "dist"), { recursive: true });
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  return dir;
}

/**
 * The dev stack's state as the engine 3.250.0 writes it after an `up` of `version`, cut down from
 * a real one to the stack, the component and the schema guard, whose outputs hold the version.
 */
function stateOf(version: string) {
  const component = "urn:pulumi:dev::utilitarian::utilitarian:index:UtilitarianDeployment::utilitarian-dev";
  return {
    version: 4,
    features: ["replaceWith"],
    checkpoint: {
      stack: "organization/utilitarian/dev",
      latest: {
        manifest: {
          time: "2026-12-07T00:55:18.109078254Z",
          magic: "9efda2e66c69194595f1be2c3587ab931ef188c15697bed0da0a960b45186d89",
          version: "v3.250.0",
        },
        secrets_providers: {
          type: "passphrase",
          state: { salt: "v1:FM0AzldGALs=:v1:YXvCw8NoNZJY6amE:60Sq5iZo6e4mPDfyLz1GIHJDEuIS0Q==" },
        },
        resources: [
          {
            urn: "urn:pulumi:dev::utilitarian::pulumi:pulumi:Stack::utilitarian-dev",
            custom: false,
            type: "pulumi:pulumi:Stack",
            outputs: { apiUrl: "http://127.0.0.1:8000" },
          },
          {
            urn: component,
            custom: false,
            type: "utilitarian:index:UtilitarianDeployment",
            outputs: { version },
            parent: "urn:pulumi:dev::utilitarian::pulumi:pulumi:Stack::utilitarian-dev",
          },
          {
            urn: "urn:pulumi:dev::utilitarian::utilitarian:index:UtilitarianDeployment$pulumi-nodejs:dynamic/utilitarian-schema-guard:Resource::utilitarian-dev-schema-guard",
            custom: true,
            id: "schema-guard",
            type: "pulumi-nodejs:dynamic/utilitarian-schema-guard:Resource",
            inputs: { __provider: "exports.handler = __f0;", version },
            outputs: { __provider: "exports.handler = __f0;", previousVersion: "none", version },
            parent: component,
            provider:
              "urn:pulumi:dev::utilitarian::pulumi:providers:pulumi-nodejs::default::8fe910c7-2732-4e27-9c87-b112f27d666f",
          },
        ],
        metadata: {},
      },
    },
  };
}

/** Writes the dev stack's state of `version` into the file backend at `dir`, as `dev.json` or `dev.json.gz`. */
function writeState(dir: string, version: string, file: "dev.json" | "dev.json.gz" = "dev.json"): void {
  const stacks = path.join(dir, ".pulumi", "stacks", "utilitarian");
  fs.mkdirSync(stacks, { recursive: true });
  const json = JSON.stringify(stateOf(version));
  fs.writeFileSync(path.join(stacks, file), file.endsWith(".gz") ? zlib.gzipSync(json) : json);
}

const stagesOf = (text: string) =>
  [...text.matchAll(/^(\d+)\. (.*?)(?: \[runbook ([\d, ]+)\])?$/gm)].map(
    (m) => `${m[1]}. ${m[2]}${m[3] ? ` [${m[3]}]` : ""}`,
  );

beforeAll(() => {
  execFileSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "pipe" });
}, 120_000);

describe("npm run plan", () => {
  test("dev stack bumped to 1.1.0: numbered stages in the runbook's order, what stops and starts, what keeps running", () => {
    const r = plan([
      "--from",
      "1.0.0",
      "--stacks-dir",
      stacksWith((y) => y.replace("utilitarian:version: 1.0.0", "utilitarian:version: 1.1.0")),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Maintenance: Utilitarian 1\.0\.0 -> 1\.1\.0/);
    expect(stagesOf(r.stdout)).toEqual([
      "1. Pull the new images while everything runs [4]",
      "2. Verified backup, before anything stops [1]",
      "3. Stop the services that depend on the API, then the API [2, 3]",
      "4. Start only the API on 1.1.0 [5, 6]",
      "5. Run migrations [7]",
      "6. Collect and compress static assets [8]",
      "7. Start everything else on 1.1.0 [9]",
      "8. Verify [10]",
    ]);
    expect(r.stdout).toContain("pull utilitarian-standin/utilitarian:1.1.0");
    expect(r.stdout).toContain("./backups/dev/utilitarian-<UTC>-1.0.0-to-1.1.0.dump");
    expect(r.stdout).toContain("stop utilitarian-dev-processor, utilitarian-dev-poster (they call the API)");
    expect(r.stdout).toMatch(
      /Keeps running throughout.*\n\s+utilitarian-dev-proxy, utilitarian-dev-udp-server, utilitarian-dev-postgres, utilitarian-dev-rabbitmq/,
    );
    expect(r.stdout).toMatch(/ 7\. Run migrations \(manage\.py migrate\): stage 5/);
    // No database answers here: the estimate says so rather than guessing.
    expect(r.stdout).toContain("size not estimated: the database at 127.0.0.1:15432 did not answer");
    // The dev stack file holds no secrets: the note names them, without any value.
    expect(r.stderr).toMatch(/no value for utilitarian:secretKey, utilitarian:databasePassword/);
  });

  test("--markdown gives the same stages for a change ticket", () => {
    const r = plan([
      "--from",
      "1.0.0",
      "--markdown",
      "--stacks-dir",
      stacksWith((y) => y.replace("utilitarian:version: 1.0.0", "utilitarian:version: 1.1.0")),
    ]);
    expect(r.code).toBe(0);
    expect(
      r.stdout
        .split("\n")
        .filter((l) => l.startsWith("## "))
        .slice(0, 3),
    ).toEqual([
      "## 1. Pull the new images while everything runs [runbook 4]",
      "## 2. Verified backup, before anything stops [runbook 1]",
      "## 3. Stop the services that depend on the API, then the API [runbook 2, 3]",
    ]);
  });

  test("a rollback restores the verified backup between the stop and the older API", () => {
    const backups = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-backups-"));
    writeBackup(backups, { stamp: "20261101T020304Z", from: "1.0.0", to: "1.1.0" });
    const r = plan([
      "--from",
      "1.1.0",
      "--stacks-dir",
      stacksWith(
        (y) => `${y.replace("    dir: ./backups/dev", `    dir: ${backups}`)}  utilitarian:restoreFrom: latest\n`,
      ),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(stagesOf(r.stdout).slice(1, 4)).toEqual([
      "2. Verified backup, before anything stops [1]",
      "3. Restore the chosen backup (rollback)",
      "4. Stop the services that depend on the API, then the API [2, 3]",
    ]);
    expect(r.stdout).toContain("the newest verified backup taken while 1.0.0 ran");
  });

  test("no version change: nothing to do; a downgrade without a restore is refused as the preview would", () => {
    expect(plan(["--from", "1.0.0"]).stdout).toMatch(/^No version change \(1\.0\.0\)/);
    const down = plan(["--from", "1.2.0"]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("Refusing to go from 1.2.0 down to 1.0.0 without restoring the database");
  });

  test("bad config gets the loader's messages, naming the key and the fix", () => {
    const r = plan([
      "--from",
      "1.0.0",
      "--stacks-dir",
      stacksWith((y) => y.replace("    port: 8000", "    port: 80000")),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("The stack configuration has 1 problem; nothing was changed");
    expect(r.stderr).toContain("utilitarian:api.port");
  });

  test("a secret map set entry by entry (`config set --secret --path`, as scripts/dev-up.sh does) counts as set; its names are still checked", () => {
    const secretEnv = (names: string[]) =>
      `  utilitarian:apiSecretEnv:\n${names.map((n) => `    ${n}:\n      secure: v1:veFBQKDY6wZ9p28v:Fx04lMg1T6i4neO1\n`).join("")}`;
    const r = plan([
      "--from",
      "1.0.0",
      "--stacks-dir",
      stacksWith((y) => bumped(y) + secretEnv(["STANDIN_ACCEPTED_TOKEN", "JWT_SIGNING_KEY"])),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Maintenance: Utilitarian 1\.0\.0 -> 1\.1\.0/);
    expect(r.stderr).not.toContain("apiSecretEnv");
    // The loader sees the map's names (placeholders for the values): one also in api.env is refused.
    const twice = plan(["--from", "1.0.0", "--stacks-dir", stacksWith((y) => y + secretEnv(["UTILITARIAN_LOGLEVEL"]))]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain("`utilitarian:apiSecretEnv.UTILITARIAN_LOGLEVEL` is also set in api.env");
  });

  test("a secret map with one plain entry is refused as plain text, without its value", () => {
    const mixed =
      "  utilitarian:apiSecretEnv:\n    STANDIN_ACCEPTED_TOKEN:\n      secure: v1:veFBQKDY6wZ9p28v:Fx04lMg1T6i4neO1\n    JWT_SIGNING_KEY: in-the-clear\n";
    const r = plan(["--from", "1.0.0", "--stacks-dir", stacksWith((y) => bumped(y) + mixed)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "`utilitarian:apiSecretEnv` is stored in plain text; set it again with `pulumi config set --secret",
    );
    expect(r.stderr).not.toContain("must be a map");
    expect(r.stderr + r.stdout).not.toContain("in-the-clear");
  });

  test("without --from the running version comes from the stack's state: ./.pulumi, or PULUMI_BACKEND_URL's file backend, gzipped or not", () => {
    const root = checkout();
    const stacks = stacksWith(bumped);
    writeState(path.join(root, ".pulumi"), "1.0.0");
    const local = plan(["--stacks-dir", stacks], { root });
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/^Maintenance: Utilitarian 1\.0\.0 -> 1\.1\.0/);

    // PULUMI_BACKEND_URL is the backend `pulumi` uses, whatever ./.pulumi holds (here: the new version already).
    writeState(path.join(root, ".pulumi"), "1.1.0");
    expect(plan(["--stacks-dir", stacks], { root }).stdout).toMatch(/^No version change \(1\.1\.0\)/);
    for (const file of ["dev.json", "dev.json.gz"] as const) {
      const backend = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-backend-"));
      writeState(backend, "1.0.0", file);
      const r = plan(["--stacks-dir", stacks], { root, env: { PULUMI_BACKEND_URL: `file://${backend}` } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, file).toMatch(/^Maintenance: Utilitarian 1\.0\.0 -> 1\.1\.0/);
    }
  });

  test("without a state to read, the plan names the running version only as such", () => {
    const root = checkout();
    const stacks = stacksWith(bumped);
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-backend-"));
    const none = plan(["--stacks-dir", stacks], { root, env: { PULUMI_BACKEND_URL: `file://${empty}` } });
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/^Maintenance: Utilitarian <the running version> -> 1\.1\.0/);
    // A backend that is not a directory here: only the Pulumi CLI reads it, and the note says how to name the version.
    const remote = plan(["--stacks-dir", stacks], { root, env: { PULUMI_BACKEND_URL: "s3://state-bucket" } });
    expect(remote.stdout).toMatch(/^Maintenance: Utilitarian <the running version> -> 1\.1\.0/);
    expect(remote.stderr).toContain(
      "note: the running version is read only from a file backend (PULUMI_BACKEND_URL names another); `--from <version>` names it",
    );
  });

  test("an unknown stack is a usage error that lists the stack files", () => {
    const r = spawnSync("node", [path.join(ROOT, "dist/cli/plan.js"), "--stack", "nope"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no stack file .*Pulumi\.nope\.yaml; stack files there: .*Pulumi\.dev\.yaml/);
  });
});
