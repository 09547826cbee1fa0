import * as pulumi from "@pulumi/pulumi";
import { loadConfig, NAMESPACE } from "./config/load";
import { UtilitarianDeployment, type DeploymentSecrets } from "./components";

/**
 * Reads and validates the stack configuration (every problem reported at once, nothing created
 * when any is found), wraps each secret with pulumi.secret, and builds the deployment.
 */
const raw = pulumi.runtime.allConfig();
// Pulumi keeps the list of encrypted keys beside the values; a secret stored in the clear is refused.
const storedAsSecret = new Set<string>(JSON.parse(raw["PULUMI_CONFIG_SECRET_KEYS"] || "[]"));
const { settings, secrets } = loadConfig(raw, storedAsSecret);

// The component marks each of these secret; they never pass through plain inputs.
const deploymentSecrets: DeploymentSecrets = {
  ...secrets,
  secretKey: secrets.secretKey!,
  databasePassword: secrets.databasePassword!,
  databaseAdminPassword: secrets.databaseAdminPassword!,
};

const prefix = settings.prefix ?? `${NAMESPACE}-${pulumi.getStack()}`;
const deployment = new UtilitarianDeployment(prefix, { settings, secrets: deploymentSecrets, prefix });

export const version = deployment.version;
export const apiUrl = deployment.apiUrl;
export const lastBackup = deployment.lastBackup;
export const containers = deployment.containers;
