import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type { Settings } from "../config/schema";
import { managedRabbitMq } from "./broker";
import { envEntries, serviceContainer } from "./containers";
import { appEnvironment, edgeEnvironment, type EdgeRole } from "./environment";
import { applicationDatabase, databaseUrl, managedPostgres, type DatabaseEndpoints } from "./database";
import { apiUrlFor, planDeployment, type DeploymentPlan, type ImageKey, type ServicePlan, type StepKey, type StepPlan } from "./plan";
import { SchemaGuard } from "./schemaGuard";
import { maintenanceStep } from "./steps";

/** Secret inputs; each reaches containers and scripts only through environment values. */
export interface DeploymentSecrets {
  /** Django SECRET_KEY. */
  secretKey: pulumi.Input<string>;
  /** Password of the application's database role. */
  databasePassword: pulumi.Input<string>;
  /** Password of `database.adminUser` (postgresql provider, backups, restores). */
  databaseAdminPassword: pulumi.Input<string>;
  /** Password of the managed RabbitMQ user. Required when `rabbitmq.mode` is managed. */
  rabbitmqPassword?: pulumi.Input<string>;
  /** amqp:// URL of an external RabbitMQ. Required when `rabbitmq.mode` is external. */
  rabbitmqUrl?: pulumi.Input<string>;
  /** API token of the DLMS processor and the poster. */
  edgeAuthToken?: pulumi.Input<string>;
  /** Password of `registry.username`. */
  registryPassword?: pulumi.Input<string>;
  /** Extra secret environment for API, beat and workers. Defaults to none. */
  apiSecretEnv?: Record<string, pulumi.Input<string>>;
}

export interface UtilitarianDeploymentArgs {
  /**
   * Validated settings (`config/schema.ts` documents each one). Plain values, not Inputs: they
   * decide which resources exist, and a plan must be known before anything is created.
   */
  settings: Settings;
  /** Secret values. */
  secrets: DeploymentSecrets;
  /** Prefix of every physical name (containers, network, volumes). Defaults to the component name. */
  prefix?: string;
}

const LABEL_FOLLOWS_API = "io.utilitarian.follows-api";

/**
 * The whole Utilitarian deployment on one Docker host, and its upgrade as one `pulumi up`.
 *
 * Order of an upgrade (see README "Upgrading"): images pulled and a verified backup taken while
 * everything runs; the schema guard records the new version; the API registers, and because
 * beat, workers, processor and poster carry an input derived from the API container (label and
 * base URL), the engine stops them first, then the API; the new API starts alone; migrate;
 * collectstatic + compress; the followers start; verify. Independent services (UDP server) and
 * PostgreSQL/RabbitMQ have no such edge and keep running.
 */
export class UtilitarianDeployment extends pulumi.ComponentResource {
  /** Where the API answers on the Docker host. */
  public readonly apiUrl: pulumi.Output<string>;
  /** The Utilitarian version this deployment runs. */
  public readonly version: pulumi.Output<string>;
  /** The verified backup taken before the last upgrade (absolute path on this machine). */
  public readonly lastBackup: pulumi.Output<string>;
  /** Container names by service key. */
  public readonly containers: pulumi.Output<Record<string, string>>;
  /** The plan this deployment was built from. */
  public readonly plan: DeploymentPlan;

  constructor(name: string, args: UtilitarianDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("utilitarian:index:UtilitarianDeployment", name, {}, opts);
    const { settings } = args;
    const secrets = secretInputs(args.secrets);
    const prefix = args.prefix ?? name;
    const plan = planDeployment({
      version: settings.version,
      images: { app: settings.images.api, processor: settings.images.processor, poster: settings.images.poster, udpServer: settings.images.udpServer },
      beat: settings.beat,
      workers: settings.workers,
      processor: settings.processor,
      poster: settings.poster,
      udpServer: settings.udpServer,
      stopGraceSeconds: settings.stopGraceSeconds,
      restoreFrom: settings.restoreFrom,
    });
    this.plan = plan;

    const dockerProvider = new docker.Provider(`${name}-docker`, {
      host: settings.dockerHost,
      registryAuth: settings.registry
        ? [{ address: settings.registry.server, username: settings.registry.username, password: secrets.registryPassword }]
        : undefined,
    }, { parent: this });
    const onDocker: pulumi.CustomResourceOptions = { parent: this, provider: dockerProvider };
    const stepEnv: Record<string, string> = settings.dockerHost ? { DOCKER_HOST: settings.dockerHost } : {};

    // --- Foundation: network, database, broker. Nothing here depends on the app version. ---
    const network = new docker.Network(`${name}-network`, { name: `${prefix}-net`, driver: "bridge" }, onDocker);
    const db = settings.database;
    const endpoints: DatabaseEndpoints = db.mode === "managed"
      ? { containerHost: "postgres", containerPort: 5432, operatorHost: db.operatorHost ?? "127.0.0.1", operatorPort: db.operatorPort ?? 15432 }
      : { containerHost: db.host!, containerPort: db.port, operatorHost: db.operatorHost ?? db.host!, operatorPort: db.operatorPort ?? db.port };
    const postgres = db.mode === "managed"
      ? managedPostgres(name, {
          prefix, image: this.pull(name, "postgres", db.image, onDocker), network: network.name, adminUser: db.adminUser,
          adminPassword: secrets.databaseAdminPassword, operatorPort: endpoints.operatorPort, graceSeconds: settings.stopGraceSeconds.api,
        }, onDocker)
      : undefined;
    const appDb = applicationDatabase(name, {
      endpoints, name: db.name, user: db.user, password: secrets.databasePassword, adminUser: db.adminUser,
      adminPassword: secrets.databaseAdminPassword, sslmode: db.sslmode, superuser: db.superuser,
    }, { parent: this, dependsOn: postgres ? [postgres.container] : [] });

    const broker = settings.rabbitmq.mode === "managed"
      ? managedRabbitMq(name, {
          prefix, image: this.pull(name, "rabbitmq", settings.rabbitmq.image, onDocker), network: network.name, user: settings.rabbitmq.user,
          password: secrets.rabbitmqPassword!, graceSeconds: settings.stopGraceSeconds.edge,
        }, onDocker)
      : undefined;
    const amqpUrl = broker ? broker.url : secrets.rabbitmqUrl!;
    const foundation: pulumi.Resource[] = [network, appDb.database, ...(broker ? [broker.container] : [])];

    // --- Stage 1: pull the new images, then a verified backup, while everything still runs. ---
    const images = new Map<ImageKey, docker.RemoteImage>();
    for (const image of plan.images) {
      images.set(image.key, new docker.RemoteImage(`${name}-image-${image.key}`, {
        name: `${image.repository}:${image.tag}`,
        // Old images stay on the host: going back does not depend on the registry.
        keepLocally: true,
      }, { ...onDocker, dependsOn: foundation }));
    }
    const containerName = (key: string) => `${prefix}-${key}`;
    const apiName = containerName("api");
    const adminEnv = {
      PGHOST: endpoints.operatorHost,
      PGPORT: String(endpoints.operatorPort),
      PGUSER: db.adminUser,
      PGPASSWORD: secrets.databaseAdminPassword,
      PGDATABASE: db.name,
      PGSSLMODE: db.sslmode,
      // As configured: relative paths are relative to the project directory, where the steps
      // run, so another clone or CI checkout of the same stack sees the same input.
      BACKUP_DIR: settings.backup.dir,
      // The scripts check the managed server's own disk before they copy the database there.
      ...(postgres ? { DATABASE_CONTAINER: postgres.container.name } : {}),
    };
    // The plan names each step, its script and what makes it run again; these are the values.
    const triggers: Record<StepPlan["runsOnceFor"], () => pulumi.Input<string>[]> = {
      version: () => [settings.version],
      "version+restore": () => [settings.version, settings.restoreFrom!],
      apiContainer: () => [settings.version, api.id],
      services: () => [settings.version, ...allContainers.map((c) => c.id)],
    };
    const step = (key: StepKey, environment: Record<string, pulumi.Input<string>>, dependsOn: pulumi.Resource[]) => {
      const planned = plan.steps.find((s) => s.key === key)!;
      return maintenanceStep(`${name}-${key}`, { script: planned.script, runsOnceFor: triggers[planned.runsOnceFor](), environment }, { parent: this, dependsOn });
    };
    const backup = step("backup", {
      ...stepEnv,
      ...adminEnv,
      BACKUP_KEEP: String(settings.backup.keep),
      BACKUP_TEST_RESTORE: String(settings.backup.testRestore),
      ...(settings.backup.minFreeMb !== undefined ? { BACKUP_MIN_FREE_MB: String(settings.backup.minFreeMb) } : {}),
      // The version running now is read from the API container's label by the script.
      API_CONTAINER: apiName,
      BACKUP_TO_VERSION: settings.version,
    }, [...images.values(), ...foundation]);

    let beforeApi: pulumi.Resource = backup;
    if (plan.steps.some((s) => s.key === "restore")) {
      // Rollback: the app containers are stopped by the script before the database is swapped.
      beforeApi = step("restore", {
        ...stepEnv,
        ...adminEnv,
        RESTORE_FILE: settings.restoreFrom!,
        RESTORE_DB_OWNER: db.user,
        // "latest" means the newest backup taken while this (older) version ran.
        RESTORE_VERSION: settings.version,
        STOP_CONTAINERS: plan.services.filter((s) => s.phase !== "independent").map((s) => containerName(s.key)).join(" "),
      }, [backup]);
    }
    const guard = new SchemaGuard(`${name}-schema-guard`, { version: settings.version, restoreFrom: settings.restoreFrom }, { parent: this, dependsOn: [beforeApi] });

    // --- Stages 2-4: the API registers; the engine stops its followers, then it; the new API starts. ---
    const appEnv = appEnvironment({
      settings, apiName, amqpUrl, secretKey: secrets.secretKey, apiSecretEnv: secrets.apiSecretEnv,
      databaseUrl: databaseUrl(endpoints, db.name, db.user, secrets.databasePassword),
    });
    const apiPlan = plan.services.find((s) => s.key === "api")!;
    const api = serviceContainer(`${name}-api`, {
      name: apiName,
      image: images.get("app")!.imageId,
      network: network.name,
      aliases: ["api"],
      envs: envEntries(appEnv),
      labels: this.labels(prefix, apiPlan),
      ports: [{ internal: 8000, external: settings.api.port, ip: settings.api.publishAddress }],
      healthcheck: {
        tests: ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/_health/', timeout=5)"],
        interval: "15s", timeout: "6s", retries: 3, startPeriod: `${settings.api.healthTimeoutSeconds}s`,
      },
      // Not waiting for health here: the runbook migrates right after the start; verify checks health.
      graceSeconds: apiPlan.graceSeconds,
    }, { ...onDocker, dependsOn: [guard] });

    // --- Stages 5-6: migrate once per version; collectstatic + compress into every new API container. ---
    const inApi = { ...stepEnv, API_CONTAINER: api.name, API_START_TIMEOUT_SECONDS: String(settings.api.healthTimeoutSeconds) };
    const migrate = step("migrate", inApi, [api]);
    const staticFiles = step("static", inApi, [migrate]);

    // --- Stage 7: everything else. Followers carry the API edge; independent services do not. ---
    const containers = new Map<string, docker.Container>([["api", api]]);
    for (const service of plan.services) {
      if (service.key === "api") continue;
      const followsApi = service.phase === "afterMigrations";
      const labels = this.labels(prefix, service);
      if (followsApi) labels[LABEL_FOLLOWS_API] = api.name;
      // Followers address the API by its container name: the input that makes the engine stop them first.
      const edgeEnv = (role: EdgeRole) => edgeEnvironment(role, { settings, amqpUrl, apiHost: followsApi ? api.name : "api", edgeAuthToken: secrets.edgeAuthToken });
      containers.set(service.key, serviceContainer(`${name}-${service.key}`, {
        name: containerName(service.key),
        image: images.get(service.image)!.imageId,
        network: network.name,
        envs: envEntries(service.image === "app" ? appEnv : edgeEnv(service.image)),
        labels,
        command: service.command,
        ports: service.role === "udpServer"
          ? [{ internal: 4059, external: settings.udpServer.port, ip: settings.udpServer.publishAddress, protocol: "udp" }]
          : undefined,
        graceSeconds: service.graceSeconds,
      }, { ...onDocker, dependsOn: followsApi ? [staticFiles] : [...images.values(), ...foundation] }));
    }

    // --- Stage 8: verify, whenever any service container was replaced. ---
    const allContainers = [...containers.values()];
    const verify = step("verify", {
      ...stepEnv,
      API_CONTAINER: api.name,
      EXPECTED_CONTAINERS: pulumi.all(allContainers.map((c) => c.name)).apply((names) => names.join(" ")),
      HEALTH_TIMEOUT_SECONDS: String(settings.api.healthTimeoutSeconds),
    }, allContainers);

    this.version = guard.version;
    this.apiUrl = pulumi.output(apiUrlFor(settings.api.publishAddress, settings.api.port, settings.dockerHost));
    this.lastBackup = backup.stdout.apply((out) => /^BACKUP_FILE=(.*)$/m.exec(out)?.[1] ?? "");
    this.containers = pulumi.all([...containers.entries()].map(([k, c]) => c.name.apply((n) => [k, n] as const)))
      .apply((pairs) => Object.fromEntries(pairs));
    this.registerOutputs({ apiUrl: this.apiUrl, version: this.version, lastBackup: this.lastBackup, containers: this.containers, verified: verify.stdout });
  }

  private labels(prefix: string, service: ServicePlan): Record<string, pulumi.Input<string>> {
    return { "io.utilitarian.stack": prefix, "io.utilitarian.role": service.role, "io.utilitarian.service": service.key, "io.utilitarian.version": service.version };
  }

  /** Infrastructure images (PostgreSQL, RabbitMQ): pulled once, kept. */
  private pull(name: string, key: string, image: string, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
    return new docker.RemoteImage(`${name}-image-${key}`, { name: image, keepLocally: true }, opts).imageId;
  }
}

/**
 * Marks every secret input as secret, whatever the caller passed: a library user handing in a
 * plain string must not get it written to state, previews or logs in the clear.
 */
function secretInputs(secrets: DeploymentSecrets): DeploymentSecrets {
  const wrap = (v: pulumi.Input<string> | undefined) => (v === undefined ? undefined : pulumi.secret(v));
  return {
    secretKey: pulumi.secret(secrets.secretKey),
    databasePassword: pulumi.secret(secrets.databasePassword),
    databaseAdminPassword: pulumi.secret(secrets.databaseAdminPassword),
    rabbitmqPassword: wrap(secrets.rabbitmqPassword),
    rabbitmqUrl: wrap(secrets.rabbitmqUrl),
    edgeAuthToken: wrap(secrets.edgeAuthToken),
    registryPassword: wrap(secrets.registryPassword),
    apiSecretEnv: secrets.apiSecretEnv
      ? Object.fromEntries(Object.entries(secrets.apiSecretEnv).map(([k, v]) => [k, pulumi.secret(v)]))
      : undefined,
  };
}
