/**
 * A Docker Swarm of several nodes on this machine, for tests that deploy services on one:
 * a manager and workers, each its own dockerd in its own network namespace, and a local registry
 * the nodes pull from by name. test/fixtures/swarm.sh does the work (and says why it is built the
 * way it is); this is its TypeScript face.
 *
 * The kernel here has no IPVS: services need `--endpoint-mode dnsrr`, published ports `mode=host`.
 */
import { join } from "node:path";
import { exec, ExecResult } from "./exec";

/** Every swarm node's dockerd has its exec-root (and socket) below this: how they are told apart. */
export const SWARM_RUN_DIR = "/run/utilitarian-swarm/";

export interface SwarmNode {
  name: string;
  id: string;
  address: string;
  /** DOCKER_HOST value */
  host: string;
  role: "manager" | "worker";
}

export interface Swarm {
  prefix: string;
  manager: SwarmNode;
  nodes: SwarmNode[];
  /** host:port the nodes pull from */
  registry: string;
  /** runs docker against a node */
  docker(node: SwarmNode, args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** pushes local images (from the root engine) to the registry; returns their registry references */
  push(images: string[]): Promise<string[]>;
  label(node: SwarmNode, labels: Record<string, string>): Promise<void>;
  /** stops a node's dockerd (SIGTERM) / starts it again with the same arguments (node loss tests) */
  stopNode(node: SwarmNode): Promise<void>;
  startNode(node: SwarmNode): Promise<void>;
  /** stops the registry (the nodes can no longer pull) / starts it again */
  stopRegistry(): Promise<void>;
  startRegistry(): Promise<void>;
  stop(): Promise<void>;
}

const SCRIPT = join(__dirname, "..", "fixtures", "swarm.sh");

/** Runs swarm.sh; throws with its output on failure. */
async function swarmSh(args: string[], timeoutMs = 180_000): Promise<string> {
  const result = await exec("bash", [SCRIPT, ...args], { timeoutMs });
  if (result.code !== 0) {
    throw new Error(`swarm.sh ${args.join(" ")} failed (${result.code}): ${(result.stderr + result.stdout).trim()}`);
  }
  return result.stdout;
}

/** The facts `swarm.sh env` prints: KEY=value lines and `NODE key=value ...` lines. */
function parseFacts(text: string): { values: Map<string, string>; nodes: SwarmNode[] } {
  const values = new Map<string, string>();
  const nodes: SwarmNode[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("NODE ")) {
      const f = Object.fromEntries(
        line
          .slice(5)
          .split(" ")
          .map((kv) => kv.split("=", 2) as [string, string]),
      );
      if (f.role !== "manager" && f.role !== "worker") throw new Error(`swarm.sh: bad node line: ${line}`);
      nodes.push({ name: f.name, id: f.id, address: f.address, host: f.host, role: f.role });
    } else if (line.includes("=")) {
      const at = line.indexOf("=");
      values.set(line.slice(0, at), line.slice(at + 1));
    }
  }
  return { values, nodes };
}

/**
 * Starts a swarm of one manager and `workers` workers under `prefix` (≤ 12 lower-case letters or
 * digits; interface, namespace and node names start with it). Leftovers of an earlier run with the
 * same prefix (a killed test) are removed first.
 */
export async function startSwarm(opts: { prefix: string; workers?: number }): Promise<Swarm> {
  const { prefix } = opts;
  await swarmSh(["down", prefix]);
  let facts: ReturnType<typeof parseFacts>;
  try {
    facts = parseFacts(await swarmSh(["up", prefix, String(opts.workers ?? 2)]));
  } catch (error) {
    await swarmSh(["down", prefix]).catch(() => undefined);
    throw error;
  }
  const manager = facts.nodes.find((n) => n.role === "manager");
  const registry = facts.values.get("REGISTRY");
  if (!manager || !registry) throw new Error(`swarm.sh up ${prefix}: no manager or registry in its facts`);

  const docker = (node: SwarmNode, args: string[]): Promise<ExecResult> =>
    exec("docker", args, { env: { ...process.env, DOCKER_HOST: node.host }, timeoutMs: 300_000 });

  return {
    prefix,
    manager,
    nodes: facts.nodes,
    registry,
    docker,
    push: async (images) => (await swarmSh(["push", prefix, ...images], 600_000)).split("\n").filter(Boolean),
    label: async (node, labels) => {
      const args = Object.entries(labels).flatMap(([k, v]) => ["--label-add", `${k}=${v}`]);
      const result = await docker(manager, ["node", "update", ...args, node.id]);
      if (result.code !== 0) throw new Error(`labelling ${node.name} failed: ${result.stderr.trim()}`);
    },
    stopNode: async (node) => void (await swarmSh(["stop-node", prefix, node.name])),
    startNode: async (node) => void (await swarmSh(["start-node", prefix, node.name])),
    stopRegistry: async () => void (await swarmSh(["stop-registry", prefix])),
    startRegistry: async () => void (await swarmSh(["start-registry", prefix])),
    stop: async () => void (await swarmSh(["down", prefix])),
  };
}
