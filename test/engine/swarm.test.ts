/**
 * The swarm target under the real engine: `index.ts` with `target: swarm` on a swarm of three
 * nodes on this machine (test/fixtures/swarm.sh: a manager and two workers, each its own dockerd
 * in its own network namespace, the images in a local registry), the docker provider's stand-in
 * acting on the manager's engine. Placement: PostgreSQL and RabbitMQ on the manager (data), the
 * API, beat and edge followers on w1 (app), workers on w2, a UDP server on each of w1 and w2
 * (edge). Checked: a fresh install places every service where its label says and verify passes
 * against the API's tasks; a second run changes nothing and restarts no task; 1.0.0 -> 1.1.0 runs
 * the runbook's order (followers deleted before the API, migrate and static before they start
 * again, verify last), keeps PostgreSQL, RabbitMQ and the UDP servers' tasks, and stores every
 * reading sent to the two edge nodes meanwhile exactly once. The secrets reach the tasks as swarm
 * secrets: no service's spec (`docker service inspect`) holds a secret value, and the services work.
 */
import * as dgram from "dgram";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { exec, sleep, waitFor } from "../support/exec";
import { freeLoopbackPort } from "../support/ports";
import { changes, RealStack, type EngineStep } from "../support/real-stack";
import { SECRETS, STANDIN_IMAGES, tempDir } from "../support/standin-stack";
import { startSwarm, type Swarm, type SwarmNode } from "../support/swarm";

const MINUTE = 60_000;
// Overridable so that two checkouts on one machine can run this file at once (each its own swarm).
const PREFIX = process.env.SWARM_TEST_PREFIX ?? "swe";
const STACK = "swarm-engine";
let swarm: Swarm;
let stack: RealStack;
let data: SwarmNode;
let app: SwarmNode;
let workers: SwarmNode;
let registry = "";
const PORTS = { postgres: 0, api: 0, udp: 0 };

function config(version: string, backupDir: string): Record<string, unknown> {
  const image = (repo: string) => `${registry}/utilitarian-standin/${repo}`;
  return {
    version,
    prefix: PREFIX,
    target: "swarm",
    dockerHost: swarm.manager.host,
    swarm: { nodeHosts: { [app.name]: app.host } },
    images: {
      api: image("utilitarian"),
      processor: image("dlms-processor"),
      poster: image("poster"),
      udpServer: image("dlms-udp-server"),
    },
    database: { image: `${image("postgres")}:15`, operatorHost: data.address, operatorPort: PORTS.postgres },
    rabbitmq: { image: `${image("rabbitmq")}:3` },
    proxy: { enabled: false },
    api: { port: PORTS.api, publishAddress: "0.0.0.0", allowedHosts: ["*"], healthTimeoutSeconds: 120 },
    workers: [{ name: "default", queues: [], concurrency: 1, count: 2 }],
    processor: { version: "1.0.0" },
    poster: { version: "1.0.0" },
    udpServer: { version: "1.0.0", port: PORTS.udp },
    backup: { dir: backupDir, keep: 5, stopWriters: false },
    stopGraceSeconds: { api: 10, beat: 5, worker: 10, edge: 5 },
  };
}

/** Each running task of the stack's services: service name -> "task@node" entries, sorted. */
async function runningTasks(): Promise<Record<string, string[]>> {
  const services = (
    await swarm.docker(swarm.manager, ["service", "ls", "--filter", `name=${PREFIX}-`, "--format", "{{.Name}}"])
  ).stdout
    .split("\n")
    .filter(Boolean);
  const tasks: Record<string, string[]> = {};
  for (const service of services) {
    const out = await swarm.docker(swarm.manager, [
      "service",
      "ps",
      service,
      "--filter",
      "desired-state=running",
      "--format",
      "{{.ID}}@{{.Node}} {{.CurrentState}}",
    ]);
    tasks[service] = out.stdout
      .split("\n")
      .filter((l) => l.includes(" Running"))
      .map((l) => l.split(" ")[0])
      .sort();
  }
  return tasks;
}

/**
 * Each secret value as it may be written: as it is, and percent-encoded (inside DATABASE_URL and
 * AMQP_CONNECTION_STRING).
 */
const SECRET_FORMS = [...new Set(Object.values(SECRET_VALUES).flatMap((v) => [v, encodeURIComponent(v)]))];

/** `docker service inspect` of every service of the stack, as the manager shows it. */
async function inspectServices(): Promise<{ name: string; text: string; spec: any }[]> {
  const names = Object.keys(await runningTasks());
  const out = await swarm.docker(swarm.manager, ["service", "inspect", ...names]);
  return (JSON.parse(out.stdout) as any[]).map((s) => ({ name: s.Spec.Name, text: JSON.stringify(s), spec: s.Spec }));
}

const nodesOf = (tasks: string[]) => [...new Set(tasks.map((t) => t.split("@")[1]))].sort();

async function sql(query: string): Promise<string> {
  const result = await exec("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query], {
    env: {
      ...process.env,
      PGHOST: data.address,
      PGPORT: String(PORTS.postgres),
      PGUSER: "postgres",
      PGPASSWORD: SECRET_VALUES.databaseAdminPassword,
      PGDATABASE: "utilitarian",
    },
  });
  if (result.code !== 0) throw new Error(`psql: ${result.stderr}`);
  return result.stdout.trim();
}

const readingsOf = async (meterPrefix: string) =>
  Number(
    await sql(`select count(*) from readings_meterreading where upper(meter) like upper('${meterPrefix}') || '%'`),
  );
const duplicatesOf = async (meterPrefix: string) =>
  Number(
    await sql(
      `select count(*) from (select meter, value from readings_meterreading where upper(meter) like upper('${meterPrefix}') || '%' group by meter, value having count(*) > 1) d`,
    ),
  );

/** Meters pushing to each edge node's own address every `intervalMs`, each message a distinct value. */
function meters(nodes: SwarmNode[], meterPrefix: string, intervalMs: number): { stop: () => Promise<number> } {
  const socket = dgram.createSocket("udp4");
  let sent = 0;
  const timer = setInterval(() => {
    for (const node of nodes) {
      const payload = Buffer.from(
        JSON.stringify({ meter: `${meterPrefix}-${node.name}`, value: sent, timestamp: new Date().toISOString() }),
      );
      socket.send(payload, PORTS.udp, node.address);
      sent++;
    }
  }, intervalMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await sleep(200);
      socket.close();
      return sent;
    },
  };
}

async function apiHealth(): Promise<number> {
  try {
    return (await fetch(`http://${app.address}:${PORTS.api}/_health/`, { signal: AbortSignal.timeout(3000) })).status;
  } catch {
    return 0;
  }
}

beforeAll(async () => {
  swarm = await startSwarm({ prefix: PREFIX });
  [data, app, workers] = [swarm.manager, ...swarm.nodes.filter((n) => n.role === "worker")];
  await swarm.label(data, { "utilitarian.data": "true" });
  await swarm.label(app, { "utilitarian.app": "true", "utilitarian.edge": "true" });
  await swarm.label(workers, { "utilitarian.workers": "true", "utilitarian.edge": "true" });
  const images = STANDIN_IMAGES.filter((i) => !/haproxy|utilitarian:1\.2\.0/.test(i));
  [registry] = (await swarm.push(images))[0].split("/");
  PORTS.postgres = await freeLoopbackPort("tcp");
  PORTS.api = await freeLoopbackPort("tcp", [PORTS.postgres]);
  PORTS.udp = await freeLoopbackPort("udp");
  stack = new RealStack(STACK, SECRETS);
  await stack.init();
}, 20 * MINUTE);

afterAll(async () => {
  await swarm?.stop();
  stack?.remove();
}, 5 * MINUTE);

describe("the swarm target under the real engine, on three nodes", () => {
  const backupDir = tempDir("swarm-backups");
  let installed: Record<string, string[]> = {};

  test(
    "a fresh install places each service on the nodes of its label, publishes the API and the UDP servers on their nodes' addresses, and verifies",
    async () => {
      stack.configure(config("1.0.0", backupDir));
      const preview = await stack.up([], { preview: true });
      expect(preview.code, preview.stdout + preview.stderr).toBe(0);
      expect(preview.stdout).toMatch(new RegExp(`\\+ +docker:index:Service +${PREFIX}-api +create`));
      const run = await stack.up();
      expect(run.code, run.stdout + run.stderr).toBe(0);
      installed = await runningTasks();
      const service = (key: string) => installed[`${PREFIX}-${key}`] ?? [];
      expect(nodesOf(service("postgres"))).toEqual([data.name]);
      expect(nodesOf(service("rabbitmq"))).toEqual([data.name]);
      for (const key of ["api", "beat", "processor", "poster"]) expect(nodesOf(service(key)), key).toEqual([app.name]);
      expect(service("beat")).toHaveLength(1);
      expect(service("worker-default")).toHaveLength(2);
      expect(nodesOf(service("worker-default"))).toEqual([workers.name]);
      // One UDP server on each edge node, none on the manager.
      expect(nodesOf(service("udp-server"))).toEqual([app.name, workers.name].sort());
      expect(service("udp-server")).toHaveLength(2);
      expect(await apiHealth()).toBe(200);
      expect((run.logs.get(`${PREFIX}-verify`) ?? []).join("\n")).toMatch(/verify: all checks passed/);
      // Secrets never reach the engine's output.
      for (const secret of SECRET_FORMS) expect(preview.stdout + run.stdout + run.stderr).not.toContain(secret);
      // Nor any service's spec: each secret variable is a swarm secret mounted in its tasks, which
      // the loader exports before the task's command (the API healthy and verify passed above).
      const inspected = await inspectServices();
      expect(inspected.map((s) => s.name).sort()).toEqual(Object.keys(installed).sort());
      for (const s of inspected) {
        for (const secret of SECRET_FORMS) expect(s.text, `${s.name} holds a secret`).not.toContain(secret);
        const container = s.spec.TaskTemplate.ContainerSpec;
        const env: string[] = container.Env ?? [];
        for (const name of ["DATABASE_URL", "SECRET_KEY", "AMQP_CONNECTION_STRING", "UTILITARIAN_AUTH_TOKEN"])
          expect(
            env.filter((e) => e.startsWith(`${name}=`)),
            `${s.name} ${name}`,
          ).toEqual([]);
        expect(container.Command, s.name).toEqual(["sh", "/run/secrets/utilitarian-load-env"]);
        expect(
          (container.Secrets ?? []).map((x: any) => x.File.Name),
          s.name,
        ).toContain("utilitarian-load-env");
      }
      const files = (key: string) =>
        inspected
          .find((s) => s.name === `${PREFIX}-${key}`)!
          .spec.TaskTemplate.ContainerSpec.Secrets.map((x: any) => x.File.Name)
          .sort();
      // STANDIN_ACCEPTED_TOKEN: the stand-in API's apiSecretEnv entry, the token it accepts.
      expect(files("api")).toEqual([
        "utilitarian-env.AMQP_CONNECTION_STRING",
        "utilitarian-env.DATABASE_URL",
        "utilitarian-env.SECRET_KEY",
        "utilitarian-env.STANDIN_ACCEPTED_TOKEN",
        "utilitarian-load-env",
      ]);
      expect(files("poster")).toEqual([
        "utilitarian-env.AMQP_CONNECTION_STRING",
        "utilitarian-env.UTILITARIAN_AUTH_TOKEN",
        "utilitarian-load-env",
      ]);
      expect(files("postgres")).toEqual(["utilitarian-env.POSTGRES_PASSWORD", "utilitarian-load-env"]);
      expect(files("rabbitmq")).toEqual(["utilitarian-env.RABBITMQ_DEFAULT_PASS", "utilitarian-load-env"]);
      // The tasks got the values: the API answers and verify's migrations check ran manage.py
      // through the loader against PostgreSQL; the upgrade below stores readings through RabbitMQ,
      // the processor and the poster.
    },
    20 * MINUTE,
  );

  test(
    "a second run with nothing changed changes nothing and restarts no task",
    async () => {
      const run = await stack.up(["--expect-no-changes"]);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(changes(run)).toEqual([]);
      expect(await runningTasks()).toEqual(installed);
    },
    10 * MINUTE,
  );

  test(
    "1.0.0 -> 1.1.0 with meters pushing to both edge nodes: the runbook's order, the UDP servers, PostgreSQL and RabbitMQ untouched, every reading stored once",
    async () => {
      const stream = meters([app, workers], "swm", 200);
      stack.configure(config("1.1.0", backupDir));
      const run = await stack.up();
      const sent = await stream.stop();
      expect(run.code, run.stdout + run.stderr).toBe(0);
      const step = (op: string, key: string): EngineStep => {
        const found = run.steps.find((s) => s.op === op && s.name === `${PREFIX}-${key}`);
        if (!found) throw new Error(`no ${op} of ${key}: ${changes(run).join(", ")}`);
        return found;
      };
      const before = (a: EngineStep, b: EngineStep) => a.end < b.start;
      const followers = ["beat", "worker-default", "processor", "poster"];
      const backup = step("create-replacement", "backup");
      const apiDeleted = step("delete-replaced", "api");
      const apiCreated = step("create-replacement", "api");
      const migrate = step("create-replacement", "migrate");
      const staticStep = step("create-replacement", "static");
      const verify = step("create-replacement", "verify");
      for (const f of followers) {
        const deleted = step("delete-replaced", f);
        const created = step("create-replacement", f);
        expect(before(backup, deleted), `backup before ${f} stops`).toBe(true);
        expect(before(deleted, apiDeleted), `${f} stops before the API`).toBe(true);
        expect(before(staticStep, created), `${f} starts after static`).toBe(true);
        expect(before(created, verify), `${f} starts before verify`).toBe(true);
      }
      expect(before(apiDeleted, apiCreated)).toBe(true);
      expect(before(apiCreated, migrate)).toBe(true);
      expect(before(migrate, staticStep)).toBe(true);
      // What keeps running: the engine touched none of them and their tasks are the same.
      const after = await runningTasks();
      for (const key of ["postgres", "rabbitmq", "udp-server"]) {
        expect(changes(run).filter((c) => c.endsWith(` ${PREFIX}-${key}`))).toEqual([]);
        expect(after[`${PREFIX}-${key}`], key).toEqual(installed[`${PREFIX}-${key}`]);
      }
      expect(await apiHealth()).toBe(200);
      // Every reading pushed to either edge node during the upgrade is stored, once.
      await waitFor(async () => (await readingsOf("swm")) >= sent, 3 * MINUTE, 1000);
      expect(await readingsOf("swm")).toBe(sent);
      expect(await duplicatesOf("swm")).toBe(0);
      expect(sent).toBeGreaterThan(50);
    },
    25 * MINUTE,
  );
});
