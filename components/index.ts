export { UtilitarianDeployment, type UtilitarianDeploymentArgs, type DeploymentSecrets } from "./deployment";
export { planDeployment, type DeploymentPlan, type ServicePlan, type StepPlan, type StartPhase } from "./plan";
export { SchemaGuard, checkVersionChange, compareVersions } from "./schemaGuard";
export { SCRIPTS_DIR } from "./steps";
