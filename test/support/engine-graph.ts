/** The dependency graph of registrations and state entries, and the schedules that pick among ready work. */
import { providerName, type Declared, type Schedule, type StateEntry } from "./engine-types";

/** What a registration waits for before the SDK sends it: dependencies, parent, provider. */
export function waitsFor(r: Declared): string[] {
  return [
    ...new Set([
      ...r.dependencies,
      ...(r.parent ? [r.parent] : []),
      ...(r.provider ? [providerName(r.provider)!] : []),
    ]),
  ];
}

/** State.GetAllDependencies without the parent (DependingOn with includeChildren=false). */
function edgesOf(e: Declared): string[] {
  return [
    ...e.dependencies,
    ...Object.values(e.propertyDependencies).flat(),
    ...(e.replaceWith ?? []),
    ...(e.provider ? [providerName(e.provider)!] : []),
  ];
}

/** Whether `e` depends (DependingOn's edges) on one of `names`. */
export function dependsOnAny(e: Declared, names: Set<string>): boolean {
  return edgesOf(e).some((d) => names.has(d));
}

/**
 * DependencyGraph.DependenciesOf: the entries `e` depends on, parent included. A name held by both a
 * live entry and an old copy resolves as TransitiveDependenciesOf's lookup does: old copies to old copies.
 */
export function dependenciesOf(e: StateEntry, all: StateEntry[]): StateEntry[] {
  const names = new Set([...edgesOf(e), ...(e.parent ? [e.parent] : [])]);
  const out: StateEntry[] = [];
  for (const name of names) {
    const candidates = all.filter((c) => c.name === name && c !== e);
    const preferred = candidates.filter((c) => Boolean(c.delete) === Boolean(e.delete));
    out.push(...(preferred.length > 0 ? preferred : candidates));
  }
  return out;
}

/** DependencyGraph.TransitiveDependenciesOf for several entries at once. */
export function transitiveDependencies(from: StateEntry[], all: StateEntry[]): Set<StateEntry> {
  const seen = new Set<StateEntry>();
  const stack = [...from];
  while (stack.length > 0) {
    for (const d of dependenciesOf(stack.pop()!, all)) {
      if (!seen.has(d)) {
        seen.add(d);
        stack.push(d);
      }
    }
  }
  return seen;
}

/** The entries in an order where each comes after what it depends on (ties: program order). */
export function dependencyOrder(entries: StateEntry[]): StateEntry[] {
  const byPosition = [...entries].sort((a, b) => a.seq - b.seq);
  const out: StateEntry[] = [];
  const state = new Map<StateEntry, "visiting" | "done">();
  const visit = (e: StateEntry) => {
    if (state.get(e) === "done") return;
    if (state.get(e) === "visiting") throw new Error(`the state's dependencies form a cycle through ${e.name}`);
    state.set(e, "visiting");
    for (const d of dependenciesOf(e, entries)) visit(d);
    state.set(e, "done");
    out.push(e);
  };
  for (const e of byPosition) visit(e);
  return out;
}

/** Seeded PRNG (mulberry32): the same seed gives the same schedule. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Work the scheduler can pick: when it became ready, its program position, its resource. */
export interface Ready {
  tick: number;
  seq: number;
  name: string;
}

/** The chooser of a schedule: given the ready work, the index of the work that goes next. */
export function picker<W extends Ready>(schedule: Exclude<Schedule, { choose: unknown }>): (work: W[]) => number {
  const order = (a: Ready, b: Ready) => a.tick - b.tick || a.seq - b.seq;
  const extreme = (sign: 1 | -1) => (work: W[]) =>
    work.reduce((best, w, i) => (sign * order(w, work[best]) < 0 ? i : best), 0);
  if (schedule === "earliest") return extreme(1);
  if (schedule === "reversed") return extreme(-1);
  if ("last" in schedule) {
    const held = (w: Ready) => schedule.last.includes(w.name);
    return (work) => {
      const earliest = extreme(1);
      const others = work.filter((w) => !held(w));
      return work.indexOf(others.length > 0 ? others[earliest(others)] : work[earliest(work)]);
    };
  }
  const next = random(schedule.seed);
  return (work) => Math.floor(next() * work.length);
}
