/**
 * The engine model (test/support/engine.ts) and the runbook's order checked against the real
 * engine on the component's own graph (issue 15, part 4). The registrations of 1.0.0, 1.1.0,
 * 1.2.0 and the rollback, recorded under mocks, are replayed through `toolchain/pulumi up` as
 * dynamic resources whose providers diff as provider-facts.ts says the docker, command and
 * postgresql providers do (those providers cannot be built here) and take time to create and
 * delete. The engine's event log gives each step's start and end.
 *
 * - The model must take the same steps and follow the order the engine started them in, and
 *   every other order the run is consistent with (steps that overlapped taken either way).
 * - The runbook's checks (test/unit/support/runbook.ts) must hold in all of those orders.
 * - Removing an edge the order rests on (test/support/edges.ts) from the registrations must make
 *   a check fail in the real engine's run: the edges are what orders the real engine.
 *
 * What this checks is the engine side: step generation (create, same, update, replace,
 * delete-before-replace and the dependents it deletes first, replaceWith, replaceOnChanges) and
 * the order the dependency graph imposes. What the real providers answer stays a model
 * (provider-facts.ts) until they can be built.
 */
import * as path from "path";
import { beforeAll, describe, expect, test } from "vitest";
import { stateOf, type Declared, type StateEntry } from "../support/engine";
import { edgeName, MATTERS, withoutEdge, type Edge } from "../support/edges";
import { program, pulumiOk, toolchainDir, type Workspace } from "../support/real-engine";
import {
  consistentOrders,
  engineRun,
  followEngine,
  installReplay,
  writeRegistrations,
  type StepName,
  type TimedStep,
} from "../support/replay";
import { deploy } from "../unit/support/program";
import { INVARIANTS, type Expectation } from "../unit/support/runbook";

const MINUTE = 60_000;
type Program = "v100" | "v110" | "v120" | "rollback";
let programs: Record<Program, Declared[]>;
let ws: Workspace;

beforeAll(async () => {
  await toolchainDir();
  programs = {
    v100: (await deploy({ version: "1.0.0" })).mocks.registrations,
    v110: (await deploy({ version: "1.1.0" })).mocks.registrations,
    v120: (await deploy({ version: "1.2.0" })).mocks.registrations,
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
  ws = program("replay", "");
  installReplay(ws);
}, 30 * MINUTE);

let runs = 0;
/** `pulumi up` of `declared` on `stack` of the replay program; its steps with their start and end. */
async function realUp(stack: string, declared: Declared[], slow: string[] = []): Promise<TimedStep[]> {
  writeRegistrations(ws, declared, slow);
  const eventLog = path.join(ws.dir, `events-${++runs}.json`);
  await pulumiOk(ws, ["up", "--yes", "--stack", stack, "--event-log", eventLog], {
    env: { PULUMI_DEBUG_COMMANDS: "true" },
  });
  return engineRun(eventLog);
}

const listed = (steps: StepName[]) => steps.map((s) => `${s.op} ${s.name}`);

interface Checked {
  /** Where the model could not follow an order the real run is consistent with. */
  departures: string[];
  /** Runbook checks that failed, in the first order where each failed. */
  violations: string[];
  orders: number;
}

/** The model and the runbook on every order the real run is consistent with. */
function check(before: Declared[], next: Declared[], run: TimedStep[], expected?: Expectation): Checked {
  const departures = new Set<string>();
  const violations = new Set<string>();
  const orders = consistentOrders(run);
  for (const order of orders) {
    const state = before.length > 0 ? stateOf(before) : new Map<string, StateEntry>();
    const model = followEngine(state, next, order);
    for (const d of model.departures) departures.add(d);
    if (!expected) continue;
    for (const inv of INVARIANTS) {
      const why = inv.check(model.modelSteps, state, expected);
      if (why) violations.add(`${inv.name}: ${why}`);
    }
  }
  return { departures: [...departures], violations: [...violations], orders: orders.length };
}

// The scenarios run in order on one stack: each starts from the state the one before left.
describe.sequential("the model and the runbook follow the real engine on the component's graph", () => {
  let upgrade: TimedStep[] = [];

  beforeAll(async () => {
    await pulumiOk(ws, ["stack", "init", "dev"]);
  });

  test(
    "install 1.0.0: every resource created, in orders the model allows",
    async () => {
      const run = await realUp("dev", programs.v100);
      const model = followEngine(new Map(), programs.v100, run);
      expect(listed(model.steps)).toEqual(listed(run));
      expect(run.filter((s) => s.op === "create")).toHaveLength(programs.v100.length);
      expect(check([], programs.v100, run).departures).toEqual([]);
    },
    5 * MINUTE,
  );

  test(
    "nothing changed: only `same` steps, as the model says",
    async () => {
      const run = await realUp("dev", programs.v100);
      expect(listed(followEngine(stateOf(programs.v100), programs.v100, run).steps)).toEqual(listed(run));
      expect(run.every((s) => s.op === "same")).toBe(true);
      expect(check(programs.v100, programs.v100, run).departures).toEqual([]);
    },
    5 * MINUTE,
  );

  test(
    "upgrade 1.0.0 → 1.1.0: the model's steps, and the runbook holds in every order the run allows",
    async () => {
      upgrade = await realUp("dev", programs.v110);
      const model = followEngine(stateOf(programs.v100), programs.v110, upgrade);
      expect(listed(model.steps)).toEqual(listed(upgrade));
      const checked = check(programs.v100, programs.v110, upgrade, { rollback: false, migrates: true });
      expect(checked.departures).toEqual([]);
      expect(checked.violations).toEqual([]);
      // The API is replaced delete-before-replace, its followers deleted ahead of it.
      const at = (op: string, name: string) => listed(upgrade).indexOf(`${op} ${name}`);
      expect(at("replace", "u-api")).toBeGreaterThan(at("delete-replaced", "u-api"));
      for (const follower of ["u-beat", "u-worker-default-1", "u-processor", "u-poster"]) {
        expect(at("delete-replaced", follower), follower).toBeGreaterThanOrEqual(0);
        expect(at("delete-replaced", follower), follower).toBeLessThan(at("delete-replaced", "u-api"));
      }
    },
    5 * MINUTE,
  );

  test(
    "upgrade to 1.2.0, then the rollback to 1.0.0 with restoreFrom: the model's steps, and the runbook holds",
    async () => {
      const up = await realUp("dev", programs.v120);
      expect(listed(followEngine(stateOf(programs.v110), programs.v120, up).steps)).toEqual(listed(up));
      const upChecked = check(programs.v110, programs.v120, up, { rollback: false, migrates: true });
      expect(upChecked.departures).toEqual([]);
      expect(upChecked.violations).toEqual([]);
      const back = await realUp("dev", programs.rollback);
      expect(listed(followEngine(stateOf(programs.v120), programs.rollback, back).steps)).toEqual(listed(back));
      const backChecked = check(programs.v120, programs.rollback, back, { rollback: true, migrates: true });
      expect(backChecked.departures).toEqual([]);
      expect(backChecked.violations).toEqual([]);
      expect(listed(back)).toContain("create u-restore");
    },
    5 * MINUTE,
  );

  test("the comparison can fail: the API's new container started before its followers were deleted is refused", () => {
    expect(upgrade.length).toBeGreaterThan(0);
    const order: StepName[] = upgrade.map(({ op, name }) => ({ op, name }));
    const apiCreate = order.findIndex((s) => s.op === "replace" && s.name === "u-api");
    const firstDelete = order.findIndex((s) => s.op === "delete-replaced");
    const [create] = order.splice(apiCreate, 1);
    order.splice(firstDelete, 0, create);
    expect(followEngine(stateOf(programs.v100), programs.v110, order).departures.length).toBeGreaterThan(0);
  });
});

/**
 * One edge of each kind the runbook rests on, removed from the old and the new registrations
 * alike; the real engine then carries out the upgrade (or the rollback) on a stack of its own,
 * with the edge's target slow to create and delete (nothing else orders the two then).
 */
const MUTATED: { edge: Edge; from: Program; to: Program; expected: Expectation }[] = [
  ...[
    "u-backup ← u-image-app",
    "u-schema-guard ← u-backup",
    "u-api ← u-schema-guard",
    "u-migrate ← u-api",
    "u-static ← u-migrate",
    "u-beat ← u-static",
    "u-beat ← u-api (labels+replaceWith)",
    "u-verify ← u-beat",
  ].map((name) => ({
    edge: MATTERS.find((e) => edgeName(e) === name)!,
    from: "v100" as const,
    to: "v110" as const,
    expected: { rollback: false, migrates: true },
  })),
  {
    edge: MATTERS.find((e) => edgeName(e) === "u-restore ← u-backup")!,
    from: "v120",
    to: "rollback",
    expected: { rollback: true, migrates: true },
  },
];

describe.sequential("mutations under the real engine: without each edge, a runbook check fails", () => {
  const table: string[] = [];
  MUTATED.forEach(({ edge, from, to, expected }, i) => {
    test(
      `without ${edgeName(edge)}`,
      async () => {
        const mutate = withoutEdge(edge);
        const [before, next] = [mutate(programs[from]), mutate(programs[to])];
        const stack = `mutation-${i}`;
        await pulumiOk(ws, ["stack", "init", stack]);
        await realUp(stack, before);
        // The removed edge's target takes its time, as the model's mutation test holds it back.
        const run = await realUp(stack, next, [edge.to]);
        const checked = check(before, next, run, expected);
        table.push(`| ${edgeName(edge)} | ${from} → ${to} | ${checked.violations[0] ?? "none"} |`);
        expect(
          checked.violations,
          `removing ${edgeName(edge)} broke no runbook check in ${checked.orders} orders of the real run`,
        ).not.toEqual([]);
      },
      5 * MINUTE,
    );
  });

  test("table: edge removed → first runbook check that fails under the real engine", () => {
    console.log(
      ["| edge removed (from ← waits for) | run | first failing check |", "|---|---|---|", ...table].join("\n"),
    );
    expect(table).toHaveLength(MUTATED.length);
  });
});
