import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type { SwarmSettings } from "../config/swarm";
import type { ContainerSpec } from "./containers";
import type { KindKey } from "./kinds";
import type { ImageKey, ServiceNode } from "./plan";
import { loaderCommand, type ImageCommand, type SwarmSecrets } from "./swarmSecrets";

/**
 * The swarm target: the same plan's services as `docker.Service`s on a Docker Swarm instead of
 * containers on one engine. What stays the same is the order: each service is replaced (deleted
 * first, its fixed name freed) exactly when its container would be, so the engine stops the
 * followers before the API and starts them after static files as on one host. Swarm's own rolling
 * update is not used for a version bump: the runbook wants the old version fully stopped before
 * migrate.
 */

/** Which node label places a role's tasks (`swarm.labels`). */
export function placementLabel(role: KindKey, labels: SwarmSettings["labels"]): string {
  switch (role) {
    case "worker":
      return labels.workers;
    case "udpServer":
      return labels.edge;
    case "postgres":
    case "rabbitmq":
      return labels.data;
    default:
      return labels.app;
  }
}

export interface SwarmServiceSpec extends ContainerSpec {
  /** Node label (`node.labels.<key> == true`) of the nodes its tasks may run on. */
  placement: string;
  /** Tasks to run, or one on every node of its label. */
  replicas: number | "global";
  /** How long creating it waits for all its tasks to run, for a service without a health wait of its own. */
  startTimeoutSeconds?: number;
  /** Where its `secretEnv` goes: required when it has any (components/swarmSecrets.ts). */
  secrets?: SwarmTaskSecrets;
}

/** How a service's secret variables reach its tasks. */
export interface SwarmTaskSecrets {
  /** The stack's swarm secrets. */
  store: SwarmSecrets;
  /** Its image's own entrypoint and command, which the loader runs after it. */
  image: pulumi.Input<ImageCommand>;
  /** Its service key, named in a secret's resource name should its value differ from another's. */
  owner: string;
}

/** `NAME=value` entries as the map a service's container spec takes, without the `secret` names. */
const envMap = (envs: pulumi.Input<pulumi.Input<string>[]>, secret: string[]) =>
  pulumi.output(envs).apply((entries) =>
    Object.fromEntries(
      entries
        .map((entry) => {
          const at = entry.indexOf("=");
          return [entry.slice(0, at), entry.slice(at + 1)];
        })
        .filter(([name]) => !secret.includes(name)),
    ),
  );

function startTimeout(spec: SwarmServiceSpec): number {
  const seconds = spec.waitHealthy?.timeoutSeconds ?? spec.startTimeoutSeconds;
  if (seconds === undefined) throw new Error(`swarm service ${spec.name}: no health wait and no startTimeoutSeconds`);
  return seconds;
}

/**
 * What a service's container spec says of its command, environment and secrets: with secret
 * variables, the loader in front of its command and one mounted secret per variable, the
 * variables left out of `env`; without, its command and environment as they are.
 */
export function swarmTask(
  spec: Pick<SwarmServiceSpec, "envs" | "secretEnv" | "command" | "secrets" | "name">,
): Pick<docker.types.input.ServiceTaskSpecContainerSpec, "commands" | "args" | "env" | "secrets"> {
  const secretNames = Object.keys(spec.secretEnv ?? {});
  if (secretNames.length === 0) return { args: spec.command, env: envMap(spec.envs, []) };
  if (!spec.secrets)
    throw new Error(`${spec.name}: secret variables (${secretNames.join(", ")}) but no swarm secrets to put them in`);
  const command = pulumi.output(spec.secrets.image).apply((image) => loaderCommand(image, spec.command));
  return {
    commands: command.commands,
    args: command.args,
    env: envMap(spec.envs, secretNames),
    secrets: spec.secrets.store.mounts(spec.secretEnv!, spec.secrets.owner),
  };
}

/**
 * A long-running service on the swarm. Its tasks are restarted by the swarm whatever stopped them
 * (as `unless-stopped` containers are by Docker); a new image or setting replaces the whole service,
 * deleted first (its tasks stopped with the grace period), like a container.
 */
export function swarmService(
  resourceName: string,
  spec: SwarmServiceSpec,
  opts: pulumi.CustomResourceOptions,
): docker.Service {
  const published = spec.network === "host" ? undefined : spec.ports;
  return new docker.Service(
    resourceName,
    {
      name: spec.name,
      labels: Object.entries(spec.labels).map(([label, value]) => ({ label, value })),
      mode: spec.replicas === "global" ? { global: true } : { replicated: { replicas: spec.replicas } },
      taskSpec: {
        containerSpec: {
          image: spec.image,
          ...swarmTask(spec),
          hostname: spec.hostname,
          healthcheck: spec.healthcheck,
          mounts: spec.volumes?.map((v) => ({
            type: "volume",
            source: v.volumeName,
            target: v.containerPath as pulumi.Input<string>,
          })),
          stopGracePeriod: `${spec.graceSeconds}s`,
        },
        placement: { constraints: [`node.labels.${spec.placement} == true`] },
        restartPolicy: { condition: "any", delay: "5s" },
        networksAdvanceds:
          spec.network === "host" ? undefined : [{ name: spec.network.name, aliases: spec.network.aliases }],
      },
      // No virtual IP (this kernel has no IPVS, and clients need none): the name resolves to the
      // tasks. Ports are published on the nodes that run a task, never through the routing mesh:
      // meters send to their edge node's own address.
      endpointSpec: {
        mode: "dnsrr",
        ports: published?.map((p) => ({
          targetPort: p.internal,
          publishedPort: p.external,
          protocol: p.protocol ?? "tcp",
          publishMode: "host",
        })),
      },
      // Beat must never run twice: an update stops the old task before it starts the new one.
      updateConfig: { order: "stop-first", parallelism: 1 },
      // The provider waits until every task runs (a task with a health check runs once healthy)
      // before the step counts as done, and past the timeout removes the service and fails the
      // step (a lost node: the run stops there, a re-run resumes); no converge wait for a global service.
      convergeConfig: spec.replicas === "global" ? undefined : { delay: "2s", timeout: `${startTimeout(spec)}s` },
    },
    {
      ...opts,
      // A version bump replaces the service, as it replaces a container: the runbook's order
      // comes from the engine's delete-before-replace of the API and its followers.
      replaceOnChanges: ["taskSpec", "labels"],
      deleteBeforeReplace: true,
    },
  );
}

/** One image on the nodes of one label, and the services whose tasks run it there. */
export interface PullTarget {
  image: ImageKey;
  label: string;
  /** Service keys. */
  services: string[];
}

/**
 * Which nodes must hold which application image before anything stops: for each image and each
 * label that places a task of it, the services concerned (the pull step's `PULL_IMAGES`).
 */
export function pullTargets(services: ServiceNode[], labels: SwarmSettings["labels"]): PullTarget[] {
  const targets: PullTarget[] = [];
  for (const s of services) {
    if (s.image === "proxy") continue;
    const label = placementLabel(s.role, labels);
    const target = targets.find((t) => t.image === s.image && t.label === label);
    if (target) target.services.push(s.key);
    else targets.push({ image: s.image, label, services: [s.key] });
  }
  return targets;
}

/** `PULL_IMAGES`: one line per target, `LABEL IMAGE@DIGEST SERVICE,SERVICE`. */
export function pullImagesVariable(
  targets: PullTarget[],
  reference: (image: ImageKey) => pulumi.Input<string>,
  serviceName: (key: string) => string,
): pulumi.Output<string> {
  return pulumi
    .all(targets.map((t) => reference(t.image)))
    .apply((refs) =>
      targets.map((t, i) => `${t.label} ${refs[i]} ${t.services.map(serviceName).join(",")}`).join("\n"),
    );
}

/** The swarm's placement of the plan's services, as `npm run plan` prints it: service, tasks, where. */
export function renderPlacement(
  services: { key: string; role: KindKey; replicas?: number | "global" }[],
  labels: SwarmSettings["labels"],
  serviceName: (key: string) => string,
  managed: { postgres: boolean; rabbitmq: boolean },
): string {
  const rows = [
    ...(managed.postgres ? [{ key: "postgres", role: "postgres" as const, replicas: 1 }] : []),
    ...(managed.rabbitmq ? [{ key: "rabbitmq", role: "rabbitmq" as const, replicas: 1 }] : []),
    ...services,
  ].map((s) => {
    const tasks = s.replicas === "global" ? "one per node" : `${s.replicas ?? 1} task${s.replicas === 1 ? "" : "s"}`;
    return `  ${serviceName(s.key).padEnd(32)} ${tasks.padEnd(14)} on nodes with ${placementLabel(s.role, labels)}=true`;
  });
  return `On the swarm (target: swarm), each service and where its tasks run:\n${rows.join("\n")}\n`;
}
