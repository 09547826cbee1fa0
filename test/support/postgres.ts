/**
 * A throwaway PostgreSQL cluster for real tests: `initdb` in a temp dir (run as the
 * `postgres` OS user, since tests run as root and PostgreSQL refuses to run as root),
 * scram-sha-256 password auth, an admin superuser with a generated password, listening on a
 * free TCP port on 127.0.0.1 with its unix socket inside the temp dir.
 *
 *   const pg = await startPostgres();
 *   await pg.psql("create table t(id int)", "postgres");
 *   runScript("backup.sh", { ...pg.env("app"), ... });
 *   await pg.stop();
 *
 * Tests turn durability off (fsync, full-page writes) for speed; the benchmarks ask for
 * `{ durable: true }`, the server's own defaults, as in the official postgres image.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Where the server binaries live (Debian's postgresql-15 package). */
const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";
const OS_USER = "postgres";

export interface PgCluster {
  readonly host: string;
  readonly port: number;
  /** Superuser name. */
  readonly user: string;
  /** Superuser password (generated, unique per cluster). */
  readonly password: string;
  /** The cluster's data directory (PGDATA), e.g. to measure the disk it uses. */
  readonly dataDir: string;
  /** libpq environment for this cluster and database `db`: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE. */
  env(db?: string): Record<string, string>;
  /** Run SQL as the superuser in `db` (default `postgres`); resolves to trimmed, unaligned, tuples-only output. */
  psql(sql: string, db?: string): Promise<string>;
  /** Stop the server and delete its directory. Safe to call twice. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function osUserIds(name: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run("id", ["-u", name])).stdout.trim());
  const gid = Number((await run("id", ["-g", name])).stdout.trim());
  return { uid, gid };
}

async function asPostgres(command: string, args: string[]): Promise<string> {
  const { stdout } = await run("runuser", ["-u", OS_USER, "--", join(PG_BIN, command), ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" },
  });
  return stdout;
}

export interface StartOptions {
  /** Keep the server's durability defaults (fsync, synchronous commit, full-page writes). Defaults to false. */
  durable?: boolean;
}

export async function startPostgres(options: StartOptions = {}): Promise<PgCluster> {
  const { uid, gid } = await osUserIds(OS_USER);
  const dir = mkdtempSync(join(tmpdir(), "utilitarian-pg-"));
  chmodSync(dir, 0o700);
  chownSync(dir, uid, gid);
  const data = join(dir, "data");
  const socketDir = join(dir, "socket");
  mkdirSync(socketDir, { mode: 0o700 });
  chownSync(socketDir, uid, gid);

  const user = "admin";
  const password = `pw-${randomBytes(18).toString("hex")}`;
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  chownSync(pwfile, uid, gid);

  await asPostgres("initdb", [
    "-D",
    data,
    "-U",
    user,
    `--pwfile=${pwfile}`,
    "--auth-host=scram-sha-256",
    "--auth-local=scram-sha-256",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ]);
  rmSync(pwfile);

  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5 && port === 0; attempt++) {
    const candidate = await freePort();
    const serverOptions = [
      `-p ${candidate}`,
      `-k ${socketDir}`,
      "-c listen_addresses=127.0.0.1",
      ...(options.durable ? [] : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
    ].join(" ");
    try {
      await asPostgres("pg_ctl", [
        "-D",
        data,
        "-l",
        join(dir, "server.log"),
        "-w",
        "-t",
        "60",
        "-o",
        serverOptions,
        "start",
      ]);
      port = candidate;
    } catch (error) {
      lastError = error; // most likely the port was taken in between: try another one
    }
  }
  if (port === 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start PostgreSQL: ${String(lastError)}`);
  }

  const host = "127.0.0.1";
  const env = (db = "postgres"): Record<string, string> => ({
    PGHOST: host,
    PGPORT: String(port),
    PGUSER: user,
    PGPASSWORD: password,
    PGDATABASE: db,
  });
  let stopped = false;

  return {
    host,
    port,
    user,
    password,
    env,
    dataDir: data,
    async psql(sql: string, db = "postgres"): Promise<string> {
      const { stdout } = await run("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env(db) },
      });
      return stdout.trim();
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
