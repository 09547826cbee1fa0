import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { LIBRARY_ARGS } from "../config/naming";
import { ENV_HOLDERS, settingsSchema, type EnvHolder, type Settings } from "../config/schema";
import { KNOWN_LATER, validateDeployment } from "../config/validate";
import { EDGE_ROLES, type EdgeRole } from "./kinds";
import type { DeploymentSecrets } from "./secrets";

/**
 * The schema's input type with each `unknown` (a preprocessed value: booleans and whole numbers,
 * which stack config also gives as text) typed as the value it becomes.
 */
type Typed<I, O> = unknown extends I
  ? O
  : I extends readonly (infer IItem)[]
    ? O extends readonly (infer OItem)[]
      ? Typed<IItem, OItem>[]
      : I
    : I extends object
      ? { [K in keyof I]: Typed<I[K], K extends keyof NonNullable<O> ? NonNullable<O>[K] : never> }
      : I;

type SettingsInput = Typed<z.input<typeof settingsSchema>, Settings>;

/** Extra container environment: a value may be an Input, as it is needed only when the container is created. */
export type EnvArgs = Record<string, pulumi.Input<string> | number | boolean>;
type WithEnvArgs<T> = Omit<T, "env"> & { env?: EnvArgs };

export type ImagesArgs = NonNullable<SettingsInput["images"]>;
export type RegistryArgs = NonNullable<SettingsInput["registry"]>;
export type DatabaseArgs = NonNullable<SettingsInput["database"]>;
export type RabbitMqArgs = NonNullable<SettingsInput["rabbitmq"]>;
export type ApiArgs = WithEnvArgs<NonNullable<SettingsInput["api"]>>;
export type WorkerGroupArgs = NonNullable<SettingsInput["workers"]>[number];
export type EdgeServiceArgs = WithEnvArgs<NonNullable<SettingsInput["processor"]>>;
export type UdpServerArgs = WithEnvArgs<NonNullable<SettingsInput["udpServer"]>>;
/** Each edge service's block (components/kinds.ts); the ones named in the args below are documented there. */
type EdgeServicesArgs = { [R in EdgeRole]?: WithEnvArgs<NonNullable<SettingsInput[R]>> };
export type BackupArgs = NonNullable<SettingsInput["backup"]>;
export type StopGraceSecondsArgs = NonNullable<SettingsInput["stopGraceSeconds"]>;

/**
 * What a program passes to `new UtilitarianDeployment(name, args)`. Every key except `secrets` is
 * a stack setting of the same name (config/schema.ts describes each nested key, and the README's
 * configuration reference lists them with their defaults); values that decide which resources
 * exist are plain values, not Inputs.
 */
export interface UtilitarianDeploymentArgs extends EdgeServicesArgs {
  /** Utilitarian release to run, the tag of the API, beat and worker image, like `1.2.0`. Required. */
  version: SettingsInput["version"];
  /** Prefix of every container, network and volume name (lower-case letters, digits and `-`). Defaults to the component's name. */
  prefix?: SettingsInput["prefix"];
  /**
   * Docker engine the step scripts reach as `DOCKER_HOST`, and the host of the component's own
   * docker provider; with a docker provider in `opts.providers`, name that provider's engine.
   * Defaults to the local Docker socket.
   */
  dockerHost?: SettingsInput["dockerHost"];
  /** Where the services run: `docker`, containers on the one engine `dockerHost` names, or `swarm`, services on the Docker Swarm whose manager it names. Defaults to `docker`. */
  target?: SettingsInput["target"];
  /** With `target: swarm`: the node labels that place the services, the API's replicas and how this machine reaches the engines of the API's nodes (`nodeHosts`, required there). Defaults to labels `utilitarian.app`, `utilitarian.workers`, `utilitarian.edge`, `utilitarian.data` and one API replica. */
  swarm?: SettingsInput["swarm"];
  /** Image repositories of the services, tagged with their version keys. Defaults to the vendor's repositories on quay.io. */
  images?: ImagesArgs;
  /** Pull account for private images (password: `secrets.registryPassword`); not with a docker provider in `opts.providers`, which brings its own `registryAuth`. Defaults to anonymous pulls. */
  registry?: RegistryArgs;
  /** The application's PostgreSQL: a managed container or an external server. Defaults to a managed `postgres:15` container with database and role `utilitarian`. */
  database?: DatabaseArgs;
  /** The Celery broker: a managed RabbitMQ container or an external one (`secrets.rabbitmqUrl`). Defaults to a managed `rabbitmq:3-management` container with user `utilitarian`. */
  rabbitmq?: RabbitMqArgs;
  /** The API container: where clients reach it (the maintenance proxy's published port by default, the API's own with `proxy.enabled: false`), its `ALLOWED_HOSTS` and extra environment (`env` values may be Inputs). Defaults to port `8000` on `127.0.0.1`, hosts `localhost` and `127.0.0.1`, no extra environment. */
  api?: ApiArgs;
  /** The maintenance proxy (HAProxy) in front of the API, published in its place, answering 503 with `Retry-After` while the API is unhealthy (`enabled: false` publishes the API itself, as before the proxy). Defaults to on (`true`), with image `haproxy:2.6`, a retry after `30` seconds and a one-line maintenance message. */
  proxy?: SettingsInput["proxy"];
  /** The Celery beat scheduler, one container at most. Defaults to enabled. */
  beat?: SettingsInput["beat"];
  /** Celery worker groups, each its own containers. Defaults to one group `default` of `1` container with concurrency `2` on Celery's default queue. */
  workers?: WorkerGroupArgs[];
  /** The DLMS processor; its `version` is required while it is enabled (`env` values may be Inputs). Defaults to enabled and following the API. */
  processor?: EdgeServiceArgs;
  /** The poster; its `version` is required while it is enabled (`env` values may be Inputs). Defaults to enabled and following the API. */
  poster?: EdgeServiceArgs;
  /** The DLMS UDP server; its `version` is required while it is enabled (`env` values may be Inputs). Defaults to enabled, on UDP port `4059` of `0.0.0.0`, application context `default`. */
  udpServer?: UdpServerArgs;
  /** The verified pg_dump backup taken before every upgrade. Defaults to `./backups` (relative to the program's directory), keeping `5`; the configuration reference lists the other keys' defaults. */
  backup?: BackupArgs;
  /** Seconds each kind of container gets between SIGTERM and SIGKILL. Defaults to `30` (API, PostgreSQL), `10` (beat), `60` (workers) and `15` (edge services, RabbitMQ). */
  stopGraceSeconds?: StopGraceSecondsArgs;
  /** Rollback only: `latest` or the path of the verified backup in `backup.dir` to restore while going back to an older version. Defaults to no restore. */
  restoreFrom?: SettingsInput["restoreFrom"];
  /** Secret values, each marked secret by the component whatever the caller passed. Required: `secretKey`, `databasePassword` and `databaseAdminPassword`, the rest as the settings need them. */
  secrets: DeploymentSecrets;
}

// Compile-time: the args hold every stack setting and nothing else besides `secrets`.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const argsCoverTheSchema: Same<Exclude<keyof UtilitarianDeploymentArgs, "secrets">, keyof SettingsInput> = true;
void argsCoverTheSchema;

/** Validated settings as the component builds them: `env` values may still be Inputs. */
export type DeploymentSettings = Omit<Settings, EnvHolder> & {
  [H in EnvHolder]: Omit<Settings[H], "env"> & { env: Record<string, pulumi.Input<string>> };
};

export interface ValidArgs {
  /** The settings with env Inputs in place: what the resources are built from. */
  settings: DeploymentSettings;
  /** The same with plain placeholders for env Inputs: what the plan is made from (it reads no env). */
  planSettings: Settings;
  prefix: string;
}

/** Thrown with every problem of a component's args, one per line, each naming its arg and the fix. */
export class ArgsError extends Error {
  constructor(
    readonly component: string,
    readonly problems: string[],
  ) {
    super(
      `UtilitarianDeployment '${component}': the args have ${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was created:\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ArgsError";
  }
}

/** Stands in for an env Input while the schema checks the names; one line, so it passes. */
const INPUT_PLACEHOLDER = "(input)";

/** An Output or a promise: its value is known only when its resource is created. */
const isLater = (value: unknown) => pulumi.Output.isInstance(value) || value instanceof Promise;

/**
 * Validates the args with the stack config's rules and defaults (config/validate.ts), each
 * problem named by its arg path, and throws an ArgsError listing every problem. `projectDir` is
 * where relative paths start: the program's working directory.
 */
export function validateArgs(
  name: string,
  args: UtilitarianDeploymentArgs,
  projectDir: string = process.cwd(),
): ValidArgs {
  const { secrets, ...given } = args as UtilitarianDeploymentArgs & Record<string, unknown>;
  const plain: Record<string, unknown> = { ...given };
  const deferred: Partial<Record<EnvHolder, Record<string, pulumi.Input<string>>>> = {};
  for (const holder of ENV_HOLDERS) {
    const block = given[holder] as { env?: EnvArgs } | undefined;
    if (!block?.env) continue;
    const env: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(block.env)) {
      if (isLater(value)) {
        (deferred[holder] ??= {})[key] = value;
        env[key] = INPUT_PLACEHOLDER;
      } else env[key] = value;
    }
    plain[holder] = { ...block, env };
  }

  const { settings: valid, problems } = validateDeployment(
    { settings: plain, secrets: knownNow(secrets ?? {}) },
    LIBRARY_ARGS,
    { projectDir, derivedPrefix: { value: name, from: "the component's name" } },
  );
  if (!valid || problems.length > 0) throw new ArgsError(name, problems);
  const settings = { ...valid, prefix: valid.prefix ?? name };

  // An Input's value is known only when its container is created: the schema checked its name.
  const env = (holder: EnvHolder): Record<string, pulumi.Input<string>> => ({
    ...settings[holder].env,
    ...deferred[holder],
  });
  const withInputs: DeploymentSettings = {
    ...settings,
    api: { ...settings.api, env: env("api") },
    ...(Object.fromEntries(EDGE_ROLES.map((role) => [role, { ...settings[role], env: env(role) }])) as {
      [R in EdgeRole]: DeploymentSettings[R];
    }),
  };
  return { settings: withInputs, planSettings: settings, prefix: settings.prefix };
}

/** The secrets as the validator reads them: an Input whose value is not known yet as KNOWN_LATER. */
function knownNow(secrets: Record<string, unknown>): Record<string, unknown> {
  const now = (value: unknown) => (isLater(value) ? KNOWN_LATER : value);
  return Object.fromEntries(
    Object.entries(secrets).map(([key, value]) => [
      key,
      key === "apiSecretEnv" && typeof value === "object" && value !== null && !isLater(value)
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, now(v)]))
        : now(value),
    ]),
  );
}
