import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { packageRoot } from "./paths";

/** Where the step scripts live (in a checkout or an installed package); the same files the real tests run. */
export const SCRIPTS_DIR = path.join(packageRoot(), "scripts");

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
  /** A script in `scripts/` that runs the step's script as its child (e.g. `writers-stopped.sh`). */
  wrapper?: string;
  /**
   * A changed setting runs the script again instead of only recording it: for a step that is safe
   * to repeat and whose settings say what it must do (the nodes' pull). Defaults to false.
   */
  rerunOnChange?: boolean;
}

/**
 * One step of the runbook, run on the machine that runs `pulumi up` (it reaches the Docker host
 * through DOCKER_HOST). A non-zero exit fails the step with the script's output in the error,
 * and the engine issues no further steps.
 */
export function maintenanceStep(
  name: string,
  args: MaintenanceStepArgs,
  opts: pulumi.CustomResourceOptions,
): command.local.Command {
  return new command.local.Command(
    name,
    {
      create: args.wrapper
        ? `bash ${quote(scriptPath(args.wrapper))} ${quote(scriptPath(args.script))}`
        : `bash ${quote(scriptPath(args.script))}`,
      // A changed setting must not repeat a backup or a migration: an update only records it. Its
      // stdout replaces the recorded one, so it prints the last real run's stdout again (the
      // provider passes it in PULUMI_COMMAND_STDOUT): outputs such as `lastBackup` survive.
      update: args.rerunOnChange
        ? undefined
        : `echo ${quote(`${args.script}: already done for these triggers; settings recorded`)} >&2; ` +
          `if [ -n "\${PULUMI_COMMAND_STDOUT:-}" ]; then printf '%s\\n' "$PULUMI_COMMAND_STDOUT"; fi`,
      addPreviousOutputInEnv: true,
      interpreter: ["/bin/bash", "-c"],
      environment: args.environment,
      triggers: args.runsOnceFor,
    },
    opts,
  );
}

/**
 * The script's path relative to the program's working directory (the project directory, where
 * the command provider runs commands too): the same in every clone and CI checkout, so moving
 * the project changes no input. From an installed package it is `node_modules/<pkg>/scripts/...`.
 */
export function scriptPath(script: string): string {
  return path.relative(process.cwd(), path.join(SCRIPTS_DIR, script)) || script;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
