/**
 * `npm run plan`: the maintenance printed from a stack file, as an operator runs it before the
 * window (built to JavaScript first, as the npm script does).
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
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

function plan(args: string[]) {
  const r = spawnSync("node", [path.join(ROOT, "dist/cli/plan.js"), "--stack", "dev", ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, PGPASSWORD: "" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const stagesOf = (text: string) => [...text.matchAll(/^(\d+)\. (.*?)(?: \[runbook ([\d, ]+)\])?$/gm)].map((m) => `${m[1]}. ${m[2]}${m[3] ? ` [${m[3]}]` : ""}`);

beforeAll(() => {
  execFileSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "pipe" });
}, 120_000);

describe("npm run plan", () => {
  test("dev stack bumped to 1.1.0: numbered stages in the runbook's order, what stops and starts, what keeps running", () => {
    const r = plan(["--from", "1.0.0", "--stacks-dir", stacksWith((y) => y.replace("utilitarian:version: 1.0.0", "utilitarian:version: 1.1.0"))]);
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
    expect(r.stdout).toMatch(/Keeps running throughout.*\n\s+utilitarian-dev-udp-server, utilitarian-dev-postgres, utilitarian-dev-rabbitmq/);
    expect(r.stdout).toMatch(/ 7\. Run migrations \(manage\.py migrate\): stage 5/);
    // No database answers here: the estimate says so rather than guessing.
    expect(r.stdout).toContain("size not estimated: the database at 127.0.0.1:15432 did not answer");
    // The dev stack file holds no secrets: the note names them, without any value.
    expect(r.stderr).toMatch(/no value for utilitarian:secretKey, utilitarian:databasePassword/);
  });

  test("--markdown gives the same stages for a change ticket", () => {
    const r = plan(["--from", "1.0.0", "--markdown", "--stacks-dir", stacksWith((y) => y.replace("utilitarian:version: 1.0.0", "utilitarian:version: 1.1.0"))]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter((l) => l.startsWith("## ")).slice(0, 3)).toEqual([
      "## 1. Pull the new images while everything runs [runbook 4]",
      "## 2. Verified backup, before anything stops [runbook 1]",
      "## 3. Stop the services that depend on the API, then the API [runbook 2, 3]",
    ]);
  });

  test("a rollback restores the verified backup between the stop and the older API", () => {
    const backups = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-backups-"));
    writeBackup(backups, { stamp: "20261101T020304Z", from: "1.0.0", to: "1.1.0" });
    const r = plan(["--from", "1.1.0", "--stacks-dir", stacksWith((y) => `${y.replace("    dir: ./backups/dev", `    dir: ${backups}`)}  utilitarian:restoreFrom: latest\n`)]);
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
    const r = plan(["--from", "1.0.0", "--stacks-dir", stacksWith((y) => y.replace("    port: 8000", "    port: 80000"))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("The stack configuration has 1 problem; nothing was changed");
    expect(r.stderr).toContain("utilitarian:api.port");
  });

  test("an unknown stack is a usage error that lists the stack files", () => {
    const r = spawnSync("node", [path.join(ROOT, "dist/cli/plan.js"), "--stack", "nope"], { cwd: ROOT, encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no stack file .*Pulumi\.nope\.yaml; stack files there: .*Pulumi\.dev\.yaml/);
  });
});
