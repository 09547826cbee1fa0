/**
 * The library entry (`require("utilitarian-deploy")`): the component, its args and settings
 * types, the schema, the plan and the maintenance renderer. Importing it deploys nothing; the
 * stack program is index.ts (Pulumi.yaml `main`).
 */
export { UtilitarianDeployment, type DeploymentSecrets } from "./components/deployment";
export {
  ArgsError,
  type UtilitarianDeploymentArgs,
  type ApiArgs,
  type BackupArgs,
  type DatabaseArgs,
  type EdgeServiceArgs,
  type EnvArgs,
  type ImagesArgs,
  type RabbitMqArgs,
  type RegistryArgs,
  type StopGraceSecondsArgs,
  type UdpServerArgs,
  type WorkerGroupArgs,
} from "./components/args";
export {
  planDeployment,
  RUNBOOK,
  type DeploymentPlan,
  type PlanInput,
  type PlanNode,
  type ServiceNode,
  type StepNode,
  type Wait,
  type Via,
} from "./components/plan";
export { maintenanceStages, renderMaintenance, type Maintenance, type Stage } from "./components/maintenance";
export { SchemaGuard, checkVersionChange, compareVersions } from "./components/schemaGuard";
export { settingsSchema, SECRET_KEYS, type Settings, type SecretKey } from "./config/schema";
export { loadConfig, ConfigError, NAMESPACE } from "./config/load";
