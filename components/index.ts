export { UtilitarianDeployment, type UtilitarianDeploymentArgs, type DeploymentSecrets } from "./deployment";
export {
  planDeployment,
  RUNBOOK,
  type DeploymentPlan,
  type PlanNode,
  type ServiceNode,
  type StepNode,
  type Wait,
  type Via,
} from "./plan";
export { SchemaGuard, checkVersionChange, compareVersions } from "./schemaGuard";
export { SCRIPTS_DIR } from "./steps";
