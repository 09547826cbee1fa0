import * as dgram from "dgram";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { docker, exec, sleep, waitFor } from "./exec";
import { freeLoopbackPort } from "./ports";

/**
 * A Utilitarian stack of stand-in images (test/fixtures) on the local Docker engine, deployed by
 * the real engine (real-stack.ts). Each test file has its stack under a prefix of its own.
 */
/** standinConfig's prefix when a caller gives none (every test file gives its own). */
const DEFAULT_PREFIX = "rh";
/** The stack's published loopback ports: chosen free by `prepareStack` for each test file. */
export const PORTS = { postgres: 0, api: 0, udp: 0 };
export const TOKEN = SECRET_VALUES.edgeAuthToken;
export const STANDIN_IMAGES = [
  "utilitarian-standin/utilitarian:1.0.0",
  "utilitarian-standin/utilitarian:1.1.0",
  "utilitarian-standin/utilitarian:1.2.0",
  "utilitarian-standin/dlms-processor:1.0.0",
  "utilitarian-standin/poster:1.0.0",
  "utilitarian-standin/dlms-udp-server:1.0.0",
  "utilitarian-standin/postgres:15",
  "utilitarian-standin/rabbitmq:3",
  "utilitarian-standin/haproxy:2.6",
];

export const SECRETS = { ...SECRET_VALUES, apiSecretEnv: JSON.stringify({ STANDIN_ACCEPTED_TOKEN: TOKEN }) };

/** Stack config values for a stand-in deployment at `version`. */
export function standinConfig(
  version: string,
  backupDir: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  if (!PORTS.postgres) throw new Error("no ports chosen yet: call prepareStack() in beforeAll");
  return {
    version,
    prefix: DEFAULT_PREFIX,
    images: {
      api: "utilitarian-standin/utilitarian",
      processor: "utilitarian-standin/dlms-processor",
      poster: "utilitarian-standin/poster",
      udpServer: "utilitarian-standin/dlms-udp-server",
    },
    database: { image: "utilitarian-standin/postgres:15", operatorPort: PORTS.postgres },
    rabbitmq: { image: "utilitarian-standin/rabbitmq:3" },
    // The maintenance proxy is on by default; its production image is the official haproxy:2.6.
    proxy: { image: "utilitarian-standin/haproxy:2.6" },
    api: { port: PORTS.api, publishAddress: "127.0.0.1", allowedHosts: ["127.0.0.1"], healthTimeoutSeconds: 90 },
    processor: { version: "1.0.0" },
    poster: { version: "1.0.0" },
    udpServer: { version: "1.0.0", port: PORTS.udp, publishAddress: "127.0.0.1" },
    backup: { dir: backupDir, keep: 5 },
    stopGraceSeconds: { api: 10, beat: 5, worker: 10, edge: 5 },
    ...extra,
  };
}

/** Fails (never skips) when the engine or an image is missing: CI must provide them. */
export async function requireEngineAndImages(): Promise<void> {
  const version = await exec("docker", ["version", "--format", "{{.Server.Version}}"]);
  if (version.code !== 0)
    throw new Error(`no Docker engine answers (${version.stderr.trim()}); start dockerd, as .ci/run does`);
  for (const image of STANDIN_IMAGES) {
    const found = await exec("docker", ["image", "inspect", image]);
    if (found.code !== 0) throw new Error(`stand-in image ${image} is missing: run test/fixtures/build-images.sh`);
  }
}

/**
 * Checks the Docker engine and the images, removes any earlier stack under `prefix` (each test
 * file and benchmark has its own, so none touches another's), and chooses free loopback ports.
 */
export async function prepareStack(prefix: string): Promise<void> {
  await requireEngineAndImages();
  await removeStack(prefix);
  PORTS.postgres = await freeLoopbackPort("tcp");
  PORTS.api = await freeLoopbackPort("tcp", [PORTS.postgres]);
  PORTS.udp = await freeLoopbackPort("udp");
}

/** Removes every container, the network and the volumes of the stack under `prefix`. */
export async function removeStack(prefix: string): Promise<void> {
  const ids = (await docker(["ps", "-aq", "--filter", `label=io.utilitarian.stack=${prefix}`]))
    .split("\n")
    .filter(Boolean);
  if (ids.length) await docker(["rm", "-f", ...ids], { allowFailure: true });
  await docker(["network", "rm", `${prefix}-net`], { allowFailure: true });
  await docker(["volume", "rm", `${prefix}-postgres-data`, `${prefix}-rabbitmq-data`], { allowFailure: true });
}

export function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `utilitarian-${name}-`));
}

/** SQL against the stack's database as the administrator, through the published loopback port. */
export async function sql(query: string, db = "utilitarian"): Promise<string> {
  const env = {
    ...process.env,
    PGHOST: "127.0.0.1",
    PGPORT: String(PORTS.postgres),
    PGUSER: "postgres",
    PGPASSWORD: SECRET_VALUES.databaseAdminPassword,
    PGDATABASE: db,
  };
  const result = await exec("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query], { env });
  if (result.code !== 0) throw new Error(`psql: ${result.stderr}`);
  return result.stdout.trim();
}

export async function health(): Promise<number> {
  try {
    const response = await fetch(`http://127.0.0.1:${PORTS.api}/_health/`, { signal: AbortSignal.timeout(2000) });
    return response.status;
  } catch {
    return 0;
  }
}

/** POSTs one reading to the API (by default the one-host stack's, on loopback; `apiUrl` for another). */
export async function postReading(
  meter: string,
  value: number,
  apiUrl = `http://127.0.0.1:${PORTS.api}`,
): Promise<number> {
  const response = await fetch(`${apiUrl}/api/v1/readings/`, {
    method: "POST",
    headers: { Authorization: `Token ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ meter, value, timestamp: new Date().toISOString(), source: "api-test" }),
  });
  return response.status;
}

/** Sends one DLMS-like push message to the UDP server. */
export async function sendUdp(meter: string, value: number): Promise<void> {
  const socket = dgram.createSocket("udp4");
  const payload = Buffer.from(JSON.stringify({ meter, value, timestamp: new Date().toISOString() }));
  await new Promise<void>((resolve, reject) =>
    socket.send(payload, PORTS.udp, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
  );
  socket.close();
}

/** Readings whose meter starts with `prefix` (case-insensitive: 1.1.0 upper-cases meters). */
export async function countReadings(prefix: string): Promise<number> {
  return Number(
    await sql(`select count(*) from readings_meterreading where upper(meter) like upper('${prefix}') || '%'`),
  );
}

export async function waitForReadings(prefix: string, expected: number, timeoutMs = 120_000): Promise<number> {
  await waitFor(async () => (await countReadings(prefix)) >= expected, timeoutMs, 500);
  return countReadings(prefix);
}

export async function containerState(
  name: string,
): Promise<{ id: string; running: boolean; startedAt: string; image: string; version: string } | undefined> {
  const out = await docker(
    [
      "inspect",
      "-f",
      '{{.Id}}|{{.State.Running}}|{{.State.StartedAt}}|{{.Config.Image}}|{{index .Config.Labels "io.utilitarian.version"}}',
      name,
    ],
    { allowFailure: true },
  );
  if (!out) return undefined;
  const [id, running, startedAt, image, version] = out.split("|");
  return { id, running: running === "true", startedAt, image, version };
}

/** Every container of the stack (of `prefix`, by default the stand-in stack's), by name. */
export async function stackContainers(
  prefix: string,
): Promise<Map<string, NonNullable<Awaited<ReturnType<typeof containerState>>>>> {
  const names = (
    await docker(["ps", "-a", "--filter", `label=io.utilitarian.stack=${prefix}`, "--format", "{{.Names}}"])
  )
    .split("\n")
    .filter(Boolean);
  const states = new Map();
  for (const n of names.sort()) states.set(n, await containerState(n));
  return states;
}

/** Sends numbered UDP messages every `intervalMs` until stopped; returns how many it sent. */
export function udpStream(meterPrefix: string, intervalMs: number): { stop: () => Promise<number>; sentAt: number[] } {
  let sent = 0;
  let running = true;
  /** When each message was sent (ms since the epoch), by number. */
  const sentAt: number[] = [];
  const loop = (async () => {
    while (running) {
      sentAt.push(Date.now());
      await sendUdp(`${meterPrefix}${sent}`, sent + 0.5);
      sent++;
      await sleep(intervalMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return sent;
    },
    sentAt,
  };
}

/** Samples the API's health every `intervalMs`; reports the longest stretch without a 200. */
export function healthProbe(intervalMs: number): { stop: () => Promise<{ samples: number; longestOutageMs: number }> } {
  let running = true;
  let samples = 0;
  let longest = 0;
  let downSince: number | undefined;
  const loop = (async () => {
    while (running) {
      const ok = (await health()) === 200;
      const now = Date.now();
      samples++;
      if (!ok && downSince === undefined) downSince = now;
      if (ok && downSince !== undefined) {
        longest = Math.max(longest, now - downSince);
        downSince = undefined;
      }
      await sleep(intervalMs);
    }
    if (downSince !== undefined) longest = Math.max(longest, Date.now() - downSince);
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { samples, longestOutageMs: longest };
    },
  };
}
