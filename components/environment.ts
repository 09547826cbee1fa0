import * as pulumi from "@pulumi/pulumi";
import type { DeploymentSettings } from "./args";

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
    ALLOWED_HOSTS: [...new Set([...api.allowedHosts, args.apiName, "api"])].join(","),
    AMQP_CONNECTION_STRING: args.amqpUrl,
    UTILITARIAN_DEBUG: api.env.UTILITARIAN_DEBUG ?? "False",
  };
}

export type EdgeRole = "processor" | "poster" | "udpServer";

export interface EdgeEnvironmentArgs {
  settings: DeploymentSettings;
  amqpUrl: pulumi.Input<string>;
  /** Host name the processor and poster use for the API. */
  apiHost: pulumi.Input<string>;
  edgeAuthToken?: pulumi.Input<string>;
}

/** The settings of one edge service; its own `env` entries come first and may set the optional ones. */
export function edgeEnvironment(role: EdgeRole, args: EdgeEnvironmentArgs): Env {
  const env: Env = { ...args.settings[role].env, AMQP_CONNECTION_STRING: args.amqpUrl };
  if (role === "udpServer") {
    env.UTILITARIAN_APPLICATION_CONTEXT = args.settings.udpServer.applicationContext;
    return env;
  }
  env.UTILITARIAN_BASE_URL = pulumi.interpolate`http://${args.apiHost}:8000`;
  if (args.edgeAuthToken !== undefined) env.UTILITARIAN_AUTH_TOKEN = args.edgeAuthToken;
  return env;
}
