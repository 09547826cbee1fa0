/**
 * scripts/restore.sh against a real PostgreSQL cluster: a rollback restores the backup's
 * data exactly, keeps the previous database, refuses tampered dumps, and `latest` picks the
 * newest verified backup.
 */
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startPostgres, type PgCluster } from "../support/postgres";
import { lastLine, runScript, type ScriptResult } from "../support/run-script";

const T = 60_000;
const DB = "utilitarian";
const OWNER = "utilitarian_app";
let pg: PgCluster;
let dir: string;
const runs: ScriptResult[] = [];

async function backup(to: string, from = "1.0.0"): Promise<string> {
  const result = await runScript("backup.sh", {
    ...pg.env(DB),
    BACKUP_DIR: dir,
    BACKUP_FROM_VERSION: from,
    BACKUP_TO_VERSION: to,
  });
  runs.push(result);
  expect(result.code, result.stderr).toBe(0);
  return lastLine(result.stdout).replace(/^BACKUP_FILE=/, "");
}

async function restore(file: string, extra: Record<string, string> = {}): Promise<ScriptResult> {
  const result = await runScript("restore.sh", {
    ...pg.env(DB),
    RESTORE_FILE: file,
    BACKUP_DIR: dir,
    RESTORE_DB_OWNER: OWNER,
    ...extra,
  });
  runs.push(result);
  return result;
}

/** Everything that matters about the data: the public tables and each one's rows, in order, as text. */
async function snapshot(db = DB): Promise<string> {
  const tables = (await pg.psql("select tablename from pg_tables where schemaname = 'public' order by 1", db))
    .split("\n")
    .filter((t) => t !== "");
  const parts = [`tables=${tables.join(",")}`];
  for (const table of tables) {
    parts.push(
      `${table}=${await pg.psql(`select coalesce(string_agg(x::text, ';' order by x::text), '') from "${table}" x`, db)}`,
    );
  }
  return parts.join("\n");
}

async function databases(): Promise<string[]> {
  const out = await pg.psql(
    "select datname from pg_database where not datistemplate and datname <> 'postgres' order by 1",
  );
  return out === "" ? [] : out.split("\n");
}

async function dropKept(): Promise<void> {
  for (const db of await databases()) {
    if (db.startsWith(`${DB}_before_restore_`)) await pg.psql(`drop database "${db}"`);
  }
}

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "utilitarian-restore-test-"));
  await pg.psql(`create role ${OWNER} login password 'app-secret'`);
  await pg.psql(`create database ${DB} owner ${OWNER}`);
  await pg.psql(
    `set role ${OWNER};
     create table meter (id serial primary key, serial text not null);
     insert into meter (serial) select 'M' || g from generate_series(1, 10) g;
     create table reading (id serial primary key, meter_id int references meter(id), value int);
     insert into reading (meter_id, value) select 1 + g % 10, g from generate_series(1, 200) g;`,
    DB,
  );
}, T);

afterAll(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("restore.sh", () => {
  test(
    "rolls back inserts, deletes and a dropped table; keeps the previous database; owner is RESTORE_DB_OWNER",
    async () => {
      const before = await snapshot();
      const file = await backup("1.1.0");

      await pg.psql(
        `insert into meter (serial) values ('NEW');
       delete from reading where id <= 50;
       drop table reading;
       create table added_by_migration (id int);`,
        DB,
      );
      const changed = await snapshot();
      expect(changed).not.toBe(before);

      // An application session that stays connected must not block the swap.
      const holder = spawn("psql", ["-X", "-c", "select pg_sleep(60)"], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...pg.env(DB) },
        stdio: "ignore",
      });
      await new Promise((r) => setTimeout(r, 500));

      // The server's disk at the peak: a copy of the database plus the sort files of as many
      // index builds as there are jobs (2 by default), about the size of the largest indexes.
      const estimate = Number(
        await pg.psql(
          `select pg_database_size(current_database()) + (select sum(b) from (select pg_relation_size(oid) b from pg_class where relkind = 'i' order by 1 desc limit 2) t)`,
          DB,
        ),
      );
      const result = await restore(file);
      holder.kill();
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(
        /restoring utilitarian-\S+\.dump into utilitarian_restoring \(owner utilitarian_app, pg_restore -j 2\)/,
      );
      expect(result.stderr).toContain(
        `the restore into ${DB}_restoring needs about ${Math.ceil(estimate / 1048576)} MB there (database size + the largest index per restore job, for the sort files of index builds)`,
      );
      expect(result.stderr).toMatch(/terminated [1-9]\d* session\(s\) on utilitarian$/m);
      expect(await snapshot()).toBe(before);
      expect(await pg.psql("select count(*) from pg_tables where tablename = 'added_by_migration'", DB)).toBe("0");

      const kept = /^KEPT_DATABASE=(.+)$/m.exec(result.stdout)?.[1] ?? "";
      expect(kept).toMatch(new RegExp(`^${DB}_before_restore_\\d{8}_\\d{6}$`));
      expect(result.stdout).toContain(`previous database kept as ${kept} (not dropped`);
      expect(await databases()).toEqual([DB, kept].sort());
      expect(await snapshot(kept)).toBe(changed);
      expect(result.stdout).toMatch(/public\.reading\s+200/);
      expect(lastLine(result.stdout)).toBe(`KEPT_DATABASE=${kept}`);

      expect(await pg.psql(`select pg_get_userbyid(datdba) from pg_database where datname = '${DB}'`)).toBe(OWNER);
      expect(
        await pg.psql("select string_agg(distinct tableowner, ',') from pg_tables where schemaname = 'public'", DB),
      ).toBe(OWNER);
      await dropKept();
    },
    T,
  );

  test(
    "refuses a tampered dump (sha256 mismatch) and leaves the database untouched",
    async () => {
      const file = await backup("1.2.0");
      await pg.psql("insert into meter (serial) values ('after-backup')", DB);
      const before = await snapshot();
      appendFileSync(file, "tampered");

      const result = await restore(file);
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/restore: refusing to restore .*: sha256 mismatch/);
      expect(await snapshot()).toBe(before);
      expect(await databases()).toEqual([DB]);
    },
    T,
  );

  test(
    "refuses a dump without its .sha256",
    async () => {
      const file = await backup("1.2.1");
      rmSync(`${file}.sha256`);
      const result = await restore(file);
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/checksum file .*\.sha256 is missing/);
      expect(await databases()).toEqual([DB]);
    },
    T,
  );

  test(
    "an unknown owner role is refused before anything changes",
    async () => {
      const file = await backup("1.2.2");
      const before = await snapshot();
      const result = await runScript("restore.sh", {
        ...pg.env(DB),
        RESTORE_FILE: file,
        RESTORE_DB_OWNER: "no_such_role",
      });
      runs.push(result);
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/role no_such_role does not exist \(RESTORE_DB_OWNER\)/);
      expect(await snapshot()).toBe(before);
      expect(await databases()).toEqual([DB]);
    },
    T,
  );

  test(
    "row counts that differ from the manifest are refused after pg_restore; _restoring is dropped",
    async () => {
      const file = await backup("1.2.3");
      const before = await snapshot();
      const manifestPath = `${file}.json`;
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
      manifest.row_counts["public.meter"] = 9999;
      writeFileSync(manifestPath, JSON.stringify(manifest));

      const result = await restore(file);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/^-public\.meter\t9999$/m);
      expect(result.stderr).toContain(`dropped ${DB}_restoring; ${DB} was not changed`);
      expect(lastLine(result.stderr)).toMatch(/row counts of the restored database differ from the backup's manifest/);
      expect(await snapshot()).toBe(before);
      expect(await databases()).toEqual([DB]);
    },
    T,
  );

  test(
    "RESTORE_FILE=latest picks the newest verified backup",
    async () => {
      await pg.psql("truncate reading; insert into reading (meter_id, value) values (1, 111)", DB);
      await backup("2.0.0");
      await pg.psql("insert into reading (meter_id, value) values (2, 222)", DB);
      const newest = await snapshot();
      const newestFile = await backup("2.0.1");
      await pg.psql("delete from reading; delete from meter where id > 3", DB);

      const result = await restore("latest");
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain(`newest verified backup is ${newestFile.split("/").pop()}`);
      expect(result.stdout).toContain(`RESTORED_FILE=${newestFile}`);
      expect(await snapshot()).toBe(newest);
      expect(await pg.psql("select value from reading order by id", DB)).toBe("111\n222");
      await dropKept();
    },
    T,
  );

  test(
    "with RESTORE_VERSION, latest is the newest backup taken while that version ran, not a later one",
    async () => {
      await pg.psql("truncate reading; insert into reading (meter_id, value) values (1, 5)", DB);
      const before = await snapshot();
      const preUpgrade = await backup("3.1.0", "3.0.0"); // taken by the upgrade 3.0.0 -> 3.1.0
      await pg.psql("insert into reading (meter_id, value) values (2, 6)", DB);
      await backup("3.0.0", "3.1.0"); // taken by the rollback run itself, with 3.1.0's data
      const result = await restore("latest", { RESTORE_VERSION: "3.0.0" });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`RESTORED_FILE=${preUpgrade}`);
      expect(await snapshot()).toBe(before);
      await dropKept();
      const none = await restore("latest", { RESTORE_VERSION: "9.9.9" });
      expect(lastLine(none.stderr)).toContain("no verified backup (utilitarian-*-9.9.9-to-*.dump with .sha256)");
    },
    T,
  );

  test(
    "RESTORE_JOBS sets pg_restore's parallel jobs; 0 is refused before anything changes",
    async () => {
      await pg.psql(
        "truncate reading; insert into reading (meter_id, value) select 1 + g % 10, g from generate_series(1, 50) g",
        DB,
      );
      const before = await snapshot();
      const file = await backup("4.0.0");
      await pg.psql("delete from reading where value > 10", DB);
      const one = await restore(file, { RESTORE_JOBS: "1" });
      expect(one.code, one.stderr).toBe(0);
      expect(one.stderr).toMatch(/pg_restore -j 1\)/);
      expect(await snapshot()).toBe(before);
      await dropKept();

      const zero = await restore(file, { RESTORE_JOBS: "0" });
      expect(zero.code).not.toBe(0);
      expect(lastLine(zero.stderr)).toMatch(/restore: RESTORE_JOBS must be an integer >= 1; got '0'$/);
      expect(await databases()).toEqual([DB]);
    },
    T,
  );

  test(
    "a missing variable is named",
    async () => {
      const result = await runScript("restore.sh", { ...pg.env(DB), RESTORE_FILE: "latest" });
      runs.push(result);
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toMatch(/ restore: RESTORE_DB_OWNER is not set \(utilitarian:database\.user/);
    },
    T,
  );

  test("the password never appears in any output", () => {
    expect(runs.length).toBeGreaterThan(8);
    for (const result of runs) {
      expect(result.stdout + result.stderr).not.toContain(pg.password);
      expect(result.stdout + result.stderr).not.toContain("app-secret");
    }
  });
});
