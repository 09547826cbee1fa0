import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { serviceContainer, type ContainerSpec } from "./containers";
import { swarmService, type SwarmTaskSecrets } from "./swarm";
import { KINDS } from "./kinds";

export interface ManagedRabbitMqArgs {
  prefix: string;
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  user: string;
  password: pulumi.Input<string>;
  graceSeconds: number;
  /** On a swarm: the node label of the one node it runs on, where the swarm keeps its volume. */
  swarmPlacement?: string;
  /** On a swarm: where its password goes (a swarm secret, not the service's env). */
  swarmSecrets?: SwarmTaskSecrets;
  /** Its kind's health check (`KINDS.rabbitmq`), as the provider takes it. */
  healthcheck: docker.types.input.ContainerHealthcheck;
  /**
   * Publish AMQP on the Docker host's 127.0.0.1 at this port, for a service in the host's network
   * (the UDP server with `udpServer.network: host`), which cannot reach the private network's names.
   */
  loopbackPort?: number;
}

/**
 * The managed RabbitMQ container with a protected data volume, as a component of their own
 * (`utilitarian:index:ManagedRabbitMq`) under the deployment. It stays on the private network
 * (no published port, unless `loopbackPort` asks for one on 127.0.0.1) and is never touched by an
 * application upgrade: while consumers are stopped, meter data queues up here.
 */
export class ManagedRabbitMq extends pulumi.ComponentResource {
  /** Its container, or its service on a swarm. */
  readonly container: docker.Container | docker.Service;
  /** Its data volume on one Docker host; on a swarm the node that runs it creates the volume. */
  readonly volume?: docker.Volume;
  /** The AMQP URL on the private network (secret: it holds the password). */
  readonly url: pulumi.Output<string>;
  /** The AMQP URL on the Docker host's loopback, when `loopbackPort` is set. */
  readonly loopbackUrl?: pulumi.Output<string>;

  constructor(name: string, args: ManagedRabbitMqArgs, opts: pulumi.CustomResourceOptions) {
    // `<name>-managed`, so that the container keeps the name `<name>` it had before this component
    // existed and no two resources of the stack share a name (`pulumi stack` lists them by name).
    super("utilitarian:index:ManagedRabbitMq", `${name}-managed`, {}, { parent: opts.parent });
    // Stacks created before this component existed hold the two directly under the deployment:
    // the alias to that parent keeps their URNs, so nothing is replaced (test/engine/compat).
    const childOpts = { ...opts, parent: this, aliases: [{ parent: opts.parent }] };
    const volumeName = `${args.prefix}-rabbitmq-data`;
    if (!args.swarmPlacement)
      this.volume = new docker.Volume(
        `${name}-data`,
        { name: volumeName },
        { ...childOpts, protect: true, retainOnDelete: true },
      );
    const spec: ContainerSpec = {
      name: `${args.prefix}-rabbitmq`,
      image: args.image,
      network: { name: args.network, aliases: [KINDS.rabbitmq.alias] },
      // RabbitMQ keeps its data per node name, which derives from the host name: keep it fixed.
      hostname: "rabbitmq",
      envs: [
        pulumi.interpolate`RABBITMQ_DEFAULT_USER=${args.user}`,
        pulumi.interpolate`RABBITMQ_DEFAULT_PASS=${args.password}`,
      ],
      // The secret among them (config/schema.ts's SECRET_KEYS: rabbitmqPassword).
      secretEnv: { RABBITMQ_DEFAULT_PASS: args.password },
      labels: { "io.utilitarian.role": "rabbitmq", "io.utilitarian.stack": args.prefix },
      volumes: [{ volumeName: this.volume?.name ?? volumeName, containerPath: "/var/lib/rabbitmq" }],
      ports:
        args.loopbackPort !== undefined
          ? [{ internal: KINDS.rabbitmq.port.number, external: args.loopbackPort, ip: "127.0.0.1" }]
          : undefined,
      healthcheck: args.healthcheck,
      waitHealthy: { timeoutSeconds: 180 },
      graceSeconds: Math.max(args.graceSeconds, 30),
    };
    // On a swarm a port is published on the node that runs the task (host mode): the data node's address.
    this.container = args.swarmPlacement
      ? swarmService(
          name,
          { ...spec, placement: args.swarmPlacement, replicas: 1, secrets: args.swarmSecrets },
          childOpts,
        )
      : serviceContainer(name, spec, childOpts);
    const urlAt = (hostPort: string) =>
      pulumi.secret(
        pulumi
          .output(args.password)
          .apply((pw) => `amqp://${encodeURIComponent(args.user)}:${encodeURIComponent(pw)}@${hostPort}//`),
      );
    this.url = urlAt(`${KINDS.rabbitmq.alias}:${KINDS.rabbitmq.port.number}`);
    if (args.loopbackPort !== undefined) this.loopbackUrl = urlAt(`127.0.0.1:${args.loopbackPort}`);
    this.registerOutputs({});
  }
}
