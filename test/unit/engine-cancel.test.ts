/**
 * The engine model's cancellation (test/support/engine.ts `runUp` with `cancelled`), after
 * pulumi/pulumi v3.250.0: the first SIGINT/SIGTERM cancels the deployment's context
 * (pkg/backend/cancellation_scope.go); step_executor.go executeChain checks the context before
 * each step, so the step in flight finishes and is recorded and no further step starts;
 * deployment_executor.go Execute returns without performPostSteps (no deletes after the program).
 * lifecycletest/pulumi_test.go TestProviderCancellation: creates in flight when the caller cancels
 * complete, and the update returns an error.
 */
import { describe, expect, test } from "vitest";
import { runUp, type Declared, type Step } from "../support/engine";

function program(...names: string[]): Declared[] {
  // Each waits for the one before, like a program that awaits each registration.
  return names.map((name, seq) => ({
    type: "pkgA:m:typA",
    name,
    inputs: { v: 1 },
    propertyDependencies: {},
    dependencies: seq === 0 ? [] : [names[seq - 1]],
    replaceOnChanges: [],
    seq,
  }));
}

describe("runUp after a cancellation", () => {
  test("the step in flight finishes and is recorded; no further step starts", async () => {
    let cancelled = false;
    const executed: string[] = [];
    const result = await runUp(new Map(), program("a", "b", "c"), {
      cancelled: () => cancelled,
      execute: async (step: Step) => {
        executed.push(`${step.op} ${step.name}`);
        if (step.name === "b") cancelled = true; // SIGINT arrives while b is created
      },
    });
    expect(executed).toEqual(["create a", "create b"]);
    expect(result.steps.map((s) => `${s.op} ${s.name}`)).toEqual(["create a", "create b"]);
    expect([...result.state.keys()]).toEqual(["a", "b"]);
    expect(result.cancelled).toBe(true);
    expect(result.failed).toBeUndefined();
  });

  test("no delete after the program runs: a resource no longer declared stays in the state", async () => {
    const first = await runUp(new Map(), program("a", "b", "old"));
    let cancelled = false;
    const result = await runUp(
      first.state,
      program("a", "b").map((r) => ({ ...r, inputs: { v: 2 } })),
      {
        cancelled: () => cancelled,
        execute: async (step) => {
          if (step.name === "b") cancelled = true;
        },
      },
    );
    expect(result.steps.map((s) => `${s.op} ${s.name}`)).toEqual(["update a", "update b"]);
    expect([...result.state.keys()].sort()).toEqual(["a", "b", "old"]);
    // The control: without the cancellation the same run deletes it.
    const uncancelled = await runUp(
      first.state,
      program("a", "b").map((r) => ({ ...r, inputs: { v: 2 } })),
    );
    expect(uncancelled.steps.map((s) => `${s.op} ${s.name}`)).toEqual(["update a", "update b", "delete old"]);
    expect(uncancelled.cancelled).toBe(false);
  });

  test("a step that fails while the run is cancelled is the run's failure, as the engine reports it", async () => {
    let cancelled = false;
    const result = await runUp(new Map(), program("a", "b", "c"), {
      cancelled: () => cancelled,
      execute: async (step) => {
        if (step.name === "b") {
          cancelled = true;
          throw new Error("signal: killed");
        }
      },
    });
    expect(result.failed?.step.name).toBe("b");
    expect(result.cancelled).toBe(true);
    expect([...result.state.keys()]).toEqual(["a"]);
  });
});
