/**
 * The edges of the component's dependency graph that the runbook's order rests on, and how to
 * remove one from recorded registrations: the mutation tests of the engine model
 * (test/unit/schedules.test.ts) and of the real engine (test/engine/replay.test.ts) share them.
 */
import type { Declared } from "./engine-types";

/** `from` waits for `to`; with `property`, only that property's edge (dependencies keep what other properties hold). */
export interface Edge {
  from: string;
  to: string;
  property?: string | string[];
  /** Also (or, with `property: []`, only) the `replaceWith` option naming `to`. */
  replaceWith?: boolean;
}

export const edgeName = (e: Edge) => {
  const via = [...(e.property ? [e.property].flat() : []), ...(e.replaceWith ? ["replaceWith"] : [])];
  return `${e.from} ← ${e.to}${via.length > 0 ? ` (${via.join("+")})` : ""}`;
};

export function withoutEdge(edge: Edge): (program: Declared[]) => Declared[] {
  return (program) =>
    program.map((r) => {
      if (r.name !== edge.from) return r;
      const properties = edge.property ? [edge.property].flat() : Object.keys(r.propertyDependencies);
      const propertyDependencies = Object.fromEntries(
        Object.entries(r.propertyDependencies).map(([p, deps]) => [
          p,
          properties.includes(p) ? deps.filter((d) => d !== edge.to) : deps,
        ]),
      );
      const stillHeld = !edge.property
        ? false
        : Object.values(propertyDependencies).some((deps) => deps.includes(edge.to));
      const replaceWith = edge.replaceWith ? (r.replaceWith ?? []).filter((d) => d !== edge.to) : r.replaceWith;
      return {
        ...r,
        propertyDependencies,
        replaceWith,
        dependencies: stillHeld ? r.dependencies : r.dependencies.filter((d) => d !== edge.to),
      };
    });
}

/** Edges the runbook's order rests on: removing any one must break a check. */
export const MATTERS: Edge[] = [
  { from: "u-backup", to: "u-image-app" },
  { from: "u-schema-guard", to: "u-backup" },
  { from: "u-api", to: "u-schema-guard" },
  { from: "u-migrate", to: "u-api" },
  { from: "u-static", to: "u-migrate" },
  ...["u-beat", "u-worker-default-1", "u-processor", "u-poster"].map((f) => ({ from: f, to: "u-static" })),
  // The followers' stop before the API: their ForceNew inputs from it and `replaceWith: [api]` together.
  { from: "u-beat", to: "u-api", property: "labels", replaceWith: true },
  { from: "u-worker-default-1", to: "u-api", property: "labels", replaceWith: true },
  { from: "u-processor", to: "u-api", property: ["labels", "envs"], replaceWith: true },
  { from: "u-poster", to: "u-api", property: ["labels", "envs"], replaceWith: true },
  ...["u-beat", "u-worker-default-1", "u-processor", "u-poster"].map((c) => ({ from: "u-verify", to: c })),
  { from: "u-restore", to: "u-backup" },
  { from: "u-schema-guard", to: "u-restore" },
];
