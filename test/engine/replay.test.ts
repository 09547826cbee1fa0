/**
 * The engine model (test/support/engine.ts) checked against the real engine on the component's
 * own graph (issue 15, part 4). The registrations of 1.0.0 and 1.1.0, recorded under mocks, are
 * replayed through `toolchain/pulumi up` as dynamic resources whose providers diff as
 * provider-facts.ts says the docker, command and postgresql providers do (those providers cannot
 * be built here). The engine's event log gives the steps in the order it started them; the model
 * must take the same steps and be able to follow that order at every point.
 *
 * What this checks is the engine side of the model: step generation (create, same, update,
 * replace, delete-before-replace and the dependents it deletes first, replaceWith,
 * replaceOnChanges) and the order the dependency graph imposes. What the real providers answer
 * stays a model (provider-facts.ts) until they can be built.
 */
import * as path from "path";
import { beforeAll, describe, expect, test } from "vitest";
import { stateOf, type Declared } from "../support/engine";
import { program, pulumiOk, toolchainDir, type Workspace } from "../support/real-engine";
import { engineSteps, followEngine, installReplay, writeRegistrations, type StepName } from "../support/replay";
import { deploy } from "../unit/support/program";

const MINUTE = 60_000;
let programs: Record<"v100" | "v110" | "v120" | "rollback", Declared[]>;
let upgradeSteps: StepName[] = [];
let ws: Workspace;

beforeAll(async () => {
  await toolchainDir();
  programs = {
    v100: (await deploy({ version: "1.0.0" })).mocks.registrations,
    v110: (await deploy({ version: "1.1.0" })).mocks.registrations,
    v120: (await deploy({ version: "1.2.0" })).mocks.registrations,
    rollback: (await deploy({ version: "1.0.0", restoreFrom: "latest" }, { before: (m) => { m.idSalt = "rollback"; } })).mocks.registrations,
  };
  ws = program("replay", "");
  installReplay(ws);
  await pulumiOk(ws, ["stack", "init", "dev"]);
}, 30 * MINUTE);

let runs = 0;
/** `pulumi up` of `declared` on the replay stack; the steps the engine started, in order. */
async function realUp(declared: Declared[]): Promise<StepName[]> {
  writeRegistrations(ws, declared);
  const eventLog = path.join(ws.dir, `events-${++runs}.json`);
  await pulumiOk(ws, ["up", "--yes", "--stack", "dev", "--event-log", eventLog], { env: { PULUMI_DEBUG_COMMANDS: "true" } });
  return engineSteps(eventLog);
}

const listed = (steps: StepName[]) => steps.map((s) => `${s.op} ${s.name}`);

// The scenarios run in order on one stack: each starts from the state the one before left.
describe.sequential("the model follows the real engine on the component's graph", () => {
  test("install 1.0.0: every resource created, in an order the model allows", async () => {
    const engine = await realUp(programs.v100);
    const model = followEngine(new Map(), programs.v100, engine);
    expect(model.departures).toEqual([]);
    expect(listed(model.steps)).toEqual(listed(engine));
    expect(engine.filter((s) => s.op === "create")).toHaveLength(programs.v100.length);
  }, 5 * MINUTE);

  test("nothing changed: only `same` steps, as the model says", async () => {
    const engine = await realUp(programs.v100);
    const model = followEngine(stateOf(programs.v100), programs.v100, engine);
    expect(model.departures).toEqual([]);
    expect(listed(model.steps)).toEqual(listed(engine));
    expect(engine.every((s) => s.op === "same")).toBe(true);
  }, 5 * MINUTE);

  test("upgrade 1.0.0 → 1.1.0: the same replacements and deletes ahead, in an order the model allows", async () => {
    const engine = await realUp(programs.v110);
    upgradeSteps = engine;
    const model = followEngine(stateOf(programs.v100), programs.v110, engine);
    expect(model.departures).toEqual([]);
    expect(listed(model.steps)).toEqual(listed(engine));
    // The API is replaced delete-before-replace, its followers deleted ahead of it.
    const at = (op: string, name: string) => listed(engine).indexOf(`${op} ${name}`);
    expect(at("replace", "u-api")).toBeGreaterThan(at("delete-replaced", "u-api"));
    for (const follower of ["u-beat", "u-worker-default-1", "u-processor", "u-poster"]) {
      expect(at("delete-replaced", follower), follower).toBeGreaterThanOrEqual(0);
      expect(at("delete-replaced", follower), follower).toBeLessThan(at("delete-replaced", "u-api"));
    }
  }, 5 * MINUTE);

  test("upgrade to 1.2.0, then the rollback to 1.0.0 with restoreFrom: the same steps, in an order the model allows", async () => {
    const up = await realUp(programs.v120);
    const model = followEngine(stateOf(programs.v110), programs.v120, up);
    expect(model.departures).toEqual([]);
    expect(listed(model.steps)).toEqual(listed(up));
    const back = await realUp(programs.rollback);
    const rollback = followEngine(stateOf(programs.v120), programs.rollback, back);
    expect(rollback.departures).toEqual([]);
    expect(listed(rollback.steps)).toEqual(listed(back));
    expect(listed(back)).toContain("create u-restore");
  }, 5 * MINUTE);

  test("the comparison can fail: the API's new container started before its followers were deleted is refused", () => {
    expect(upgradeSteps.length).toBeGreaterThan(0);
    const apiCreate = upgradeSteps.findIndex((s) => s.op === "replace" && s.name === "u-api");
    const firstDelete = upgradeSteps.findIndex((s) => s.op === "delete-replaced");
    const moved = [...upgradeSteps];
    const [create] = moved.splice(apiCreate, 1);
    moved.splice(firstDelete, 0, create);
    expect(followEngine(stateOf(programs.v100), programs.v110, moved).departures.length).toBeGreaterThan(0);
  });
});
