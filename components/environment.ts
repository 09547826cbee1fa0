import * as pulumi from "@pulumi/pulumi";
import type { DeploymentSettings } from "./args";
import { API_PORT, KINDS, kindOf, type EdgeRole } from "./kinds";

type Env = Record<string, pulumi.Input<string>>;

/**
 * A service's environment in two parts: `secret` holds every entry whose value carries a secret
 * (config/schema.ts's `SECRET_KEYS`: a password, a token, a URL with a password in it), and is
 * the one place that says so. On one host both reach the container's environment alike; on a
 * swarm the secret part reaches the tasks as swarm secrets only (components/swarmSecrets.ts).
 */
export interface ServiceEnvironment {
  plain: Env;
  secret: Env;
}

/** Both parts as one map, as a container's environment takes them. */
export const wholeEnvironment = (env: ServiceEnvironment): Env => ({ ...env.plain, ...env.secret });

export interface AppEnvironmentArgs {
  settings: DeploymentSettings;
  databaseUrl: pulumi.Input<string>;
  amqpUrl: pulumi.Input<string>;
  secretKey: pulumi.Input<string>;
  apiSecretEnv?: Env;
  /** Container name of the API; the edge services call it by this name or the alias `api`. */
  apiName: string;
}

/** The settings API, beat and workers share (utilitarian.md: "Settings"). */
export function appEnvironment(args: AppEnvironmentArgs): ServiceEnvironment {
  const { api } = args.settings;
  return {
    plain: {
      ...api.env,
      // Edge services call the API by its container name (or alias): Django must accept those Host headers.
      ALLOWED_HOSTS: [...new Set([...api.allowedHosts, args.apiName, KINDS.api.alias])].join(","),
      UTILITARIAN_DEBUG: api.env.UTILITARIAN_DEBUG ?? "False",
    },
    // apiSecretEnv, secretKey, databasePassword (in the URL), rabbitmqPassword or rabbitmqUrl.
    secret: {
      ...(args.apiSecretEnv ?? {}),
      DATABASE_URL: args.databaseUrl,
      SECRET_KEY: args.secretKey,
      AMQP_CONNECTION_STRING: args.amqpUrl,
    },
  };
}

export interface EdgeEnvironmentArgs {
  settings: DeploymentSettings;
  amqpUrl: pulumi.Input<string>;
  /** Host name the processor and poster use for the API. */
  apiHost: pulumi.Input<string>;
  edgeAuthToken?: pulumi.Input<string>;
}

/**
 * The settings of one edge service; its own `env` entries come first and may set the optional
 * ones. What it gets beyond the broker is its kind's (kinds.ts): its settings' environment, and the
 * API's URL and token when it calls the API.
 */
export function edgeEnvironment(role: EdgeRole, args: EdgeEnvironmentArgs): ServiceEnvironment {
  const kind = kindOf(role);
  const plain: Env = { ...args.settings[role].env, ...kind.environment?.(args.settings) };
  // rabbitmqPassword (in the URL) or rabbitmqUrl; edgeAuthToken.
  const secret: Env = { AMQP_CONNECTION_STRING: args.amqpUrl };
  if (!kind.callsApi) return { plain, secret };
  plain.UTILITARIAN_BASE_URL = pulumi.interpolate`http://${args.apiHost}:${API_PORT}`;
  if (args.edgeAuthToken !== undefined && kind.secrets.includes("edgeAuthToken"))
    secret.UTILITARIAN_AUTH_TOKEN = args.edgeAuthToken;
  return { plain, secret };
}
