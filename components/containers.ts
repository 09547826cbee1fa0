import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type { KindSettings, ServiceKind } from "./kinds";

export interface ContainerSpec {
  /** Container name on the Docker host (fixed names: the provider replaces delete-before-create). */
  name: string;
  /** Image ID from a RemoteImage, so a new pull replaces the container. */
  image: pulumi.Input<string>;
  /** Private network and the aliases other services reach this one by; `host`: the Docker host's own network. */
  network: { name: pulumi.Input<string>; aliases?: string[] } | "host";
  /** "NAME=value" entries; the list is secret as soon as one entry is. */
  envs: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * The entries of `envs` whose values are secret, by name (their environment builder says which).
   * A container gets them in `envs` like the rest; a swarm service only as swarm secrets.
   */
  secretEnv?: Record<string, pulumi.Input<string>>;
  labels: Record<string, pulumi.Input<string>>;
  command?: string[];
  ports?: docker.types.input.ContainerPort[];
  volumes?: docker.types.input.ContainerVolume[];
  hostname?: string;
  healthcheck?: docker.types.input.ContainerHealthcheck;
  /** Wait for the health check to pass before the step counts as done. */
  waitHealthy?: { timeoutSeconds: number };
  /** Seconds between SIGTERM and SIGKILL when the container is stopped for a replacement. */
  graceSeconds: number;
}

/**
 * A long-running service container: restarted by Docker unless an operator stopped it, stopped
 * gracefully (Gunicorn and Celery finish their current work) when Pulumi replaces it.
 */
export function serviceContainer(
  resourceName: string,
  spec: ContainerSpec,
  opts: pulumi.CustomResourceOptions,
): docker.Container {
  return new docker.Container(
    resourceName,
    {
      name: spec.name,
      image: spec.image,
      envs: spec.envs,
      labels: Object.entries(spec.labels).map(([label, value]) => ({ label, value })),
      command: spec.command,
      hostname: spec.hostname,
      // In the host's network a container has no private network, aliases or published ports (the
      // provider would read the ports back empty and replace it on every run).
      ...(spec.network === "host"
        ? { networkMode: "host" }
        : { networksAdvanced: [{ name: spec.network.name, aliases: spec.network.aliases }], ports: spec.ports }),
      volumes: spec.volumes,
      healthcheck: spec.healthcheck,
      restart: "unless-stopped",
      mustRun: true,
      wait: spec.waitHealthy !== undefined,
      waitTimeout: spec.waitHealthy?.timeoutSeconds,
      destroyGraceSeconds: spec.graceSeconds,
      stopTimeout: spec.graceSeconds,
      logDriver: "json-file",
      logOpts: { "max-size": "50m", "max-file": "5" },
    },
    {
      ...opts,
      // The provider records a changed health check without applying it; replace instead.
      replaceOnChanges: spec.healthcheck ? ["healthcheck"] : undefined,
      // A fixed name cannot exist twice. The bridged provider asks for delete-before-replace only
      // when it reports a ForceNew change itself; a replacement that only `replaceOnChanges` asks
      // for would otherwise be create-before-delete, and `docker create` would hit the old name.
      deleteBeforeReplace: true,
    },
  );
}

/**
 * `NAME=value` entries from a map, in a stable order so that an unchanged map never diffs. One
 * Output for the whole list (secret as soon as one value is), not one per entry: each Output costs
 * the SDK several promises, which is most of the program's time with many containers.
 */
export function envEntries(env: Record<string, pulumi.Input<string>>): pulumi.Output<string[]> {
  return pulumi.output(env).apply((values) =>
    Object.keys(values)
      .sort()
      .map((k) => `${k}=${values[k]}`),
  );
}

/** The port a kind publishes on the Docker host, as the provider takes it; TCP, Docker's default, is left unsaid. */
export function publishedPorts(
  kind: ServiceKind,
  settings: KindSettings,
): docker.types.input.ContainerPort[] | undefined {
  const published = kind.port && kind.publish?.(settings);
  if (!kind.port || !published) return undefined;
  const { external, ip } = published;
  const { number: internal, protocol } = kind.port;
  return [{ internal, external, ip, ...(protocol === "tcp" ? {} : { protocol }) }];
}

/** A kind's health check as the provider takes it: the command run without a shell (`CMD`). */
export function healthcheckOf(
  kind: ServiceKind,
  settings: KindSettings,
): docker.types.input.ContainerHealthcheck | undefined {
  const health = kind.health?.(settings);
  if (!health) return undefined;
  const { command, ...timing } = health;
  return { tests: ["CMD", ...command], ...timing };
}
