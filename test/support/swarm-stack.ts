/**
 * The stand-in stack on the three-node swarm fixture (swarm.ts), as test/engine/swarm and
 * bench/swarm deploy it: the manager holds the data (PostgreSQL, RabbitMQ), w1 the API, beat and
 * the edge followers (and a UDP server), w2 the workers (and a UDP server); the images come from
 * the fixture's registry.
 */
import { freeLoopbackPort } from "./ports";
import { STANDIN_IMAGES } from "./standin-stack";
import type { Swarm, SwarmNode } from "./swarm";

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
export async function placeStack(swarm: Swarm): Promise<SwarmPlacement> {
  const [data, app, workers] = [swarm.manager, ...swarm.nodes.filter((n) => n.role === "worker")];
  await swarm.label(data, { "utilitarian.data": "true" });
  await swarm.label(app, { "utilitarian.app": "true", "utilitarian.edge": "true" });
  await swarm.label(workers, { "utilitarian.workers": "true", "utilitarian.edge": "true" });
  const [registry] = (await swarm.push(SWARM_IMAGES))[0].split("/");
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
  opts: { prefix: string; startTimeoutSeconds?: number },
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
    backup: { dir: backupDir, keep: 5, stopWriters: false },
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
