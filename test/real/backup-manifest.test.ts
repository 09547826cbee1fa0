/**
 * The scripts held to config/manifest.ts against a real PostgreSQL cluster: what backup.sh
 * writes (name, checksum file, manifest) parses with the one schema, with no field the schema
 * does not know; and restore.sh's `latest` and its refusals agree with the preview's
 * (config/backups.ts) on the shared table of test/unit/support/manifest-cases.ts, with a real
 * dump in every fixture directory.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BACKUP_NAME, backupName, checksumLine, manifestSchema } from "../../config/manifest";
import { startPostgres, type PgCluster } from "../support/postgres";
import { lastLine, runScript, type ScriptResult } from "../support/run-script";
import { expectPreviewAgrees, latestName, MANIFEST_CASES, writeCase } from "../unit/support/manifest-cases";

const T = 60_000;
const DB = "utilitarian";
/** No such role: restore.sh stops at it, after the checksum and manifest checks and before any write. */
const NO_OWNER = "no_such_owner";
let pg: PgCluster;
let work: string;
const runs: ScriptResult[] = [];
let dump: Buffer;
let manifest: Record<string, unknown>;

beforeAll(async () => {
  pg = await startPostgres();
  work = mkdtempSync(join(tmpdir(), "utilitarian-manifest-test-"));
  await pg.psql(`create database ${DB}`);
  await pg.psql(
    `create table meter (id serial primary key, serial text not null);
     insert into meter (serial) select 'M' || g from generate_series(1, 5) g;
     create table "Audit Log" (id int);`,
    DB,
  );
}, T);

afterAll(async () => {
  await pg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("backup.sh writes what config/manifest.ts defines", () => {
  test(
    "its file name, checksum file and manifest (every field known to the schema)",
    async () => {
      const dir = join(work, "written");
      const result = await runScript("backup.sh", {
        ...pg.env(DB),
        BACKUP_DIR: dir,
        BACKUP_FROM_VERSION: "none",
        BACKUP_TO_VERSION: "1.0.0+b.1",
      });
      runs.push(result);
      expect(result.code, result.stderr).toBe(0);
      const name = lastLine(result.stdout).replace(/^BACKUP_FILE=.*\//, "");
      expect(readdirSync(dir).sort()).toEqual([".backup.lock", name, `${name}.json`, `${name}.sha256`]);
      const stamp = BACKUP_NAME.exec(name)?.[1] ?? "";
      expect(name).toBe(backupName(stamp, "none", "1.0.0+b.1"));

      dump = readFileSync(join(dir, name));
      const sha = createHash("sha256").update(dump).digest("hex");
      expect(readFileSync(join(dir, `${name}.sha256`), "utf8")).toBe(checksumLine(sha, name));

      manifest = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8")) as Record<string, unknown>;
      const parsed = manifestSchema.strict().parse(manifest);
      expect(parsed).toMatchObject({ file: name, bytes: dump.length, sha256: sha, from: "none", to: "1.0.0+b.1" });
      expect(parsed.created_at.replace(/[-:]/g, "")).toBe(stamp);
      expect(parsed.row_counts).toEqual({ 'public."Audit Log"': 0, "public.meter": 5 });
    },
    T,
  );
});

describe("restore.sh and the preview agree on the shared table", () => {
  test.each(MANIFEST_CASES)(
    "$name",
    async (c) => {
      // The backup test above ran and its dump is a custom-format archive (pg_dump's magic "PGDMP").
      expect(dump?.subarray(0, 5).toString(), "the backup test above ran").toBe("PGDMP");
      const dir = join(work, c.name.replace(/\W+/g, "-"));
      writeCase(dir, c.backups, dump, manifest);
      const result = await runScript("restore.sh", {
        ...pg.env(DB),
        RESTORE_FILE: "latest",
        RESTORE_VERSION: c.version,
        BACKUP_DIR: dir,
        RESTORE_DB_OWNER: NO_OWNER,
      });
      runs.push(result);
      expect(result.code).not.toBe(0);
      const chosen = /newest verified backup is (\S+)$/m.exec(result.stderr)?.[1];
      expect(chosen).toBe(latestName(c));
      const last = lastLine(result.stderr);
      if (c.refused) expect(last).toMatch(c.script!);
      else expect(last).toMatch(`role ${NO_OWNER} does not exist`);
      expectPreviewAgrees(c, dir);
    },
    T,
  );
});

test("the password never appears in any output", () => {
  expect(runs.length).toBe(1 + MANIFEST_CASES.length);
  for (const result of runs) expect(result.stdout + result.stderr).not.toContain(pg.password);
});
