import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as command from "@pulumi/command";
import type { DeploymentSettings } from "./args";
import { ManagedRabbitMq } from "./broker";
import { envEntries, healthcheckOf, publishedPorts, serviceContainer, type ContainerSpec } from "./containers";
import { engineSupportsReplaceWith } from "./engine";
import { applicationDatabase, databaseUrl, ManagedPostgres, type DatabaseEndpoints } from "./database";
import { databaseEndpoints } from "./endpoints";
import { appEnvironment, edgeEnvironment, wholeEnvironment, type ServiceEnvironment } from "./environment";
import { KINDS, kindOf } from "./kinds";
import type { Maintenance } from "./maintenance";
import {
  appImagesOf,
  servicesOf,
  type DeploymentPlan,
  type FoundationNode,
  type ImageNode,
  type PlanNode,
  type ServiceNode,
  type StepNode,
  type Via,
} from "./plan";
import { SchemaGuard } from "./schemaGuard";
import { placementLabel, pullImagesVariable, pullTargets, swarmService, type SwarmTaskSecrets } from "./swarm";
import { IMAGE_COMMAND_FORMAT, parseImageCommand, SwarmSecrets, type ImageCommand } from "./swarmSecrets";
import type { DeploymentSecrets } from "./secrets";
import { stepEnvironment } from "./stepEnvironment";
import { maintenanceStep } from "./steps";

/** What runs a service: a container on one Docker host, a service on a swarm. */
type Runner = docker.Container | docker.Service;

/** Labels that carry an edge: a ForceNew input whose value comes from another resource. */
export const LABEL_FOLLOWS_API = "io.utilitarian.follows-api";
export const LABEL_BACKUP = "io.utilitarian.backup";

export interface BuildContext {
  /** The component: parent of everything. */
  parent: pulumi.ComponentResource;
  /** Logical name of the component; resources are named `<name>-<node key>`. */
  name: string;
  /** Prefix of every physical name (containers, network, volumes). */
  prefix: string;
  settings: DeploymentSettings;
  secrets: DeploymentSecrets;
  plan: DeploymentPlan;
  /** The stages of an upgrade to this plan: the window's record labels its report with them. */
  maintenance: Maintenance;
}

/** The physical container name of a service key. */
export function containerNameOf(prefix: string, key: string): string {
  return `${prefix}-${key}`;
}

/** A pulled image by digest (`repo@sha256:…`), the same bytes on every node; its name when the registry gave none. */
const byDigest = (image: docker.RemoteImage) =>
  pulumi.all([image.repoDigest, image.name]).apply(([digest, name]) => digest || name);

/** A docker provider the caller gave the component (opts.providers) is used as it is; else one for the settings' host and registry. */
function dockerProvider({ settings, secrets, parent, name }: BuildContext): pulumi.ProviderResource {
  return (
    parent.getProvider("docker:index/container:Container") ??
    new docker.Provider(
      `${name}-docker`,
      {
        host: settings.dockerHost,
        registryAuth: settings.registry
          ? [
              {
                address: settings.registry.server,
                username: settings.registry.username,
                password: secrets.registryPassword,
              },
            ]
          : undefined,
      },
      { parent },
    )
  );
}

/**
 * Builds the plan's nodes in plan order. Every `dependsOn` comes from a node's `dependsOn`
 * waits, and every input that takes a value from another resource goes through `input()`,
 * which refuses an edge the plan does not declare: the order lives in the plan alone.
 */
export class PlanBuilder {
  private readonly built = new Map<string, pulumi.Resource>();
  private readonly onDocker: pulumi.CustomResourceOptions;
  private readonly endpoints: DatabaseEndpoints;
  /** On a swarm: the stack's swarm secrets, and each image's own command by image node key. */
  private readonly swarmSecrets?: SwarmSecrets;
  private readonly imageCommands = new Map<string, pulumi.Output<ImageCommand>>();
  private amqpUrl?: pulumi.Input<string>;
  /** The broker as a container in the host's network reaches it (managed: published on 127.0.0.1). */
  private hostAmqpUrl?: pulumi.Input<string>;

  constructor(private readonly ctx: BuildContext) {
    const { settings, secrets, parent } = ctx;
    this.onDocker = { parent, provider: dockerProvider(ctx) };
    this.endpoints = databaseEndpoints(settings.database);
    if (settings.target === "swarm")
      this.swarmSecrets = new SwarmSecrets({ prefix: ctx.prefix, name: ctx.name }, this.onDocker);
    if (settings.rabbitmq.mode === "external") this.amqpUrl = this.hostAmqpUrl = secrets.rabbitmqUrl!;
  }

  /** Builds every node of the plan; returns the resources by node key. */
  buildAll(): ReadonlyMap<string, pulumi.Resource> {
    for (const node of this.ctx.plan.nodes) this.built.set(node.key, this.build(node));
    return this.built;
  }

  /** The physical container name of a service key. */
  containerName(key: string): string {
    return containerNameOf(this.ctx.prefix, key);
  }

  private build(node: PlanNode): pulumi.Resource {
    switch (node.kind) {
      case "network":
        // On a swarm the private network spans the nodes (VXLAN), attachable for one-off containers.
        return new docker.Network(
          this.resourceName(node),
          this.onSwarm
            ? { name: `${this.ctx.prefix}-net`, driver: "overlay", attachable: true }
            : { name: `${this.ctx.prefix}-net`, driver: "bridge" },
          this.dockerOpts(node),
        );
      case "image":
        return this.image(node);
      case "postgres":
        return this.postgres(node);
      case "database":
        return this.database(node);
      case "rabbitmq":
        return this.rabbitmq(node);
      case "step":
        return this.step(node);
      case "guard":
        return this.guard(node);
      case "service":
        return this.service(node);
    }
  }

  private resourceName(node: PlanNode): string {
    return `${this.ctx.name}-${node.key}`;
  }

  /** `dependsOn` from the node's waits, and nothing else. */
  private dependsOn(node: PlanNode): pulumi.Resource[] {
    return node.waits.filter((w) => w.via === "dependsOn").map((w) => this.resource(w.on));
  }

  private dockerOpts(node: PlanNode): pulumi.CustomResourceOptions {
    return { ...this.onDocker, dependsOn: this.dependsOn(node) };
  }

  /** The awaited resource of a property edge the plan declares for `node`. */
  private input<T extends pulumi.Resource>(node: PlanNode, via: Via): T {
    const wait = node.waits.find((w) => w.via === via);
    if (!wait) throw new Error(`plan: ${node.key} takes no input by ${via}; declare the wait in components/plan.ts`);
    return this.resource(wait.on) as T;
  }

  /** Every awaited resource of a property edge (several services feed verify's triggers). */
  private inputs<T extends pulumi.Resource>(node: PlanNode, via: Via): T[] {
    return node.waits.filter((w) => w.via === via).map((w) => this.resource(w.on) as T);
  }

  private resource(key: string): pulumi.Resource {
    const r = this.built.get(key);
    if (!r) throw new Error(`plan: ${key} is awaited before it is built; the plan's node order is wrong`);
    return r;
  }

  private image(node: ImageNode): docker.RemoteImage {
    // Old images stay on the host: going back does not depend on the registry.
    const image = new docker.RemoteImage(
      this.resourceName(node),
      { name: node.ref, keepLocally: true },
      this.dockerOpts(node),
    );
    if (this.onSwarm) this.imageCommands.set(node.key, this.imageCommand(node, image));
    return image;
  }

  /**
   * On a swarm, the image's own entrypoint and command as the manager's engine, which pulled it,
   * shows them: the secrets' loader runs them after it (components/swarmSecrets.ts). Read once
   * per pulled image (its ID is the trigger).
   */
  private imageCommand(node: ImageNode, image: docker.RemoteImage): pulumi.Output<ImageCommand> {
    const { settings, parent } = this.ctx;
    const inspect = new command.local.Command(
      `${this.resourceName(node)}-command`,
      {
        create: `docker image inspect --format '${IMAGE_COMMAND_FORMAT}' "$IMAGE"`,
        interpreter: ["/bin/sh", "-c"],
        environment: { ...(settings.dockerHost ? { DOCKER_HOST: settings.dockerHost } : {}), IMAGE: image.imageId },
        triggers: [image.imageId],
      },
      { parent, dependsOn: [image] },
    );
    return inspect.stdout.apply(parseImageCommand);
  }

  /** On a swarm, where a service's secret variables go: the stack's secrets, after its image's command. */
  private taskSecrets(node: PlanNode, owner: string): SwarmTaskSecrets | undefined {
    if (!this.swarmSecrets) return undefined;
    const wait = node.waits.find((w) => w.via === "image");
    const image = wait && this.imageCommands.get(wait.on);
    if (!image) throw new Error(`plan: ${node.key} runs no image node's image; declare the wait in components/plan.ts`);
    return { store: this.swarmSecrets, image, owner };
  }

  private get onSwarm(): boolean {
    return this.ctx.settings.target === "swarm";
  }

  /**
   * The image a service runs: on one host the pulled image's ID; on a swarm its reference by digest,
   * which every node pulls from the registry (the same bytes the manager pulled).
   */
  private imageOf(node: PlanNode): pulumi.Output<string> {
    const image = this.input<docker.RemoteImage>(node, "image");
    return this.onSwarm ? byDigest(image) : image.imageId;
  }

  /** On a swarm, the node label its role's tasks run on. */
  private swarmPlacement(role: Parameters<typeof placementLabel>[0]): string | undefined {
    return this.onSwarm ? placementLabel(role, this.ctx.settings.swarm.labels) : undefined;
  }

  private postgres(node: FoundationNode): Runner {
    const { settings, secrets, prefix, name } = this.ctx;
    return new ManagedPostgres(
      `${name}-postgres`,
      {
        prefix,
        image: this.imageOf(node),
        network: this.input<docker.Network>(node, "network").name,
        swarmPlacement: this.swarmPlacement("postgres"),
        swarmSecrets: this.taskSecrets(node, "postgres"),
        adminUser: settings.database.adminUser,
        adminPassword: secrets.databaseAdminPassword,
        operatorPort: this.endpoints.operatorPort,
        graceSeconds: settings.stopGraceSeconds[KINDS.postgres.grace],
        healthcheck: healthcheckOf(KINDS.postgres, settings)!,
      },
      this.dockerOpts(node),
    ).container;
  }

  private database(node: FoundationNode): pulumi.Resource {
    const { settings, secrets, name, parent } = this.ctx;
    const db = settings.database;
    return applicationDatabase(
      name,
      {
        endpoints: this.endpoints,
        name: db.name,
        user: db.user,
        password: secrets.databasePassword,
        adminUser: db.adminUser,
        adminPassword: secrets.databaseAdminPassword,
        sslmode: db.sslmode,
        superuser: db.superuser,
        provider: parent.getProvider("postgresql:index/role:Role"),
      },
      { parent, dependsOn: this.dependsOn(node) },
    ).database;
  }

  private rabbitmq(node: FoundationNode): Runner {
    const { settings, secrets, prefix, name } = this.ctx;
    const broker = new ManagedRabbitMq(
      `${name}-rabbitmq`,
      {
        prefix,
        image: this.imageOf(node),
        network: this.input<docker.Network>(node, "network").name,
        swarmPlacement: this.swarmPlacement("rabbitmq"),
        swarmSecrets: this.taskSecrets(node, "rabbitmq"),
        user: settings.rabbitmq.user,
        password: secrets.rabbitmqPassword!,
        graceSeconds: settings.stopGraceSeconds[KINDS.rabbitmq.grace],
        healthcheck: healthcheckOf(KINDS.rabbitmq, settings)!,
        loopbackPort: this.ctx.plan.nodes.some((n) => n.kind === "service" && n.hostNetwork)
          ? settings.rabbitmq.loopbackPort
          : undefined,
      },
      this.dockerOpts(node),
    );
    this.amqpUrl = broker.url;
    this.hostAmqpUrl = broker.loopbackUrl;
    return broker.container;
  }

  private guard(node: FoundationNode): SchemaGuard {
    const { settings, parent } = this.ctx;
    return new SchemaGuard(
      this.resourceName(node),
      { version: settings.version, restoreFrom: settings.restoreFrom },
      { parent, dependsOn: this.dependsOn(node) },
    );
  }

  private service(node: ServiceNode): Runner {
    const { settings, secrets } = this.ctx;
    // The image, ports, health check and alias are the kind's (kinds.ts); labels and the network are Docker's.
    const kind = kindOf(node.role);
    const labels: Record<string, pulumi.Input<string>> = {
      "io.utilitarian.stack": this.ctx.prefix,
      "io.utilitarian.role": node.role,
      "io.utilitarian.service": node.key,
      "io.utilitarian.version": node.version,
    };
    if (node.waits.some((w) => w.via === "followsApi"))
      labels[LABEL_FOLLOWS_API] = this.input<Runner>(node, "followsApi").name;
    if (node.waits.some((w) => w.via === "stoppedForBackup"))
      labels[LABEL_BACKUP] = this.input<command.local.Command>(node, "stoppedForBackup").id;
    const apiHost = node.waits.some((w) => w.via === "apiBaseUrl")
      ? this.input<Runner>(node, "apiBaseUrl").name
      : KINDS.api.alias;
    const env: ServiceEnvironment =
      node.image === "app"
        ? this.appEnvironment().env
        : node.image === "proxy"
          ? { plain: kind.environment!(settings), secret: {} }
          : edgeEnvironment(node.image, {
              settings,
              amqpUrl: (node.hostNetwork ? this.hostAmqpUrl : this.amqpUrl)!,
              apiHost,
              edgeAuthToken: secrets.edgeAuthToken,
            });
    const envs = node.image === "app" ? this.appEnvironment().entries : envEntries(wholeEnvironment(env));
    const spec: ContainerSpec = {
      name: this.containerName(node.key),
      image: this.imageOf(node),
      network: node.hostNetwork
        ? "host"
        : { name: this.input<docker.Network>(node, "network").name, aliases: kind.alias ? [kind.alias] : undefined },
      envs,
      secretEnv: env.secret,
      labels,
      command: node.command,
      ports: publishedPorts(kind, settings),
      healthcheck: healthcheckOf(kind, settings),
      // Not waiting for health: the runbook migrates right after the start; verify checks health.
      graceSeconds: node.graceSeconds,
    };
    const opts = {
      ...this.dockerOpts(node),
      replaceWith: engineSupportsReplaceWith() ? node.replacedWith.map((key) => this.resource(key)) : undefined,
    };
    const placement = this.swarmPlacement(node.role);
    return placement
      ? swarmService(
          this.resourceName(node),
          {
            ...spec,
            placement,
            replicas: node.replicas ?? 1,
            startTimeoutSeconds: settings.swarm.startTimeoutSeconds,
            secrets: this.taskSecrets(node, node.key),
          },
          opts,
        )
      : serviceContainer(this.resourceName(node), spec, opts);
  }

  /**
   * The API's, beat's and workers' shared environment as container entries, made once: every
   * Output costs the SDK promises (and a stack trace each), so 100 workers share one.
   */
  private appEnvs?: { env: ServiceEnvironment; entries: pulumi.Output<string[]> };
  private appEnvironment(): { env: ServiceEnvironment; entries: pulumi.Output<string[]> } {
    if (!this.appEnvs) {
      const { settings, secrets } = this.ctx;
      const db = settings.database;
      const env = appEnvironment({
        settings,
        apiName: this.containerName("api"),
        amqpUrl: this.amqpUrl!,
        secretKey: secrets.secretKey,
        apiSecretEnv: secrets.apiSecretEnv,
        databaseUrl: databaseUrl(this.endpoints, db.name, db.user, secrets.databasePassword),
      });
      this.appEnvs = { env, entries: envEntries(wholeEnvironment(env)) };
    }
    return this.appEnvs;
  }

  /** The pull step's `PULL_IMAGES`: the images by digest, as the services run them, on their labels' nodes. */
  private pullImages(node: StepNode): pulumi.Output<string> {
    const images = new Map(
      this.inputs<docker.RemoteImage>(node, "nodesPull").map((image, i) => [
        node.waits.filter((w) => w.via === "nodesPull")[i].on,
        image,
      ]),
    );
    return pullImagesVariable(
      pullTargets(servicesOf(this.ctx.plan), this.ctx.settings.swarm.labels),
      (key) => {
        const image = images.get(`image-${key}`);
        if (!image) throw new Error(`plan: pull takes no image-${key}; declare the wait in components/plan.ts`);
        return byDigest(image);
      },
      (key) => this.containerName(key),
    );
  }

  private step(node: StepNode): command.local.Command {
    const { settings } = this.ctx;
    const triggers: Record<StepNode["runsOnceFor"], () => pulumi.Input<string>[]> = {
      version: () => [settings.version],
      "version+restore": () => [settings.version, settings.restoreFrom!],
      apiContainer: () => [settings.version, this.input<Runner>(node, "apiContainerId").id],
      services: () => [settings.version, ...this.inputs<Runner>(node, "containerIds").map((c) => c.id)],
      // The images' references as the plan names them (no edge): their digests come in through
      // the environment, whose change runs the step again too.
      images: () => appImagesOf(this.ctx.plan).map((i) => i.ref),
    };
    return maintenanceStep(
      this.resourceName(node),
      {
        script: node.script,
        runsOnceFor: triggers[node.runsOnceFor](),
        environment: stepEnvironment(node, {
          settings,
          secrets: this.ctx.secrets,
          endpoints: this.endpoints,
          services: servicesOf(this.ctx.plan),
          containerName: (key) => this.containerName(key),
          maintenance: this.ctx.maintenance,
          // The application's image only: it changes with `version`, which re-runs the backup anyway;
          // an edge service's own version bump must not touch the backup step.
          appImages: appImagesOf(this.ctx.plan)
            .filter((i) => i.image === "app")
            .map((i) => i.ref),
          pullImages: node.step === "pull" ? this.pullImages(node) : undefined,
        }),
        wrapper: node.step === "backup" && settings.backup.stopWriters ? "writers-stopped.sh" : undefined,
        rerunOnChange: node.step === "pull",
      },
      { parent: this.ctx.parent, dependsOn: this.dependsOn(node) },
    );
  }
}
