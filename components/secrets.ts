import * as pulumi from "@pulumi/pulumi";
import { SECRET_KEYS, type SecretKey } from "../config/schema";

/** The secrets every deployment needs; the rest depend on the settings (`SECRET_KEYS[key].when`). */
type AlwaysRequired = "secretKey" | "databasePassword" | "databaseAdminPassword";
type StringSecret = Exclude<SecretKey, "apiSecretEnv">;

/**
 * Secret inputs, one per key of `SECRET_KEYS` (config/schema.ts, where each is described): each
 * reaches containers and scripts only through environment values, never command text.
 */
export type DeploymentSecrets = Record<AlwaysRequired, pulumi.Input<string>> &
  Partial<Record<Exclude<StringSecret, AlwaysRequired>, pulumi.Input<string>>> & {
    apiSecretEnv?: Record<string, pulumi.Input<string>>;
  };

/**
 * Marks every secret input as secret, whatever the caller passed: a library user handing in a
 * plain string must not get it written to state, previews or logs in the clear.
 */
export function secretInputs(secrets: DeploymentSecrets): DeploymentSecrets {
  const wrapped: Record<string, unknown> = {};
  for (const key of Object.keys(SECRET_KEYS) as SecretKey[]) {
    const value = secrets[key];
    if (value === undefined) continue;
    wrapped[key] =
      key === "apiSecretEnv"
        ? Object.fromEntries(
            Object.entries(value as Record<string, pulumi.Input<string>>).map(([k, v]) => [k, pulumi.secret(v)]),
          )
        : pulumi.secret(value as pulumi.Input<string>);
  }
  return wrapped as DeploymentSecrets;
}
