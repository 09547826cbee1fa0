import * as pulumi from "@pulumi/pulumi";
import { defaultPrefix, loadConfig } from "./config/load";
import { UtilitarianDeployment } from "./components/deployment";

/**
 * Reads and validates the stack configuration (every problem reported at once, nothing created
 * when any is found) and builds the deployment; the component marks every secret as secret.
 */
const raw = pulumi.runtime.allConfig();
// A secret stored in the clear is refused. The SDK exports this check at run time but leaves it
// out of its type declarations (marked internal); without it, every key counts as encrypted.
const isConfigSecret =
  (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret ?? (() => true);
const storedAsSecret = new Set(Object.keys(raw).filter((key) => isConfigSecret(key)));
// Relative paths (backup.dir, restoreFrom) start at the project directory, where pulumi runs us.
const { settings, secrets } = loadConfig(raw, storedAsSecret, { stack: pulumi.getStack(), projectDir: process.cwd() });

const prefix = settings.prefix ?? defaultPrefix(pulumi.getStack());
const deployment = new UtilitarianDeployment(prefix, { ...settings, secrets, prefix });

export const version = deployment.version;
export const apiUrl = deployment.apiUrl;
export const lastBackup = deployment.lastBackup;
/** The last completed maintenance window's report (Markdown; .json and .svg beside it). */
export const lastWindowReport = deployment.lastWindowReport;
export const containers = deployment.containers;
/** The maintenance this version's `pulumi up` carries out, stage by stage: `pulumi preview` shows it. */
export const maintenancePlan = deployment.maintenance.stages.map(
  (s, i) =>
    `${i + 1}. ${s.title}${s.runbook.length > 0 ? ` [runbook ${s.runbook.join(", ")}]` : ""}: ${s.actions.join("; ")}`,
);
