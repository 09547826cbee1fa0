import { loadConfig, type LoadedConfig } from "../../../config/load";
import { BACKUPS } from "./backups";

/** Secret values used by the tests; every test that looks for leaks searches for these. */
export const SECRET_VALUES = {
  secretKey: "test-secret-key-7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b",
  databasePassword: "db-pass-Q7w!x@9",
  databaseAdminPassword: "admin-pass-Z3r#k%2",
  rabbitmqPassword: "rabbit-pass-M4n^t&8",
  edgeAuthToken: "edge-token-P9s*v(5",
} as const;

/** Edge services have their own releases; tests start them all at 1.0.0. */
export const EDGE_VERSIONS = {
  processor: { version: "1.0.0" },
  poster: { version: "1.0.0" },
  udpServer: { version: "1.0.0" },
};

/** A raw stack configuration as `pulumi.runtime.allConfig()` returns it. */
export function rawConfig(
  values: Record<string, unknown>,
  secrets: Record<string, string> = SECRET_VALUES,
): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined) raw[`utilitarian:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  }
  for (const [k, v] of Object.entries(secrets)) raw[`utilitarian:${k}`] = v;
  return raw;
}

export const secretKeysOf = (secrets: Record<string, string> = SECRET_VALUES) =>
  new Set(Object.keys(secrets).map((k) => `utilitarian:${k}`));

/**
 * Validated settings and secrets for a config with the given plain values. A `restoreFrom`
 * without a backup.dir gets the shared fixture directory, which holds verified backups taken
 * while 1.0.0, 1.1.0 and 1.2.0 ran: the loader refuses a restore it cannot find.
 */
export function loaded(
  values: Record<string, unknown> = {},
  secrets: Record<string, string> = SECRET_VALUES,
): LoadedConfig {
  const backup = values.backup as { dir?: string } | undefined;
  const withBackups =
    values.restoreFrom !== undefined && backup?.dir === undefined
      ? { ...values, backup: { ...backup, dir: BACKUPS.dir } }
      : values;
  return loadConfig(rawConfig({ ...EDGE_VERSIONS, version: "1.0.0", ...withBackups }, secrets), secretKeysOf(secrets));
}

/** A swarm stack's settings that load: what the swarm needs set, and what it refuses turned off. */
export const SWARM_SETTINGS = {
  target: "swarm",
  dockerHost: "ssh://deploy@manager-1",
  swarm: { nodeHosts: { "app-1": "ssh://deploy@app-1" } },
  proxy: { enabled: false },
  database: { operatorHost: "10.0.0.12" },
};
