/**
 * The engine model (test/support/engine.ts) against Pulumi's own lifecycle tests
 * (pulumi/pulumi v3.250.0, pkg/engine/lifecycletest/). Each test below ports one Pulumi test on a
 * small synthetic graph and asserts the operations the Pulumi test asserts. Our step names:
 * OpCreate → create, OpCreateReplacement → replace, OpDeleteReplaced → delete-replaced, OpDelete →
 * delete, OpSame → same, OpUpdate → update, OpRemovePendingReplace → remove-pending-replace; the
 * engine's logical OpReplace is not a step of ours. The Go tests' default provider resources are not
 * modelled (not in our states). A Go program that awaits each registration before the next is
 * modelled by making each registration wait for the one before (`sequential`) where the order
 * matters, or by the "earliest" schedule, which takes ready work in program order.
 *
 * | Pulumi test | our test | agrees? |
 * |---|---|---|
 * | delete_before_replace_test.go TestDeleteBeforeReplace | TestDeleteBeforeReplace | yes (providers as resources; inputs, not outputs, compared) |
 * | delete_before_replace_test.go TestExplicitDeleteBeforeReplace | TestExplicitDeleteBeforeReplace | yes, all six updates |
 * | delete_before_replace_test.go TestDependencyChangeDBR | TestDependencyChangeDBR | yes |
 * | delete_before_replace_test.go TestDBRProtect | TestDBRProtect | yes |
 * | delete_before_replace_test.go TestDBRReplaceOnChanges | TestDBRReplaceOnChanges | yes (the Go provider diffs by name; we use two types) |
 * | delete_before_replace_test.go TestDBRParallel | TestDBRParallel | yes, both registration orders |
 * | delete_before_replace_test.go TestPropertyDependenciesAdapter | - | not ported: the Node SDK always sends property dependencies |
 * | delete_before_replace_test.go TestDBRProviderUpgrade | - | not ported: a race between provider loading flows |
 * | pending_replace_test.go TestPendingReplaceFailureDoesNotViolateSnapshotIntegrity | same name | yes |
 * | pending_replace_test.go TestPendingReplaceResumeWithSameGoals | same name | yes |
 * | pending_replace_test.go TestPendingReplaceResumeWithSameGoalsRefreshRunProgram | same name | yes, as `up --refresh` (refresh programs are not modelled; refresh skips pending replacements either way) |
 * | pending_replace_test.go TestPendingReplaceResumeWithDeletedGoals | same name | yes |
 * | pending_replace_test.go TestPendingReplaceResumeWithUpdatedGoals | same name | yes |
 * | pending_replace_test.go TestInteruptedPendingReplace | same name | yes |
 * | pending_delete_test.go TestDestroyWithPendingDelete (an update with an empty program) | same name | yes |
 * | pending_delete_test.go TestUpdateWithPendingDelete (a destroy), TestDestroyWithUntargetedPendingDelete | - | not ported: destroy and targets not modelled |
 * | protect_test.go TestMultipleProtectedDeletes | same name | yes |
 * | protect_test.go TestProtectedDeleteChainsWithDuplicateDeletedResources | same name | yes, with an empty-program update in place of the destroy |
 * | protect_test.go TestProtectInheritance | - | not ported: the SDK sends the inherited value; the model takes `protect` as registered |
 * | pulumi_test.go TestProtect | TestProtect | yes, all six updates (previews not modelled) |
 * | step_generator_test.go TestInitErrorsStep | TestInitErrorsStep | yes |
 * | step_generator_test.go TestInitErrorsIgnoreChanges | - | not ported: ignoreChanges not modelled |
 * | deploy/step_generator_test.go TestApplyReplaceOnChangesEmptyDetailedDiff ("*" with init errors) | same name | yes |
 * | continue_on_error_test.go TestUpContinueOnErrorCreate (its partial-failure create paths) | same name | yes, each failure in its own run (no --continue-on-error) |
 * | replace_with_test.go TestReplaceWith | TestReplaceWith | yes |
 * | replace_with_test.go TestReplaceWithDeleteBeforeReplace | same name | yes |
 * | replace_with_test.go TestReplaceWithAndDeletedWith | - | not ported: deletedWith not modelled |
 * | replacement_trigger_test.go TestReplacementTrigger | TestReplacementTrigger | yes |
 * | (no lifecycle test) deployment_executor.go Execute: no deletes after a failed step | DeploymentExecutor_NoDeletesAfterFailure | model of the source |
 */
import { describe, expect, test } from "vitest";
import {
  PartialCreate,
  runUp,
  stateOf,
  type Declared,
  type RunResult,
  type Step,
  type StateEntry,
} from "../support/engine";
import { CONTAINER, dockerContainerUpdate, readDockerContainer, type ProviderFacts } from "../support/provider-facts";

type Spec = Partial<Declared> & { name: string };

/** A program: registrations in program order, of the test provider's type unless told. */
function program(...specs: Spec[]): Declared[] {
  return specs.map((s, seq) => ({
    type: "pkgA:m:typA",
    inputs: {},
    propertyDependencies: {},
    dependencies: [],
    replaceOnChanges: [],
    seq,
    ...s,
  }));
}

/** A Go program that awaits each RegisterResource before the next: each registration waits for the one before. */
const sequential = (decls: Declared[]) =>
  decls.map((r, i) => (i === 0 ? r : { ...r, dependencies: [...r.dependencies, decls[i - 1].name] }));

const ops = (r: RunResult | Step[]) => (Array.isArray(r) ? r : r.steps).map((s) => `${s.op} ${s.name}`);
const physical = (r: RunResult) => ops(r.steps.filter((s) => s.op !== "same"));
const names = (state: Map<string, StateEntry>) => [...state.values()].map((e) => e.name).sort();
const EMPTY = new Map<string, StateEntry>();

/** An executor whose provider fails `op` on `name` (the Go tests' throwing CreateF/DeleteF). */
const failing =
  (op: string, name: string, error: () => Error = () => new Error("interrupt replace")) =>
  async (step: Step) => {
    if (step.op === op && step.name === name) throw error();
  };

/** pkgA's provider: replace when one of `keys` changed; delete-before-replace as told. */
const pkgA = (
  keys: string[],
  deleteBeforeReplace?: ProviderFacts["deleteBeforeReplace"],
  type = "pkgA:m:typA",
): Record<string, ProviderFacts> => ({ [type]: { replaceKeys: keys, deleteBeforeReplace } });

describe("delete_before_replace_test.go", () => {
  test("TestDeleteBeforeReplace: a DBR provider replaces its dependents that would be replaced, through providers and properties", async () => {
    //             A
    //    _________|_________
    //    B        C        D          A, C, D are providers; B, E, H use them. For R in (A, C, D), R's
    //          ___|___  ___|___       second dependent has a replacing property on R, its third a
    //          E  F  G  H  I  J       non-replacing one. K has a replacing property on F and G, L a
    //             |__|                non-replacing one.
    //             K  L
    const P = "pulumi:providers:pkgA";
    const old = program(
      { name: "A", type: P, inputs: { A: "foo" } },
      { name: "B", provider: "A" },
      { name: "C", type: P, inputs: { A: "bar" }, dependencies: ["A"], propertyDependencies: { A: ["A"] } },
      { name: "D", type: P, inputs: { B: "bar" }, dependencies: ["A"], propertyDependencies: { B: ["A"] } },
      { name: "E", provider: "C" },
      { name: "F", inputs: { A: "x" }, dependencies: ["C"], propertyDependencies: { A: ["C"] } },
      { name: "G", inputs: { B: "x" }, dependencies: ["C"], propertyDependencies: { B: ["C"] } },
      { name: "H", provider: "D" },
      { name: "I", inputs: { A: "x" }, dependencies: ["D"], propertyDependencies: { A: ["D"] } },
      { name: "J", inputs: { B: "x" }, dependencies: ["D"], propertyDependencies: { B: ["D"] } },
      { name: "K", inputs: { A: "x" }, dependencies: ["F", "G"], propertyDependencies: { A: ["F", "G"] } },
      { name: "L", inputs: { B: "x" }, dependencies: ["F", "G"], propertyDependencies: { B: ["F", "G"] } },
    );
    // The program registers every resource with its old inputs, but A's config changed; no dependencies but
    // providers; one registration after the other.
    const next = sequential(
      old.map((r) => ({
        ...r,
        dependencies: [],
        propertyDependencies: {},
        ...(r.name === "A" ? { inputs: { A: "bar" } } : {}),
      })),
    );
    const providers = { ...pkgA(["A"]), ...pkgA(["A"], "whenReplacing", P) };
    const run = await runUp(stateOf(old), next, { providers });
    expect(run.failed).toBeUndefined();
    expect(
      run.steps
        .filter((s) => s.op === "replace")
        .map((s) => s.name)
        .sort(),
    ).toEqual(["A", "B", "C", "E", "F", "K"]);
    // Dependents go first, in reverse dependency order, within A's chain.
    expect(ops(run).slice(0, 7)).toEqual([
      "delete-replaced K",
      "delete-replaced F",
      "delete-replaced E",
      "delete-replaced C",
      "delete-replaced B",
      "delete-replaced A",
      "replace A",
    ]);
  });

  test("TestExplicitDeleteBeforeReplace: the deleteBeforeReplace option overrides the provider either way", async () => {
    const providers = (dbrDiff: boolean) => ({
      ...pkgA(["A"], dbrDiff ? "whenReplacing" : undefined, "pkgA:index:typ"),
    });
    const prog = (a: string, b: string, dbr?: boolean) =>
      program(
        { name: "provA", type: "pulumi:providers:pkgA" },
        { name: "resA", type: "pkgA:index:typ", provider: "provA", inputs: { A: a }, deleteBeforeReplace: dbr },
        {
          name: "resB",
          type: "pkgA:index:typ",
          provider: "provA",
          inputs: { A: b },
          dependencies: ["resA"],
          propertyDependencies: { A: ["resA"] },
        },
      );
    let { state } = await runUp(EMPTY, prog("foo", "foo"), { providers: providers(false) });

    // Change resA.A: only resA is replaced, create-before-delete.
    let run = await runUp(state, prog("bar", "foo"), { providers: providers(false) });
    expect(ops(run).sort()).toEqual(["delete-replaced resA", "replace resA", "same provA", "same resB"]);
    // The option asks for delete-before-replace: resB goes first and comes back.
    run = await runUp(run.state, prog("baz", "foo", true), { providers: providers(false) });
    expect(ops(run)).toEqual([
      "same provA",
      "delete-replaced resB",
      "delete-replaced resA",
      "replace resA",
      "replace resB",
    ]);
    // resB's own change: only resB, create-before-delete.
    run = await runUp(run.state, prog("baz", "qux", true), { providers: providers(false) });
    expect(ops(run)).toEqual(["same provA", "same resA", "replace resB", "delete-replaced resB"]);
    // Option removed: create-before-delete again.
    run = await runUp(run.state, prog("zam", "qux"), { providers: providers(false) });
    expect(ops(run).sort()).toEqual(["delete-replaced resA", "replace resA", "same provA", "same resB"]);
    // The provider's diff asks for it.
    run = await runUp(run.state, prog("foo", "qux"), { providers: providers(true) });
    expect(ops(run)).toEqual([
      "same provA",
      "delete-replaced resB",
      "delete-replaced resA",
      "replace resA",
      "replace resB",
    ]);
    // deleteBeforeReplace: false beats the provider.
    run = await runUp(run.state, prog("bar", "qux", false), { providers: providers(true) });
    expect(ops(run).sort()).toEqual(["delete-replaced resA", "replace resA", "same provA", "same resB"]);
    state = run.state;
    expect(names(state)).toEqual(["provA", "resA", "resB"]);
  });

  test("TestDependencyChangeDBR: a dependent that registered before the DBR resource (and no longer depends on it) is not deleted", async () => {
    const providers = pkgA(["A"], "whenReplacing");
    const { state } = await runUp(
      EMPTY,
      program(
        { name: "resA", inputs: { A: "foo" } },
        { name: "resB", inputs: { A: "foo" }, dependencies: ["resA"], propertyDependencies: { A: ["resA"] } },
      ),
      { providers },
    );
    // The new program registers resB first, without the dependency, then resA with a replacing change.
    const run = await runUp(
      state,
      program({ name: "resB", inputs: { A: "foo" } }, { name: "resA", inputs: { A: "bar" } }),
      { providers },
    );
    const resB = run.steps.filter((s) => s.name === "resB").map((s) => s.op);
    expect(resB).toEqual(["same"]);
    expect(ops(run)).toEqual(["same resB", "delete-replaced resA", "replace resA"]);
  });

  test("TestDBRProtect: a protected dependent stops the replacement chain; unprotected, it goes through", async () => {
    const providers = pkgA(["A"], "whenReplacing");
    const prog = (a: string) =>
      program(
        { name: "resA", inputs: { A: a } },
        {
          name: "resB",
          inputs: { A: "foo" },
          dependencies: ["resA"],
          propertyDependencies: { A: ["resA"] },
          protect: true,
        },
      );
    const { state } = await runUp(EMPTY, prog("foo"), { providers });
    const refused = await runUp(state, prog("bar"), { providers });
    expect(refused.failed?.error.message).toContain(
      'unable to replace resource "resB" as part of replacing "resA" as it is currently marked for protection.',
    );
    expect(physical(refused)).toEqual(["replace resA"]); // the bailing registration; nothing was carried out
    expect(names(refused.state)).toEqual(["resA", "resB"]);
    expect(refused.state.get("resA")!.inputs).toEqual({ A: "foo" });

    // Remove the protect flag (in the state, as the Go test does) and try again.
    refused.state.get("resB")!.protect = false;
    const run = await runUp(refused.state, prog("bar"), { providers });
    expect(run.failed).toBeUndefined();
    expect(names(run.state)).toEqual(["resA", "resB"]);
  });

  test("TestDBRReplaceOnChanges: a dependent whose replaceOnChanges property depends on the DBR resource is deleted first", async () => {
    // The Go provider always replaces resA (DBR) and never resB; here resA and resB have two types for that.
    const providers = {
      ...pkgA(["value"], "whenReplacing", "pkgA:index:typA"),
      ...pkgA([], undefined, "pkgA:index:typB"),
    };
    const prog = (value: string) =>
      program(
        { name: "resA", type: "pkgA:index:typA", inputs: { value } },
        {
          name: "resB",
          type: "pkgA:index:typB",
          inputs: { value },
          dependencies: ["resA"],
          propertyDependencies: { value: ["resA"] },
          replaceOnChanges: ["value"],
        },
      );
    const { state } = await runUp(EMPTY, prog("foo"), { providers });
    const run = await runUp(state, prog("bar"), { providers });
    expect(run.failed).toBeUndefined();
    const deleted = run.steps.filter((s) => s.op === "delete-replaced").map((s) => s.name);
    expect(deleted).toEqual(["resB", "resA"]);
  });

  test.each([
    ["resA", "earliest"],
    ["resB", "reversed"],
  ] as const)(
    "TestDBRParallel (%s diffs first): unrelated re-registrations of a DBR pair each delete once, before their create",
    async (first, schedule) => {
      const providers = pkgA(["A"], "whenReplacing");
      const { state } = await runUp(
        EMPTY,
        program(
          { name: "resA", inputs: { A: "foo" } },
          { name: "resB", inputs: { A: "foo" }, dependencies: ["resA"], propertyDependencies: { A: ["resA"] } },
        ),
        { providers },
      );
      // Both registered at once, with no dependency between them.
      const run = await runUp(
        state,
        program({ name: "resA", inputs: { A: "bar" } }, { name: "resB", inputs: { A: "bar" } }),
        { providers, schedule },
      );
      expect(run.failed).toBeUndefined();
      expect(names(run.state)).toEqual(["resA", "resB"]);
      const o = ops(run);
      for (const r of ["resA", "resB"]) {
        expect(
          o.filter((x) => x === `delete-replaced ${r}`),
          r,
        ).toHaveLength(1);
        expect(o.indexOf(`delete-replaced ${r}`)).toBeLessThan(o.indexOf(`replace ${r}`));
      }
      // resA first: resB is its dependent and goes in resA's chain, before resA.
      if (first === "resA") expect(o.indexOf("delete-replaced resB")).toBeLessThan(o.indexOf("delete-replaced resA"));
    },
  );
});

describe("pending_replace_test.go", () => {
  const dbr = pkgA(["key"], "whenReplacing");

  test("TestPendingReplaceFailureDoesNotViolateSnapshotIntegrity: a failed DBR delete leaves nothing pending; the retry replaces", async () => {
    const prog = (key: number, note: number) =>
      program({ name: "resA", inputs: { key } }, { name: "resB", inputs: { note }, dependencies: ["resA"] });
    const { state } = await runUp(EMPTY, prog(1, 1), { providers: dbr });
    const interrupted = await runUp(state, prog(2, 2), { providers: dbr, execute: failing("delete-replaced", "resA") });
    expect(interrupted.failed?.error.message).toBe("interrupt replace");
    expect(names(interrupted.state)).toEqual(["resA", "resB"]);
    expect(interrupted.state.get("resA")!.pendingReplacement).toBeFalsy();

    const retry = await runUp(interrupted.state, prog(2, 2), { providers: dbr });
    expect(retry.failed).toBeUndefined();
    expect(physical(retry)).toEqual(["delete-replaced resA", "replace resA", "update resB"]);
    expect(retry.state.get("resA")!.inputs).toEqual({ key: 2 });
  });

  /** Operations 1 and 2 of the resume tests: a DBR replacement interrupted by a failing create. */
  async function interruptedReplacement(): Promise<RunResult> {
    const { state } = await runUp(EMPTY, program({ name: "resA", inputs: { key: 1 } }), { providers: dbr });
    const run = await runUp(state, program({ name: "resA", inputs: { key: 2 } }), {
      providers: dbr,
      execute: failing("replace", "resA"),
    });
    expect(run.failed?.error.message).toBe("interrupt replace");
    expect(ops(run)).toEqual(["delete-replaced resA", "replace resA"]);
    expect(run.state.get("resA")!.pendingReplacement).toBe(true);
    return run;
  }

  test("TestPendingReplaceResumeWithSameGoals: the resumed replacement creates without deleting again", async () => {
    const { state } = await interruptedReplacement();
    const run = await runUp(state, program({ name: "resA", inputs: { key: 2 } }), { providers: dbr });
    expect(ops(run)).toEqual(["replace resA"]);
    expect(names(run.state)).toEqual(["resA"]);
    expect(run.state.get("resA")!.pendingReplacement).toBeFalsy();
  });

  test("TestPendingReplaceResumeWithSameGoalsRefreshRunProgram: with a refresh first, the same (refresh does not read it)", async () => {
    const { state } = await interruptedReplacement();
    const read: string[] = [];
    const run = await runUp(state, program({ name: "resA", inputs: { key: 2 } }), {
      providers: dbr,
      refresh: (e) => {
        read.push(e.name);
        return e;
      },
    });
    expect(read).toEqual([]);
    expect(ops(run)).toEqual(["replace resA"]);
    expect(run.state.get("resA")!.pendingReplacement).toBeFalsy();
  });

  test("TestPendingReplaceResumeWithDeletedGoals: removed from the program, it leaves the state without a provider call", async () => {
    const { state } = await interruptedReplacement();
    const called: string[] = [];
    const run = await runUp(state, [], {
      providers: dbr,
      execute: async (s) => {
        called.push(`${s.op} ${s.name}`);
      },
    });
    expect(ops(run)).toEqual(["remove-pending-replace resA"]);
    expect(called).toEqual([]);
    expect(run.state.size).toBe(0);
  });

  test("TestPendingReplaceResumeWithUpdatedGoals: a diff that no longer replaces still completes the replacement", async () => {
    const { state } = await interruptedReplacement();
    // The provider now answers with a non-replacing diff (still asking for delete-before-replace).
    const run = await runUp(state, program({ name: "resA", inputs: { key: 1, note: "changed" } }), {
      providers: pkgA([], "always"),
    });
    expect(ops(run)).toEqual(["replace resA"]);
    expect(run.state.get("resA")!.pendingReplacement).toBeFalsy();
    expect(run.state.get("resA")!.inputs).toEqual({ key: 1, note: "changed" });
  });

  test("TestInteruptedPendingReplace: failing the resumed create again keeps it pending; the third try completes it", async () => {
    const providers = pkgA(["key"]);
    const prog = (key: number) =>
      program({ name: "resA", inputs: { key }, deleteBeforeReplace: true }, { name: "resB", dependencies: ["resA"] });
    const { state } = await runUp(EMPTY, prog(1), { providers });
    const first = await runUp(state, prog(2), { providers, execute: failing("replace", "resA") });
    expect(first.failed?.error.message).toBe("interrupt replace");
    expect(names(first.state)).toEqual(["resA", "resB"]);
    expect(first.state.get("resA")!.pendingReplacement).toBe(true);

    const second = await runUp(first.state, prog(2), { providers, execute: failing("replace", "resA") });
    expect(ops(second)).toEqual(["replace resA"]);
    expect(second.state.get("resA")!.pendingReplacement).toBe(true);

    const third = await runUp(second.state, prog(2), { providers });
    expect(third.failed).toBeUndefined();
    expect(ops(third)).toEqual(["replace resA", "same resB"]);
    expect(third.state.get("resA")!.pendingReplacement).toBeFalsy();
  });
});

describe("pending_delete_test.go", () => {
  test("TestDestroyWithPendingDelete: an update deletes both the old copy pending deletion and the resource", async () => {
    const state = stateOf([
      { ...program({ name: "resA", inputs: { id: 1 } })[0] },
      { ...program({ name: "resA", inputs: { id: 0 } })[0], delete: true },
    ]);
    const run = await runUp(state, []);
    expect(run.steps.map((s) => `${s.op} ${s.name} ${s.old?.inputs.id}`).sort()).toEqual([
      "delete resA 1",
      "delete-replaced resA 0",
    ]);
    expect(run.state.size).toBe(0);
  });

  test("DeploymentExecutor_NoDeletesAfterFailure: a failed step leaves create-before-delete olds and undeclared resources for the next run", async () => {
    const providers = pkgA(["key"]);
    const { state } = await runUp(EMPTY, program({ name: "A", inputs: { key: 1 } }, { name: "B" }, { name: "C" }));
    const next = program(
      { name: "A", inputs: { key: 2 } },
      { name: "B", inputs: { changed: true }, dependencies: ["A"] },
    );
    const failed = await runUp(state, next, {
      providers,
      execute: failing("update", "B", () => new Error("B failed")),
    });
    expect(ops(failed)).toEqual(["replace A", "update B"]);
    expect([...failed.state.keys()].sort()).toEqual(["A", "A (pending delete)", "B", "C"]);
    expect(failed.state.get("A (pending delete)")!.delete).toBe(true);

    const resumed = await runUp(failed.state, next, { providers });
    expect(physical(resumed).sort()).toEqual(["delete C", "delete-replaced A", "update B"]);
    expect(names(resumed.state)).toEqual(["A", "B"]);
  });
});

describe("protect_test.go and pulumi_test.go TestProtect", () => {
  test("TestMultipleProtectedDeletes: every protected delete is refused, the run fails, both stay", async () => {
    const { state } = await runUp(EMPTY, program({ name: "resA", protect: true }, { name: "resB", protect: true }));
    const called: string[] = [];
    const run = await runUp(state, [], {
      execute: async (s) => {
        called.push(s.name);
      },
    });
    expect(ops(run).sort()).toEqual(["delete resA", "delete resB"]);
    expect(run.failed?.error.message).toMatch(/resource "res[AB]" cannot be deleted because it is protected/);
    expect(called).toEqual([]);
    expect(names(run.state)).toEqual(["resA", "resB"]);
  });

  test("TestProtectedDeleteChainsWithDuplicateDeletedResources: a refused delete keeps what it depends on, not the old copy", async () => {
    const prog = (key: number) =>
      program({ name: "resA", inputs: { key } }, { name: "resB", protect: true, dependencies: ["resA"] });
    const providers = pkgA(["key"]);
    const { state } = await runUp(EMPTY, prog(1), { providers });
    // Setup 2: replace A create-before-delete, and fail the deferred delete of the old A.
    const setup = await runUp(state, prog(2), {
      providers,
      execute: failing("delete-replaced", "resA", () => new Error("delete error")),
    });
    expect(setup.failed?.error.message).toBe("delete error");
    expect([...setup.state.keys()].sort()).toEqual(["resA", "resA (pending delete)", "resB"]);

    // Act: nothing is declared any more (the Go test runs a destroy).
    const run = await runUp(setup.state, [], { providers });
    expect(run.failed?.error.message).toContain('resource "resB" cannot be deleted');
    expect(run.steps.map((s) => `${s.op} ${s.name}${s.old?.delete ? " (old copy)" : ""}`)).toEqual([
      "delete resB",
      "delete-replaced resA (old copy)",
    ]);
    expect([...run.state.keys()].sort()).toEqual(["resA", "resB"]);
  });

  test("TestProtect: a protected resource is neither replaced nor deleted; unprotecting and replacing in one update works", async () => {
    const providers = pkgA(["foo"]);
    let deletes = 0;
    const execute = async (s: Step) => {
      if (s.op.startsWith("delete")) deletes++;
    };
    const prog = (foo: string, protect: boolean) => program({ name: "resA", inputs: { foo }, protect });
    let run = await runUp(EMPTY, prog("bar", true), { providers, execute });

    run = await runUp(run.state, prog("baz", true), { providers, execute });
    expect(run.failed?.error.message).toContain(
      'unable to replace resource "resA"\nas it is currently marked for protection',
    );
    expect(run.state.get("resA")!.inputs.foo).toBe("bar");
    expect(deletes).toBe(0);

    run = await runUp(run.state, [], { providers, execute });
    expect(run.failed?.error.message).toContain('resource "resA" cannot be deleted because it is protected');
    expect(run.state.get("resA")!.protect).toBe(true);
    expect(deletes).toBe(0);

    run = await runUp(run.state, prog("baz", false), { providers, execute });
    expect(run.failed).toBeUndefined();
    expect(ops(run)).toEqual(["replace resA", "delete-replaced resA"]);
    expect(run.state.get("resA")!.protect).toBe(false);
    expect(deletes).toBe(1);

    run = await runUp(run.state, prog("baz", true), { providers, execute });
    expect(ops(run)).toEqual(["same resA"]);
    expect(run.state.get("resA")!.protect).toBe(true);

    // Unprotected in the state only (pulumi state unprotect), still protected in the program: the replace goes through.
    run.state.get("resA")!.protect = false;
    run = await runUp(run.state, prog("daz", true), { providers, execute });
    expect(run.failed).toBeUndefined();
    expect(run.state.get("resA")!.inputs.foo).toBe("daz");
    expect(deletes).toBe(2);
  });
});

describe("init errors (step_generator_test.go, continue_on_error_test.go)", () => {
  test("TestInitErrorsStep: an unchanged resource with init errors gets an empty update, which clears them", async () => {
    const state = stateOf([
      {
        ...program({ name: "resA" })[0],
        initErrors: ['errors should yield an empty update to "continue" awaiting initialization.'],
      },
    ]);
    const run = await runUp(state, program({ name: "resA" }));
    expect(run.steps.map((s) => ({ op: s.op, changed: s.changed, initErrors: s.initErrors?.length }))).toEqual([
      { op: "update", changed: [], initErrors: 1 },
    ]);
    expect(run.state.get("resA")!.initErrors).toBeUndefined();
  });

  test('TestApplyReplaceOnChangesEmptyDetailedDiff: replaceOnChanges "*" turns init errors into a replacement', async () => {
    const state = stateOf([
      { ...program({ name: "resA", replaceOnChanges: ["*"] })[0], initErrors: ["did not start"] },
    ]);
    const run = await runUp(state, program({ name: "resA", replaceOnChanges: ["*"] }));
    expect(run.steps.map((s) => `${s.op} ${s.name} ${s.replaceKeys}`)).toEqual([
      "replace resA #initerror",
      "delete-replaced resA undefined",
    ]);
  });

  test("TestUpContinueOnErrorCreate: a failed create is not recorded; a create that failed part way is, with its errors", async () => {
    const failed = await runUp(EMPTY, program({ name: "failing" }), {
      execute: failing("create", "failing", () => new Error("intentionally failed create")),
    });
    expect(failed.failed?.error.message).toBe("intentionally failed create");
    expect(failed.state.size).toBe(0);

    const partial = await runUp(EMPTY, program({ name: "failing3" }, { name: "after", dependencies: ["failing3"] }), {
      execute: failing("create", "failing3", () => new PartialCreate("intentionally failed create")),
    });
    expect(partial.failed?.error).toBeInstanceOf(PartialCreate);
    expect(ops(partial)).toEqual(["create failing3"]);
    expect(partial.state.get("failing3")!.initErrors).toEqual(["intentionally failed create"]);
  });
});

describe("replace_with_test.go and replacement_trigger_test.go", () => {
  // The Node SDK adds replaceWith resources to the registration's dependencies (runtime/resource.js).
  const prog = (foo: string) =>
    program(
      { name: "resA", inputs: { foo } },
      { name: "resB", inputs: { fixed: "property" }, replaceWith: ["resA"], dependencies: ["resA"] },
    );

  test("TestReplaceWith: replacing A replaces B too (two creates, two deletes)", async () => {
    const providers = pkgA(["foo"]);
    const { state } = await runUp(EMPTY, prog("bar"), { providers });
    const run = await runUp(state, prog("baz"), { providers });
    expect(ops(run)).toEqual(["replace resA", "replace resB", "delete-replaced resB", "delete-replaced resA"]);
    expect(run.steps.find((s) => s.name === "resB")!.replaceKeys).toEqual(["replaceWith"]);
  });

  test("TestReplaceWithDeleteBeforeReplace: with A delete-before-replace, B is deleted first and re-created after A", async () => {
    const providers = pkgA(["foo"], "whenReplacing");
    const { state } = await runUp(EMPTY, prog("bar"), { providers });
    const run = await runUp(state, prog("baz"), { providers });
    expect(ops(run)).toEqual(["delete-replaced resB", "delete-replaced resA", "replace resA", "replace resB"]);
  });

  test("TestReplacementTrigger: the same trigger value is a same step, a new one replaces", async () => {
    const trig = (value: string) => program({ name: "resA", inputs: { foo: "bar" }, replacementTrigger: value });
    const { state } = await runUp(EMPTY, trig("first"));
    const same = await runUp(state, trig("first"));
    expect(ops(same)).toEqual(["same resA"]);
    const replaced = await runUp(same.state, trig("second"));
    expect(ops(replaced)).toEqual(["replace resA", "delete-replaced resA"]);
  });
});

describe("the bridged Docker provider's answers (provider-facts.ts), not lifecycle tests", () => {
  const container = (healthcheck: string, image = "img:1", opts: Partial<Declared> = {}) =>
    program({
      name: "api",
      type: CONTAINER,
      inputs: { name: "u-api", image, healthcheck: { tests: [healthcheck] }, mustRun: true },
      replaceOnChanges: ["healthcheck"],
      ...opts,
    });

  test("a replacement only replaceOnChanges asks for is create-before-delete: the fixed name collides and the run fails", async () => {
    const { state } = await runUp(EMPTY, container("curl a"));
    const run = await runUp(state, container("curl b"));
    expect(run.steps.map((s) => `${s.op} ${s.name} dbr=${s.deleteBeforeReplace}`)).toEqual(["replace api dbr=false"]);
    expect(run.failed?.error.message).toContain("create-before-delete of a fixed-name container");
    expect(run.failed?.error.message).toContain("u-api");
    // Nothing changed: the old container still runs and is still the state's.
    expect(run.state.get("api")!.inputs.healthcheck).toEqual({ tests: ["curl a"] });
  });

  test("a ForceNew change, or the deleteBeforeReplace option, makes it delete-before-replace", async () => {
    const { state } = await runUp(EMPTY, container("curl a"));
    const forceNew = await runUp(state, container("curl a", "img:2"));
    expect(ops(forceNew)).toEqual(["delete-replaced api", "replace api"]);
    const option = await runUp(state, container("curl b", "img:1", { deleteBeforeReplace: true }));
    expect(ops(option)).toEqual(["delete-replaced api", "replace api"]);
    expect(option.failed).toBeUndefined();
  });

  /** The API's create failed after `docker create` (start or health wait): a partial create, with init errors. */
  async function apiFailedToStart(): Promise<RunResult> {
    const { state } = await runUp(EMPTY, container("curl a"));
    const run = await runUp(state, container("curl a", "img:2"), {
      execute: failing(
        "replace",
        "api",
        () => new PartialCreate("creating urn:...::api: Unable to start container: port is already allocated"),
      ),
    });
    expect(run.state.get("api")!.initErrors).toEqual([
      "creating urn:...::api: Unable to start container: port is already allocated",
    ]);
    expect(run.state.get("api")!.inputs.image).toBe("img:2");
    return run;
  }

  test("(c)+(b) the next plain `up` plans an empty update for the half-created container, and the provider does not start it", async () => {
    const { state } = await apiFailedToStart();
    const run = await runUp(state, container("curl a", "img:2"));
    const [step] = run.steps;
    expect([step.op, step.changed, step.initErrors?.length]).toEqual(["update", [], 1]);
    expect(dockerContainerUpdate(step.old!.inputs, step.new!.inputs, step.changed!).starts).toBe(false);
    expect(run.state.get("api")!.initErrors).toBeUndefined();
  });

  test("(a)+(d) `up --refresh` reads the stopped container as must_run=false, so the update starts it", async () => {
    const { state } = await apiFailedToStart();
    const run = await runUp(state, container("curl a", "img:2"), {
      refresh: (e) => readDockerContainer(e, { exists: true, running: false }),
    });
    const [step] = run.steps;
    expect([step.op, step.changed, step.initErrors]).toEqual(["update", ["mustRun"], undefined]);
    expect(dockerContainerUpdate(step.old!.inputs, step.new!.inputs, step.changed!)).toEqual({
      starts: true,
      applied: [],
      recordedOnly: [],
    });
  });

  test("(b) other updates apply restart and resource limits, and only record health checks", () => {
    const effect = dockerContainerUpdate({ mustRun: true, restart: "no" }, { mustRun: true, restart: "always" }, [
      "restart",
      "healthcheck",
    ]);
    expect(effect).toEqual({ starts: false, applied: ["restart"], recordedOnly: ["healthcheck"] });
  });
});
