/**
 * A model of how the Pulumi engine (v3.250.0, pulumi/pulumi `pkg/resource/deploy/`) turns last run's
 * state and this run's registrations into steps, and carries them out. Each rule names the engine
 * function it follows; provider answers come from provider-facts.ts.
 *
 * - A resource registers when everything it waits for has finished: its `dependencies` (dependsOn and
 *   property dependencies, as the SDK sent them), its parent and its provider. Among ready work the
 *   order is a `Schedule`: nothing but a dependency orders two resources (deployment_executor.go
 *   handleSingleEvent hands each registration's steps to the step executor as one chain; chains run in
 *   parallel). The model runs one step at a time; a schedule picks which chain moves next.
 * - Step generation (step_generator.go generateStepsFromDiff, continueStepsFromDiff): create, same,
 *   update, or replace; delete-before-replace when the provider asks for it or the
 *   `deleteBeforeReplace` option says so (the option wins either way); for delete-before-replace the
 *   dependents that must go first (calculateDependentReplacements, findResourcesReplacedWith) are
 *   deleted in reverse dependency order, then the old resource (unless already deleted), then the new
 *   one is created. Deleted dependents stay in the state as `pendingReplacement` and are re-created
 *   when they register (generateStepsFromDiff "Case 1: recreating").
 * - Create-before-delete olds and resources no longer declared are deleted after the program finished,
 *   in reverse dependency order (GenerateDeletes, ScheduleDeletes), and only if no step failed: a failed
 *   step cancels the run (step_executor.go cancelDueToError), and Execute returns before performPostSteps.
 * - A failed step stops the run; the state keeps what finished. A create that failed part way is kept
 *   with its initialisation errors (step.go CreateStep.Apply; engine update.go OnResourceStepPost).
 *
 * It is not the engine: aliases, targets, imports, refresh programs, deletedWith, ignoreChanges,
 * views, hooks and previews are not modelled (see test/unit/lifecycle.test.ts for the ported tests).
 */
import { Deployment, pendingDeleteKey, recordInSnapshot } from "./engine-deployment";
import {
  PartialCreate,
  type Declared,
  type RunOptions,
  type RunResult,
  type Schedule,
  type StateEntry,
  type Step,
} from "./engine-types";

export { CONTAINER } from "./provider-facts";
export * from "./engine-types";

/** Steps that do something (everything but "same"). */
export const actions = (steps: Step[]) => steps.filter((s) => s.op !== "same");

/** Whether the engine calls the provider for this step (executors are called for these only). */
export function callsProvider(step: Step): boolean {
  const entry = step.new ?? step.old;
  if (step.op === "same" || step.op === "remove-pending-replace" || entry?.custom === false) return false;
  // step.go DeleteStep.Apply: a protected resource is refused before the provider; retainOnDelete skips it.
  if ((step.op === "delete" || step.op === "delete-replaced") && step.old?.retainOnDelete) return false;
  if (step.op === "delete" && step.old?.protect) return false;
  return true;
}

/**
 * The engine's cancellation: `pulumi up` got its first SIGINT or SIGTERM (pkg/backend/cancellation_scope.go
 * calls cancelSource.Cancel(); a second signal terminates, which the caller models: the engine then stops
 * waiting and records nothing more).
 */
export interface Cancellation {
  /** True once the run is cancelled; asked before each further step. */
  cancelled?: () => boolean;
}

/**
 * Carries out a whole `pulumi up`: steps in a schedule the graph allows, stopping at the first failure,
 * or after a cancellation at the step in flight: step_executor.go executeChain checks `se.ctx.Done()`
 * before each step of a chain, so the step in flight finishes and is recorded and no further step starts;
 * deployment_executor.go Execute leaves its loop on the cancelled context and never reaches
 * performPostSteps, so no delete after the program runs either.
 */
export async function runUp(
  state: Map<string, StateEntry>,
  next: Declared[],
  options: RunOptions & Cancellation = {},
): Promise<RunResult & { cancelled: boolean }> {
  const run = new Deployment(refreshed(state, options.refresh), next, options);
  const execute = options.execute ?? modelExecutor;
  const cancelled = () => options.cancelled?.() ?? false;
  for (let step = cancelled() ? undefined : run.next(); step; step = cancelled() ? undefined : run.next()) {
    let error: Error | undefined;
    try {
      if (callsProvider(step)) await execute(step);
      else run.refuseProtectedDelete(step);
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
    }
    run.complete(step, error);
  }
  return { ...run.result(), cancelled: cancelled() };
}

/**
 * The steps of a run in which every provider call succeeds (a fixed-name conflict is only flagged);
 * the engine's own refusals (protection) still stop it.
 */
export function planSteps(
  previous: Declared[] | Map<string, StateEntry>,
  next: Declared[],
  schedule?: Schedule,
): Step[] {
  const run = new Deployment(previous instanceof Map ? previous : stateOf(previous), next, { schedule });
  for (let step = run.next(); step; step = run.next()) {
    let error: Error | undefined;
    try {
      if (!callsProvider(step)) run.refuseProtectedDelete(step);
    } catch (e) {
      error = e as Error;
    }
    run.complete(step, error);
  }
  return run.result().steps;
}

/** The state after `step` finished: what the engine writes to its snapshot (for step-by-step callers). */
export function applyStep(state: Map<string, StateEntry>, step: Step, next: Declared[], partial?: PartialCreate): void {
  const declared = step.new ?? next.find((r) => r.name === step.name);
  // The step's entries belong to the run that planned it: act on the caller's own entries.
  const old = step.old?.delete
    ? [...state.values()].find((e) => e.name === step.name && e.delete)
    : state.get(step.name);
  recordInSnapshot(state, { ...step, new: declared, old }, partial);
}

/** Last run's registrations as a state (old copies marked `delete` get their own keys). */
export function stateOf(entries: readonly StateEntry[]): Map<string, StateEntry> {
  const state = new Map<string, StateEntry>();
  for (const e of entries) state.set(e.delete ? pendingDeleteKey(state, e.name) : e.name, { ...e });
  return state;
}

/** What the engine and Docker do when no executor is given: everything succeeds but a name conflict. */
async function modelExecutor(step: Step): Promise<void> {
  if (step.fixedNameConflict) throw new Error(step.fixedNameConflict);
}

function refreshed(state: Map<string, StateEntry>, refresh: RunOptions["refresh"]): Map<string, StateEntry> {
  if (!refresh) return state;
  const out = new Map<string, StateEntry>();
  for (const [key, e] of state) {
    const read =
      e.custom === false || e.delete || e.pendingReplacement || e.type.startsWith("pulumi:providers:") ? e : refresh(e);
    if (read) out.set(key, read);
  }
  return out;
}
