import { z } from "zod";
import { refuse } from "./issues";
import { dockerHost, int } from "./values";

/**
 * The deployment's target, and the settings of the second one: a Docker Swarm. The same plan
 * (components/plan.ts) runs on either; the swarm's settings say where its services go (node
 * labels) and how this machine reaches the engines whose tasks the maintenance steps run in.
 */

export const TARGETS = ["docker", "swarm"] as const;
export type Target = (typeof TARGETS)[number];

export const targetSchema = z.enum(TARGETS, { error: "must be docker or swarm" }).default("docker").meta({
  description:
    "Where the services run: `docker`, containers on the one Docker engine `dockerHost` names; `swarm`, services on the Docker Swarm whose manager `dockerHost` names, placed by the node labels under `swarm`.",
});

/** A node label key, as `docker node update --label-add KEY=true` takes it. */
const labelKey = (example: string) =>
  z
    .string()
    .regex(
      /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/,
      `must be a node label key of lower-case letters, digits, '.', '_' and '-', like ${example}`,
    )
    .default(example);

/** The node labels, one per group of services; a service runs only on nodes whose label is `true`. */
const labelsSchema = z.strictObject({
  app: labelKey("utilitarian.app").meta({
    description:
      "Nodes of the API, beat, the processor and the poster (`docker node update --label-add utilitarian.app=true NODE`): a node label key.",
  }),
  workers: labelKey("utilitarian.workers").meta({
    description: "Nodes the worker groups' replicas are spread over: a node label key.",
  }),
  edge: labelKey("utilitarian.edge").meta({
    description:
      "Edge nodes: each runs one DLMS UDP server, published on that node's own address (`udpServer.port`, no routing mesh), where its meters send: a node label key.",
  }),
  data: labelKey("utilitarian.data").meta({
    description:
      "The node of the managed PostgreSQL and RabbitMQ and their volumes (exactly one node should have it): a node label key.",
  }),
});

const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,253})?$/;

export const swarmSchema = z.strictObject({
  labels: labelsSchema.default(labelsSchema.parse({})).meta({
    description: "The node labels that place the services, each `true` on its nodes: the keys below.",
  }),
  apiReplicas: int(1, 20).default(1).meta({
    description:
      "How many tasks of the API run, each on an `app` node: a whole number from 1 to 20 (beat is always one, in the whole swarm).",
  }),
  startTimeoutSeconds: int(10, 3600).default(300).meta({
    description:
      'How long a run waits for every task of a service it starts to run (the API, beat, the workers, the edge services) before it fails at that service and removes it, as when every node of its label is down: a whole number of seconds from 10 to 3600 (README, "Docker Swarm", on a node lost during an upgrade).',
  }),
  nodeHosts: z
    .record(z.string().regex(NODE_NAME, "must be a swarm node's host name, as `docker node ls` shows it"), dockerHost)
    .default({})
    .meta({
      description:
        "How this machine reaches the Docker engine of each node that runs an application task (labelled `app`, `workers` or `edge`): the new images are pulled there before anything stops, and migrate, static files and verify run inside the API's tasks on the `app` nodes: node host name (as `docker node ls` shows it) to `unix:///path`, `ssh://[user@]host[:port]` or `tcp://host[:port]`.",
      whenUnset: "required with `target: swarm`",
    }),
});

export type SwarmSettings = z.infer<typeof swarmSchema>;

/** What the swarm target needs of the other settings, or what it does not do yet; each refusal names its fix. */
export function swarmProblems(
  s: {
    target: Target;
    swarm: SwarmSettings;
    proxy: { enabled: boolean };
    udpServer: { enabled: boolean; network: string };
    database: { mode: string; operatorHost?: string };
  },
  ctx: z.RefinementCtx,
): void {
  if (s.target !== "swarm") return;
  if (Object.keys(s.swarm.nodeHosts).length === 0)
    refuse(
      ctx,
      (n) =>
        `is empty, but with target swarm the new images are pulled on every node that runs an application task before anything stops, and the maintenance steps run inside the API's tasks: it must reach the engine of every node labelled ${s.swarm.labels.app}, ${s.swarm.labels.workers} or ${s.swarm.labels.edge}; set it, like ${n.set("swarm.nodeHosts.node-1", "ssh://deploy@node-1")}`,
      { path: ["swarm", "nodeHosts"] },
    );
  // Not built for the swarm yet (issue 16): refused rather than half done.
  if (s.proxy.enabled)
    refuse(
      ctx,
      (n) =>
        `is true, but the maintenance proxy does not run on a swarm yet: set ${n.set("proxy.enabled", "false")} (the API is then published on its app nodes)`,
      { path: ["proxy", "enabled"] },
    );
  if (s.udpServer.enabled && s.udpServer.network === "host")
    refuse(
      ctx,
      (n) =>
        `is host, but on a swarm each UDP server is published on its edge node's address by Docker (host mode, no routing mesh): remove it (${n.remove("udpServer.network")})`,
      { path: ["udpServer", "network"] },
    );
  if (s.database.mode === "managed" && !s.database.operatorHost)
    refuse(
      ctx,
      (n) =>
        `is required with target swarm and a managed database: the address of the node labelled ${s.swarm.labels.data}, where PostgreSQL is published for this machine's connections; set it, like ${n.set("database.operatorHost", "10.0.0.12")}`,
      { path: ["database", "operatorHost"] },
    );
}
