/**
 * "Plan first, then build": a pure function turns validated settings into the services and
 * maintenance steps of a deployment, in the order the upgrade runbook needs them. The component
 * walks this plan; tests check it with plain equality, without Pulumi.
 */

/** One image per repository; the API, beat and workers share `app`. */
export type ImageKey = "app" | "processor" | "poster" | "udpServer";
export type ServiceRole = "api" | "beat" | "worker" | "processor" | "poster" | "udpServer";

/**
 * When a service (re)starts during an upgrade:
 * - `withApi`: the API itself, after the verified backup;
 * - `afterMigrations`: stopped before the API (through a property edge on the API container),
 *   started only after migrate and collectstatic/compress: beat, workers, processor, poster;
 * - `independent`: never touched by an API upgrade (UDP server; edge services configured as
 *   not depending on the API). Meter data queues up in RabbitMQ through these.
 */
export type StartPhase = "withApi" | "afterMigrations" | "independent";

export interface ServicePlan {
  /** Unique key; the container is named `<prefix>-<key>`. */
  key: string;
  role: ServiceRole;
  image: ImageKey;
  /** The release this service runs: the image's tag. */
  version: string;
  phase: StartPhase;
  /** Command override; undefined keeps the image's default command. */
  command?: string[];
  /** Seconds the container gets to stop cleanly before it is killed. */
  graceSeconds: number;
}

/** The maintenance steps, in run order. Each is a script in `scripts/`. */
export type StepKey = "backup" | "restore" | "migrate" | "static" | "verify";

export interface StepPlan {
  key: StepKey;
  script: string;
  /**
   * What makes the step run again. `version`: exactly once per API version (backup, migrate);
   * `version+restore`: once per rollback; `apiContainer`: whenever a new API container starts,
   * because collected and compressed assets live in the container (no volume: they always match
   * its version); `services`: whenever any service container was replaced (verify).
   */
  runsOnceFor: "version" | "version+restore" | "apiContainer" | "services";
}

export interface ImagePlan {
  key: ImageKey;
  repository: string;
  tag: string;
}

export interface DeploymentPlan {
  images: ImagePlan[];
  services: ServicePlan[];
  steps: StepPlan[];
}

/** The subset of the validated settings the plan needs (plain values, never secrets). */
export interface PlanInput {
  version: string;
  images: Record<ImageKey, string>;
  beat: { enabled: boolean };
  workers: { name: string; queues: string[]; concurrency: number; count: number }[];
  processor: EdgeInput;
  poster: EdgeInput;
  udpServer: EdgeInput;
  stopGraceSeconds: { api: number; beat: number; worker: number; edge: number };
  /** Set only for a rollback: restore this verified backup before the older API starts. */
  restoreFrom?: string;
}

interface EdgeInput {
  enabled: boolean;
  version?: string;
  dependsOnApi: boolean;
}

const EDGE_ROLES = ["processor", "poster", "udpServer"] as const;

export function planDeployment(input: PlanInput): DeploymentPlan {
  const images: ImagePlan[] = [{ key: "app", repository: input.images.app, tag: input.version }];
  for (const role of EDGE_ROLES) {
    const edge = input[role];
    if (!edge.enabled) continue;
    if (!edge.version) throw new Error(`${role} is enabled but has no version: edge services have their own releases`);
    images.push({ key: role, repository: input.images[role], tag: edge.version });
  }

  const grace = input.stopGraceSeconds;
  const services: ServicePlan[] = [{ key: "api", role: "api", image: "app", version: input.version, phase: "withApi", graceSeconds: grace.api }];
  if (input.beat.enabled) {
    services.push({
      key: "beat", role: "beat", image: "app", version: input.version, phase: "afterMigrations", graceSeconds: grace.beat,
      command: ["celery", "-A", "utilitarian", "beat", "--loglevel=INFO"],
    });
  }
  for (const group of input.workers) {
    for (let i = 1; i <= group.count; i++) {
      services.push({
        key: `worker-${group.name}-${i}`, role: "worker", image: "app", version: input.version, phase: "afterMigrations", graceSeconds: grace.worker,
        command: workerCommand(group, i),
      });
    }
  }
  for (const role of EDGE_ROLES) {
    const edge = input[role];
    if (!edge.enabled) continue;
    services.push({
      key: kebab(role), role, image: role, version: edge.version!, phase: edge.dependsOnApi ? "afterMigrations" : "independent", graceSeconds: grace.edge,
    });
  }

  const steps: StepPlan[] = [{ key: "backup", script: "backup.sh", runsOnceFor: "version" }];
  if (input.restoreFrom !== undefined) steps.push({ key: "restore", script: "restore.sh", runsOnceFor: "version+restore" });
  steps.push(
    { key: "migrate", script: "migrate.sh", runsOnceFor: "version" },
    { key: "static", script: "static.sh", runsOnceFor: "apiContainer" },
    { key: "verify", script: "verify.sh", runsOnceFor: "services" },
  );
  return { images, services, steps };
}

function workerCommand(group: PlanInput["workers"][number], index: number): string[] {
  const command = ["celery", "-A", "utilitarian", "worker", "--loglevel=INFO", `--concurrency=${group.concurrency}`, `--hostname=${group.name}-${index}@%h`];
  if (group.queues.length > 0) command.push("-Q", group.queues.join(","));
  return command;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * Where the operator reaches the API. A wildcard publish address is not an address to call:
 * use the Docker host's name for an `ssh://` or `tcp://` engine, and loopback for the local one.
 */
export function apiUrlFor(publishAddress: string, port: number, dockerHost?: string): string {
  const remoteHost = dockerHost && /^(ssh|tcp):\/\//.test(dockerHost) ? new URL(dockerHost).hostname : undefined;
  const wildcard = ["0.0.0.0", "::", "[::]"].includes(publishAddress);
  const host = wildcard ? (remoteHost ?? "127.0.0.1") : publishAddress;
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `http://${bracketed}:${port}`;
}
