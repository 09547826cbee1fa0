/**
 * The rehearsal's model of an interrupted `pulumi up` (test/support/interrupt.ts) on real processes:
 * the first signal kills only the process the command provider started and waits for whatever still
 * holds its output; the second ends the wait at once, signals the group with SIGINT and drops the
 * pipes. What the step scripts do then is theirs (test/real/faults.test.ts shows it on the stack).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, test } from "vitest";
import type { Step } from "../support/engine";
import { groupMembers, InterruptedRun, Terminated } from "../support/interrupt";

const step: Step = { op: "replace", name: "x-backup", type: "command:local:Command" };
/** The signal comes once the script has started its work (its `sleep` runs). */
const workStarted = async (group: { args: string }[]) => group.some((p) => p.args.includes("sleep"));
const work = fs.mkdtempSync(path.join(os.tmpdir(), "interrupt-model-"));

/**
 * A step script like ours: traps SIGINT/SIGTERM, starts its work as a background command (which bash
 * starts with SIGINT ignored, as it does `bash backup.sh` in writers-stopped.sh) and waits; the work
 * prints a line, then leaves a mark.
 */
function script(name: string, workSeconds: number): { text: string; mark: string; trapped: string } {
  const file = path.join(work, `${name}.sh`);
  const mark = path.join(work, `${name}.done`);
  const trapped = path.join(work, `${name}.trapped`);
  fs.writeFileSync(file, `trap 'touch ${trapped}; exit 143' TERM INT
bash -c 'sleep ${workSeconds}; echo work-finished; touch ${mark}' &
wait
`);
  return { text: `bash '${file}'`, mark, trapped };
}

describe("an interrupted command step", () => {
  test("first signal: the script is killed (no trap runs), its background work goes on, and the step ends, failed, only when that work has", async () => {
    const s = script("cancel", 1.5);
    const run = new InterruptedRun({ atStep: () => true, when: workStarted, signals: ["SIGINT"] });
    expect(run.matches(step)).toBe(true);
    const started = Date.now();
    const outcome = run.runCommand(s.text, process.env, work);
    await expect(outcome).rejects.toThrow(/^signal: killed: running "bash '.*cancel\.sh'":\nwork-finished/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(fs.existsSync(s.mark)).toBe(true);
    expect(fs.existsSync(s.trapped)).toBe(false);
    expect(run.cancelled).toBe(true);
    expect(run.terminated).toBe(false);
    expect(run.pending).toEqual([]);
    expect(run.afterFirstSignal.map((p) => p.pid)).not.toContain(run.pgid);
    expect(run.afterFirstSignal.length).toBeGreaterThan(0);
    expect(run.error({ step, error: new Error("signal: killed") }).outcome).toBe("failed");
  });

  test("second signal: the wait ends at once, the step stays pending; the background work, which ignores SIGINT, dies when it next writes to the dropped pipe", async () => {
    const s = script("terminate", 2);
    const run = new InterruptedRun({ atStep: () => true, when: workStarted, signals: ["SIGINT", "SIGTERM"], gapMs: 300 });
    expect(run.matches(step)).toBe(true);
    const started = Date.now();
    await expect(run.runCommand(s.text, process.env, work)).rejects.toThrow(Terminated);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(run.terminated).toBe(true);
    expect(run.pending).toEqual([{ name: "x-backup", type: "creating" }]);
    expect(run.printed).toEqual([
      "^C received; cancelling. If you would like to terminate immediately, press ^C again.",
      "Note that terminating immediately may lead to orphaned resources and other inconsistencies.",
      "SIGTERM received; terminating",
    ]);
    expect(run.error(undefined).outcome).toBe("terminated");
    // Still running after the group's SIGINT...
    expect(groupMembers(run.pgid!).length).toBeGreaterThan(0);
    await run.processesEnded(10_000);
    // ...until its `echo` met the closed pipe: the mark after it was never made.
    expect(fs.existsSync(s.mark)).toBe(false);
    expect(fs.existsSync(s.trapped)).toBe(false);
  });

  test("only command steps that run a command are interrupted", () => {
    const run = new InterruptedRun({ atStep: () => true, signals: ["SIGINT"] });
    expect(run.matches({ ...step, op: "delete-replaced" })).toBe(false);
    expect(run.matches({ ...step, type: "docker:index/container:Container" })).toBe(false);
    expect(run.matches(step)).toBe(true);
    expect(run.matches(step)).toBe(false); // the first match only
  });
});
