/**
 * One `pulumi up` of the engine model: the step generator (step_generator.go), the executor's
 * scheduling (deployment_executor.go, step_executor.go) and the snapshot (backend/snapshot.go, step.go),
 * stepped one step at a time. engine.ts drives it.
 */
import {
  dependenciesOf,
  dependencyOrder,
  dependsOnAny,
  picker,
  transitiveDependencies,
  waitsFor,
  type Ready,
} from "./engine-graph";
import {
  PartialCreate,
  plain,
  providerName,
  type Declared,
  type RunOptions,
  type RunResult,
  type StateEntry,
  type Step,
} from "./engine-types";
import { CONTAINER, factsOf, providerReplaces } from "./provider-facts";

function changedProperties(before: Record<string, any>, after: Record<string, any>): string[] {
  const a = plain(before);
  const b = plain(after);
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  // The dynamic provider's serialised code is not compared by its diff (our SchemaGuard's diff compares
  // version and restoreFrom only).
  return [...keys].filter((k) => k !== "__provider" && JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

/** resource.PropertyPath.Contains at the granularity of top-level keys: "*" holds every key. */
function pathContains(path: string, key: string): boolean {
  if (path === "*") return true;
  return path.split(/[.[]/, 1)[0] === key;
}

/** Where an old copy waiting for its deletion is kept: beside the live entry, under its own key. */
export function pendingDeleteKey(state: Map<string, unknown>, name: string): string {
  for (let n = 1; ; n++) {
    const key = n === 1 ? `${name} (pending delete)` : `${name} (pending delete ${n})`;
    if (!state.has(key)) return key;
  }
}

/** The snapshot changes a finished step makes (snapshot.go's mutations, step.go's flags). */
export function recordInSnapshot(state: Map<string, StateEntry>, step: Step, partial?: PartialCreate): void {
  const removeEntry = (entry: StateEntry | undefined) => {
    for (const [k, v] of state) if (v === entry) state.delete(k);
  };
  const fresh = (): StateEntry => ({ ...step.new!, ...(partial ? { initErrors: [partial.message] } : {}) });
  switch (step.op) {
    case "create":
    case "update":
    case "same":
      state.set(step.name, fresh());
      return;
    case "replace": {
      const old = step.old;
      if (old && !step.deleteBeforeReplace && !old.pendingReplacement) {
        // CreateStep.Apply marks the old copy `Delete`; it is deleted at the end of the run.
        old.delete = true;
        removeEntry(old);
        state.set(pendingDeleteKey(state, step.name), old);
      } else if (old) {
        // snapshot.go createSnapshotMutation.End: a replacement of a pending-replacement resource drops it.
        if (!step.deleteBeforeReplace) old.delete = true;
        removeEntry(old);
      }
      state.set(step.name, fresh());
      return;
    }
    case "delete-replaced":
      if (step.old && !step.old.delete) {
        // DeleteStep.Apply: deleted ahead of its replacement; stays in the state until that is created.
        step.old.pendingReplacement = true;
        return;
      }
      removeEntry(step.old);
      return;
    case "delete":
    case "remove-pending-replace":
      removeEntry(step.old);
  }
}

/** A failure the engine itself raises (protection), not the provider. */
export class ModelFailure extends Error {}

interface Chain {
  name: string;
  seq: number;
  steps: Step[];
  /** The chain's last step resolves the registration (CreateStep/UpdateStep/SameStep call reg.Done). */
  registration: boolean;
}

interface Work extends Ready {
  register?: Declared;
  chain?: Chain;
}

/** One `pulumi up`: the step generator, the executor's scheduling and the snapshot, stepped one step at a time. */
export class Deployment {
  private readonly snapshot: Map<string, StateEntry>;
  /** The base snapshot's entries in dependency order (snapshots are topologically sorted). */
  private readonly olds: StateEntry[];
  private readonly live = new Map<string, StateEntry>();
  private readonly declared = new Map<string, Declared>();
  private readonly steps: Step[] = [];
  private failed?: { step: Step; error: Error };
  /** The first protected delete refused: the run fails once the deletes are done (cancelDueToError). */
  private refusedDelete?: { step: Step; error: Error };
  private readonly erroredDeletes: StateEntry[] = [];

  // The step generator's bookkeeping (step_generator.go: creates, sames, updates, replaces, deletes, pendingDeletes).
  private readonly generated = new Set<string>();
  private readonly replaced = new Set<string>();
  private readonly deleted = new Set<string>();
  private readonly pendingDeletes = new Set<StateEntry>();

  private readonly finished = new Set<string>();
  private readonly waiting = new Set<string>();
  private readonly work: Work[] = [];
  /** The chain whose first step `next` handed out. */
  private current?: Chain;
  private tick = 0;
  private deleteLevels?: Step[][];
  private readonly pick: (work: Work[]) => number;

  constructor(
    state: Map<string, StateEntry>,
    next: Declared[],
    private readonly options: RunOptions,
  ) {
    this.snapshot = new Map([...state].map(([k, v]) => [k, { ...v }]));
    this.olds = dependencyOrder([...this.snapshot.values()]);
    for (const e of this.olds) if (!e.delete) this.live.set(e.name, e);
    for (const r of next) {
      if (this.declared.has(r.name)) throw new Error(`${r.name} is declared twice`);
      this.declared.set(r.name, r);
    }
    for (const r of next) {
      for (const d of waitsFor(r)) {
        if (!this.declared.has(d)) throw new Error(`${r.name} waits for ${d}, which this run does not declare`);
      }
      this.waiting.add(r.name);
    }
    const schedule = options.schedule ?? "earliest";
    this.pick =
      typeof schedule === "object" && "choose" in schedule
        ? (work) =>
            schedule.choose(
              work.map((w) => ({
                name: w.name,
                next: w.chain ? { op: w.chain.steps[0].op, name: w.chain.steps[0].name } : undefined,
              })),
            )
        : picker<Work>(schedule);
    this.release();
  }

  /** The next step to carry out, or undefined when the run is over. */
  next(): Step | undefined {
    for (;;) {
      if (this.failed) return undefined;
      if (this.current) {
        this.steps.push(this.current.steps[0]);
        return this.current.steps[0];
      }
      if (this.work.length === 0 && !this.scheduleDeletes()) return undefined;
      const [item] = this.work.splice(this.pick(this.work), 1);
      if (item.register) this.register(item.register);
      else this.current = item.chain;
    }
  }

  /** Records the outcome of the step `next` returned. */
  complete(step: Step, error?: Error): void {
    const chain = this.current!;
    this.current = undefined;
    const partial =
      error instanceof PartialCreate && (step.op === "create" || step.op === "replace") ? error : undefined;
    if (error && !partial) {
      if (error instanceof ModelFailure && !chain.registration) {
        // step_executor.go cancelDueToError: a protected delete does not cancel the other deletes.
        this.refusedDelete ??= { step, error };
        this.erroredDeletes.push(step.old!);
        return;
      }
      this.failed = { step, error };
      return;
    }
    recordInSnapshot(this.snapshot, step, partial);
    if (partial) {
      this.failed = { step, error: partial };
      return;
    }
    if (chain.steps.length > 1) {
      this.work.push({
        tick: ++this.tick,
        seq: chain.seq,
        name: chain.name,
        chain: { ...chain, steps: chain.steps.slice(1) },
      });
    } else if (chain.registration) {
      this.finished.add(chain.name);
      this.release();
    }
  }

  /** step.go DeleteStep.Apply: `if !s.replacing && s.old.Protect { return ..., deleteProtectedError{...} }`. */
  refuseProtectedDelete(step: Step): void {
    if (step.op === "delete" && step.old?.protect) {
      throw new ModelFailure(
        `resource "${step.name}" cannot be deleted because it is protected. To unprotect the resource, ` +
          "either remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`, or use the command " +
          `\`pulumi state unprotect\``,
      );
    }
  }

  result(): RunResult {
    const failed = this.failed ?? this.refusedDelete;
    const state = new Map([...this.snapshot].map(([k, v]) => [k, { ...v }]));
    return { steps: [...this.steps], state, ...(failed ? { failed } : {}) };
  }

  /** Registrations whose parent, provider and dependencies have all finished become ready. */
  private release(): void {
    const tick = ++this.tick;
    for (const name of [...this.waiting]) {
      const r = this.declared.get(name)!;
      if (waitsFor(r).every((d) => this.finished.has(d))) {
        this.waiting.delete(name);
        this.work.push({ tick, seq: r.seq, name: r.name, register: r });
      }
    }
  }

  private register(r: Declared): void {
    let steps: Step[];
    try {
      steps = this.generateSteps(r);
    } catch (e) {
      if (!(e instanceof ModelFailure)) throw e;
      // The step generator bails: the run stops before any step of this registration.
      const step: Step = { op: "replace", name: r.name, type: r.type, new: r, old: this.live.get(r.name) };
      this.steps.push(step);
      this.failed = { step, error: e };
      return;
    }
    this.work.push({
      tick: ++this.tick,
      seq: r.seq,
      name: r.name,
      chain: { name: r.name, seq: r.seq, steps, registration: true },
    });
  }

  /** step_generator.go continueStepsFromImport (cases 1, 3, 4) and continueStepsFromDiff. */
  private generateSteps(r: Declared): Step[] {
    const old = this.live.get(r.name);
    const base = { name: r.name, type: r.type, new: r };
    this.generated.add(r.name);
    if (this.deleted.has(r.name)) {
      // Case 1, recreating: deleted ahead of another resource's delete-before-replace in this run.
      this.deleted.delete(r.name);
      this.replaced.add(r.name);
      return [{ ...base, op: "replace", old, deleteBeforeReplace: true }];
    }
    if (!old) return [{ ...base, op: "create" }];

    const diff = this.diff(r, old);
    if (diff.changed.length > 0 || diff.replaceKeys.length > 0 || diff.triggerReplace || old.pendingReplacement) {
      if (diff.replaceKeys.length > 0 || diff.triggerReplace || old.pendingReplacement) {
        // "unable to replace resource ... as it is currently marked for protection" (continueStepsFromDiff)
        if (r.protect && old.protect) {
          throw new ModelFailure(
            `unable to replace resource "${r.name}"\nas it is currently marked for protection. To unprotect the ` +
              "resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`",
          );
        }
        this.replaced.add(r.name);
        const deleteBeforeReplace = r.deleteBeforeReplace ?? diff.providerDeleteBeforeReplace;
        const replace: Step = {
          ...base,
          op: "replace",
          old,
          changed: diff.changed,
          replaceKeys: diff.replaceKeys,
          deleteBeforeReplace,
        };
        if (!deleteBeforeReplace) {
          // Create-before-delete: the old copy is deleted at the end of the run (GenerateDeletes).
          const oldName = plain(old.inputs).name;
          if (
            r.type === CONTAINER &&
            !old.pendingReplacement &&
            oldName !== undefined &&
            oldName === plain(r.inputs).name
          ) {
            replace.fixedNameConflict =
              `create-before-delete of a fixed-name container: ${r.name} is replaced ` +
              `(${diff.replaceKeys.join(", ")}) while the old container named '${oldName}' still exists; Docker refuses ` +
              `the create (Conflict. The container name "/${oldName}" is already in use). Set deleteBeforeReplace: true.`;
          }
          return [replace];
        }
        return [...this.deletesAhead(r, old), replace];
      }
      return [{ ...base, op: "update", old, changed: diff.changed }];
    }
    // "If resource was unchanged, but there were initialization errors, generate an empty update step".
    if (old.initErrors?.length) return [{ ...base, op: "update", old, changed: [], initErrors: old.initErrors }];
    return [{ ...base, op: "same", old }];
  }

  /** The provider's diff (sg.diff, diffResource) with the engine's replaceOnChanges and init errors applied. */
  private diff(r: Declared, old: StateEntry) {
    const changed = changedProperties(old.inputs, r.inputs);
    // shouldTriggerReplace: nulls mean "no trigger"; otherwise any difference replaces.
    const triggerReplace =
      r.replacementTrigger !== undefined &&
      r.replacementTrigger !== null &&
      old.replacementTrigger !== undefined &&
      old.replacementTrigger !== null &&
      JSON.stringify(plain(r.replacementTrigger)) !== JSON.stringify(plain(old.replacementTrigger));
    let replaceKeys: string[] = [];
    let providerDeleteBeforeReplace = false;
    const facts = factsOf(r.type, this.options.providers);
    if (triggerReplace) {
      // generateStepsFromDiff: "Return that there is a diff, but don't fill in any details".
    } else if ((r.replaceWith ?? []).some((w) => this.replaced.has(w))) {
      replaceKeys = ["replaceWith"];
    } else if (r.provider && this.replaced.has(providerName(r.provider)!)) {
      replaceKeys = ["provider"]; // providerChanged: the new provider's ID differs
    } else if (r.custom !== false) {
      replaceKeys = changed.filter((p) => providerReplaces(facts, p));
      providerDeleteBeforeReplace =
        facts.deleteBeforeReplace === "always" ||
        (facts.deleteBeforeReplace === "whenReplacing" && replaceKeys.length > 0);
    }
    // applyReplaceOnChanges: changed keys under a replaceOnChanges path become replace keys; init errors
    // replace only where a replaceOnChanges path holds "#initerror" (e.g. "*"). DeleteBeforeReplace is kept.
    const onChanges = r.replaceOnChanges ?? [];
    for (const p of changed)
      if (!replaceKeys.includes(p) && onChanges.some((path) => pathContains(path, p))) replaceKeys.push(p);
    if (old.initErrors?.length && onChanges.some((path) => pathContains(path, "#initerror")))
      replaceKeys.push("#initerror");
    return { changed, replaceKeys, triggerReplace, providerDeleteBeforeReplace };
  }

  /** The delete-before-replace chain's deletions: dependents in reverse dependency order, then the old resource. */
  private deletesAhead(r: Declared, old: StateEntry): Step[] {
    const replacedWith = this.olds.filter((e) => (e.replaceWith ?? []).includes(r.name));
    const schedule = this.options.schedule;
    const ordered =
      typeof schedule === "object" && "choose" in schedule && schedule.mapOrder
        ? schedule.mapOrder(replacedWith.map((e) => e.name)).map((name) => replacedWith.find((e) => e.name === name)!)
        : replacedWith;
    const toReplace = [...this.dependentReplacements(old), ...ordered];
    const steps: Step[] = [];
    for (const dependent of toReplace.reverse()) {
      if (this.pendingDeletes.has(dependent)) continue; // "already deleted this resource due to some other DBR"
      if (dependent.protect && !dependent.delete) {
        throw new ModelFailure(
          `unable to replace resource "${dependent.name}" as part of replacing "${r.name}" as it is ` +
            "currently marked for protection.",
        );
      }
      // A dependent an earlier run already deleted (pending replacement) is deleted again: the engine
      // does not look at the flag here, so the provider gets an ID that is gone.
      steps.push({
        op: dependent.delete ? "delete" : "delete-replaced",
        name: dependent.name,
        type: dependent.type,
        because: r.name,
        deleteBeforeReplace: true,
        old: dependent,
        ...(dependent.pendingReplacement ? { alreadyDeleted: true } : {}),
      });
      this.deleted.add(dependent.name);
      this.pendingDeletes.add(dependent);
    }
    // "If the resource is already pending replacement we don't need to emit any step."
    if (!old.pendingReplacement)
      steps.push({ op: "delete-replaced", name: r.name, type: r.type, deleteBeforeReplace: true, old });
    return steps;
  }

  /**
   * calculateDependentReplacements: the old snapshot's transitive dependents of `root` (DependingOn, not
   * through resources already registered or deleted in this run) whose provider would replace them once
   * the inputs that depend on a replaced resource turn unknown. Components and `dependsOn`-only
   * dependents are not replaced.
   */
  private dependentReplacements(root: StateEntry): StateEntry[] {
    const ignore = new Set([...this.generated, ...this.deleted]);
    const reached = new Set([root.name]);
    const replaceSet = new Set([root.name]);
    const toReplace: StateEntry[] = [];
    for (const d of this.olds) {
      if (d === root || ignore.has(d.name) || !dependsOnAny(d, reached)) continue;
      reached.add(d.name);
      if (this.requiresReplacement(d, replaceSet)) {
        toReplace.push(d);
        replaceSet.add(d.name);
      }
    }
    return toReplace;
  }

  private requiresReplacement(d: StateEntry, replaceSet: Set<string>): boolean {
    if (d.custom === false) return false;
    if (d.provider && replaceSet.has(providerName(d.provider)!)) return true;
    const unknown = Object.keys(d.inputs).filter((p) =>
      (d.propertyDependencies[p] ?? []).some((x) => replaceSet.has(x)),
    );
    const facts = factsOf(d.type, this.options.providers);
    return unknown.some(
      (p) => providerReplaces(facts, p) || (d.replaceOnChanges ?? []).some((path) => pathContains(path, p)),
    );
  }

  /**
   * performPostSteps: after the program finished, GenerateDeletes then ScheduleDeletes. Returns false
   * when there is nothing (more) to do.
   */
  private scheduleDeletes(): boolean {
    if (this.current || this.failed) return false;
    if (this.waiting.size > 0 || this.finished.size < this.declared.size) {
      throw new Error(`the model is stuck: ${[...this.waiting].join(", ")} wait for resources that never finish`);
    }
    if (!this.deleteLevels) this.deleteLevels = this.antichains(this.generateDeletes());
    while (this.work.length === 0) {
      const level = this.deleteLevels.shift();
      if (!level) return false;
      // deployment_executor.go performPostSteps: deletes of what an errored (protected) delete depends on are skipped.
      const skipped = transitiveDependencies(this.erroredDeletes, this.olds);
      const tick = ++this.tick;
      for (const step of level.filter((s) => !skipped.has(s.old!))) {
        this.work.push({
          tick,
          seq: step.old!.seq,
          name: step.name,
          chain: { name: step.name, seq: step.old!.seq, steps: [step], registration: false },
        });
      }
    }
    return true;
  }

  private generateDeletes(): Step[] {
    const steps: Step[] = [];
    for (const e of this.olds) {
      const base = { name: e.name, type: e.type, old: e };
      if (e.delete) {
        if (this.pendingDeletes.has(e)) continue;
        steps.push({
          ...base,
          op: "delete-replaced",
          deleteBeforeReplace: false,
          ...(e.pendingReplacement ? { alreadyDeleted: true } : {}),
        });
      } else if (!this.generated.has(e.name)) {
        steps.push(e.pendingReplacement ? { ...base, op: "remove-pending-replace" } : { ...base, op: "delete" });
      }
    }
    return steps;
  }

  /** ScheduleDeletes: levels of deletes that do not depend on each other, dependents first. */
  private antichains(deletes: Step[]): Step[][] {
    const condemned = new Map(deletes.map((s) => [s.old!, s]));
    const levels: Step[][] = [];
    while (condemned.size > 0) {
      const level = [...condemned.keys()].filter((e) => !dependenciesOf(e, this.olds).some((d) => condemned.has(d)));
      if (level.length === 0) throw new Error("the deletes form a cycle");
      levels.push(level.map((e) => condemned.get(e)!));
      for (const e of level) condemned.delete(e);
    }
    return levels.reverse();
  }
}
