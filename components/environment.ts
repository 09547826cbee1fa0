import * as pulumi from "@pulumi/pulumi";
import type { DeploymentSettings } from "./args";
import { API_PORT, KINDS, kindOf, type EdgeRole } from "./kinds";

type Env = Record<string, pulumi.Input<string>>;

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
export function appEnvironment(args: AppEnvironmentArgs): Env {
  const { api } = args.settings;
  return {
    ...api.env,
    ...(args.apiSecretEnv ?? {}),
    DATABASE_URL: args.databaseUrl,
    SECRET_KEY: args.secretKey,
    // Edge services call the API by its container name (or alias): Django must accept those Host headers.
    ALLOWED_HOSTS: [...new Set([...api.allowedHosts, args.apiName, KINDS.api.alias])].join(","),
    AMQP_CONNECTION_STRING: args.amqpUrl,
    UTILITARIAN_DEBUG: api.env.UTILITARIAN_DEBUG ?? "False",
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
export function edgeEnvironment(role: EdgeRole, args: EdgeEnvironmentArgs): Env {
  const kind = kindOf(role);
  const env: Env = {
    ...args.settings[role].env,
    AMQP_CONNECTION_STRING: args.amqpUrl,
    ...kind.environment?.(args.settings),
  };
  if (!kind.callsApi) return env;
  env.UTILITARIAN_BASE_URL = pulumi.interpolate`http://${args.apiHost}:${API_PORT}`;
  if (args.edgeAuthToken !== undefined && kind.secrets.includes("edgeAuthToken"))
    env.UTILITARIAN_AUTH_TOKEN = args.edgeAuthToken;
  return env;
}
