/**
 * scripts/backup.sh against a real PostgreSQL cluster: a verified dump with checksum and
 * manifest, retention, stale partial files, each preflight failure, and each way a dump can be
 * broken (truncated, corrupted, rows missing) caught by the default read-back and by the full
 * test restore.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
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
  return readdirSync(dir)
    .filter((f) => /^utilitarian-.*\.dump$/.test(f))
    .sort();
}

function freshDir(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  return dir;
}

/**
 * A directory holding one fake `command` that runs the real one (found on PATH now) with
 * `script` (bash) around it; put it first on PATH to break a dump the way a disk or a bug
 * would. `$REAL` is the real program, `"${ARGS[@]}"` the arguments, `$DUMPING` true when they
 * are the backup's own pg_dump (not `pg_dump --version`).
 */
function wrapped(command: string, script: string): Record<string, string> {
  const real = execFileSync("bash", ["-c", `command -v ${command}`], { encoding: "utf8" }).trim();
  const bin = mkdtempSync(join(work, `fake-${command}-`));
  const file = join(bin, command);
  writeFileSync(
    file,
    `#!/usr/bin/env bash
set -euo pipefail
REAL=${real}
ARGS=("$@")
DUMPING=false
[[ " \${ARGS[*]}" == *" --snapshot="* ]] && DUMPING=true
${script}
`,
  );
  chmodSync(file, 0o755);
  return { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` };
}

/** The WAL the server wrote while `action` ran (nothing else writes to this cluster meanwhile). */
async function walWritten(action: () => Promise<unknown>): Promise<number> {
  const before = await pg.psql("select pg_current_wal_insert_lsn()");
  await action();
  return Number(await pg.psql(`select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '${before}')`));
}

/** This machine's tag in scratch database names (scripts/lib.sh, HOST_TAG). */
const HOST_TAG = createHash("sha256")
  .update(`${execFileSync("uname", ["-n"], { encoding: "utf8" }).trim()}\n`)
  .digest("hex")
  .slice(0, 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scratchNames(): Promise<string[]> {
  return (await pg.psql("select datname from pg_database where datname like 'utilitarian_backup_verify%' order by 1"))
    .split("\n")
    .filter(Boolean);
}

async function scratchDatabases(): Promise<string> {
  return pg.psql("select count(*) from pg_database where datname like 'utilitarian_backup_verify%'");
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
  test(
    "by default: dump at zlib level 1, every table read back and counted, schema restored into a scratch database; .sha256 and manifest",
    async () => {
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
      expect(result.stderr).toMatch(
        /free space on the database server not checked \(external server\): the test restore needs about \d+ MB there \(schema only: an empty database\)/,
      );
      expect(result.stderr).toMatch(/pg_dump -Fc -Z1 utilitarian -> /);
      expect(result.stderr).toMatch(
        /pg_dump -Fc -Z1 utilitarian -> \.utilitarian-\S+\.dump\.partial, every table's data read back and counted as it is written/,
      );
      expect(result.stderr).toMatch(
        /schema-only test restore into scratch database utilitarian_backup_verify_\d+_\d+_[0-9a-f]{8}\n.*dropped scratch database/,
      );
      expect(result.stdout).toMatch(
        /^verified: pg_restore --list, every table's data read back with exact row counts, schema restored into a scratch database \(dump with read-back [\d.]+s, then [\d.]+s\)$/m,
      );

      const bytes = readFileSync(file);
      const sha = createHash("sha256").update(bytes).digest("hex");
      expect(readFileSync(`${file}.sha256`, "utf8")).toBe(`${sha}  ${name}\n`);
      execFileSync("sha256sum", ["-c", "--status", `${name}.sha256`], { cwd: dir }); // throws on mismatch

      const manifest = JSON.parse(readFileSync(`${file}.json`, "utf8"));
      expect(manifest).toMatchObject({
        file: name,
        bytes: bytes.length,
        sha256: sha,
        from: "1.0.0",
        to: "1.1.0",
        database: DB,
        test_restore: false,
        schema_restore: true,
        compress_level: 1,
        tables: 4,
        rows: 1025,
      });
      expect(manifest.row_counts).toEqual({
        'public."Audit Log"': 0,
        "public.meter": 25,
        "public.reading": 1000,
        "staging.empty": 0,
      });
      expect(manifest.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      const toc = execFileSync("pg_restore", ["--list", file], { encoding: "utf8" });
      expect(toc).toMatch(/TABLE DATA public reading /);
      expect(toc).toMatch(/TABLE DATA public meter /);

      // Nothing left behind: no partial file, no scratch database.
      expect(readdirSync(dir).filter((f) => f.endsWith(".partial"))).toEqual([]);
      expect(await scratchDatabases()).toBe("0");
      // Every log line: UTC timestamp, step name.
      for (const line of result.stderr.trim().split("\n")) {
        expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ backup: /);
      }
    },
    T,
  );

  test(
    "with BACKUP_TEST_RESTORE=false nothing is written on the server, and the data is still read back and counted",
    async () => {
      const dir = freshDir("no-test-restore");
      const result = await backup({ BACKUP_DIR: dir, BACKUP_TEST_RESTORE: "false" });
      expect(result.code).toBe(0);
      expect(result.stderr).not.toMatch(/scratch database|database server/);
      expect(result.stdout).toMatch(
        /^verified: pg_restore --list, every table's data read back with exact row counts \(dump with read-back/m,
      );
      const [name] = dumpsIn(dir);
      const manifest = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
      expect(manifest).toMatchObject({ test_restore: false, schema_restore: false });
      expect(manifest.row_counts["public.reading"]).toBe(1000);
    },
    T,
  );

  test(
    "with BACKUP_TEST_RESTORE=true (or full): a parallel full test restore with exact row counts; the server estimate covers index builds",
    async () => {
      for (const mode of ["true", "full"]) {
        const dir = freshDir(`full-test-restore-${mode}`);
        const result = await backup({ BACKUP_DIR: dir, BACKUP_TEST_RESTORE: mode, RESTORE_JOBS: "3" });
        expect(result.code, result.stderr).toBe(0);
        expect(result.stderr).toMatch(
          /full test restore into scratch database utilitarian_backup_verify_\d+_\d+_[0-9a-f]{8} \(pg_restore -j 3\)/,
        );
        expect(result.stdout).toMatch(
          /^verified: pg_restore --list, every table's data read back with exact row counts, full test restore with exact row counts \(dump/m,
        );
        const [name] = dumpsIn(dir);
        const manifest = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
        expect(manifest).toMatchObject({ test_restore: true, schema_restore: false, rows: 1025 });
        // database size + the three largest indexes, in MB rounded up.
        const expected = Number(
          await pg.psql(
            `select pg_database_size(current_database()) + (select sum(b) from (select pg_relation_size(oid) b from pg_class where relkind = 'i' order by 1 desc limit 3) t)`,
            DB,
          ),
        );
        const mb = Number(
          /the test restore needs about (\d+) MB there \(database size \+ the largest index per restore job/.exec(
            result.stderr,
          )?.[1],
        );
        expect(mb).toBe(Math.ceil(expected / 1048576));
        expect(await scratchDatabases()).toBe("0");
      }
    },
    T,
  );

  test(
    "BACKUP_COMPRESS_LEVEL sets pg_dump's zlib level and is recorded in the manifest",
    async () => {
      const dir = freshDir("level-6");
      const result = await backup({ BACKUP_DIR: dir, BACKUP_COMPRESS_LEVEL: "6", BACKUP_TEST_RESTORE: "false" });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/pg_dump -Fc -Z6 utilitarian -> /);
      const [name] = dumpsIn(dir);
      expect(JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8")).compress_level).toBe(6);
    },
    T,
  );

  test(
    "retention keeps exactly BACKUP_KEEP dumps; stale partial files are removed and never counted",
    async () => {
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
      const verified = left.filter(
        (f) => f.endsWith(".dump") && left.includes(`${f}.sha256`) && left.includes(`${f}.json`),
      );
      expect(verified).toEqual(
        files
          .slice(2)
          .map((f) => basename(f))
          .sort(),
      );
      expect(left.filter((f) => f.includes("29991231"))).toEqual([]);
      expect(left).toContain("utilitarian-20000101T000000Z-manual-to-copy.dump");
      expect(left.filter((f) => f.endsWith(".partial") || f.endsWith(".tmp"))).toEqual([]);
      for (const old of files.slice(0, 2)) {
        expect(existsSync(old)).toBe(false);
        expect(existsSync(`${old}.sha256`)).toBe(false);
        expect(existsSync(`${old}.json`)).toBe(false);
      }
    },
    T,
  );

  describe("fails with a named reason and leaves no dump", () => {
    test(
      "database unreachable (wrong port)",
      async () => {
        const dir = freshDir("unreachable");
        const port = String(pg.port === 1 ? 2 : 1);
        const result = await backup({ BACKUP_DIR: dir, PGPORT: port });
        expect(result.code).not.toBe(0);
        expect(lastLine(result.stderr)).toMatch(
          new RegExp(`backup: database unreachable at 127\\.0\\.0\\.1:${port}\\b`),
        );
        expect(readdirSync(dir)).toEqual([]);
        expect(result.stdout).not.toMatch(/BACKUP_FILE=/);
      },
      T,
    );

    test(
      "wrong password is reported as unreachable, without the password",
      async () => {
        const dir = freshDir("bad-password");
        const result = await backup({ BACKUP_DIR: dir, PGPASSWORD: "definitely-not-it-4711" });
        expect(result.code).not.toBe(0);
        expect(lastLine(result.stderr)).toMatch(/database unreachable at .*password authentication failed/);
        expect(result.stderr + result.stdout).not.toContain("definitely-not-it-4711");
        expect(readdirSync(dir)).toEqual([]);
      },
      T,
    );

    test(
      "target directory cannot be created (a path below a regular file)",
      async () => {
        const blocker = join(work, "a-regular-file");
        writeFileSync(blocker, "x");
        const result = await backup({ BACKUP_DIR: join(blocker, "backups") });
        expect(result.code).not.toBe(0);
        expect(lastLine(result.stderr)).toMatch(
          /backup: backup directory .*a-regular-file\/backups does not exist and cannot be created \(BACKUP_DIR\)/,
        );
        expect(readFileSync(blocker, "utf8")).toBe("x");
      },
      T,
    );

    test(
      "target directory is not writable (read-only tmpfs is not available: /proc is)",
      async () => {
        // Root ignores file modes; /proc/1 is a real directory nobody can create files in.
        const result = await backup({ BACKUP_DIR: "/proc/1" });
        expect(result.code).not.toBe(0);
        expect(lastLine(result.stderr)).toMatch(/backup: backup directory \/proc\/1 is not writable \(BACKUP_DIR\)$/);
      },
      T,
    );

    test(
      "not enough free space names both figures",
      async () => {
        const dir = freshDir("no-space");
        const result = await backup({ BACKUP_DIR: dir, BACKUP_MIN_FREE_MB: "999999999" });
        expect(result.code).not.toBe(0);
        expect(lastLine(result.stderr)).toMatch(
          /backup: not enough free space in .*no-space: \d+ MB free, 999999999 MB needed/,
        );
        expect(dumpsIn(dir)).toEqual([]);
        expect(readdirSync(dir).filter((f) => f.includes("partial"))).toEqual([]);
      },
      T,
    );

    test(
      "a missing variable is named with the setting that provides it",
      async () => {
        const result = await backup({ BACKUP_DIR: undefined });
        expect(result.code).not.toBe(0);
        expect(lastLine(result.stderr)).toMatch(/ backup: BACKUP_DIR is not set \(utilitarian:backup\.dir/);
      },
      T,
    );

    test(
      "several missing variables are all named",
      async () => {
        const result = await backup({ BACKUP_DIR: undefined, PGHOST: undefined, BACKUP_TO_VERSION: undefined });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toMatch(/PGHOST is not set/);
        expect(result.stderr).toMatch(/BACKUP_DIR is not set/);
        expect(lastLine(result.stderr)).toMatch(/also missing: BACKUP_DIR BACKUP_TO_VERSION$/);
      },
      T,
    );

    test(
      "invalid BACKUP_KEEP, BACKUP_TEST_RESTORE, BACKUP_COMPRESS_LEVEL, RESTORE_JOBS and version strings are refused",
      async () => {
        const dir = freshDir("invalid");
        const keep = await backup({ BACKUP_DIR: dir, BACKUP_KEEP: "0" });
        expect(keep.code).not.toBe(0);
        expect(lastLine(keep.stderr)).toMatch(/BACKUP_KEEP must be an integer >= 1; got '0'/);
        const mode = await backup({ BACKUP_DIR: dir, BACKUP_TEST_RESTORE: "yes" });
        expect(lastLine(mode.stderr)).toMatch(
          /BACKUP_TEST_RESTORE must be schema, true \(full test restore\) or false; got 'yes'$/,
        );
        // Level 0 would store the data without zlib's checksum, which the read-back relies on.
        for (const level of ["0", "10", "fast"]) {
          const bad = await backup({ BACKUP_DIR: dir, BACKUP_COMPRESS_LEVEL: level });
          expect(bad.code).not.toBe(0);
          expect(lastLine(bad.stderr)).toMatch(/BACKUP_COMPRESS_LEVEL must be an integer (>= 1|from 1 to 9); got/);
        }
        const jobs = await backup({ BACKUP_DIR: dir, RESTORE_JOBS: "0" });
        expect(lastLine(jobs.stderr)).toMatch(/RESTORE_JOBS must be an integer >= 1; got '0'/);
        const version = await backup({ BACKUP_DIR: dir, BACKUP_TO_VERSION: "../../etc" });
        expect(version.code).not.toBe(0);
        expect(lastLine(version.stderr)).toMatch(/BACKUP_TO_VERSION must be a version/);
        expect(readdirSync(dir)).toEqual([]);
      },
      T,
    );

    test(
      "pg_dump failure (missing database is caught before the dump)",
      async () => {
        const dir = freshDir("no-db");
        const result = await backup({ BACKUP_DIR: dir, PGDATABASE: "does_not_exist" });
        expect(result.code).not.toBe(0);
        expect(lastLine(result.stderr)).toMatch(/database unreachable at .*database "does_not_exist" does not exist/);
        expect(readdirSync(dir)).toEqual([]);
      },
      T,
    );
  });

  describe("a broken dump is caught before it becomes a backup", () => {
    // Enough data that the middle of the archive is table data, not its table of contents.
    const WIDE = "wide";
    const ROWS = 200_000;
    beforeAll(async () => {
      await pg.psql(`create database ${WIDE}`);
      await pg.psql(
        `create table wide (id serial primary key, h text not null, h2 text not null);
         insert into wide (h, h2) select md5(g::text), md5((g * 7)::text) from generate_series(1, ${ROWS}) g;
         create index wide_h on wide (h);`,
        WIDE,
      );
    }, T);

    // pg_dump's archive as written: its first half only, or 16 bytes in its middle overwritten.
    const archive = `$DUMPING || exec "$REAL" "\${ARGS[@]}"; whole=$(mktemp); "$REAL" "\${ARGS[@]}" >"$whole"; half=$(( $(stat -c %s "$whole") / 2 ))`;
    const truncate = `${archive}; head -c "$half" "$whole"`;
    const corrupt = `${archive}; head -c "$half" "$whole"; printf 'CORRUPTED-BYTES!'; tail -c +$((half + 17)) "$whole"`;
    // Dumps without the counted snapshot, after a row was added: one row more than counted.
    const rowAdded = `args=(); for a in "\${ARGS[@]}"; do [[ "$a" == --snapshot=* ]] || args+=("$a"); done
      ! $DUMPING || psql -X -q -v ON_ERROR_STOP=1 -c "insert into wide (h, h2) values ('added', 'after the count')"
      exec "$REAL" "\${args[@]}"`;

    async function brokenBackup(
      name: string,
      fake: Record<string, string>,
      extra: Record<string, string> = {},
    ): Promise<{ result: ScriptResult; dir: string }> {
      const dir = freshDir(name);
      const result = await backup({ BACKUP_DIR: dir, PGDATABASE: WIDE, ...fake, ...extra });
      expect(result.code).not.toBe(0);
      expect(result.stdout).not.toMatch(/BACKUP_FILE=/);
      expect(readdirSync(dir).filter((f) => f !== ".backup.lock")).toEqual([]);
      expect(await scratchDatabases()).toBe("0");
      return { result, dir };
    }

    test(
      "the dump as pg_dump wrote it passes (the control for the cases below)",
      async () => {
        const result = await backup({
          BACKUP_DIR: freshDir("wide-ok"),
          PGDATABASE: WIDE,
          ...wrapped("pg_dump", `exec "$REAL" "\${ARGS[@]}"`),
        });
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toContain(`1 tables, ${ROWS} rows`);
      },
      T,
    );

    test(
      "truncated as written: pg_restore --list still reads it, the read-back does not",
      async () => {
        const { result } = await brokenBackup("truncated", wrapped("pg_dump", truncate));
        expect(result.stderr).toMatch(/archive ok: \d+ bytes, 1 table data entries/);
        expect(result.stderr).toMatch(/pg_restore: error: could not read from input file: end of file/);
        expect(lastLine(result.stderr)).toMatch(
          /backup: the archive's data cannot be read back \(pg_restore exit 1, messages above\): the dump is truncated or corrupted; no backup was written$/,
        );
      },
      T,
    );

    test(
      "16 bytes overwritten in the middle as written: zlib's checksum fails the read-back",
      async () => {
        const { result } = await brokenBackup("corrupted", wrapped("pg_dump", corrupt));
        expect(result.stderr).toMatch(/archive ok: /);
        expect(result.stderr).toMatch(/pg_restore: error: could not uncompress data/);
        expect(lastLine(result.stderr)).toMatch(
          /the archive's data cannot be read back .*: the dump is truncated or corrupted; no backup was written$/,
        );
      },
      T,
    );

    test(
      "a row count that differs from the snapshot's is shown as a diff",
      async () => {
        try {
          const { result } = await brokenBackup("row-added", wrapped("pg_dump", rowAdded));
          expect(result.stderr).toMatch(new RegExp(`^-public\\.wide\t${ROWS}\n\\+public\\.wide\t${ROWS + 1}$`, "m"));
          expect(lastLine(result.stderr)).toMatch(
            /backup: row counts in the archive differ from the source \(diff above\); no backup was written$/,
          );
        } finally {
          await pg.psql("delete from wide where h = 'added'", WIDE);
        }
      },
      T,
    );

    test(
      "rows that look like COPY lines or pg_restore's closing comment, odd names and a table without columns are counted exactly",
      async () => {
        await pg.psql("create database tricky");
        await pg.psql(
          `create schema "Odd Schema";
         create table "Odd Schema"."we""ird. name (x" (t text);
         insert into "Odd Schema"."we""ird. name (x" values
           ('COPY public.meter (id) FROM stdin;'), ('\\.'), ('-- PostgreSQL database dump complete'), (E'two\\nlines'), (''), (null);
         create table no_columns ();
         insert into no_columns default values; insert into no_columns default values;`,
          "tricky",
        );
        const dir = freshDir("tricky");
        const result = await backup({ BACKUP_DIR: dir, PGDATABASE: "tricky" });
        expect(result.code, result.stderr).toBe(0);
        const [name] = dumpsIn(dir);
        expect(JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8")).row_counts).toEqual({
          '"Odd Schema"."we""ird. name (x"': 6,
          "public.no_columns": 2,
        });
        await pg.psql("drop database tricky");
      },
      T,
    );

    test(
      "a table whose data is missing from the archive is named",
      async () => {
        const dir = freshDir("table-missing");
        const result = await backup({
          BACKUP_DIR: dir,
          ...wrapped("pg_dump", `! $DUMPING || ARGS+=(--exclude-table-data=public.meter); exec "$REAL" "\${ARGS[@]}"`),
        });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toMatch(/^-public\.meter\t25\n\+public\.meter\tno data in the archive$/m);
        expect(lastLine(result.stderr)).toMatch(/row counts in the archive differ from the source/);
        expect(dumpsIn(dir)).toEqual([]);
      },
      T,
    );

    test(
      "the schema-only test restore failing fails the backup and drops the scratch database",
      async () => {
        const failSchema = `if [[ " \${ARGS[*]} " == *" --schema-only "* ]]; then echo 'pg_restore: error: could not execute query: ERROR:  type "meter_kind" does not exist' >&2; exit 1; fi
        exec "$REAL" "\${ARGS[@]}"`;
        const { result } = await brokenBackup("schema-fails", wrapped("pg_restore", failSchema));
        expect(result.stderr).toContain('ERROR:  type "meter_kind" does not exist');
        expect(result.stderr).toMatch(/dropped scratch database utilitarian_backup_verify_/);
        expect(lastLine(result.stderr)).toMatch(
          /backup: schema-only test restore of the dump failed \(messages above\); no backup was written$/,
        );
      },
      T,
    );

    test(
      "a file cut short on disk after it was written: its CRC and length are not those of what was verified",
      async () => {
        // tee writes the archive into the file; here the file loses its second half right after.
        const lost = wrapped(
          "tee",
          `"$REAL" "\${ARGS[@]}"
        for ((i = 0; i < \${#ARGS[@]}; i++)); do [[ "\${ARGS[i]}" == -- ]] && file=\${ARGS[i + 1]}; done
        truncate -s $(( $(stat -c %s "$file") / 2 )) "$file"`,
        );
        const { result } = await brokenBackup("cut-on-disk", lost);
        expect(result.stderr).toMatch(/archive ok: /);
        expect(lastLine(result.stderr)).toMatch(
          /backup: the file .*\.partial is not what pg_dump wrote and the read-back verified \(CRC and length \d+ \d+ on disk, \d+ \d+ written\); no backup was written$/,
        );
      },
      T,
    );

    test("with BACKUP_TEST_RESTORE=true the read-back still runs, and the full restore's own checks fail the backup", async () => {
      const full = { BACKUP_TEST_RESTORE: "true" };
      const truncated = await brokenBackup("full-truncated", wrapped("pg_dump", truncate), full);
      expect(lastLine(truncated.result.stderr)).toMatch(
        /the archive's data cannot be read back .*: the dump is truncated or corrupted/,
      );
      expect(truncated.result.stderr).not.toMatch(/full test restore into/);

      const restoreFails = wrapped(
        "pg_restore",
        `if [[ " \${ARGS[*]} " == *" -j "* ]]; then echo 'pg_restore: error: could not create index' >&2; exit 1; fi
        exec "$REAL" "\${ARGS[@]}"`,
      );
      const failed = await brokenBackup("full-restore-fails", restoreFails, full);
      expect(failed.result.stderr).toContain("pg_restore: error: could not create index");
      expect(lastLine(failed.result.stderr)).toMatch(
        /backup: test restore of the dump failed \(messages above\); no backup was written$/,
      );

      // The restore loses a row (as a restore into a broken server could): the recount shows it.
      const rowLost = wrapped(
        "pg_restore",
        `"$REAL" "\${ARGS[@]}"; rc=$?
        if [[ " \${ARGS[*]} " == *" -j "* ]]; then psql -X -q -d "\${ARGS[-2]}" -c "delete from wide where id = 1"; fi; exit $rc`,
      );
      const lostRow = await brokenBackup("full-row-lost", rowLost, full);
      expect(lostRow.result.stderr).toMatch(
        new RegExp(`^-public\\.wide\t${ROWS}\n\\+public\\.wide\t${ROWS - 1}$`, "m"),
      );
      expect(lastLine(lostRow.result.stderr)).toMatch(
        /backup: test restore row counts differ from the source \(diff above\); no backup was written$/,
      );
    }, 120_000);

    test("the server writes WAL for the schema only by default, and about the database's size with the full test restore", async () => {
      const size = Number(await pg.psql(`select pg_database_size('${WIDE}')`));
      const byDefault = await walWritten(async () =>
        expect((await backup({ BACKUP_DIR: freshDir("wal-default"), PGDATABASE: WIDE })).code).toBe(0),
      );
      const full = await walWritten(async () =>
        expect(
          (await backup({ BACKUP_DIR: freshDir("wal-full"), PGDATABASE: WIDE, BACKUP_TEST_RESTORE: "true" })).code,
        ).toBe(0),
      );
      const none = await walWritten(async () =>
        expect(
          (await backup({ BACKUP_DIR: freshDir("wal-none"), PGDATABASE: WIDE, BACKUP_TEST_RESTORE: "false" })).code,
        ).toBe(0),
      );
      // An empty database is copied from template0 (about 4 MB of WAL in PostgreSQL 15), whatever the data's size.
      expect(byDefault).toBeLessThan(16 * 1048576);
      expect(full).toBeGreaterThan(size / 2);
      expect(none).toBeLessThan(1048576);
    }, 120_000);

    // The dump's stream feeds several readers at once (the read-back, pg_restore --list, the
    // sha256) and the schema-only test restore runs beside it: each of them failing half way
    // fails the backup with its own reason, while tee goes on feeding the others.
    describe("one side of the overlapped dump failing half way", () => {
      test(
        "the read-back dies after 1000 lines: tee goes on, the backup fails",
        async () => {
          const dies = wrapped(
            "pg_restore",
            `if [[ " \${ARGS[*]} " == *" --data-only "* ]]; then "$REAL" "\${ARGS[@]}" | head -n 1000 || true; exit 1; fi
          exec "$REAL" "\${ARGS[@]}"`,
          );
          const { result } = await brokenBackup("read-back-dies", dies);
          expect(lastLine(result.stderr)).toMatch(
            /backup: the archive's data cannot be read back \(pg_restore exit 1, messages above\): the dump is truncated or corrupted; no backup was written$/,
          );
        },
        T,
      );

      test(
        "pg_restore --list on the stream fails: named, and the schema-only test restore does not run",
        async () => {
          const listFails = wrapped(
            "pg_restore",
            `if [[ " \${ARGS[*]} " == " --list " ]]; then head -c 100 >/dev/null; echo 'pg_restore: error: did not find magic string in file header' >&2; exit 1; fi
          exec "$REAL" "\${ARGS[@]}"`,
          );
          const { result } = await brokenBackup("list-fails", listFails);
          expect(result.stderr).toContain("did not find magic string in file header");
          expect(result.stderr).not.toMatch(/schema-only test restore into/);
          expect(lastLine(result.stderr)).toMatch(
            /backup: pg_restore --list cannot read the dump; no backup was written$/,
          );
        },
        T,
      );

      test(
        "the sha256 of the stream fails: named",
        async () => {
          // The script tries openssl on empty input first; this one fails on the archive only.
          const shaFails = wrapped(
            "openssl",
            `if [[ -z "$(head -c 1 | od -An -tx1)" ]]; then printf '' | exec "$REAL" "\${ARGS[@]}"; fi
          echo 'openssl: write error' >&2; exit 1`,
          );
          const { result } = await brokenBackup("sha-fails", shaFails);
          expect(lastLine(result.stderr)).toMatch(
            /backup: cannot compute the dump's sha256 \(openssl dgst -sha256 -r\): openssl: write error $/,
          );
        },
        T,
      );

      test(
        "the scratch database cannot be created: named; the dump it ran beside is not kept",
        async () => {
          const createFails = wrapped(
            "psql",
            `if [[ "\${ARGS[*]}" == *"create database"*utilitarian_backup_verify_* ]]; then echo 'ERROR:  permission denied to create database' >&2; exit 1; fi
          exec "$REAL" "\${ARGS[@]}"`,
          );
          const { result } = await brokenBackup("create-fails", createFails);
          expect(result.stderr).toContain("ERROR:  permission denied to create database");
          expect(lastLine(result.stderr)).toMatch(
            /backup: cannot create the scratch database utilitarian_backup_verify_\S+ for the schema-only test restore \(messages above\); no backup was written$/,
          );
        },
        T,
      );

      test(
        "pg_dump dies half way, after the table of contents: the schema-only restore may have run, nothing is left",
        async () => {
          const dies = wrapped(
            "pg_dump",
            `${archive}; head -c "$half" "$whole"; echo 'pg_dump: error: Dumping the contents of table "wide" failed: PQgetCopyData() failed.' >&2; exit 1`,
          );
          const { result } = await brokenBackup("pg-dump-dies", dies);
          expect(result.stderr).toContain("PQgetCopyData() failed");
          expect(lastLine(result.stderr)).toMatch(
            /backup: pg_dump failed \(its messages are above\); no backup was written$/,
          );
        },
        T,
      );
    });

    test(
      "SIGTERM while the data is read back: the reason is the last line; no pg_restore, partial file or scratch database is left",
      async () => {
        // pg_restore slowed down to minutes (each line of its output waits 1 ms) so that the signal
        // lands mid-read, and so that a pg_restore left running would still be there to be seen.
        const slow = wrapped(
          "pg_restore",
          `if [[ " \${ARGS[*]} " == *" --data-only "* ]]; then "$REAL" "\${ARGS[@]}" | while IFS= read -r line; do printf '%s\\n' "$line"; sleep 0.001; done; exit; fi
        exec "$REAL" "\${ARGS[@]}"`,
        );
        const dir = freshDir("sigterm-read-back");
        const child = spawn(join(SCRIPTS_DIR, "backup.sh"), [], {
          env: {
            HOME: "/root",
            ...pg.env(WIDE),
            ...slow,
            BACKUP_DIR: dir,
            BACKUP_FROM_VERSION: "1.0.0",
            BACKUP_TO_VERSION: "1.1.0",
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
        const started = Date.now();
        while (!stderr.includes("read back and counted as it is written") && Date.now() - started < 30_000) {
          await new Promise((r) => setTimeout(r, 10));
        }
        await new Promise((r) => setTimeout(r, 300));
        child.kill("SIGTERM");
        expect(await exited).toBe(143);
        expect(lastLine(stderr)).toMatch(/backup: interrupted \(SIGTERM\)$/);
        expect(stderr).not.toMatch(/data verified/);
        expect(readdirSync(dir).filter((f) => f !== ".backup.lock")).toEqual([]);
        expect(await scratchDatabases()).toBe("0");
        // pg_restore stops on the closed pipe once awk is gone.
        const readers = () =>
          readdirSync("/proc")
            .filter((p) => /^\d+$/.test(p))
            .filter((p) => {
              try {
                return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(dir);
              } catch {
                return false; // the process ended meanwhile
              }
            });
        const deadline = Date.now() + 2_000;
        while (readers().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(readers()).toEqual([]);
      },
      T,
    );
  });

  test("SIGTERM during pg_dump: the reason is the last line, no partial file or scratch database remains; the next run works", async () => {
    await pg.psql("create database big");
    await pg.psql("create table big as select g as id, md5(g::text) as h from generate_series(1, 1500000) g", "big");
    const dir = freshDir("sigterm");
    const child = spawn(join(SCRIPTS_DIR, "backup.sh"), [], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: "/root",
        ...pg.env("big"),
        BACKUP_DIR: dir,
        BACKUP_FROM_VERSION: "1.0.0",
        BACKUP_TO_VERSION: "1.1.0",
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

  test("SIGKILL, as a cancelled `pulumi up` kills the step: the work directory and scratch database stay; the next backup removes them, not a live run's or another machine's", async () => {
    const dir = freshDir("sigkill");
    const tmp = freshDir("sigkill-tmp");
    // The schema-only test restore starts 2 s late: time to find the scratch database and kill the script.
    const slowRestore = wrapped(
      "pg_restore",
      `[[ " \${ARGS[*]} " == *" --schema-only "* ]] && sleep 2
      exec "$REAL" "\${ARGS[@]}"`,
    );
    let script: ChildProcess | undefined;
    const killed = runScript(
      "backup.sh",
      {
        ...pg.env(DB),
        BACKUP_FROM_VERSION: "1.0.0",
        BACKUP_TO_VERSION: "1.1.0",
        BACKUP_DIR: dir,
        TMPDIR: tmp,
        ...slowRestore,
      },
      { started: (child) => (script = child) },
    );
    const scratchOf = (pid: number) => new RegExp(`^utilitarian_backup_verify_\\d+_${pid}_${HOST_TAG}$`);
    let scratch: string[] = [];
    for (const started = Date.now(); scratch.length === 0 && Date.now() - started < 30_000; await sleep(50))
      scratch = await scratchNames();
    expect(scratch).toHaveLength(1);
    // Only the script, as the command provider kills it: what it started (pg_restore) runs on.
    script!.kill("SIGKILL");
    const result = await killed;
    runs.push(result);
    expect(result.code).toBe(137);
    const pid = script!.pid!;
    expect(scratch[0]).toMatch(scratchOf(pid));
    const workDirs = () =>
      readdirSync(tmp)
        .filter((f) => f.startsWith("utilitarian-step-"))
        .sort();
    expect(workDirs()).toEqual([expect.stringMatching(new RegExp(`^utilitarian-step-backup\\.${pid}\\.`))]);
    // The orphaned pg_restore holds the directory's lock until it ends, as it would in production.
    const orphans = () =>
      readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, "utf8").includes("fake-pg_restore-");
          } catch {
            return false;
          }
        });
    for (const started = Date.now(); orphans().length > 0 && Date.now() - started < 30_000;) await sleep(100);
    expect(orphans()).toEqual([]);
    expect(await scratchNames()).toEqual(scratch);

    // Leftovers the next run must not touch: a live process's, and another machine's.
    const live = `utilitarian_backup_verify_1_${process.pid}_${HOST_TAG}`;
    const elsewhere = `utilitarian_backup_verify_1_${pid}_${HOST_TAG === "0badc0de" ? "0badc0df" : "0badc0de"}`;
    for (const name of [live, elsewhere]) await pg.psql(`create database ${name}`);
    mkdirSync(join(tmp, `utilitarian-step-backup.${process.pid}.live`));
    const next = await backup({ BACKUP_DIR: dir, TMPDIR: tmp });
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`dropped scratch database ${scratch[0]} (left by an interrupted backup, pid ${pid})`);
    expect(next.stderr).toMatch(
      new RegExp(
        `removing work directory ${tmp}/utilitarian-step-backup\\.${pid}\\.\\w+ \\(left by an interrupted run, pid ${pid}\\)`,
      ),
    );
    for (const name of [live, elsewhere])
      expect(next.stderr).toContain(
        `note: scratch database ${name} belongs to a backup still running or run on another machine`,
      );
    expect((await scratchNames()).sort()).toEqual([live, elsewhere].sort());
    expect(workDirs()).toEqual([`utilitarian-step-backup.${process.pid}.live`]);
    expect(dumpsIn(dir)).toHaveLength(1);
    for (const name of [live, elsewhere]) await pg.psql(`drop database ${name}`);
  }, 120_000);

  test(
    "a slow dump logs the archive's size and write rate every BACKUP_PROGRESS_SECONDS; a fast one only its total",
    async () => {
      // pg_dump's archive let out in eight parts 0.6 s apart: about 5 s of dump.
      const slow = wrapped(
        "pg_dump",
        `
if ! $DUMPING; then exec "$REAL" "\${ARGS[@]}"; fi
archive=$(mktemp)
"$REAL" "\${ARGS[@]}" >"$archive"
size=$(stat -c %s "$archive")
part=$((size / 8 + 1))
for ((i = 0; i * part < size; i++)); do
  dd if="$archive" bs="$part" skip="$i" count=1 status=none
  sleep 0.6
done
rm -f "$archive"`,
      );
      const size = "(\\d+(?:\\.\\d+)?) (kB|MB|GB)";
      const progressLine = new RegExp(
        `backup: dump: ${size} written in (\\d+\\.\\d) s; (\\d+\\.\\d) MB/s now, (\\d+\\.\\d) MB/s on average \\(database ${size}\\)$`,
      );
      const mb = (value: string, unit: string) =>
        Number(value) * { kB: 1 / 1024, MB: 1, GB: 1024 }[unit as "kB" | "MB" | "GB"];
      // About 2 MB of archive (md5 text compresses to about half at -Z1), so the rates are not 0.0.
      await pg.psql("create database progress");
      await pg.psql(
        "create table filler as select g as id, md5(g::text) || md5((-g)::text) as h from generate_series(1, 60000) g",
        "progress",
      );
      const result = await backup({
        ...slow,
        PGDATABASE: "progress",
        BACKUP_DIR: freshDir("progress"),
        BACKUP_PROGRESS_SECONDS: "1",
        BACKUP_TEST_RESTORE: "false",
      });
      await pg.psql("drop database progress");
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stderr
        .split("\n")
        .map((line) => progressLine.exec(line))
        .filter((m) => m !== null);
      expect(lines.length).toBeGreaterThanOrEqual(3);
      const written = lines.map((m) => mb(m[1], m[2]));
      const seconds = lines.map((m) => Number(m[3]));
      // The size grows and the time moves on, line after line; the rate is the size over the time.
      expect(written).toEqual([...written].sort((a, b) => a - b));
      expect(written.at(-1)!).toBeGreaterThan(written[0]);
      expect(seconds).toEqual([...seconds].sort((a, b) => a - b));
      // About one line a second, the first after a second.
      expect(seconds[0]).toBeGreaterThanOrEqual(0.9);
      for (let i = 1; i < seconds.length; i++) expect(seconds[i] - seconds[i - 1]).toBeGreaterThan(0.5);
      const averages = lines.map((m) => Number(m[5]));
      expect(Math.max(...averages)).toBeGreaterThan(0.1);
      lines.forEach(([, value, unit, secs, now, average], i) => {
        expect(Number(average)).toBeCloseTo(mb(value, unit) / Number(secs), 1);
        // "now" is the growth since the line before (sizes are printed to 0.1 MB, so within 0.2 MB/s).
        const since =
          i === 0 ? mb(value, unit) / Number(secs) : (written[i] - written[i - 1]) / (seconds[i] - seconds[i - 1]);
        expect(Math.abs(Number(now) - since)).toBeLessThan(0.2);
      });
      expect(result.stderr).toMatch(/backup: dump: \d+\.\d MB written in \d+\.\d s$/m);

      // The default interval is 5 s: a dump done in less prints no progress line, only its total.
      const quick = await backup({ BACKUP_DIR: freshDir("progress-default"), BACKUP_TEST_RESTORE: "false" });
      expect(quick.code, quick.stderr).toBe(0);
      expect(quick.stderr).toContain("progress every 5 s");
      expect(quick.stderr).not.toMatch(progressLine);
      expect(quick.stderr).toMatch(/backup: dump: \d+ kB written in \d+\.\d s$/m);
    },
    T,
  );

  test("the password never appears in any output", () => {
    expect(runs.length).toBeGreaterThan(10);
    for (const result of runs) {
      expect(result.stdout).not.toContain(pg.password);
      expect(result.stderr).not.toContain(pg.password);
    }
  });
});
