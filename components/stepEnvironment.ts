import type * as pulumi from "@pulumi/pulumi";
import type { DeploymentSettings } from "./args";
import type { DatabaseEndpoints } from "./database";
import type { Maintenance } from "./maintenance";
import type { ServiceNode, StepNode } from "./plan";
import type { DeploymentSecrets } from "./secrets";
import { swarmManage } from "./swarmSecrets";

export interface StepContext {
  settings: DeploymentSettings;
  secrets: DeploymentSecrets;
  /** Where the scripts, which run on this machine, reach PostgreSQL. */
  endpoints: DatabaseEndpoints;
  /** The plan's services, in plan order. */
  services: ServiceNode[];
  /** The physical container name of a service key. */
  containerName: (key: string) => string;
  /** The stages of the upgrade, whose keys and titles label the window's report. */
  maintenance: Maintenance;
  /** The application's image reference (API, beat, workers) for this version: the report finds its pull. */
  appImages: string[];
  /** On a swarm, the pull step's `PULL_IMAGES`: each label's images by digest and the services they run. */
  pullImages?: pulumi.Input<string>;
}

/** What each step script reads (docs/step-scripts.md); container names are plain strings, not edges. */
export function stepEnvironment(node: StepNode, ctx: StepContext): Record<string, pulumi.Input<string>> {
  const { settings, secrets, endpoints, services, containerName, maintenance, appImages } = ctx;
  const db = settings.database;
  // On a swarm DOCKER_HOST is the manager's engine; the steps run inside the API's tasks on the
  // engines of the nodes that run them, as `swarm.nodeHosts` says (docs/step-scripts.md).
  const onSwarm = settings.target === "swarm";
  const docker: Record<string, string> = {
    ...(settings.dockerHost ? { DOCKER_HOST: settings.dockerHost } : {}),
    ...(onSwarm
      ? {
          SWARM_NODE_HOSTS: Object.entries(settings.swarm.nodeHosts)
            .map(([node, host]) => `${node}=${host}`)
            .join(" "),
        }
      : {}),
  };
  const api = containerName("api");
  // On a swarm the API's secrets are files in its tasks, not its environment: manage.py runs
  // through the loader that exports them (components/swarmSecrets.ts).
  const manage: Record<string, string> = onSwarm ? { MANAGE: swarmManage() } : {};
  const admin = {
    PGHOST: endpoints.operatorHost,
    PGPORT: String(endpoints.operatorPort),
    PGUSER: db.adminUser,
    PGPASSWORD: secrets.databaseAdminPassword,
    PGDATABASE: db.name,
    PGSSLMODE: db.sslmode,
    // As configured: relative paths are relative to the project directory, where the steps
    // run, so another clone or CI checkout of the same stack sees the same input.
    BACKUP_DIR: settings.backup.dir,
    // The scripts check the managed server's own disk before they copy the database there (not on
    // a swarm, where its container runs on the data node's engine, not the manager's).
    ...(db.mode === "managed" && !onSwarm ? { DATABASE_CONTAINER: containerName("postgres") } : {}),
  };
  // The maintenance window's record (scripts/window.sh) is kept beside the backups; the step that
  // opens it (the backup, or a rollback's restore) labels it with the planned stages.
  const window = { BACKUP_DIR: settings.backup.dir };
  const opensWindow = {
    WINDOW_STAGES: JSON.stringify(maintenance.stages.map(({ key, title }) => ({ key, title }))),
    WINDOW_IMAGES: appImages.join(" "),
  };
  switch (node.step) {
    case "pull":
      return {
        ...docker,
        PULL_IMAGES: ctx.pullImages!,
      };
    case "backup":
      return {
        ...docker,
        ...admin,
        ...opensWindow,
        BACKUP_KEEP: String(settings.backup.keep),
        BACKUP_TEST_RESTORE: String(settings.backup.testRestore),
        BACKUP_COMPRESS_LEVEL: String(settings.backup.compressLevel),
        RESTORE_JOBS: String(settings.backup.restoreJobs),
        ...(settings.backup.minFreeMb !== undefined ? { BACKUP_MIN_FREE_MB: String(settings.backup.minFreeMb) } : {}),
        // The version running now is read from the API container's label by the script.
        API_CONTAINER: api,
        BACKUP_TO_VERSION: settings.version,
        // The writers whose followers' plan says the backup stops them (see plan.ts, stoppedForBackup);
        // on a swarm their services, which writers-stopped.sh scales to 0.
        ...(settings.backup.stopWriters
          ? {
              STOP_WRITERS: services
                .filter((s) => s.waits.some((w) => w.via === "stoppedForBackup"))
                .map((s) => containerName(s.key))
                .join(" "),
            }
          : {}),
      };
    case "restore":
      return {
        ...docker,
        ...admin,
        ...opensWindow,
        // The version running now (the window's "from") is the API container's label.
        API_CONTAINER: api,
        RESTORE_FILE: settings.restoreFrom!,
        RESTORE_DB_OWNER: db.user,
        RESTORE_JOBS: String(settings.backup.restoreJobs),
        // "latest" means the newest backup taken while this (older) version ran.
        RESTORE_VERSION: settings.version,
        // The app containers (on a swarm, services: scaled to 0) are stopped by the script before
        // the database is swapped.
        [onSwarm ? "STOP_SERVICES" : "STOP_CONTAINERS"]: services
          .filter((s) => s.key === "api" || s.followsApi)
          .map((s) => containerName(s.key))
          .join(" "),
      };
    case "migrate":
    case "static":
      return {
        ...docker,
        ...window,
        ...manage,
        API_CONTAINER: api,
        API_START_TIMEOUT_SECONDS: String(settings.api.healthTimeoutSeconds),
      };
    case "verify":
      return {
        ...docker,
        ...window,
        ...manage,
        API_CONTAINER: api,
        ...(onSwarm
          ? { EXPECTED_SERVICES: services.map((s) => `${containerName(s.key)}=${s.replicas ?? 1}`).join(" ") }
          : { EXPECTED_CONTAINERS: services.map((s) => containerName(s.key)).join(" ") }),
        HEALTH_TIMEOUT_SECONDS: String(settings.api.healthTimeoutSeconds),
      };
  }
}
