import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { serviceContainer } from "./containers";

export interface ManagedRabbitMqArgs {
  prefix: string;
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  user: string;
  password: pulumi.Input<string>;
  graceSeconds: number;
  /**
   * Publish AMQP on the Docker host's 127.0.0.1 at this port, for a service in the host's network
   * (the UDP server with `udpServer.network: host`), which cannot reach the private network's names.
   */
  loopbackPort?: number;
}

/**
 * The managed RabbitMQ container with a protected data volume. It stays on the private network
 * (no published port, unless `loopbackPort` asks for one on 127.0.0.1) and is never touched by an
 * application upgrade: while consumers are stopped, meter data queues up here.
 */
export function managedRabbitMq(
  name: string,
  args: ManagedRabbitMqArgs,
  opts: pulumi.CustomResourceOptions,
): {
  container: docker.Container;
  volume: docker.Volume;
  url: pulumi.Output<string>;
  loopbackUrl?: pulumi.Output<string>;
} {
  const volume = new docker.Volume(
    `${name}-rabbitmq-data`,
    { name: `${args.prefix}-rabbitmq-data` },
    { ...opts, protect: true, retainOnDelete: true },
  );
  const container = serviceContainer(
    `${name}-rabbitmq`,
    {
      name: `${args.prefix}-rabbitmq`,
      image: args.image,
      network: { name: args.network, aliases: ["rabbitmq"] },
      // RabbitMQ keeps its data per node name, which derives from the host name: keep it fixed.
      hostname: "rabbitmq",
      envs: [
        pulumi.interpolate`RABBITMQ_DEFAULT_USER=${args.user}`,
        pulumi.interpolate`RABBITMQ_DEFAULT_PASS=${args.password}`,
      ],
      labels: { "io.utilitarian.role": "rabbitmq", "io.utilitarian.stack": args.prefix },
      volumes: [{ volumeName: volume.name, containerPath: "/var/lib/rabbitmq" }],
      ports:
        args.loopbackPort !== undefined
          ? [{ internal: 5672, external: args.loopbackPort, ip: "127.0.0.1" }]
          : undefined,
      healthcheck: {
        tests: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"],
        interval: "5s",
        timeout: "10s",
        retries: 24,
        startPeriod: "10s",
      },
      waitHealthy: { timeoutSeconds: 180 },
      graceSeconds: Math.max(args.graceSeconds, 30),
    },
    opts,
  );
  const urlAt = (hostPort: string) =>
    pulumi.secret(
      pulumi
        .output(args.password)
        .apply((pw) => `amqp://${encodeURIComponent(args.user)}:${encodeURIComponent(pw)}@${hostPort}//`),
    );
  const loopbackUrl = args.loopbackPort !== undefined ? urlAt(`127.0.0.1:${args.loopbackPort}`) : undefined;
  return { container, volume, url: urlAt("rabbitmq:5672"), loopbackUrl };
}
