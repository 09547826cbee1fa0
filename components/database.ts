import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import { serviceContainer, type ContainerSpec } from "./containers";
import { swarmService, type SwarmTaskSecrets } from "./swarm";
import { KINDS } from "./kinds";
import { urlHost } from "./urls";

/** How the containers and this machine reach PostgreSQL. */
export interface DatabaseEndpoints {
  /** Host and port as the containers on the private network see them. */
  containerHost: string;
  containerPort: number;
  /** Host and port as this machine (postgresql provider, backups) sees them. */
  operatorHost: string;
  operatorPort: number;
}

export interface ManagedPostgresArgs {
  prefix: string;
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  adminUser: string;
  adminPassword: pulumi.Input<string>;
  /** Port published on the Docker host's 127.0.0.1 only, for this machine's connections. */
  operatorPort: number;
  graceSeconds: number;
  /** On a swarm: the node label of the one node it runs on, where the swarm keeps its volume. */
  swarmPlacement?: string;
  /** On a swarm: where its password goes (a swarm secret, not the service's env). */
  swarmSecrets?: SwarmTaskSecrets;
  /** Its kind's health check (`KINDS.postgres`), as the provider takes it. */
  healthcheck: docker.types.input.ContainerHealthcheck;
}

/**
 * The managed PostgreSQL container and its protected data volume, as a component of their own
 * (`utilitarian:index:ManagedPostgres`) under the deployment. An application upgrade never
 * replaces it: its inputs do not depend on the application's version or images.
 */
export class ManagedPostgres extends pulumi.ComponentResource {
  /** Its container, or its service on a swarm. */
  readonly container: docker.Container | docker.Service;
  /** Its data volume on one Docker host; on a swarm the node that runs it creates the volume. */
  readonly volume?: docker.Volume;

  constructor(name: string, args: ManagedPostgresArgs, opts: pulumi.CustomResourceOptions) {
    // `<name>-managed`, so that the container keeps the name `<name>` it had before this component
    // existed and no two resources of the stack share a name (`pulumi stack` lists them by name).
    super("utilitarian:index:ManagedPostgres", `${name}-managed`, {}, { parent: opts.parent });
    // Stacks created before this component existed hold the two directly under the deployment:
    // the alias to that parent keeps their URNs, so nothing is replaced (test/engine/compat).
    const childOpts = { ...opts, parent: this, aliases: [{ parent: opts.parent }] };
    const volumeName = `${args.prefix}-postgres-data`;
    if (!args.swarmPlacement)
      this.volume = new docker.Volume(
        `${name}-data`,
        { name: volumeName },
        { ...childOpts, protect: true, retainOnDelete: true },
      );
    const spec: ContainerSpec = {
      name: `${args.prefix}-postgres`,
      image: args.image,
      network: { name: args.network, aliases: [KINDS.postgres.alias] },
      envs: [
        pulumi.interpolate`POSTGRES_USER=${args.adminUser}`,
        pulumi.interpolate`POSTGRES_PASSWORD=${args.adminPassword}`,
        "POSTGRES_DB=postgres",
      ],
      // The secret among them (config/schema.ts's SECRET_KEYS: databaseAdminPassword).
      secretEnv: { POSTGRES_PASSWORD: args.adminPassword },
      labels: { "io.utilitarian.role": "postgres", "io.utilitarian.stack": args.prefix },
      // Loopback only: reachable from this machine (or through an SSH tunnel to a remote Docker host), never from outside.
      ports: [{ internal: KINDS.postgres.port.number, external: args.operatorPort, ip: "127.0.0.1" }],
      volumes: [{ volumeName: this.volume?.name ?? volumeName, containerPath: "/var/lib/postgresql/data" }],
      healthcheck: args.healthcheck,
      waitHealthy: { timeoutSeconds: 120 },
      // PostgreSQL needs time to checkpoint; killing it risks a long recovery.
      graceSeconds: Math.max(args.graceSeconds, 60),
    };
    // On a swarm a port is published on the node that runs the task (host mode): the data node's address.
    this.container = args.swarmPlacement
      ? swarmService(
          name,
          { ...spec, placement: args.swarmPlacement, replicas: 1, secrets: args.swarmSecrets },
          childOpts,
        )
      : serviceContainer(name, spec, childOpts);
    this.registerOutputs({});
  }
}

export interface ApplicationDatabaseArgs {
  endpoints: DatabaseEndpoints;
  name: string;
  user: string;
  password: pulumi.Input<string>;
  adminUser: string;
  adminPassword: pulumi.Input<string>;
  sslmode: string;
  superuser: boolean;
  /** A postgresql provider the caller gave the component; without it, one is created for the administrator. */
  provider?: pulumi.ProviderResource;
}

/**
 * The application's role and database, through the postgresql provider as the administrator.
 * The role is least-privilege: it can log in and owns only its own database (Django's migrations
 * create tables there); it cannot create databases or roles. Both are protected: deleting the
 * database would DROP it.
 */
export function applicationDatabase(
  name: string,
  args: ApplicationDatabaseArgs,
  opts: pulumi.CustomResourceOptions,
): { provider: pulumi.ProviderResource; role: postgresql.Role; database: postgresql.Database } {
  const provider =
    args.provider ??
    new postgresql.Provider(
      `${name}-postgresql`,
      {
        host: args.endpoints.operatorHost,
        port: args.endpoints.operatorPort,
        username: args.adminUser,
        password: args.adminPassword,
        database: "postgres",
        sslmode: args.sslmode,
        superuser: args.superuser,
        connectTimeout: 30,
      },
      opts,
    );
  const childOpts = { ...opts, provider, protect: true };
  const role = new postgresql.Role(
    `${name}-role`,
    {
      name: args.user,
      login: true,
      password: args.password,
      superuser: false,
      createDatabase: false,
      createRole: false,
      inherit: true,
      replication: false,
    },
    childOpts,
  );
  const database = new postgresql.Database(
    `${name}-database`,
    {
      name: args.name,
      owner: role.name,
      encoding: "UTF8",
      template: "template0",
    },
    childOpts,
  );
  return { provider, role, database };
}

/** postgres://user:password@host:port/db, secret because of the password. */
export function databaseUrl(
  endpoints: DatabaseEndpoints,
  dbName: string,
  user: string,
  password: pulumi.Input<string>,
): pulumi.Output<string> {
  return pulumi.secret(
    pulumi
      .output(password)
      .apply(
        (pw) =>
          `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@${urlHost(endpoints.containerHost)}:${endpoints.containerPort}/${encodeURIComponent(dbName)}`,
      ),
  );
}
