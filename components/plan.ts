/**
 * "Plan first, then build": a pure function turns validated settings into the deployment's
 * nodes (every resource group the component builds), each with what it waits for and why, and
 * the runbook step it carries out. This is the one place the upgrade's order lives: the
 * component turns each wait into a `dependsOn` or an input taken from the awaited resource, and
 * writes no ordering of its own; `npm run plan` prints it; tests check it with plain equality
 * and against the dependencies the real runtime records.
 */
import type { Settings } from "../config/schema";
import {
  EDGE_ROLES,
  KINDS,
  kindOf,
  STAGES,
  type EdgeRole,
  type ServiceKind,
  type ServiceRole,
  type StageKey,
} from "./kinds";

export type { ServiceRole } from "./kinds";

/** The vendor's upgrade runbook (upgrade-instructions.md), step by step. */
export const RUNBOOK = {
  1: "Backup (verified pg_dump)",
  2: "Close down services that depend on the API",
  3: "Close down the API, beat and workers",
  4: "Pull new versions",
  5: "Upgrade the run config (beat and workers too)",
  6: "Start only the API",
  7: "Run migrations (manage.py migrate)",
  8: "Compress static assets (collectstatic, compress)",
  9: "Start up all services",
  10: "Verify the upgrade",
} as const;
export type RunbookStep = keyof typeof RUNBOOK;

/** One image per repository; the API, beat and workers share `app`. */
export type ImageKey = "app" | EdgeRole;
/** The maintenance steps. Each is a script in `scripts/`. */
export type StepKey = "pull" | "backup" | "restore" | "migrate" | "static" | "verify";

/**
 * How a wait reaches the engine. `dependsOn`: the resource registers after the awaited one
 * finished. The others are inputs whose value comes from the awaited resource (a property edge):
 * the engine sees them too, and on fields that force a replacement they make it stop this
 * service before it replaces the awaited one (pulumi.md, delete-before-replace dependents).
 */
export type Via =
  | "dependsOn"
  /** `image`: the pulled image's ID; a new pull replaces the container. */
  | "image"
  /** `networksAdvanced`: the private network's name. */
  | "network"
  /** label `io.utilitarian.follows-api`: the API container's name (ForceNew). */
  | "followsApi"
  /** `UTILITARIAN_BASE_URL` in `envs`: the API container's name (ForceNew). */
  | "apiBaseUrl"
  /** label `io.utilitarian.backup`: the backup's ID (ForceNew): a writer the backup stopped is started again. */
  | "stoppedForBackup"
  /** `triggers`: the API container's ID (static files live in the container). */
  | "apiContainerId"
  /** `triggers`: every service container's ID (verify after any replacement). */
  | "containerIds"
  /** `environment` (`PULL_IMAGES`): the pulled image's reference by digest, which the swarm's nodes pull. */
  | "nodesPull";

/** The input property each kind of property edge lands in, as the engine records it. */
export const VIA_PROPERTY: Record<Exclude<Via, "dependsOn">, string> = {
  image: "image",
  network: "networksAdvanced",
  followsApi: "labels",
  apiBaseUrl: "envs",
  stoppedForBackup: "labels",
  apiContainerId: "triggers",
  containerIds: "triggers",
  nodesPull: "environment",
};

export interface Wait {
  /** Key of the node waited for. */
  on: string;
  via: Via;
  /** Why, in one sentence an operator understands. */
  why: string;
}

interface NodeBase {
  /** Unique key; resources are named `<component name>-<key>` (images: `image-<image key>`). */
  key: string;
  waits: Wait[];
  /** Runbook steps this node carries out during an upgrade; empty for the foundation. */
  runbook: RunbookStep[];
}

/** The images of services outside the application's releases, each an image reference of its settings. */
export type FoundationImage = "postgres" | "rabbitmq" | "proxy";

export interface ImageNode extends NodeBase {
  kind: "image";
  image: FoundationImage | ImageKey;
  /** `repository:tag`. */
  ref: string;
}

export interface ServiceNode extends NodeBase {
  kind: "service";
  role: ServiceRole;
  image: ImageKey | "proxy";
  /** The release this service runs: the image's tag. */
  version: string;
  /** Stopped before the API and started after static files: it talks to the API or shares its code. */
  followsApi: boolean;
  /**
   * Nodes whose replacement replaces this service too (the `replaceWith` option, engine 3.208+):
   * the followers' intent stated directly; the ForceNew input edges on the API say the same to
   * older engines.
   */
  replacedWith: string[];
  /**
   * Runs in the Docker host's network instead of the private one (`udpServer.network: host`): its
   * socket is the host's, so no NAT rule a restarting daemon flushes sits in front of it.
   */
  hostNetwork: boolean;
  /** Command override; undefined keeps the image's default command. */
  command?: string[];
  /** Seconds the container gets to stop cleanly before it is killed. */
  graceSeconds: number;
  /**
   * On a swarm (`target: swarm`) only: how many tasks run, or one on every node of its label
   * (`global`: the UDP servers, one per edge node). A worker group is one service there, its
   * `count` the replicas; on one Docker host each replica is a node (and a container) of its own.
   */
  replicas?: number | "global";
}

export interface StepNode extends NodeBase {
  kind: "step";
  step: StepKey;
  script: string;
  /**
   * What makes the step run again. `version`: exactly once per API version (backup, migrate);
   * `version+restore`: once per rollback; `apiContainer`: whenever a new API container starts,
   * because collected and compressed assets live in the container (no volume: they always match
   * its version); `services`: whenever any service container was replaced (verify); `images`:
   * whenever an application image changes (on a swarm, the nodes' pull; a changed digest, node
   * label or node engine runs it again too, as its update).
   */
  runsOnceFor: "version" | "version+restore" | "apiContainer" | "services" | "images";
}

export interface FoundationNode extends NodeBase {
  kind: "network" | "postgres" | "rabbitmq" | "database" | "guard";
}

export type PlanNode = ImageNode | ServiceNode | StepNode | FoundationNode;

export interface DeploymentPlan {
  /** The API version this plan brings up. */
  version: string;
  /** Every node, each after all it waits for. */
  nodes: PlanNode[];
}

/** What the plan reads of the validated settings (never a secret). */
export type PlanInput = Pick<
  Settings,
  | "version"
  | "images"
  | "database"
  | "rabbitmq"
  | "beat"
  | "workers"
  | EdgeRole
  | "stopGraceSeconds"
  | "restoreFrom"
  | "backup"
  | "proxy"
  | "target"
  | "swarm"
>;

export function planDeployment(input: PlanInput): DeploymentPlan {
  const nodes: PlanNode[] = [];
  const add = <T extends PlanNode>(node: T): T => {
    nodes.push(node);
    return node;
  };
  const managedDb = input.database.mode === "managed";
  const managedBroker = input.rabbitmq.mode === "managed";

  // --- The foundation: nothing here depends on the application's version. ---
  add({ kind: "network", key: "network", waits: [], runbook: [] });
  if (managedDb) {
    add({ kind: "image", key: "image-postgres", image: "postgres", ref: input.database.image, waits: [], runbook: [] });
    add({
      kind: "postgres",
      key: "postgres",
      runbook: [],
      waits: [
        { on: "image-postgres", via: "image", why: "runs the PostgreSQL image" },
        { on: "network", via: "network", why: "serves the private network as `postgres`" },
      ],
    });
  }
  add({
    kind: "database",
    key: "database",
    runbook: [],
    waits: managedDb
      ? [{ on: "postgres", via: "dependsOn", why: "the role and database are created on the running server" }]
      : [],
  });
  if (managedBroker) {
    add({ kind: "image", key: "image-rabbitmq", image: "rabbitmq", ref: input.rabbitmq.image, waits: [], runbook: [] });
    add({
      kind: "rabbitmq",
      key: "rabbitmq",
      runbook: [],
      waits: [
        { on: "image-rabbitmq", via: "image", why: "runs the RabbitMQ image" },
        { on: "network", via: "network", why: "serves the private network as `rabbitmq`" },
      ],
    });
  }
  const brokerUp: Wait[] = managedBroker
    ? [{ on: "rabbitmq", via: "dependsOn", why: "publishes to or consumes from RabbitMQ" }]
    : [];
  if (input.proxy.enabled)
    add({ kind: "image", key: "image-proxy", image: "proxy", ref: input.proxy.image, waits: [], runbook: [] });

  // --- Runbook 4 first: the new images, pulled while everything still runs. ---
  const appImages: ImageNode[] = [
    add({
      kind: "image",
      key: "image-app",
      image: "app",
      ref: `${input.images.api}:${input.version}`,
      waits: [],
      runbook: [4],
    }),
  ];
  for (const role of EDGE_ROLES) {
    const edge = input[role];
    if (!edge.enabled) continue;
    if (!edge.version) throw new Error(`${role} is enabled but has no version: edge services have their own releases`);
    appImages.push(
      add({
        kind: "image",
        key: `image-${role}`,
        image: role,
        ref: `${input.images[role]}:${edge.version}`,
        waits: [],
        runbook: [4],
      }),
    );
  }

  // --- Runbook 4 on a swarm: each node that will run a task of a new image pulls it by digest,
  // while everything still runs. The manager's pull above resolved the digest; a worker node would
  // otherwise pull only when its new task starts, with the old version already stopped.
  const onSwarm = input.target === "swarm";
  const pull = onSwarm
    ? add({
        kind: "step",
        key: "pull",
        step: "pull",
        script: "pull.sh",
        runsOnceFor: "images",
        runbook: [4],
        waits: appImages.map((i): Wait => ({
          on: i.key,
          via: "nodesPull",
          why: "pulls this image by digest on every node whose label places a task of it",
        })),
      })
    : undefined;
  /** On a swarm: what makes a service's old tasks stop only once every node has the new image. */
  const pulledOnNodes: Wait[] = pull
    ? [
        {
          on: pull.key,
          via: "dependsOn",
          why: "every node that will run its new image has it before its old tasks stop: a node that cannot pull stops nothing",
        },
      ]
    : [];

  // --- Runbook 1: the verified backup, before anything stops (and, for a rollback, the restore). ---
  const backup = add({
    kind: "step",
    key: "backup",
    step: "backup",
    script: "backup.sh",
    runsOnceFor: "version",
    runbook: [1],
    waits: [
      ...appImages.map((i): Wait => ({
        on: i.key,
        via: "dependsOn",
        why: "new images are pulled before anything stops: a failed pull stops nothing",
      })),
      { on: "database", via: "dependsOn", why: "the application's database must exist to be dumped" },
      ...pulledOnNodes,
    ],
  });
  let beforeApi: string = backup.key;
  if (input.restoreFrom !== undefined) {
    beforeApi = add({
      kind: "step",
      key: "restore",
      step: "restore",
      script: "restore.sh",
      runsOnceFor: "version+restore",
      runbook: [],
      waits: [
        {
          on: backup.key,
          via: "dependsOn",
          why: "rollback: the failed state is backed up too before the chosen backup replaces it",
        },
      ],
    }).key;
  }
  add({
    kind: "guard",
    key: "schema-guard",
    runbook: [],
    waits: [
      {
        on: beforeApi,
        via: "dependsOn",
        why: "records the version whose migrations may reach the database only once the backup (or restore) is done",
      },
    ],
  });

  // --- Runbooks 2, 3, 5, 6: the API; its followers are stopped first through their edges on it. ---
  const services: ServiceNode[] = [];
  /** A service node of the role's kind: image, grace period, runbook steps and network from its descriptor. */
  const service = (
    role: ServiceRole,
    key: string,
    follows: boolean,
    extra: Wait[],
    command?: string[],
    replicas: number | "global" = 1,
  ) => {
    const kind = kindOf(role);
    const image: ServiceNode["image"] = kind.release === "app" ? "app" : (role as EdgeRole | "proxy");
    const hostNetwork = kind.hostNetwork?.(input) ?? false;
    const node: ServiceNode = {
      key,
      role,
      image,
      version:
        image === "app" ? input.version : image === "proxy" ? imageTag(input.proxy.image) : input[image].version!,
      followsApi: follows,
      graceSeconds: input.stopGraceSeconds[kind.grace],
      ...(command ? { command } : {}),
      ...(onSwarm ? { replicas } : {}),
      kind: "service",
      replacedWith: follows ? ["api"] : [],
      hostNetwork,
      runbook: role === "api" || follows ? upgradeRunbook(kind) : [],
      waits: [
        { on: `image-${image}`, via: "image", why: "runs the pulled image: a new image replaces the container" },
        ...(hostNetwork ? [] : [{ on: "network", via: "network", why: "joins the private network" } satisfies Wait]),
        ...extra,
      ],
    };
    services.push(node);
    nodes.push(node);
    return node;
  };
  const api = service(
    "api",
    "api",
    false,
    [
      {
        on: "schema-guard",
        via: "dependsOn",
        why: "nothing stops before the verified backup: the API is replaced only after it (and the guard)",
      },
      ...brokerUp,
    ],
    undefined,
    input.swarm.apiReplicas,
  );
  // The maintenance proxy: no edge to the API, so replacing the API never touches it; it answers
  // for the API while the API is down.
  if (input.proxy.enabled)
    service(
      "proxy",
      "proxy",
      false,
      [
        {
          on: api.key,
          via: "dependsOn",
          why: "publishes the API's address, which the API itself held before the proxy was turned on: created after the API is, so that port is free",
        },
      ],
      kindOf("proxy").command!(),
    );
  add({
    kind: "step",
    key: "migrate",
    step: "migrate",
    script: "migrate.sh",
    runsOnceFor: "version",
    runbook: [7],
    waits: [
      { on: api.key, via: "dependsOn", why: "migrates inside the new API container, the only app service running" },
    ],
  });
  add({
    kind: "step",
    key: "static",
    step: "static",
    script: "static.sh",
    runsOnceFor: "apiContainer",
    runbook: [8],
    waits: [
      { on: "migrate", via: "dependsOn", why: "collects and compresses assets after the schema is current" },
      {
        on: api.key,
        via: "apiContainerId",
        why: "the assets live in the API container: every new API container gets them",
      },
    ],
  });

  // --- Runbook 9: everything else. Followers carry edges on the API; independent services do not. ---
  const follower = (stoppedByBackup: boolean): Wait[] => [
    { on: "static", via: "dependsOn", why: "starts on the new version only after migrate and static files" },
    { on: api.key, via: "followsApi", why: "the engine stops it before it replaces the API" },
    ...(stoppedByBackup
      ? [
          {
            on: backup.key,
            via: "stoppedForBackup",
            why: "the backup stopped this writer so that what it would write waits in RabbitMQ; it is started again after the upgrade",
          } satisfies Wait,
        ]
      : []),
  ];
  const stopWriters = input.backup.stopWriters;
  const beat = kindOf("beat");
  if (input.beat.enabled) service("beat", "beat", true, follower(stopWriters && beat.writer), beat.command!());
  const worker = kindOf("worker");
  for (const group of input.workers) {
    if (onSwarm) {
      // One service per group, its replicas spread over the worker nodes.
      const command = worker.command!({ group });
      service("worker", `worker-${group.name}`, true, follower(stopWriters && worker.writer), command, group.count);
      continue;
    }
    for (let index = 1; index <= group.count; index++) {
      const key = `worker-${group.name}-${index}`;
      service("worker", key, true, follower(stopWriters && worker.writer), worker.command!({ group, index }));
    }
  }
  for (const role of EDGE_ROLES) {
    const edge = input[role];
    if (!edge.enabled) continue;
    const kind = kindOf(role);
    const follows = kind.followsApi === "setting" ? edge.dependsOnApi : kind.followsApi;
    // A following edge service calls the API by its container name; an independent one needs only the broker.
    service(
      role,
      kebab(role),
      follows,
      follows
        ? [
            ...follower(stopWriters && kind.writer),
            { on: api.key, via: "apiBaseUrl", why: "calls the API by its container name" },
          ]
        : // Not after the backup: on a swarm only the nodes' pull comes before its replacement.
          [...brokerUp, ...pulledOnNodes],
      undefined,
      // Each edge node runs one UDP server, published on its own address.
      role === "udpServer" ? "global" : 1,
    );
  }

  // --- Runbook 10: verify, whenever any service container was replaced. ---
  add({
    kind: "step",
    key: "verify",
    step: "verify",
    script: "verify.sh",
    runsOnceFor: "services",
    runbook: [10],
    waits: services.map((s): Wait => ({
      on: s.key,
      via: "containerIds",
      why: "verifies after any service container was replaced, once all of them run",
    })),
  });

  return { version: input.version, nodes };
}

/** The plan's services, in plan order. */
export const servicesOf = (plan: DeploymentPlan) => plan.nodes.filter((n): n is ServiceNode => n.kind === "service");
/** The plan's steps, in plan order. */
export const stepsOf = (plan: DeploymentPlan) => plan.nodes.filter((n): n is StepNode => n.kind === "step");
const FOUNDATION_IMAGES: readonly string[] = ["postgres", "rabbitmq", "proxy"] satisfies FoundationImage[];
/** The application images pulled for this version (not PostgreSQL's, RabbitMQ's or the proxy's). */
export const appImagesOf = (plan: DeploymentPlan) =>
  plan.nodes.filter(
    (n): n is ImageNode & { image: ImageKey } => n.kind === "image" && !FOUNDATION_IMAGES.includes(n.image),
  );

/** The tag of an image reference (`haproxy:2.6` is 2.6), `latest` when it has none, as Docker reads it. */
export function imageTag(ref: string): string {
  const name = ref.split("@")[0];
  const lastPart = name.slice(name.lastIndexOf("/") + 1);
  return lastPart.includes(":") ? lastPart.slice(lastPart.indexOf(":") + 1) : "latest";
}

/** The runbook steps a service carries out when an upgrade stops and starts it (kinds.ts). */
function upgradeRunbook(kind: ServiceKind): RunbookStep[] {
  return sorted((kind.upgrade ?? []).flatMap((part) => part.runbook));
}

const sorted = (steps: Iterable<RunbookStep>) => [...new Set(steps)].sort((a, b) => a - b);

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export interface UpgradeStage {
  key: StageKey;
  /** The runbook steps carried out in this stage. */
  runbook: RunbookStep[];
}

/**
 * The stages of an upgrade to this plan, in order, each with its runbook steps: a step node's are
 * its own, the pulls' are the image nodes', and the services' stages are their kinds' stops and
 * starts (kinds.ts), whether or not this plan runs a service of every kind. The restore stage is
 * there only for a rollback.
 */
export function upgradeStages(plan: DeploymentPlan): UpgradeStage[] {
  const runbook = new Map<StageKey, RunbookStep[]>();
  const carry = (stage: StageKey, steps: RunbookStep[]) =>
    runbook.set(stage, [...(runbook.get(stage) ?? []), ...steps]);
  for (const image of appImagesOf(plan)) carry("pull", image.runbook);
  for (const kind of Object.values(KINDS) as ServiceKind[])
    for (const part of kind.upgrade ?? []) carry(part.stage, part.runbook);
  for (const step of stepsOf(plan)) carry(step.step, step.runbook);
  return STAGES.filter((key) => runbook.has(key)).map((key) => ({ key, runbook: sorted(runbook.get(key)!) }));
}
