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
}

/**
 * The managed RabbitMQ container with a protected data volume. It stays on the private network
 * (no published port) and is never touched by an application upgrade: while consumers are
 * stopped, meter data queues up here.
 */
export function managedRabbitMq(name: string, args: ManagedRabbitMqArgs, opts: pulumi.CustomResourceOptions): { container: docker.Container; volume: docker.Volume; url: pulumi.Output<string> } {
  const volume = new docker.Volume(`${name}-rabbitmq-data`, { name: `${args.prefix}-rabbitmq-data` }, { ...opts, protect: true, retainOnDelete: true });
  const container = serviceContainer(`${name}-rabbitmq`, {
    name: `${args.prefix}-rabbitmq`,
    image: args.image,
    network: args.network,
    aliases: ["rabbitmq"],
    // RabbitMQ keeps its data per node name, which derives from the host name: keep it fixed.
    hostname: "rabbitmq",
    envs: [pulumi.interpolate`RABBITMQ_DEFAULT_USER=${args.user}`, pulumi.interpolate`RABBITMQ_DEFAULT_PASS=${args.password}`],
    labels: { "io.utilitarian.role": "rabbitmq", "io.utilitarian.stack": args.prefix },
    volumes: [{ volumeName: volume.name, containerPath: "/var/lib/rabbitmq" }],
    healthcheck: { tests: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"], interval: "5s", timeout: "10s", retries: 24, startPeriod: "10s" },
    waitHealthy: { timeoutSeconds: 180 },
    graceSeconds: Math.max(args.graceSeconds, 30),
  }, opts);
  const url = pulumi.secret(pulumi.output(args.password).apply((pw) =>
    `amqp://${encodeURIComponent(args.user)}:${encodeURIComponent(pw)}@rabbitmq:5672//`));
  return { container, volume, url };
}
