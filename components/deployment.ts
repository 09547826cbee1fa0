import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";
import type { Settings } from "../config/schema";
import { PlanBuilder } from "./build";
import { maintenanceStages, type Maintenance } from "./maintenance";
import { apiUrlFor, planDeployment, servicesOf, type DeploymentPlan } from "./plan";
import type { SchemaGuard } from "./schemaGuard";
import { secretInputs, type DeploymentSecrets } from "./secrets";

export type { DeploymentSecrets } from "./secrets";

export interface UtilitarianDeploymentArgs {
  /**
   * Validated settings (`config/schema.ts` documents each one). Plain values, not Inputs: they
   * decide which resources exist, and a plan must be known before anything is created.
   */
  settings: Settings;
  /** Secret values. */
  secrets: DeploymentSecrets;
  /** Prefix of every physical name (containers, network, volumes). Defaults to the component name. */
  prefix?: string;
}

/**
 * The whole Utilitarian deployment on one Docker host, and its upgrade as one `pulumi up`.
 * The order of an upgrade is the plan's (`components/plan.ts`, printed by `npm run plan`); the
 * constructor builds the plan's nodes and adds no ordering of its own.
 */
export class UtilitarianDeployment extends pulumi.ComponentResource {
  /** Where the API answers on the Docker host. */
  public readonly apiUrl: pulumi.Output<string>;
  /** The Utilitarian version this deployment runs. */
  public readonly version: pulumi.Output<string>;
  /** The verified backup taken before the last upgrade, as the backup step printed it. */
  public readonly lastBackup: pulumi.Output<string>;
  /** Container names by service key. */
  public readonly containers: pulumi.Output<Record<string, string>>;
  /** The plan this deployment was built from. */
  public readonly plan: DeploymentPlan;
  /** What an upgrade to this plan's version does, stage by stage (what `npm run plan` prints). */
  public readonly maintenance: Maintenance;

  constructor(name: string, args: UtilitarianDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("utilitarian:index:UtilitarianDeployment", name, {}, opts);
    const { settings } = args;
    this.plan = planDeployment(settings);
    const builder = new PlanBuilder({ parent: this, name, prefix: args.prefix ?? name, settings, secrets: secretInputs(args.secrets), plan: this.plan });
    const built = builder.buildAll();
    this.maintenance = maintenanceStages(this.plan, {
      from: "the running version",
      containerName: (key) => builder.containerName(key),
      backup: { dir: settings.backup.dir, stopWriters: settings.backup.stopWriters },
      restoreFrom: settings.restoreFrom,
    });

    const backup = built.get("backup") as command.local.Command;
    this.version = (built.get("schema-guard") as SchemaGuard).version;
    this.apiUrl = pulumi.output(apiUrlFor(settings.api.publishAddress, settings.api.port, settings.dockerHost));
    this.lastBackup = backup.stdout.apply((out) => /^BACKUP_FILE=(.*)$/m.exec(out)?.[1] ?? "");
    this.containers = pulumi.output(Object.fromEntries(servicesOf(this.plan).map((s) => [s.key, builder.containerName(s.key)])));
    this.registerOutputs({ apiUrl: this.apiUrl, version: this.version, lastBackup: this.lastBackup, containers: this.containers, verified: (built.get("verify") as command.local.Command).stdout });
  }
}
