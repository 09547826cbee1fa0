/**
 * A model of how the Pulumi engine turns "last run's registrations" and "this run's
 * registrations" into steps, following ../shared/notes/pulumi.md:
 * - resources are stepped in registration order (a resource registers only after what it waits for);
 * - docker.Container is always delete-before-replace: before the new one is created, the engine
 *   deletes, in reverse dependency order, every dependent from the last snapshot whose input
 *   property depends on a resource being replaced and is one that forces a replacement, unless
 *   that dependent already registered in this run; then it deletes the old resource;
 * - other replacements are create-before-delete: the old one goes at the very end;
 * - `dependsOn` alone never causes a dependent's deletion.
 * It is the ordering half of the rehearsal (test/real) and of the unit tests on upgrade plans.
 * It is not the engine: the README says so.
 */

export interface Declared {
  type: string;
  name: string;
  inputs: Record<string, any>;
  propertyDependencies: Record<string, string[]>;
  dependencies: string[];
  replaceOnChanges: string[];
  seq: number;
}

export type StepOp = "create" | "update" | "replace" | "delete" | "delete-replaced" | "same";

export interface Step {
  op: StepOp;
  name: string;
  type: string;
  /** For replace/update: the input properties that differ. */
  changed?: string[];
  /** For a dependent deleted ahead of a replacement: whose replacement. */
  because?: string;
}

const CONTAINER = "docker:index/container:Container";
const FORCE_NEW: Record<string, string[] | "all"> = {
  [CONTAINER]: ["image", "envs", "command", "entrypoints", "labels", "name", "networksAdvanced", "volumes", "mounts", "ports",
    "hostname", "user", "workingDir", "stopSignal", "stopTimeout", "logDriver", "logOpts", "networkMode", "privileged", "readOnly"],
  "docker:index/remoteImage:RemoteImage": ["name", "pullTriggers", "platform"],
  "command:local:Command": ["triggers"],
  "docker:index/network:Network": "all",
  "docker:index/volume:Volume": "all",
  "postgresql:index/database:Database": ["name", "template", "encoding", "lcCollate", "lcCtype"],
};
const DELETE_BEFORE_REPLACE = new Set([CONTAINER]);

/** The key Pulumi marks a secret value with when it serialises inputs. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Inputs with Pulumi's secret wrappers removed, for comparison and for carrying them out. */
export function plain(value: any): any {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    if (SECRET_SIG in value) return plain(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function forcesReplacement(r: Declared, property: string): boolean {
  const rule = FORCE_NEW[r.type];
  return rule === "all" || (rule !== undefined && rule.includes(property)) || r.replaceOnChanges.includes(property);
}

function changedProperties(before: Declared, after: Declared): string[] {
  const a = plain(before.inputs);
  const b = plain(after.inputs);
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => k !== "__provider" && JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

export function planSteps(previous: Declared[], next: Declared[]): Step[] {
  const steps: Step[] = [];
  const snapshot = new Map(previous.map((r) => [r.name, r]));
  const registered = new Set<string>();
  const deferredDeletes: Step[] = [];

  for (const r of [...next].sort((x, y) => x.seq - y.seq)) {
    const old = snapshot.get(r.name);
    registered.add(r.name);
    if (!old) {
      steps.push({ op: "create", name: r.name, type: r.type });
      continue;
    }
    const changed = changedProperties(old, r);
    if (changed.length === 0) {
      steps.push({ op: "same", name: r.name, type: r.type });
      continue;
    }
    if (!changed.some((p) => forcesReplacement(r, p))) {
      steps.push({ op: "update", name: r.name, type: r.type, changed });
      snapshot.set(r.name, r);
      continue;
    }
    if (DELETE_BEFORE_REPLACE.has(r.type)) {
      for (const dependent of dependentsToReplace(r.name, snapshot, registered)) {
        steps.push({ op: "delete", name: dependent.name, type: dependent.type, because: r.name });
        snapshot.delete(dependent.name);
      }
      steps.push({ op: "delete-replaced", name: r.name, type: r.type });
      steps.push({ op: "replace", name: r.name, type: r.type, changed });
    } else {
      steps.push({ op: "replace", name: r.name, type: r.type, changed });
      deferredDeletes.push({ op: "delete-replaced", name: r.name, type: r.type });
    }
    snapshot.set(r.name, r);
  }
  const gone = previous.filter((r) => !next.some((n) => n.name === r.name) && snapshot.has(r.name));
  for (const r of gone.sort((x, y) => y.seq - x.seq)) steps.push({ op: "delete", name: r.name, type: r.type });
  return [...steps, ...deferredDeletes];
}

/** The state after `step` finished: what the engine writes to its snapshot. */
export function applyStep(state: Map<string, Declared>, step: Step, next: Declared[]): void {
  const declared = next.find((r) => r.name === step.name);
  if (step.op === "delete" || (step.op === "delete-replaced" && DELETE_BEFORE_REPLACE.has(step.type))) state.delete(step.name);
  else if (declared && step.op !== "delete-replaced") state.set(step.name, declared);
}

/** The transitive dependents the engine deletes before replacing `name`, in deletion order. */
function dependentsToReplace(name: string, snapshot: Map<string, Declared>, registered: Set<string>): Declared[] {
  const replacing = new Set([name]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const d of snapshot.values()) {
      if (replacing.has(d.name) || registered.has(d.name)) continue;
      const edge = Object.entries(d.propertyDependencies).some(([prop, deps]) => deps.some((x) => replacing.has(x)) && forcesReplacement(d, prop));
      if (edge) {
        replacing.add(d.name);
        grew = true;
      }
    }
  }
  replacing.delete(name);
  // Reverse dependency order: the latest registered goes first.
  return [...replacing].map((n) => snapshot.get(n)!).sort((a, b) => b.seq - a.seq);
}

/** Steps that do something (everything but "same"). */
export const actions = (steps: Step[]) => steps.filter((s) => s.op !== "same");
