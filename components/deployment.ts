import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";
import { ArgsError, validateArgs, type UtilitarianDeploymentArgs } from "./args";
import { containerNameOf, PlanBuilder } from "./build";
import { maintenanceStages, type Maintenance } from "./maintenance";
import { planDeployment, servicesOf, type DeploymentPlan } from "./plan";
import { apiUrlFor } from "./urls";
import type { SchemaGuard } from "./schemaGuard";
import { secretInputs } from "./secrets";

export type { DeploymentSecrets } from "./secrets";
export type { UtilitarianDeploymentArgs } from "./args";

/**
 * The whole Utilitarian deployment on one Docker host, and its upgrade as one `pulumi up`.
 * The order of an upgrade is the plan's (`components/plan.ts`, printed by `npm run plan`); the
 * constructor builds the plan's nodes and adds no ordering of its own.
 */
export class UtilitarianDeployment extends pulumi.ComponentResource {
  /** Where the API answers on the Docker host: the maintenance proxy's address (`proxy.enabled`, the default), or the API's own with the proxy off; the same `api.publishAddress` and `api.port` either way. */
  public readonly apiUrl: pulumi.Output<string>;
  /** The Utilitarian version this deployment runs. */
  public readonly version: pulumi.Output<string>;
  /** The verified backup taken before the last upgrade, as the backup step printed it. */
  public readonly lastBackup: pulumi.Output<string>;
  /**
   * The report of the last maintenance window that completed (Markdown; JSON and SVG beside it),
   * as verify printed it; empty until one has. `npm run report` prints the newest, failed too.
   */
  public readonly lastWindowReport: pulumi.Output<string>;
  /** Container names by service key. */
  public readonly containers: pulumi.Output<Record<string, string>>;
  /** The plan this deployment was built from. */
  public readonly plan: DeploymentPlan;
  /** What an upgrade to this plan's version does, stage by stage (what `npm run plan` prints). */
  public readonly maintenance: Maintenance;

  /**
   * Validates `args` (every problem reported at once, before anything registers) and builds the
   * deployment. A docker or postgresql provider in `opts.providers` (or `opts.provider`, or
   * inherited from `opts.parent`) is used instead of the one the component would create.
   */
  constructor(name: string, args: UtilitarianDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
    const { settings, planSettings, prefix } = validateArgs(name, args);
    super("utilitarian:index:UtilitarianDeployment", name, {}, opts);
    if (settings.registry && this.getProvider("docker:index/container:Container")) {
      throw new ArgsError(name, [
        "`registry` is set, but the docker provider comes from `opts.providers`, and the component configures no provider it did not create: give that provider the pull account (`registryAuth`) and leave `registry` and `secrets.registryPassword` out",
      ]);
    }
    this.plan = planDeployment(planSettings);
    this.maintenance = maintenanceStages(this.plan, {
      from: "the running version",
      containerName: (key) => containerNameOf(prefix, key),
      backup: {
        dir: settings.backup.dir,
        stopWriters: settings.backup.stopWriters,
        testRestore: settings.backup.testRestore,
      },
      restoreFrom: settings.restoreFrom,
    });
    const builder = new PlanBuilder({
      parent: this,
      name,
      prefix,
      settings,
      secrets: secretInputs(args.secrets),
      plan: this.plan,
      maintenance: this.maintenance,
    });
    const built = builder.buildAll();

    const backup = built.get("backup") as command.local.Command;
    this.version = (built.get("schema-guard") as SchemaGuard).version;
    this.apiUrl = pulumi.output(apiUrlFor(settings.api.publishAddress, settings.api.port, settings.dockerHost));
    this.lastBackup = backup.stdout.apply((out) => /^BACKUP_FILE=(.*)$/m.exec(out)?.[1] ?? "");
    const verify = built.get("verify") as command.local.Command;
    this.lastWindowReport = verify.stdout.apply((out) => /^REPORT_FILE=(.*)$/m.exec(out)?.[1] ?? "");
    this.containers = pulumi.output(
      Object.fromEntries(servicesOf(this.plan).map((s) => [s.key, builder.containerName(s.key)])),
    );
    this.registerOutputs({
      apiUrl: this.apiUrl,
      version: this.version,
      lastBackup: this.lastBackup,
      lastWindowReport: this.lastWindowReport,
      containers: this.containers,
      verified: verify.stdout,
    });
  }
}
