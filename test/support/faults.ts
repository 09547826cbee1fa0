/**
 * Helpers of the fault tests (test/engine/faults.test.ts): their own stand-in stack (prefix `flt`),
 * the API image versions they upgrade through, a UDP stream whose every message is checked, a
 * lock that makes a backup wait, and what runs in the database and in a container.
 */
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { docker, exec, sleep } from "./exec";
import { UDP_SERVER_PORT } from "../../config/schema";
import { freeLoopbackPort, requireHostUdpPortFree } from "./ports";
import {
  PORTS,
  prepareStack,
  removeStack,
  requireEngineAndImages,
  sql,
  standinConfig,
  udpStream,
} from "./standin-stack";

/** Container, network and volume prefix of the fault tests' stack (never the shared stand-in stack's). */
export const FAULT_PREFIX = "flt";
/** The API image repository of the fault tests: the stand-ins retagged, and variants built FROM them. */
export const FAULT_REPO = "flt-standin/utilitarian";

const STANDIN = "utilitarian-standin/utilitarian";

/** A migration that holds its transaction open for a few seconds: a long migration, in flight long enough to be hit. */
function slowMigration(number: string, after: string, table: string, seconds: number): string {
  return `# Fault tests (test/support/faults.ts): a schema change whose transaction lasts ${seconds} s.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("readings", "${after}")]

    operations = [
        migrations.RunSQL("create table ${table} (id serial primary key)", "drop table ${table}"),
        migrations.RunSQL("select pg_sleep(${seconds})  -- fault-test slow migration ${number}", migrations.RunSQL.noop),
    ]
`;
}

/** Seconds the slow migrations of 1.3.0 and 1.4.0 take (their pg_sleep). */
export const SLOW_MIGRATION_SECONDS = 6;

const MIGRATIONS = "/app/readings/migrations";

/** An app listed before django.contrib.staticfiles whose `collectstatic` waits 5 s first: a slow static collection. */
const SLOW_COLLECTSTATIC: Record<string, string> = {
  "/app/faultslow/__init__.py": "",
  "/app/faultslow/management/__init__.py": "",
  "/app/faultslow/management/commands/__init__.py": "",
  "/app/faultslow/management/commands/collectstatic.py": `# Fault tests (test/support/faults.ts): collectstatic that takes 5 s longer.
import time

from django.contrib.staticfiles.management.commands.collectstatic import Command as Collect


class Command(Collect):
    def handle(self, **options):
        time.sleep(5)
        return super().handle(**options)
`,
};

/**
 * The API versions, in upgrade order: what each is and why it exists.
 * 1.0.0, 1.1.0: the stand-ins. 1.3.0: 1.2.0 plus a slow migration 0005 (interrupted migrate).
 * 1.3.1: 1.3.0 whose collectstatic takes 5 s longer (the static step, while the followers are down, is interrupted).
 * 1.4.0: 1.3.0 plus a slow migration 0006 (PostgreSQL restarted during it). 1.5.0: 1.4.0 whose command
 * exits at once (a broken release). 1.5.1, 1.6.0, 1.7.0: 1.4.0 again (the fixed release, then upgrades
 * that only need a backup). 1.8.0, 1.9.0: slow migrations 0007, 0008. 2.0.0: 1.9.0 again (an
 * upgrade that only needs a backup: test/engine/faults.test.ts's two runs at once).
 */
export async function buildFaultImages(): Promise<void> {
  const tag = (from: string, to: string) => docker(["tag", from, `${FAULT_REPO}:${to}`]);
  await tag(`${STANDIN}:1.0.0`, "1.0.0");
  await tag(`${STANDIN}:1.1.0`, "1.1.0");
  await build("1.3.0", `${STANDIN}:1.2.0`, {
    [`${MIGRATIONS}/0005_fault_slow.py`]: slowMigration(
      "0005",
      "0004_check_negative_values",
      "readings_fault_a",
      SLOW_MIGRATION_SECONDS,
    ),
  });
  await build(
    "1.3.1",
    `${FAULT_REPO}:1.3.0`,
    SLOW_COLLECTSTATIC,
    `RUN echo 'INSTALLED_APPS.insert(0, "faultslow")' >> /app/utilitarian/settings.py`,
  );
  await build("1.4.0", `${FAULT_REPO}:1.3.0`, {
    [`${MIGRATIONS}/0006_fault_slow.py`]: slowMigration(
      "0006",
      "0005_fault_slow",
      "readings_fault_b",
      SLOW_MIGRATION_SECONDS,
    ),
  });
  await build(
    "1.5.0",
    `${FAULT_REPO}:1.4.0`,
    {},
    `CMD ["sh", "-c", "echo 'broken release: exits at once' >&2; exit 1"]`,
  );
  for (const version of ["1.5.1", "1.6.0", "1.7.0"]) await tag(`${FAULT_REPO}:1.4.0`, version);
  await build("1.8.0", `${FAULT_REPO}:1.4.0`, {
    [`${MIGRATIONS}/0007_fault_slow.py`]: slowMigration(
      "0007",
      "0006_fault_slow",
      "readings_fault_c",
      SLOW_MIGRATION_SECONDS,
    ),
  });
  await build("1.9.0", `${FAULT_REPO}:1.8.0`, {
    [`${MIGRATIONS}/0008_fault_slow.py`]: slowMigration(
      "0008",
      "0007_fault_slow",
      "readings_fault_d",
      SLOW_MIGRATION_SECONDS,
    ),
  });
  await tag(`${FAULT_REPO}:1.9.0`, "2.0.0");
}

/** `FAULT_REPO:version` FROM `from` with `files` (absolute paths in the image -> content) and `extra` lines. */
async function build(version: string, from: string, files: Record<string, string>, extra = ""): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flt-image-"));
  try {
    const lines = [`FROM ${from}`];
    for (const [target, text] of Object.entries(files)) {
      fs.mkdirSync(path.join(dir, "files", path.dirname(target)), { recursive: true });
      fs.writeFileSync(path.join(dir, "files", target), text);
    }
    if (Object.keys(files).length > 0) lines.push("COPY files/ /");
    if (extra) lines.push(extra);
    fs.writeFileSync(path.join(dir, "Dockerfile"), `${lines.join("\n")}\n`);
    await docker(["build", "-q", "-t", `${FAULT_REPO}:${version}`, dir]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The fault stack's UDP server runs in the host's network (`udpServer.network: host`), the setting
 * that lets a Docker daemon restart lose no datagram: it binds UDP 4059 of this host, and RabbitMQ
 * is published for it on this free loopback port (chosen by `prepareFaultStack`).
 */
let amqpLoopbackPort = 0;

/** Checks the engine and the stand-ins, builds the fault images, removes an earlier fault stack, chooses ports. */
export async function prepareFaultStack(): Promise<void> {
  await requireEngineAndImages();
  await buildFaultImages();
  await prepareStack(FAULT_PREFIX);
  await requireHostUdpPortFree(UDP_SERVER_PORT);
  PORTS.udp = UDP_SERVER_PORT;
  amqpLoopbackPort = await freeLoopbackPort("tcp", [PORTS.postgres, PORTS.api]);
}

export async function removeFaultStack(): Promise<void> {
  await removeStack(FAULT_PREFIX);
}

/** Stack config of the fault stack at `version` (API image from FAULT_REPO). */
export function faultConfig(
  version: string,
  backupDir: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  if (!amqpLoopbackPort) throw new Error("no ports chosen yet: call prepareFaultStack() in beforeAll");
  const base = standinConfig(version, backupDir);
  return {
    ...base,
    prefix: FAULT_PREFIX,
    images: { ...(base.images as object), api: FAULT_REPO },
    // A crash-looping API must fail migrate's wait in seconds, not the stand-in default 90 s.
    api: { ...(base.api as object), healthTimeoutSeconds: 20 },
    udpServer: { version: "1.0.0", network: "host" },
    rabbitmq: { ...(base.rabbitmq as object), loopbackPort: amqpLoopbackPort },
    ...extra,
  };
}

/** Names of the fault stack's containers. */
export const flt = (service: string) => `${FAULT_PREFIX}-${service}`;
export const WRITERS = ["beat", "worker-default-1", "processor", "poster"].map(flt);

export interface Delivery {
  sent: number;
  delivered: number;
  missing: number[];
  duplicated: number[];
}

/** Meter name (upper case) -> rows carrying it, for the meters of `prefix`. */
export async function rowsPerMeter(prefix: string): Promise<Map<string, number>> {
  const out = await sql(
    `select upper(meter), count(*) from readings_meterreading where upper(meter) like upper('${prefix}') || '%' group by 1`,
  );
  return new Map(
    out
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [meter, count] = line.split("|");
        return [meter, Number(count)];
      }),
  );
}

/** Messages 0..sent-1 of `prefix` against the stored `rows`: which are missing, which stored twice. */
export function deliveryOf(rows: Map<string, number>, prefix: string, sent: number): Delivery {
  const missing: number[] = [];
  const duplicated: number[] = [];
  for (let n = 0; n < sent; n++) {
    const count = rows.get(`${prefix}${n}`.toUpperCase()) ?? 0;
    if (count === 0) missing.push(n);
    if (count > 1) duplicated.push(n);
  }
  return { sent, delivered: sent - missing.length, missing, duplicated };
}

export interface ReadingStream {
  /** Stops sending, waits until every message sent is stored (or `timeoutMs` passes), says which are missing or stored twice. */
  stop: (timeoutMs?: number) => Promise<Delivery>;
  /** Stops sending (a failed test must not leave a stream filling the queues of the next). */
  abort: () => Promise<number>;
  /** When each message was sent (ms since the epoch), by number. */
  sentAt: number[];
}

/**
 * Numbered UDP messages (meters `<prefix><n>`) every `intervalMs` until stopped. 10 a second: what
 * queues while the writers are down is drained in seconds afterwards (the stand-in's poster stores
 * some 25 a second), and a test lasting half a minute still sends hundreds.
 */
export function readingStream(prefix: string, intervalMs = 100): ReadingStream {
  const stream = udpStream(prefix, intervalMs);
  return {
    sentAt: stream.sentAt,
    abort: () => stream.stop(),
    stop: async (timeoutMs = 120_000) => {
      const sent = await stream.stop();
      const deadline = Date.now() + timeoutMs;
      let rows = await rowsPerMeter(prefix);
      while (rows.size < sent && Date.now() < deadline) {
        await sleep(1000);
        rows = await rowsPerMeter(prefix);
      }
      // A duplicate would be a redelivery right behind its original: give it a moment to show.
      await sleep(1500);
      return deliveryOf(await rowsPerMeter(prefix), prefix, sent);
    },
  };
}

/** Whether any session of the stack's database runs a query containing `text`. */
export async function queryRunning(text: string): Promise<boolean> {
  const out = await sql(
    `select count(*) from pg_stat_activity where state = 'active' and query like '%${text}%' and pid <> pg_backend_pid()`,
  );
  return Number(out) > 0;
}

/** A session that holds an ACCESS EXCLUSIVE lock on `table` (a long ALTER, a VACUUM FULL) until released. */
export async function holdLock(table: string): Promise<{ release: () => Promise<void> }> {
  const env = {
    ...process.env,
    PGHOST: "127.0.0.1",
    PGPORT: String(PORTS.postgres),
    PGUSER: "postgres",
    PGPASSWORD: SECRET_VALUES.databaseAdminPassword,
    PGDATABASE: "utilitarian",
    PGAPPNAME: "fault-lock-holder",
  };
  const holder: ChildProcess = spawn("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1"], {
    env,
    stdio: ["pipe", "ignore", "ignore"],
  });
  holder.stdin!.write(`begin;\nlock table ${table} in access exclusive mode;\nselect pg_sleep(600);\n`);
  const deadline = Date.now() + 30_000;
  while (
    Number(
      await sql(
        "select count(*) from pg_locks l join pg_stat_activity a using (pid) where a.application_name = 'fault-lock-holder' and l.mode = 'AccessExclusiveLock' and l.granted",
      ),
    ) === 0
  ) {
    if (Date.now() > deadline) throw new Error(`could not lock ${table}`);
    await sleep(100);
  }
  return {
    release: async () => {
      await sql("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'fault-lock-holder'");
      holder.kill();
    },
  };
}

/** Whether a session of the given application waits for a lock. */
export async function waitsForLock(application: string): Promise<boolean> {
  return (
    Number(
      await sql(
        `select count(*) from pg_stat_activity where application_name = '${application}' and wait_event_type = 'Lock'`,
      ),
    ) > 0
  );
}

/** Files in `dir` (none when it does not exist). */
export function filesIn(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** The processes of `docker top` in a container whose command line contains `text`. */
export async function processesIn(container: string, text: string): Promise<string[]> {
  const result = await exec("docker", ["top", container, "-eo", "pid,args"]);
  return result.code === 0 ? result.stdout.split("\n").filter((l) => l.includes(text)) : [];
}
