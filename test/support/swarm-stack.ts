/**
 * The stand-in stack on the three-node swarm fixture (swarm.ts), as test/engine/swarm,
 * test/engine/swarm-rollback and bench/swarm deploy it: the manager holds the data (PostgreSQL,
 * RabbitMQ), w1 the API, beat and the edge followers (and a UDP server), w2 the workers (and a UDP
 * server); the images come from the fixture's registry. And what the tests read back: the running
 * tasks, the database through the data node's published port, the API's health on the app node,
 * meters pushing UDP to the edge nodes, and where the engine's state and the swarm's services disagree.
 */
import * as dgram from "dgram";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { exec, sleep } from "./exec";
import { freeLoopbackPort } from "./ports";
import { SERVICE } from "./provider-facts";
import { nameOf, type StateResource } from "./real-stack";
import { STANDIN_IMAGES, TOKEN } from "./standin-stack";
import { startSwarm, type Swarm, type SwarmNode } from "./swarm";

/** Where the stack's services run, its registry and its published ports (on the nodes' addresses). */
export interface SwarmPlacement {
  swarm: Swarm;
  data: SwarmNode;
  app: SwarmNode;
  workers: SwarmNode;
  /** host:port of the registry the nodes pull from */
  registry: string;
  ports: { postgres: number; api: number; udp: number };
}

/** The stand-in images a swarm stack runs (every one but the maintenance proxy's, refused on a swarm). */
export const SWARM_IMAGES = STANDIN_IMAGES.filter((i) => !/haproxy/.test(i));

/** Labels the nodes (manager: data; w1: app and edge; w2: workers and edge), pushes the images, chooses ports. */
export async function placeStack(swarm: Swarm, images: string[] = SWARM_IMAGES): Promise<SwarmPlacement> {
  for (const image of images) if (!STANDIN_IMAGES.includes(image)) throw new Error(`${image} is not a stand-in image`);
  const [data, app, workers] = [swarm.manager, ...swarm.nodes.filter((n) => n.role === "worker")];
  await swarm.label(data, { "utilitarian.data": "true" });
  await swarm.label(app, { "utilitarian.app": "true", "utilitarian.edge": "true" });
  await swarm.label(workers, { "utilitarian.workers": "true", "utilitarian.edge": "true" });
  const [registry] = (await swarm.push(images))[0].split("/");
  const postgres = await freeLoopbackPort("tcp");
  const api = await freeLoopbackPort("tcp", [postgres]);
  const udp = await freeLoopbackPort("udp");
  return { swarm, data, app, workers, registry, ports: { postgres, api, udp } };
}

/** Stack config values for the stand-in stack at `version` on the swarm of `placement`. */
export function swarmConfig(
  placement: SwarmPlacement,
  version: string,
  backupDir: string,
  opts: { prefix: string; startTimeoutSeconds?: number; backup?: Record<string, unknown> },
): Record<string, unknown> {
  const { swarm, data, app, workers, registry, ports } = placement;
  const image = (repo: string) => `${registry}/utilitarian-standin/${repo}`;
  return {
    version,
    prefix: opts.prefix,
    target: "swarm",
    dockerHost: swarm.manager.host,
    // Every node that runs an application task: the steps run in the API's, the pull reaches both.
    swarm: {
      nodeHosts: { [app.name]: app.host, [workers.name]: workers.host },
      ...(opts.startTimeoutSeconds ? { startTimeoutSeconds: opts.startTimeoutSeconds } : {}),
    },
    images: {
      api: image("utilitarian"),
      processor: image("dlms-processor"),
      poster: image("poster"),
      udpServer: image("dlms-udp-server"),
    },
    database: { image: `${image("postgres")}:15`, operatorHost: data.address, operatorPort: ports.postgres },
    rabbitmq: { image: `${image("rabbitmq")}:3` },
    proxy: { enabled: false },
    api: { port: ports.api, publishAddress: "0.0.0.0", allowedHosts: ["*"], healthTimeoutSeconds: 120 },
    workers: [{ name: "default", queues: [], concurrency: 1, count: 2 }],
    processor: { version: "1.0.0" },
    poster: { version: "1.0.0" },
    udpServer: { version: "1.0.0", port: ports.udp },
    backup: { dir: backupDir, keep: 5, stopWriters: false, ...opts.backup },
    stopGraceSeconds: { api: 10, beat: 5, worker: 10, edge: 5 },
  };
}

/**
 * Removes every service of the stack under `prefix` from the swarm, waits until no node runs a
 * container of them, then removes its volumes on every node and its network: what `removeStack`
 * does on one host (`pulumi destroy` refuses while the data is protected).
 */
export async function removeSwarmStack(swarm: Swarm, prefix: string, timeoutMs = 180_000): Promise<void> {
  const services = (
    await swarm.docker(swarm.manager, ["service", "ls", "--filter", `name=${prefix}-`, "--format", "{{.Name}}"])
  ).stdout
    .split("\n")
    .filter((n) => n.startsWith(`${prefix}-`));
  if (services.length) await swarm.docker(swarm.manager, ["service", "rm", ...services]);
  const deadline = Date.now() + timeoutMs;
  for (const node of swarm.nodes) {
    for (;;) {
      const left = (
        await swarm.docker(node, [
          "ps",
          "-a",
          "--filter",
          "label=com.docker.swarm.service.name",
          "--format",
          "{{.Names}}",
        ])
      ).stdout
        .split("\n")
        .filter((n) => n.startsWith(`${prefix}-`));
      if (left.length === 0) break;
      if (Date.now() > deadline) throw new Error(`containers of ${prefix} still on ${node.name}: ${left.join(", ")}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const volumes = (await swarm.docker(node, ["volume", "ls", "-q"])).stdout
      .split("\n")
      .filter((v) => v.startsWith(`${prefix}-`));
    if (volumes.length) {
      // A volume still in use is not removed (hence the wait above, with `-a` and no `-q`: `-q` overrides `--format`).
      const removed = await swarm.docker(node, ["volume", "rm", "-f", ...volumes]);
      if (removed.code !== 0)
        throw new Error(`removing ${volumes.join(", ")} on ${node.name}: ${removed.stderr.trim()}`);
    }
  }
  await swarm.docker(swarm.manager, ["network", "rm", `${prefix}-net`]);
}

/** A placed stack and its prefix: what the read-back helpers below take. */
export interface SwarmStack extends SwarmPlacement {
  prefix: string;
}

/** A swarm for `prefix`, labelled, with `images` (stand-in references) in its registry, and free ports. */
export async function startSwarmStack(prefix: string, images: string[] = SWARM_IMAGES): Promise<SwarmStack> {
  const swarm = await startSwarm({ prefix });
  return { prefix, ...(await placeStack(swarm, images)) };
}

/** The stack's services on the swarm, by name. */
async function stackServices(s: SwarmStack): Promise<string[]> {
  const out = await s.swarm.docker(s.swarm.manager, [
    "service",
    "ls",
    "--filter",
    `name=${s.prefix}-`,
    "--format",
    "{{.Name}}",
  ]);
  return out.stdout.split("\n").filter(Boolean).sort();
}

/** Each running task of the stack's services: service name -> "task@node" entries, sorted. */
export async function runningTasks(s: SwarmStack): Promise<Record<string, string[]>> {
  const tasks: Record<string, string[]> = {};
  for (const service of await stackServices(s)) {
    const out = await s.swarm.docker(s.swarm.manager, [
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

export const nodesOf = (tasks: string[]) => [...new Set(tasks.map((t) => t.split("@")[1]))].sort();

/** Each of the stack's services as the manager has it: its version label and replicas ("global" for a global one). */
export async function swarmServices(s: SwarmStack): Promise<Map<string, { version: string; replicas: string }>> {
  const live = new Map<string, { version: string; replicas: string }>();
  for (const name of await stackServices(s)) {
    const out = await s.swarm.docker(s.swarm.manager, [
      "service",
      "inspect",
      "-f",
      '{{index .Spec.Labels "io.utilitarian.version"}}|{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}}',
      name,
    ]);
    if (out.code !== 0) continue; // removed meanwhile
    const [version, replicas] = out.stdout.trim().split("|");
    live.set(name, { version, replicas });
  }
  return live;
}

/**
 * Where the engine's state and the stack's swarm services disagree: a service the state holds as
 * live that does not exist, runs another version than its label in the state, or has other replicas
 * than the state's (a writer left scaled to 0 would show here); one pending deletion that still
 * exists; one of the stack the state does not know. Empty when the state is true.
 */
export function swarmStateDisagreements(
  state: { resources: StateResource[] },
  live: Map<string, { version: string; replicas: string }>,
): string[] {
  const problems: string[] = [];
  const known = new Set<string>();
  for (const r of state.resources) {
    if (r.type !== SERVICE) continue;
    const inputs = (r.inputs ?? {}) as {
      name: string;
      labels?: { label: string; value: string }[];
      mode?: { replicated?: { replicas?: number }; global?: boolean };
    };
    known.add(inputs.name);
    const service = live.get(inputs.name);
    if (r.delete || r.pendingReplacement) {
      if (service && !state.resources.some((o) => o !== r && o.urn === r.urn && !o.delete))
        problems.push(`${inputs.name} (${nameOf(r.urn)}) is pending deletion in the state but exists`);
      continue;
    }
    if (!service) {
      problems.push(`${inputs.name} is in the state but does not exist`);
      continue;
    }
    const version = inputs.labels?.find((l) => l.label === "io.utilitarian.version")?.value;
    if (version !== undefined && service.version !== version)
      problems.push(`${inputs.name} runs ${service.version}, the state says ${version}`);
    const replicas = inputs.mode?.global ? "global" : String(inputs.mode?.replicated?.replicas ?? 1);
    if (service.replicas !== replicas)
      problems.push(`${inputs.name} has ${service.replicas} replicas, the state says ${replicas}`);
  }
  for (const name of live.keys()) if (!known.has(name)) problems.push(`${name} exists but is not in the state`);
  return problems;
}

/** SQL against the stack's database as the administrator, at the data node's published port. */
export async function swarmSql(s: SwarmStack, query: string, db = "utilitarian"): Promise<string> {
  const result = await exec("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query], {
    env: {
      ...process.env,
      PGHOST: s.data.address,
      PGPORT: String(s.ports.postgres),
      PGUSER: "postgres",
      PGPASSWORD: SECRET_VALUES.databaseAdminPassword,
      PGDATABASE: db,
    },
  });
  if (result.code !== 0) throw new Error(`psql: ${result.stderr}`);
  return result.stdout.trim();
}

/** Readings of the meters whose name starts with `meterPrefix` (case-insensitive: 1.1.0 upper-cases meters). */
export const readingsOf = async (s: SwarmStack, meterPrefix: string) =>
  Number(
    await swarmSql(
      s,
      `select count(*) from readings_meterreading where upper(meter) like upper('${meterPrefix}') || '%'`,
    ),
  );

/** Messages of those meters stored more than once (each message has its own meter and value). */
export const duplicatesOf = async (s: SwarmStack, meterPrefix: string) =>
  Number(
    await swarmSql(
      s,
      `select count(*) from (select meter, value from readings_meterreading where upper(meter) like upper('${meterPrefix}') || '%' group by meter, value having count(*) > 1) d`,
    ),
  );

/** Meters pushing to each edge node's own address every `intervalMs`, each message a distinct value. */
export function meters(
  s: SwarmStack,
  nodes: SwarmNode[],
  meterPrefix: string,
  intervalMs: number,
): { stop: () => Promise<number> } {
  const socket = dgram.createSocket("udp4");
  let sent = 0;
  const timer = setInterval(() => {
    for (const node of nodes) {
      const payload = Buffer.from(
        JSON.stringify({ meter: `${meterPrefix}-${node.name}`, value: sent, timestamp: new Date().toISOString() }),
      );
      socket.send(payload, s.ports.udp, node.address);
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

/** The API's /_health/ status on the app node's address (0: no answer). */
export async function apiHealth(s: SwarmStack): Promise<number> {
  try {
    return (await fetch(`http://${s.app.address}:${s.ports.api}/_health/`, { signal: AbortSignal.timeout(3000) }))
      .status;
  } catch {
    return 0;
  }
}

/** POSTs a reading to the API on the app node, as the poster does; returns the HTTP status. */
export async function postReading(s: SwarmStack, meter: string, value: number): Promise<number> {
  const response = await fetch(`http://${s.app.address}:${s.ports.api}/api/v1/readings/`, {
    method: "POST",
    headers: { Authorization: `Token ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ meter, value, timestamp: new Date().toISOString(), source: "api-test" }),
    signal: AbortSignal.timeout(10_000),
  });
  return response.status;
}
