import * as path from "path";
import { describe, expect, test } from "vitest";
import { runProgram } from "../harness";
import { callsFor, explain, FIXTURE_PROGRAMS, RUN_TIMEOUT_MS } from "./support";

/**
 * The negative control: the harness must catch a dynamic provider whose serialised closure misses
 * a variable (what broke the schema guard), and pass its fixed twin. Both are one tiny program,
 * test/fixtures/programs/closure-miss, switched by config.
 */
const PROGRAM = path.join(FIXTURE_PROGRAMS, "closure-miss");

function runVariant(
  variant: "shadowed" | "renamed",
  options: { preview: boolean; value?: string; timeoutMs?: number },
) {
  return runProgram({
    programDir: PROGRAM,
    stack: "test",
    config: { "closure-miss:variant": variant, "closure-miss:value": options.value ?? "x" },
    preview: options.preview,
    timeoutMs: options.timeoutMs,
  });
}

describe("a dynamic provider whose closure misses a variable", () => {
  test(
    "fails the run: the host's ReferenceError is in the result, and the resource is not created",
    async () => {
      const run = await runVariant("shadowed", { preview: false });
      expect(run.succeeded).toBe(false);
      expect(callsFor(run, "probe")).toEqual(["Check: error: check is not defined"]);
      expect(run.diagnostics).toContainEqual(
        expect.objectContaining({ severity: "error", message: "check is not defined" }),
      );
      expect(run.diagnostics).toContainEqual(
        expect.objectContaining({
          severity: "info#err",
          message: expect.stringContaining("ReferenceError: check is not defined"),
        }),
      );
      expect(run.state.has("probe")).toBe(false);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "its twin with the parameter renamed is checked and created by the same host",
    async () => {
      const run = await runVariant("renamed", { preview: false });
      expect(run.succeeded, explain(run)).toBe(true);
      expect(callsFor(run, "probe")).toEqual(["Check: ok", "Create"]);
      expect(run.outputs).toEqual({ value: "x" });
      expect(run.state.get("probe")).toMatchObject({ id: "probe", outputs: { value: "x" } });
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "the twin's own rule still runs in the host: an empty value is refused with its reason",
    async () => {
      const run = await runVariant("renamed", { preview: true, value: "" });
      expect(run.succeeded).toBe(false);
      expect(callsFor(run, "probe")).toEqual(["Check: failures: value"]);
      expect(run.diagnostics.filter((d) => d.severity === "error").map((d) => d.message)).toEqual([
        "pulumi-nodejs:dynamic/probe:Resource resource 'probe': property value value {} has a problem: value must not be empty",
      ]);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "a program that does not exit in time is killed and the run fails, saying so",
    async () => {
      const run = await runVariant("renamed", { preview: true, timeoutMs: 200 });
      expect(run.succeeded).toBe(false);
      expect(run.exitCode).not.toBe(0);
      expect(run.diagnostics).toContainEqual(
        expect.objectContaining({
          severity: "error",
          message: "test harness: the program did not exit within 200 ms and was killed",
        }),
      );
    },
    RUN_TIMEOUT_MS,
  );
});
