import * as path from "path";
import { EDGE_VERSIONS, SECRET_VALUES } from "../unit/support/fixtures";
import { configFromValues, runProgram, type ProgramRun, type RunOptions } from "../harness";

/** The project: Pulumi.yaml, index.ts. */
export const PROJECT_DIR = path.resolve(__dirname, "../..");
export const FIXTURE_PROGRAMS = path.resolve(__dirname, "../fixtures/programs");

/** A whole harness run of the real program (TypeScript compile included) takes seconds. */
export const RUN_TIMEOUT_MS = 120_000;

/**
 * Runs index.ts on stack `dev` with the dev-like test config of test/unit/support/fixtures.ts
 * (`loaded()`: edge services and the app at 1.0.0, every secret set) plus `values`.
 */
export function runDev(
  values: Record<string, unknown>,
  options: Omit<RunOptions, "programDir" | "stack" | "config" | "secretKeys">,
): Promise<ProgramRun> {
  const { config, secretKeys } = configFromValues({ ...EDGE_VERSIONS, version: "1.0.0", ...values }, SECRET_VALUES);
  return runProgram({ programDir: PROJECT_DIR, stack: "dev", config, secretKeys, ...options });
}

/** Replaces the fixtures' secret values, so that a failure message never prints one. */
export function redact(text: string): string {
  return Object.values(SECRET_VALUES).reduce((t, secret) => t.split(secret).join("[secret]"), text);
}

/** A failure message for a run: exit code, the engine's errors and the program's stderr, redacted. */
export function explain(run: ProgramRun): string {
  const errors = run.diagnostics.filter((d) => d.severity !== "info").map((d) => `  ${d.severity}: ${d.message}`);
  return redact(`exit ${run.exitCode}\n${errors.join("\n")}\nstderr: ${run.stderr.slice(-2000)}`);
}

/** The calls the real dynamic provider host served for one resource, as "Method" or "Method: result". */
export function callsFor(run: ProgramRun, name: string): string[] {
  return run.dynamicCalls.filter((c) => c.name === name).map((c) => (c.result ? `${c.method}: ${c.result}` : c.method));
}

/** `type name` of every custom resource, sorted. */
export function customResources(run: ProgramRun): string[] {
  return run.registrations
    .filter((r) => r.custom)
    .map((r) => `${r.type} ${r.name}`)
    .sort();
}

/** True when any fixture secret appears in what a run shows a user (diagnostics, output, calls). */
export function showsASecret(run: ProgramRun): boolean {
  const shown = JSON.stringify([run.diagnostics, run.stdout, run.stderr, run.dynamicCalls]);
  return Object.values(SECRET_VALUES).some((secret) => shown.includes(secret));
}
