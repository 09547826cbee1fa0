import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

/** Where the step scripts live; the same files the real tests run. */
export const SCRIPTS_DIR = path.resolve(__dirname, "..", "scripts");

export interface MaintenanceStepArgs {
  /** Script file name in `scripts/`. */
  script: string;
  /**
   * Values that make the step run again when any of them changes (the Command is replaced and
   * its `create` runs). Nothing else re-runs it: changed settings alone are an update, which
   * only records them.
   */
  runsOnceFor: pulumi.Input<pulumi.Input<string>[]>;
  /** Everything the script reads, secrets included: environment only, never the command text. */
  environment: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * One step of the runbook, run on the machine that runs `pulumi up` (it reaches the Docker host
 * through DOCKER_HOST). A non-zero exit fails the step with the script's output in the error,
 * and the engine issues no further steps.
 */
export function maintenanceStep(name: string, args: MaintenanceStepArgs, opts: pulumi.CustomResourceOptions): command.local.Command {
  const scriptPath = path.join(SCRIPTS_DIR, args.script);
  return new command.local.Command(name, {
    create: `bash ${quote(scriptPath)}`,
    // A changed setting must not repeat a backup or a migration: an update only records it.
    update: `echo ${quote(`${args.script}: already done for these triggers; settings recorded`)}`,
    interpreter: ["/bin/bash", "-c"],
    environment: args.environment,
    triggers: args.runsOnceFor,
  }, opts);
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
