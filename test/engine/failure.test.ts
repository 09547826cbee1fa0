/**
 * Failure and recovery under the real engine (`toolchain/pulumi`, the stand-in plugins of
 * test/provider): a downgrade refused at preview; 1.0.0 -> 1.2.0, whose migration fails half way,
 * stops at migrate with the step's log and a true state; a re-run resumes without a second
 * backup; the rollback to 1.0.0 restores the verified backup; UDP readings sent from before the
 * upgrade to after the rollback are each stored exactly once (backup.stopWriters).
 */
import * as fs from "fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { deliveryOf, rowsPerMeter } from "../support/faults";
import { sleep } from "../support/exec";
import { EventLog } from "../support/rehearsal";
import { changes, RealStack, stateDisagreements, type RealRun } from "../support/real-stack";
import {
  health, postReading, prepareStack, removeStack, SECRETS, stackContainers, standinConfig, tempDir, udpStream,
} from "../support/standin-stack";

const MINUTE = 60_000;
const PREFIX = "rf";
const backups = tempDir("engine-failure-backups");
const stack = new RealStack("failure", SECRETS);
const events = new EventLog();
const config = (version: string, extra: Record<string, unknown> = {}) => standinConfig(version, backups, { prefix: PREFIX, ...extra });
const dumps = () => fs.readdirSync(backups).filter((f) => f.endsWith(".dump")).sort();
const stream = { current: undefined as ReturnType<typeof udpStream> | undefined };

beforeAll(async () => {
  await prepareStack(PREFIX);
  await stack.init();
  await events.start(PREFIX);
  stack.configure(config("1.0.0"));
  const install = await stack.up();
  if (install.code !== 0) throw new Error(`install failed:\n${install.stdout}\n${install.stderr}`);
  // 1.2.0's migration refuses negative readings: the upgrade fails half way through it.
  expect(await postReading("broken-meter", -5)).toBe(201);
}, 5 * MINUTE);

afterAll(async () => {
  await stream.current?.stop();
  events.stop();
  await removeStack(PREFIX);
  stack.remove();
}, 2 * MINUTE);

let failed: RealRun;

describe.sequential("the real engine: a refused downgrade, a failed upgrade, its re-run and the rollback", () => {
  test("a downgrade is refused at `pulumi preview` with the guard's message; nothing runs", async () => {
    stack.configure(config("0.9.0"));
    const since = Date.now();
    const preview = await stack.run(["preview"]);
    expect(preview.code).not.toBe(0);
    expect(preview.stdout + preview.stderr).toMatch(/0\.9\.0.*1\.0\.0|1\.0\.0.*0\.9\.0/);
    expect(preview.stdout + preview.stderr).toMatch(/restoreFrom/);
    await sleep(300);
    expect(events.events.filter((e) => e.time >= since && ["create", "start", "die", "destroy"].includes(e.action))).toEqual([]);
    stack.configure(config("1.0.0"));
  }, 3 * MINUTE);

  test("1.0.0 -> 1.2.0 stops at migrate with the migration's own error; nothing after it ran; the state is true", async () => {
    stream.current = udpStream("rf-zl-", 40);
    await sleep(2000);
    stack.configure(config("1.2.0"));
    failed = await stack.up();
    expect(failed.code).not.toBe(0);
    const failedSteps = failed.steps.filter((s) => s.failed).map((s) => `${s.op} ${s.name}`);
    expect(failedSteps).toEqual([`create-replacement ${PREFIX}-migrate`]);
    expect(failed.logs.get(`${PREFIX}-migrate`)?.join("\n")).toMatch(/negative/i);
    // No step began after migrate failed: the followers, static and verify never started.
    const migrate = failed.steps.find((s) => s.failed)!;
    expect(failed.steps.filter((s) => s.start > migrate.end && s.op !== "same").map((s) => `${s.op} ${s.name}`)).toEqual([]);
    const state = await stack.export();
    expect(await stateDisagreements(state, await stackContainers(PREFIX))).toEqual([]);
    expect(state.pending_operations ?? []).toEqual([]);
    expect(await health()).toBe(200); // the new API runs (unmigrated parts aside), as the failure guide says
  }, 5 * MINUTE);

  test("a re-run resumes at migrate without a second backup, and fails there again", async () => {
    const before = dumps();
    const rerun = await stack.up();
    expect(rerun.code).not.toBe(0);
    expect(changes(rerun).filter((c) => c.endsWith(`${PREFIX}-backup`))).toEqual([]);
    expect(rerun.steps.filter((s) => s.failed).map((s) => s.name)).toEqual([`${PREFIX}-migrate`]);
    expect(dumps()).toEqual(before);
  }, 5 * MINUTE);

  test("the rollback to 1.0.0 restores the verified backup; every reading sent throughout is stored exactly once", async () => {
    stack.configure(config("1.0.0", { restoreFrom: "latest" }));
    const rollback = await stack.up();
    expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
    const done = changes(rollback);
    expect(done).toContain(`create ${PREFIX}-restore`);
    const restore = rollback.steps.find((s) => s.name === `${PREFIX}-restore`)!;
    const api = rollback.steps.find((s) => s.name === `${PREFIX}-api` && s.op === "create-replacement")!;
    expect(api.start).toBeGreaterThan(restore.end);
    expect(await health()).toBe(200);
    for (const [name, c] of await stackContainers(PREFIX)) if (/-(api|beat|worker-default-1)$/.test(name)) expect(c.version, name).toBe("1.0.0");
    await sleep(2000);
    const sent = await stream.current!.stop();
    stream.current = undefined;
    let rows = await rowsPerMeter("rf-zl-");
    const deadline = Date.now() + 2 * MINUTE;
    while (rows.size < sent && Date.now() < deadline) {
      await sleep(1000);
      rows = await rowsPerMeter("rf-zl-");
    }
    await sleep(1500);
    const delivery = deliveryOf(await rowsPerMeter("rf-zl-"), "rf-zl-", sent);
    expect(sent).toBeGreaterThan(100);
    expect(delivery.missing).toEqual([]);
    expect(delivery.duplicated).toEqual([]);
  }, 8 * MINUTE);
});
