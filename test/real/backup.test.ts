/**
 * scripts/backup.sh against a real PostgreSQL cluster: a verified dump with checksum and
 * manifest, retention, stale partial files, and each preflight failure.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startPostgres, type PgCluster } from "../support/postgres";
import { lastLine, runScript, SCRIPTS_DIR, type ScriptResult } from "../support/run-script";

const T = 60_000;
const DB = "utilitarian";
let pg: PgCluster;
let work: string;
const runs: ScriptResult[] = [];

async function backup(env: Record<string, string | undefined>): Promise<ScriptResult> {
  const result = await runScript("backup.sh", {
    ...pg.env(DB),
    BACKUP_FROM_VERSION: "1.0.0",
    BACKUP_TO_VERSION: "1.1.0",
    ...env,
  });
  runs.push(result);
  return result;
}

function dumpsIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => /^utilitarian-.*\.dump$/.test(f)).sort();
}

function freshDir(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  return dir;
}

beforeAll(async () => {
  pg = await startPostgres();
  work = mkdtempSync(join(tmpdir(), "utilitarian-backup-test-"));
  await pg.psql(`create database ${DB}`);
  await pg.psql(
    `create table meter (id serial primary key, serial text not null unique);
     insert into meter (serial) select 'M' || g from generate_series(1, 25) g;
     create table reading (id bigserial primary key, meter_id int references meter(id), value numeric not null);
     insert into reading (meter_id, value) select 1 + g % 25, g * 1.5 from generate_series(1, 1000) g;
     create table "Audit Log" (id int);
     create schema staging;
     create table staging.empty (id int);`,
    DB,
  );
}, T);

afterAll(async () => {
  await pg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("backup.sh", () => {
  test("writes a verified dump, its .sha256 and a manifest with exact row counts", async () => {
    const dir = freshDir("ok");
    const result = await backup({ BACKUP_DIR: dir });
    expect(result.stderr).not.toMatch(/failed/);
    expect(result.code).toBe(0);

    const dumps = dumpsIn(dir);
    expect(dumps).toHaveLength(1);
    const name = dumps[0];
    expect(name).toMatch(/^utilitarian-\d{8}T\d{6}Z-1\.0\.0-to-1\.1\.0\.dump$/);
    const file = join(dir, name);
    expect(lastLine(result.stdout)).toBe(`BACKUP_FILE=${file}`);
    expect(result.stdout).toMatch(/4 tables, 1025 rows/);
    // A server outside Docker: its disk is not visible from here, and the log says so.
    expect(result.stderr).toMatch(/free space on the database server not checked \(external server\): the test restore needs about \d+ MB there/);

    const bytes = readFileSync(file);
    const sha = createHash("sha256").update(bytes).digest("hex");
    expect(readFileSync(`${file}.sha256`, "utf8")).toBe(`${sha}  ${name}\n`);
    execFileSync("sha256sum", ["-c", "--status", `${name}.sha256`], { cwd: dir }); // throws on mismatch

    const manifest = JSON.parse(readFileSync(`${file}.json`, "utf8"));
    expect(manifest).toMatchObject({
      file: name, bytes: bytes.length, sha256: sha, from: "1.0.0", to: "1.1.0",
      database: DB, test_restore: true, tables: 4, rows: 1025,
    });
    expect(manifest.row_counts).toEqual({
      'public."Audit Log"': 0, "public.meter": 25, "public.reading": 1000, "staging.empty": 0,
    });
    expect(manifest.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const toc = execFileSync("pg_restore", ["--list", file], { encoding: "utf8" });
    expect(toc).toMatch(/TABLE DATA public reading /);
    expect(toc).toMatch(/TABLE DATA public meter /);

    // Nothing left behind: no partial file, no scratch database.
    expect(readdirSync(dir).filter((f) => f.endsWith(".partial"))).toEqual([]);
    expect(await pg.psql("select count(*) from pg_database where datname like 'utilitarian_backup_verify%'")).toBe("0");
    // Every log line: UTC timestamp, step name.
    for (const line of result.stderr.trim().split("\n")) {
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ backup: /);
    }
  }, T);

  test("with BACKUP_TEST_RESTORE=false still verifies the archive and records row counts", async () => {
    const dir = freshDir("no-test-restore");
    const result = await backup({ BACKUP_DIR: dir, BACKUP_TEST_RESTORE: "false" });
    expect(result.code).toBe(0);
    expect(result.stderr).not.toMatch(/scratch database/);
    const [name] = dumpsIn(dir);
    const manifest = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
    expect(manifest.test_restore).toBe(false);
    expect(manifest.row_counts["public.reading"]).toBe(1000);
  }, T);

  test("retention keeps exactly BACKUP_KEEP dumps; stale partial files are removed and never counted", async () => {
    const dir = freshDir("retention");
    // Leftovers of a killed run, named as if newer than anything real.
    const stale = ".utilitarian-29991231T235959Z-1.0.0-to-1.1.0.dump.partial";
    writeFileSync(join(dir, stale), "half a dump");
    writeFileSync(join(dir, "utilitarian-29991231T235959Z-1.0.0-to-1.1.0.dump.sha256"), "orphan\n");
    // A dump that was never verified (no sidecars) is not one of ours: never counted, never deleted.
    writeFileSync(join(dir, "utilitarian-20000101T000000Z-manual-to-copy.dump"), "not verified");

    const files: string[] = [];
    for (let i = 0; i < 4; i++) {
      const result = await backup({ BACKUP_DIR: dir, BACKUP_KEEP: "2", BACKUP_TEST_RESTORE: "false" });
      expect(result.code).toBe(0);
      files.push(lastLine(result.stdout).replace(/^BACKUP_FILE=/, ""));
    }
    expect(new Set(files).size).toBe(4);

    const left = readdirSync(dir).sort();
    const verified = left.filter((f) => f.endsWith(".dump") && left.includes(`${f}.sha256`) && left.includes(`${f}.json`));
    expect(verified).toEqual(files.slice(2).map((f) => basename(f)).sort());
    expect(left.filter((f) => f.includes("29991231"))).toEqual([]);
    expect(left).toContain("utilitarian-20000101T000000Z-manual-to-copy.dump");
    expect(left.filter((f) => f.endsWith(".partial") || f.endsWith(".tmp"))).toEqual([]);
    for (const old of files.slice(0, 2)) {
      expect(existsSync(old)).toBe(false);
      expect(existsSync(`${old}.sha256`)).toBe(false);
      expect(existsSync(`${old}.json`)).toBe(false);
    }
  }, T);

  describe("fails with a named reason and leaves no dump", () => {
    test("database unreachable (wrong port)", async () => {
      const dir = freshDir("unreachable");
      const port = String(pg.port === 1 ? 2 : 1);
      const result = await backup({ BACKUP_DIR: dir, PGPORT: port });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(new RegExp(`backup: database unreachable at 127\\.0\\.0\\.1:${port}\\b`));
      expect(readdirSync(dir)).toEqual([]);
      expect(result.stdout).not.toMatch(/BACKUP_FILE=/);
    }, T);

    test("wrong password is reported as unreachable, without the password", async () => {
      const dir = freshDir("bad-password");
      const result = await backup({ BACKUP_DIR: dir, PGPASSWORD: "definitely-not-it-4711" });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/database unreachable at .*password authentication failed/);
      expect(result.stderr + result.stdout).not.toContain("definitely-not-it-4711");
      expect(readdirSync(dir)).toEqual([]);
    }, T);

    test("target directory cannot be created (a path below a regular file)", async () => {
      const blocker = join(work, "a-regular-file");
      writeFileSync(blocker, "x");
      const result = await backup({ BACKUP_DIR: join(blocker, "backups") });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/backup: backup directory .*a-regular-file\/backups does not exist and cannot be created \(BACKUP_DIR\)/);
      expect(readFileSync(blocker, "utf8")).toBe("x");
    }, T);

    test("target directory is not writable (read-only tmpfs is not available: /proc is)", async () => {
      // Root ignores file modes; /proc/1 is a real directory nobody can create files in.
      const result = await backup({ BACKUP_DIR: "/proc/1" });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/backup: backup directory \/proc\/1 is not writable \(BACKUP_DIR\)$/);
    }, T);

    test("not enough free space names both figures", async () => {
      const dir = freshDir("no-space");
      const result = await backup({ BACKUP_DIR: dir, BACKUP_MIN_FREE_MB: "999999999" });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/backup: not enough free space in .*no-space: \d+ MB free, 999999999 MB needed/);
      expect(dumpsIn(dir)).toEqual([]);
      expect(readdirSync(dir).filter((f) => f.includes("partial"))).toEqual([]);
    }, T);

    test("a missing variable is named with the setting that provides it", async () => {
      const result = await backup({ BACKUP_DIR: undefined });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/ backup: BACKUP_DIR is not set \(utilitarian:backup\.dir/);
    }, T);

    test("several missing variables are all named", async () => {
      const result = await backup({ BACKUP_DIR: undefined, PGHOST: undefined, BACKUP_TO_VERSION: undefined });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/PGHOST is not set/);
      expect(result.stderr).toMatch(/BACKUP_DIR is not set/);
      expect(lastLine(result.stderr)).toMatch(/also missing: BACKUP_DIR BACKUP_TO_VERSION$/);
    }, T);

    test("invalid BACKUP_KEEP and version strings are refused", async () => {
      const dir = freshDir("invalid");
      const keep = await backup({ BACKUP_DIR: dir, BACKUP_KEEP: "0" });
      expect(keep.code).not.toBe(0);
      expect(lastLine(keep.stderr)).toMatch(/BACKUP_KEEP must be an integer >= 1; got '0'/);
      const version = await backup({ BACKUP_DIR: dir, BACKUP_TO_VERSION: "../../etc" });
      expect(version.code).not.toBe(0);
      expect(lastLine(version.stderr)).toMatch(/BACKUP_TO_VERSION must be a version/);
      expect(readdirSync(dir)).toEqual([]);
    }, T);

    test("pg_dump failure (missing database is caught before the dump)", async () => {
      const dir = freshDir("no-db");
      const result = await backup({ BACKUP_DIR: dir, PGDATABASE: "does_not_exist" });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/database unreachable at .*database "does_not_exist" does not exist/);
      expect(readdirSync(dir)).toEqual([]);
    }, T);
  });

  test("SIGTERM during pg_dump: the reason is the last line, no partial file or scratch database remains; the next run works", async () => {
    await pg.psql("create database big");
    await pg.psql("create table big as select g as id, md5(g::text) as h from generate_series(1, 1500000) g", "big");
    const dir = freshDir("sigterm");
    const child = spawn(join(SCRIPTS_DIR, "backup.sh"), [], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/root", ...pg.env("big"),
        BACKUP_DIR: dir, BACKUP_FROM_VERSION: "1.0.0", BACKUP_TO_VERSION: "1.1.0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const started = Date.now();
    while (!readdirSync(dir).some((f) => f.endsWith(".partial")) && Date.now() - started < 20_000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGTERM");
    expect(await exited).toBe(143);
    expect(lastLine(stderr)).toMatch(/backup: interrupted \(SIGTERM\)$/);
    expect(readdirSync(dir).filter((f) => f !== ".backup.lock")).toEqual([]);
    expect(await pg.psql("select count(*) from pg_database where datname like 'utilitarian_backup_verify%'")).toBe("0");

    const again = await backup({ BACKUP_DIR: dir, PGDATABASE: "big", BACKUP_TEST_RESTORE: "false" });
    expect(again.code, again.stderr).toBe(0);
    expect(dumpsIn(dir)).toHaveLength(1);
    await pg.psql("drop database big");
  }, 120_000);

  test("the password never appears in any output", () => {
    expect(runs.length).toBeGreaterThan(10);
    for (const result of runs) {
      expect(result.stdout).not.toContain(pg.password);
      expect(result.stderr).not.toContain(pg.password);
    }
  });
});
