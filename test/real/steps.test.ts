/**
 * The in-container step scripts (migrate, static, verify) and the Docker-facing parts of backup
 * and restore, against a small real stack: the stand-in PostgreSQL and a 1.1.0 API container.
 */
import * as fs from "fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { docker, exec } from "../support/exec";
import { lastLine, runScript } from "../support/run-script";
import { freeLoopbackPort } from "../support/ports";
import { requireEngineAndImages, tempDir } from "../support/standin-stack";

const NET = "steps-test-net";
const PG = "steps-test-postgres";
const API = "steps-test-api";
const ADMIN_PASSWORD = "steps-admin-pw-4Jk";
const T = 120_000;

/** Published PostgreSQL port, chosen free in beforeAll (see ports.ts for why not a fixed one). */
let PG_PORT = 0;
const pgEnv = {
  PGHOST: "127.0.0.1",
  PGPORT: "",
  PGUSER: "postgres",
  PGPASSWORD: ADMIN_PASSWORD,
  PGDATABASE: "utilitarian",
};

async function removeAll(): Promise<void> {
  await docker(["rm", "-f", API, PG], { allowFailure: true });
  await docker(["network", "rm", NET], { allowFailure: true });
}

beforeAll(async () => {
  await requireEngineAndImages();
  await removeAll();
  PG_PORT = await freeLoopbackPort("tcp");
  pgEnv.PGPORT = String(PG_PORT);
  await docker(["network", "create", NET]);
  await docker([
    "run",
    "-d",
    "--name",
    PG,
    "--network",
    NET,
    "--network-alias",
    "postgres",
    "-p",
    `127.0.0.1:${PG_PORT}:5432`,
    "-e",
    `POSTGRES_PASSWORD=${ADMIN_PASSWORD}`,
    "-e",
    "POSTGRES_DB=utilitarian",
    "utilitarian-standin/postgres:15",
  ]);
  for (let i = 0; i < 60; i++) {
    if ((await exec("pg_isready", ["-h", "127.0.0.1", "-p", String(PG_PORT)])).code === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await docker([
    "run",
    "-d",
    "--name",
    API,
    "--network",
    NET,
    "--label",
    "io.utilitarian.version=1.1.0",
    "-e",
    `DATABASE_URL=postgres://postgres:${ADMIN_PASSWORD}@postgres:5432/utilitarian`,
    "-e",
    "SECRET_KEY=steps-test-secret-key-0123456789abcdef",
    "-e",
    "ALLOWED_HOSTS=*",
    "utilitarian-standin/utilitarian:1.1.0",
  ]);
}, 3 * 60_000);

afterAll(removeAll, 60_000);

/** The statuses of `count` requests for the API's front page, made from inside its container. */
async function pageStatuses(count: number): Promise<number[]> {
  const python = `import urllib.request, urllib.error
for _ in range(${count}):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8000/", timeout=5).status)
    except urllib.error.HTTPError as e:
        print(e.code)`;
  return (await docker(["exec", API, "python", "-c", python])).split("\n").map(Number);
}

describe("migrate, static and verify inside the API container", () => {
  test(
    "verify fails before migrate, naming the unapplied migrations",
    async () => {
      const result = await runScript("verify.sh", {
        API_CONTAINER: API,
        EXPECTED_CONTAINERS: API,
        HEALTH_TIMEOUT_SECONDS: "30",
      });
      expect(result.code).not.toBe(0);
      expect(result.stdout).toMatch(/verify: migrations +FAIL +\d+ unapplied migration\(s\)/);
      expect(result.stderr).toContain("[ ]  readings.0002");
      expect(lastLine(result.stderr)).toContain("verification failed");
    },
    T,
  );

  test(
    "migrate applies them and prints the log; static collects and compresses; verify then passes",
    async () => {
      const migrate = await runScript("migrate.sh", { API_CONTAINER: API });
      expect(migrate.code, migrate.stderr).toBe(0);
      expect(migrate.stdout).toMatch(/Applying readings\.0002_value_wh\.\.\. OK/);
      expect(migrate.stdout).toMatch(/migrate: ok, \d+ migration\(s\) applied/);
      // The same lines were streamed to stderr as they came, for `pulumi up` to show live.
      expect(migrate.stderr).toMatch(/^ {2}\| +Applying readings\.0002_value_wh\.\.\. OK$/m);

      // Pages requested before `compress` ran fail, and each Gunicorn worker that served one keeps
      // the empty offline manifest it read (django-compressor reads it once per process).
      const before = await pageStatuses(12);
      expect(new Set(before)).toEqual(new Set([500]));
      const staticFiles = await runScript("static.sh", { API_CONTAINER: API });
      expect(staticFiles.code, staticFiles.stderr).toBe(0);
      expect(staticFiles.stdout).toContain("static: collectstatic ok");
      expect(staticFiles.stdout).toContain("static: compress ok");
      expect(await docker(["exec", API, "sh", "-c", "ls /app/static_root/CACHE/css | wc -l"])).not.toBe("0");
      // Every process serves the compressed pages now: static restarted the API after compress.
      const after = await pageStatuses(12);
      expect(new Set(after)).toEqual(new Set([200]));
      expect(staticFiles.stdout).toMatch(/static: API restarted and healthy in \d+s/);

      const verify = await runScript("verify.sh", { API_CONTAINER: API, EXPECTED_CONTAINERS: `${API} ${PG}` });
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toMatch(/verify: health +ok/);
      expect(verify.stdout).toMatch(/verify: migrations +ok +all \d+ migrations applied/);
      expect(verify.stdout).toContain("verify: all checks passed (2 containers)");
    },
    T,
  );

  test(
    "verify fails when an expected container is missing",
    async () => {
      const result = await runScript("verify.sh", {
        API_CONTAINER: API,
        EXPECTED_CONTAINERS: `${API} steps-test-nowhere`,
        HEALTH_TIMEOUT_SECONDS: "10",
      });
      expect(result.code).not.toBe(0);
      expect(result.stdout).toMatch(/verify: container +FAIL +steps-test-nowhere does not exist/);
    },
    T,
  );

  test(
    "migrate fails, naming the container, when the API does not run in time",
    async () => {
      const result = await runScript("migrate.sh", {
        API_CONTAINER: "steps-test-nowhere",
        API_START_TIMEOUT_SECONDS: "2",
      });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toContain("steps-test-nowhere");
    },
    T,
  );
});

describe("backup and restore talk to Docker too", () => {
  test(
    "backup reads the running version from the API container's label; 'none' when there is no API yet",
    async () => {
      const dir = tempDir("steps-backups");
      const labelled = await runScript("backup.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        BACKUP_TO_VERSION: "1.2.0",
        API_CONTAINER: API,
      });
      expect(labelled.code, labelled.stderr).toBe(0);
      expect(lastLine(labelled.stdout)).toMatch(/BACKUP_FILE=.*-1\.1\.0-to-1\.2\.0\.dump$/);
      const first = await runScript("backup.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        BACKUP_TO_VERSION: "1.0.0",
        API_CONTAINER: "steps-test-nowhere",
      });
      expect(first.code, first.stderr).toBe(0);
      expect(lastLine(first.stdout)).toMatch(/-none-to-1\.0\.0\.dump$/);
      for (const r of [labelled, first]) expect(r.stdout + r.stderr).not.toContain(ADMIN_PASSWORD);
    },
    T,
  );

  test(
    "backup and restore refuse to copy the database onto a server disk without room for it",
    async () => {
      const dir = tempDir("steps-server-space");
      const ok = await runScript("backup.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        BACKUP_FROM_VERSION: "1.1.0",
        BACKUP_TO_VERSION: "1.2.0",
        DATABASE_CONTAINER: PG,
      });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stderr).toMatch(
        new RegExp(`free space on the database server \\(${PG}\\) for the test restore: \\d+ MB \\(need \\d+ MB\\)`),
      );
      const files = () => fs.readdirSync(dir).sort();
      const before = files();

      // More than any disk here has: the check must refuse, before any copy or dump is made.
      const tooMuch = { DATABASE_CONTAINER: PG, DB_SERVER_MIN_FREE_MB: String(1024 ** 3) };
      const backup = await runScript("backup.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        BACKUP_FROM_VERSION: "1.1.0",
        BACKUP_TO_VERSION: "1.2.0",
        ...tooMuch,
      });
      expect(backup.code).not.toBe(0);
      expect(lastLine(backup.stderr)).toMatch(
        new RegExp(
          `not enough free space on the database server \\(${PG}\\) for the test restore: \\d+ MB free, ${1024 ** 3} MB needed \\(DB_SERVER_MIN_FREE_MB\\)`,
        ),
      );
      expect(files()).toEqual(before);

      const restore = await runScript("restore.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        RESTORE_FILE: "latest",
        RESTORE_DB_OWNER: "postgres",
        ...tooMuch,
      });
      expect(restore.code).not.toBe(0);
      expect(lastLine(restore.stderr)).toContain("for the restore into utilitarian_restoring");
      const databases = await exec("psql", ["-X", "-A", "-t", "-c", "select datname from pg_database order by 1"], {
        env: { ...process.env, ...pgEnv },
      });
      expect(databases.stdout).not.toContain("utilitarian_restoring");
      expect(databases.stdout).not.toContain("utilitarian_before_restore_");

      const unreadable = await runScript("backup.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        BACKUP_FROM_VERSION: "1.1.0",
        BACKUP_TO_VERSION: "1.2.0",
        DATABASE_CONTAINER: "steps-test-nowhere",
      });
      expect(unreadable.code).not.toBe(0);
      expect(lastLine(unreadable.stderr)).toContain(
        "cannot read the free space of the database server in container steps-test-nowhere (DATABASE_CONTAINER)",
      );
    },
    T,
  );

  test(
    "restore stops the containers named in STOP_CONTAINERS before it swaps the database",
    async () => {
      const dir = tempDir("steps-restore");
      const backup = await runScript("backup.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        BACKUP_FROM_VERSION: "1.1.0",
        BACKUP_TO_VERSION: "1.2.0",
      });
      expect(backup.code, backup.stderr).toBe(0);
      const restore = await runScript("restore.sh", {
        ...pgEnv,
        BACKUP_DIR: dir,
        RESTORE_FILE: "latest",
        RESTORE_VERSION: "1.1.0",
        RESTORE_DB_OWNER: "postgres",
        STOP_CONTAINERS: API,
      });
      expect(restore.code, restore.stderr).toBe(0);
      expect(restore.stderr).toContain(`stopping ${API}`);
      expect(await docker(["inspect", "-f", "{{.State.Running}}", API])).toBe("false");
      expect(restore.stdout).toMatch(/KEPT_DATABASE=utilitarian_before_restore_/);
      await docker(["start", API]);
    },
    T,
  );
});
