/**
 * The runbook's order holds in every order the engine may choose. The registrations are the real
 * program's (recorded from the real register requests under the mocks); the engine model
 * (test/support/engine.ts) carries them out in several schedules the dependency graph allows: the
 * earliest possible, reversed among ready work, seeded random ones, and one per resource that holds
 * it back as long as the graph allows. Then each edge the order depends on is removed from the
 * recorded graph (old and new registrations alike), one at a time, and some runbook check must fail;
 * the edges whose removal breaks nothing are listed with the reason, and the test prints the table.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { runUp, stateOf, type Declared, type Schedule, type StateEntry, type Step } from "../support/engine";
import { deploy } from "./support/program";
import { INVARIANTS, type Expectation } from "./support/runbook";
import { edgeName, MATTERS, withoutEdge, type Edge } from "../support/edges";

const SCHEDULES: Schedule[] = ["earliest", "reversed", ...Array.from({ length: 12 }, (_, i) => ({ seed: i + 1 }))];
const label = (s: Schedule) =>
  typeof s === "string" ? s : "seed" in s ? `seed ${s.seed}` : "last" in s ? `${s.last.join(", ")} last` : "chosen";

let programs: Record<"v100" | "v110" | "v120" | "rollback", Declared[]>;

beforeAll(async () => {
  programs = {
    v100: (await deploy({ version: "1.0.0" })).mocks.registrations,
    v110: (await deploy({ version: "1.1.0" })).mocks.registrations,
    v120: (await deploy({ version: "1.2.0" })).mocks.registrations,
    // The rollback creates 1.0.0's containers anew: Docker gives them new IDs, though their inputs are 1.0.0's again.
    rollback: (
      await deploy(
        { version: "1.0.0", restoreFrom: "latest" },
        {
          before: (m) => {
            m.idSalt = "rollback";
          },
        },
      )
    ).mocks.registrations,
  };
});

type Mutate = (program: Declared[]) => Declared[];

interface Scenario {
  name: string;
  expected: Expectation;
  build(mutate: Mutate): Promise<{ state: Map<string, StateEntry>; next: Declared[] }>;
}

const SCENARIOS: Scenario[] = [
  {
    name: "upgrade 1.0.0 → 1.1.0",
    expected: { rollback: false, migrates: true },
    build: async (m) => ({ state: stateOf(m(programs.v100)), next: m(programs.v110) }),
  },
  {
    name: "rollback 1.2.0 → 1.0.0 (restoreFrom latest)",
    expected: { rollback: true, migrates: true },
    build: async (m) => ({ state: stateOf(m(programs.v120)), next: m(programs.rollback) }),
  },
  {
    name: "rollback after 1.2.0's migration failed",
    // 1.2.0's migrate never finished: the state still holds 1.0.0's, so going back runs none.
    expected: { rollback: true, migrates: false },
    async build(m) {
      const failed = await runUp(stateOf(m(programs.v100)), m(programs.v120), {
        execute: async (step) => {
          if (step.name === "u-migrate") throw new Error("migration 0004 failed");
        },
      });
      if (failed.failed?.step.name !== "u-migrate")
        throw new Error(`the 1.2.0 run did not stop at migrate: ${failed.failed?.step.name}`);
      return { state: failed.state, next: m(programs.rollback) };
    },
  },
];

/** The first runbook check that fails in one scenario and schedule, or undefined. */
async function firstViolation(
  scenario: Scenario,
  schedule: Schedule,
  mutate: Mutate = (p) => p,
): Promise<string | undefined> {
  const { state, next } = await scenario.build(mutate);
  const run = await runUp(state, next, { schedule });
  if (run.failed) return `the run failed at ${run.failed.step.op} ${run.failed.step.name}: ${run.failed.error.message}`;
  for (const inv of INVARIANTS) {
    const why = inv.check(run.steps, state, scenario.expected);
    if (why) return `${inv.name}: ${why}`;
  }
  return undefined;
}

describe("the runbook's order in every schedule the graph allows", () => {
  for (const scenario of SCENARIOS) {
    test.each(SCHEDULES.map((s) => [label(s), s] as const))(`${scenario.name}, %s`, async (_label, schedule) => {
      expect(await firstViolation(scenario, schedule)).toBeUndefined();
    });
  }

  // Random picks rarely hold one ready resource back for long; these schedules hold each one back in turn.
  for (const scenario of SCENARIOS) {
    test(`${scenario.name}, each resource held back as long as the graph allows`, async () => {
      const { next } = await scenario.build((p) => p);
      const violations: string[] = [];
      for (const r of next) {
        const why = await firstViolation(scenario, { last: [r.name] });
        if (why) violations.push(`${r.name} last: ${why}`);
      }
      expect(violations).toEqual([]);
    });
  }

  test("the schedules really differ: the upgrade is carried out in different orders", async () => {
    const orders = new Set<string>();
    for (const schedule of SCHEDULES) {
      const { state, next } = await SCENARIOS[0].build((p) => p);
      orders.add((await runUp(state, next, { schedule })).steps.map((s: Step) => `${s.op} ${s.name}`).join("\n"));
    }
    expect(orders.size).toBeGreaterThanOrEqual(5);
  });
});

/**
 * Edges whose removal alone breaks no check in these scenarios, and why: reported, not hidden.
 */
const HOLDS_WITHOUT: { edge: Edge; why: string }[] = [
  ...["u-beat", "u-worker-default-1"].flatMap((f) => [
    {
      edge: { from: f, to: "u-api", property: "labels" },
      why: "`replaceWith: [api]` still replaces it with the API, deleted first (engines 3.208+)",
    },
    {
      edge: { from: f, to: "u-api", property: [], replaceWith: true },
      why: "its follows-api label still makes it a dependent the API's replacement deletes first (older engines rely on this)",
    },
  ]),
  ...["u-processor", "u-poster"].map((f) => ({
    edge: { from: f, to: "u-api", property: [], replaceWith: true },
    why: "its label and envs still make it a dependent the API's replacement deletes first",
  })),
  {
    edge: { from: "u-processor", to: "u-api", property: "labels" },
    why: "its envs (UTILITARIAN_BASE_URL) still make it a dependent the API's replacement deletes first",
  },
  { edge: { from: "u-processor", to: "u-api", property: "envs" }, why: "its follows-api label still does" },
  {
    edge: { from: "u-poster", to: "u-api", property: "labels" },
    why: "its envs still make it a dependent the API's replacement deletes first",
  },
  { edge: { from: "u-poster", to: "u-api", property: "envs" }, why: "its follows-api label still does" },
  {
    edge: { from: "u-api", to: "u-image-app", property: "image" },
    why: "the API waits for the schema guard, which waits for the backup, which waits for the image",
  },
  {
    edge: { from: "u-static", to: "u-api" },
    why: "static still waits for migrate, which waits for the API; its trigger (the API's ID) changes anyway",
  },
  {
    edge: { from: "u-verify", to: "u-api" },
    why: "verify still waits for the followers, which wait for static, migrate and the API",
  },
  { edge: { from: "u-verify", to: "u-udp-server" }, why: "the UDP server is not replaced in these scenarios" },
  {
    edge: { from: "u-beat", to: "u-image-app" },
    why: "the followers wait for static, which waits (through migrate and the API) for the image",
  },
  { edge: { from: "u-backup", to: "u-image-processor" }, why: "the edge images do not change in these scenarios" },
];

describe("mutations: each edge the order depends on is needed", () => {
  const table: string[] = [];

  test.each([
    ...MATTERS.map((e) => [edgeName(e), e, true] as const),
    ...HOLDS_WITHOUT.map((h) => [edgeName(h.edge), h.edge, false] as const),
  ])("without %s", async (_name, edge, matters) => {
    const present = programs.v110
      .concat(programs.rollback)
      .some(
        (r) =>
          r.name === edge.from &&
          (edge.property
            ? [edge.property].flat().every((p) => r.propertyDependencies[p]?.includes(edge.to))
            : r.dependencies.includes(edge.to)) &&
          (!edge.replaceWith || (r.replaceWith ?? []).includes(edge.to)),
      );
    expect(present, `${edgeName(edge)} is not in the recorded graph`).toBe(true);
    let first: string | undefined;
    for (const scenario of SCENARIOS) {
      // The removed edge's target held back is the adversary most likely to show the edge missing.
      for (const schedule of [{ last: [edge.to] }, ...SCHEDULES]) {
        const why = await firstViolation(scenario, schedule, withoutEdge(edge));
        if (why) {
          first = `${scenario.name}, ${label(schedule)}: ${why}`;
          break;
        }
      }
      if (first) break;
    }
    table.push(
      `| ${edgeName(edge)} | ${first ?? `no check fails (${HOLDS_WITHOUT.find((h) => edgeName(h.edge) === edgeName(edge))?.why})`} |`,
    );
    if (matters) expect(first, `removing ${edgeName(edge)} broke no runbook check`).toEqual(expect.any(String));
    else expect(first, `${edgeName(edge)} turned out to matter: move it to MATTERS`).toBeUndefined();
  });

  test("table: edge removed → first check that fails", () => {
    console.log(
      [
        "| edge removed (from ← waits for) | first failing check (scenario, schedule: check: why) |",
        "|---|---|",
        ...table,
      ].join("\n"),
    );
    expect(table).toHaveLength(MATTERS.length + HOLDS_WITHOUT.length);
  });
});
