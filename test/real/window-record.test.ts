/**
 * The maintenance window's record (scripts/window.sh and window-watch.sh) on its own, with the
 * real Docker engine and bash but no Pulumi: what a step run by hand records, that a step's output
 * closes when it ends although the recorder it started runs on, how a failure is recorded, and
 * that the recorder writes the report itself when the `pulumi` it ran under ends without a step
 * failing or closing the window (an engine operation failed).
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { afterAll, expect, test } from "vitest";
import { exec, waitFor } from "../support/exec";
import { PROJECT_DIR } from "../support/real-engine";
import { tempDir } from "../support/standin-stack";
import type { Report } from "../../scripts/window-report";

const LIB = path.join(PROJECT_DIR, "scripts", "lib.sh");
const STAGES = JSON.stringify([
  { key: "backup", title: "Verified backup, before anything stops" },
  { key: "migrate", title: "Run migrations" },
]);
const dirs: string[] = [];
const backupDir = () => {
  const dir = tempDir("window-record");
  dirs.push(dir);
  return dir;
};
/** The windows under a backup directory. */
const windowsOf = (dir: string) =>
  fs.existsSync(path.join(dir, "windows"))
    ? fs.readdirSync(path.join(dir, "windows")).filter((n) => fs.statSync(path.join(dir, "windows", n)).isDirectory())
    : [];
const journal = (dir: string, name: string) =>
  fs
    .readFileSync(path.join(dir, "windows", name, "journal.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

/**
 * Runs `body` as a step script (lib.sh sourced) under `runner` (bash, or a copy of bash named
 * `pulumi`), and times how long its stdout and stderr stay open after it exits.
 */
function step(
  body: string,
  env: Record<string, string>,
  runner = "bash",
): Promise<{ code: number; stdout: string; stderr: string; startedAt: number; exitedAt: number; closedAt: number }> {
  const script = `STEP=backup\nsource ${JSON.stringify(LIB)}\n${body}\n`;
  return new Promise((resolve) => {
    const startedAt = Date.now();
    // `; exit $?`: the runner waits for the step rather than becoming it (bash execs a lone command).
    const child = spawn(runner, ["-c", `bash -c "$0"; exit $?`, script], { env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    let code = -1;
    let exitedAt = 0;
    let closedAt = 0;
    let open = 2;
    const done = () => {
      if (exitedAt && closedAt) resolve({ code, stdout, stderr, startedAt, exitedAt, closedAt });
    };
    const closed = () => {
      if (--open === 0) closedAt = Date.now();
      done();
    };
    child.stdout.on("data", (d) => (stdout += d)).on("end", closed);
    child.stderr.on("data", (d) => (stderr += d)).on("end", closed);
    child.on("exit", (c) => {
      code = c ?? -1;
      exitedAt = Date.now();
      done();
    });
  });
}

afterAll(async () => {
  for (const dir of dirs) {
    for (const name of windowsOf(dir))
      await exec("pkill", ["-f", `window-watch.sh ${path.join(dir, "windows", name)}`]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("run by hand (no WINDOW_STAGES, which only the deployment gives), a step records nothing", async () => {
  const dir = backupDir();
  const run = await step(`window_begin backup 1.0.0 1.1.0\nlog done`, { BACKUP_DIR: dir });
  expect(run.code, run.stderr).toBe(0);
  expect(windowsOf(dir)).toEqual([]);
});

test("a step that opens a window: its output closes when it exits, though its recorder runs on", async () => {
  const dir = backupDir();
  const run = await step(`window_begin backup 1.0.0 1.1.0\nlog "dumping"\nwindow_step_end '{"bytes":1}'`, {
    BACKUP_DIR: dir,
    WINDOW_STAGES: STAGES,
  });
  expect(run.code, run.stderr).toBe(0);
  // `pulumi up` waits for every holder of a step's output: a recorder holding it would hold up the run.
  expect(run.closedAt - run.exitedAt).toBeLessThan(1000);
  // Nor does the step wait for the copy of its stderr (a descriptor of it left open would make it).
  expect(run.exitedAt - run.startedAt).toBeLessThan(3000);
  const [name] = windowsOf(dir);
  expect(name).toMatch(/^\d{8}T\d{6}Z-1\.0\.0-to-1\.1\.0$/);
  expect(journal(dir, name).map((e) => [e.event, e.step])).toEqual([
    ["open", undefined],
    ["start", "backup"],
    ["end", "backup"],
  ]);
  expect(fs.readFileSync(path.join(dir, "windows", name, "steps", "backup-1.log"), "utf8")).toContain(
    "backup: dumping",
  );
  const pid = fs.readFileSync(path.join(dir, "windows", name, "watch.pid"), "utf8").trim();
  expect((await exec("kill", ["-0", pid])).code).toBe(0);
  expect(fs.readFileSync(path.join(dir, "windows", "open"), "utf8").trim()).toBe(name);
});

test("a failed step: its reason is the log's last line and the journal's fail; the report is written, the window left open", async () => {
  const dir = backupDir();
  const run = await step(`window_begin backup 1.0.0 1.1.0\nlog "dumping"\ndie "pg_dump failed: disk full"`, {
    BACKUP_DIR: dir,
    WINDOW_STAGES: STAGES,
  });
  expect(run.code).toBe(1);
  expect(run.closedAt - run.exitedAt).toBeLessThan(1000);
  const [name] = windowsOf(dir);
  const log = fs
    .readFileSync(path.join(dir, "windows", name, "steps", "backup-1.log"), "utf8")
    .trim()
    .split("\n");
  expect(log.at(-1)).toMatch(/backup: pg_dump failed: disk full$/);
  expect(journal(dir, name).at(-1)).toMatchObject({
    event: "fail",
    step: "backup",
    reason: "pg_dump failed: disk full",
  });
  const report: Report = JSON.parse(fs.readFileSync(path.join(dir, "windows", name, "report.json"), "utf8"));
  expect(report.status).toBe("failed");
  expect(report.failed).toMatchObject({ stage: "backup", reason: "pg_dump failed: disk full" });
  // The recorder stopped with the failure; the window stays open for the re-run.
  expect(fs.existsSync(path.join(dir, "windows", name, "watch.pid"))).toBe(false);
  expect(fs.readFileSync(path.join(dir, "windows", "open"), "utf8").trim()).toBe(name);

  // The re-run resumes the same window: a second attempt of the step.
  const again = await step(`window_begin backup 1.0.0 1.1.0\nwindow_step_end '{}'`, {
    BACKUP_DIR: dir,
    WINDOW_STAGES: STAGES,
  });
  expect(again.code, again.stderr).toBe(0);
  expect(again.stderr).toContain(`window: resuming ${name}`);
  expect(windowsOf(dir)).toEqual([name]);
  expect(journal(dir, name).filter((e) => e.event === "start")).toMatchObject([{ attempt: 1 }, { attempt: 2 }]);
});

test("verify closes the window and names its report; verify run again outside a window still names it", async () => {
  const dir = backupDir();
  const env = { BACKUP_DIR: dir, WINDOW_STAGES: STAGES };
  expect((await step(`window_begin backup 1.0.0 1.1.0\nwindow_step_end '{}'`, env)).code).toBe(0);
  const [name] = windowsOf(dir);
  const report = path.join(dir, "windows", name, "report.md");
  const verify = await step(`window_begin verify\nwindow_step_end '{}'\nwindow_close`, env);
  expect(verify.code, verify.stderr).toBe(0);
  expect(verify.stdout).toBe(`REPORT_FILE=${report}\n`);
  expect(fs.existsSync(path.join(dir, "windows", "open"))).toBe(false);
  expect(journal(dir, name).at(-1)).toMatchObject({ event: "close" });
  // A setting changed: verify runs again, no window is open; the stack output keeps the report.
  const again = await step(`window_begin verify\nwindow_step_end '{}'\nwindow_close`, env);
  expect(again.stdout).toBe(`REPORT_FILE=${report}\n`);
  expect(windowsOf(dir)).toEqual([name]);
});

test("when the pulumi it ran under ends with the window open (no step failed or closed it), the recorder writes the report", async () => {
  const dir = backupDir();
  // A bash by the name `pulumi` stands for the CLI: the recorder looks for its nearest ancestor of that name.
  const fakePulumi = path.join(dir, "bin", "pulumi");
  fs.mkdirSync(path.dirname(fakePulumi));
  fs.copyFileSync("/bin/bash", fakePulumi);
  const run = await step(
    `window_begin backup 1.0.0 1.1.0\nwindow_step_end '{}'`,
    { BACKUP_DIR: dir, WINDOW_STAGES: STAGES, WINDOW_QUEUE_SAMPLE_SECONDS: "1" },
    fakePulumi,
  );
  expect(run.code, run.stderr).toBe(0);
  const [name] = windowsOf(dir);
  const report = path.join(dir, "windows", name, "report.json");
  expect(await waitFor(async () => fs.existsSync(report), 20_000)).toBe(true);
  const written: Report = JSON.parse(fs.readFileSync(report, "utf8"));
  expect(written.status).toBe("incomplete");
  expect(fs.readFileSync(path.join(dir, "windows", name, "watch.log"), "utf8")).toMatch(/pulumi \(pid \d+\) has ended/);
  expect((await exec("pgrep", ["-f", `window-watch.sh ${path.join(dir, "windows", name)}`])).stdout).toBe("");
});
