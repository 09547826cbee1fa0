/**
 * Failure and recovery under the real engine (`toolchain/pulumi`, the stand-in plugins of
 * test/provider), on one stack in order: a downgrade refused at preview; three backups that
 * cannot be taken, each stopping the run before anything stops; 1.0.0 -> 1.2.0, whose migration
 * fails half way, stops at migrate with the step's log and a true state; a re-run resumes without
 * a second backup; the rollback to 1.0.0 restores the verified backup; UDP readings sent from
 * before the upgrade to after the rollback are each stored exactly once (backup.stopWriters);
 * the new API's port taken, resumed by `pulumi up --refresh`; and the control with
 * backup.stopWriters off, where the rollback loses the readings stored after the backup. All with
 * `proxy.enabled: false`: the API publishes its own port.
 */
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { deliveryOf, rowsPerMeter } from "../support/faults";
import { docker, sleep } from "../support/exec";
import { EventLog } from "../support/docker-events";
import { changes, nameOf, RealStack, stateDisagreements, type RealRun } from "../support/real-stack";
import {
  countReadings,
  health,
  PORTS,
  postReading,
  prepareStack,
  removeStack,
  SECRETS,
  stackContainers,
  standinConfig,
  tempDir,
  udpStream,
} from "../support/standin-stack";

const MINUTE = 60_000;
const PREFIX = "rf";
const backups = tempDir("engine-failure-backups");
const stack = new RealStack("failure", SECRETS);
const events = new EventLog();
// The maintenance proxy off, explicitly: this file is the engine path that runs without it (the
// API publishing its own port, as every stack did before the proxy's default was on), and its
// port-taken test needs the API's port free between the old API's removal and the new one's start.
const config = (version: string, extra: Record<string, unknown> = {}) =>
  standinConfig(version, backups, { prefix: PREFIX, proxy: { enabled: false }, ...extra });
const dumps = () =>
  fs
    .readdirSync(backups)
    .filter((f) => f.endsWith(".dump"))
    .sort();
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

/** The readings streamed through each failed upgrade and its rollback: written to test/.work/engine-zero-loss.json. */
const zeroLoss: Record<string, { sent: number; lost: number; duplicated: number }> = {};

afterAll(async () => {
  fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
  fs.writeFileSync(path.resolve(__dirname, "../.work/engine-zero-loss.json"), JSON.stringify(zeroLoss, null, 2));
  await stream.current?.stop();
  events.stop();
  await removeStack(PREFIX);
  stack.remove();
}, 2 * MINUTE);

/** The steps that failed in a run, as "op name". */
const failedSteps = (run: RealRun) => run.steps.filter((s) => s.failed).map((s) => `${s.op} ${s.name}`);

/** Steps that began after the failed one ended: none, when the engine stopped at the failure. */
function stepsAfterFailure(run: RealRun): string[] {
  const failure = run.steps.find((s) => s.failed)!;
  return run.steps.filter((s) => s.start > failure.end && s.op !== "same").map((s) => `${s.op} ${s.name}`);
}

/** Waits until the stored rows of `prefix` stop growing for `quietMs` (the queues drained). */
async function drained(prefix: string, quietMs = 6000, timeoutMs = 3 * MINUTE): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const now = [...(await rowsPerMeter(prefix)).values()].reduce((a, b) => a + b, 0);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return;
    }
    await sleep(1000);
  }
}

let failed: RealRun;

describe.sequential("the real engine: a refused downgrade, a failed upgrade, its re-run and the rollback", () => {
  test(
    "a downgrade is refused at `pulumi preview` with the guard's message; nothing runs",
    async () => {
      stack.configure(config("0.9.0"));
      const since = Date.now();
      const preview = await stack.run(["preview"]);
      expect(preview.code).not.toBe(0);
      expect(preview.stdout + preview.stderr).toMatch(/0\.9\.0.*1\.0\.0|1\.0\.0.*0\.9\.0/);
      expect(preview.stdout + preview.stderr).toMatch(/restoreFrom/);
      await sleep(300);
      expect(
        events.events.filter((e) => e.time >= since && ["create", "start", "die", "destroy"].includes(e.action)),
      ).toEqual([]);
      stack.configure(config("1.0.0"));
    },
    3 * MINUTE,
  );

  describe("a backup that cannot be taken stops the run before any service is stopped", () => {
    let before: Awaited<ReturnType<typeof stackContainers>>;

    beforeAll(async () => {
      before = await stackContainers(PREFIX);
    });

    async function expectStoppedAtBackup(run: RealRun): Promise<string> {
      expect(run.code).not.toBe(0);
      expect(failedSteps(run)).toEqual([`create-replacement ${PREFIX}-backup`]);
      expect(stepsAfterFailure(run)).toEqual([]);
      const after = await stackContainers(PREFIX);
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [name, c] of after)
        expect(`${c.running} ${c.id} ${c.version}`, name).toBe(
          `true ${before.get(name)!.id} ${before.get(name)!.version}`,
        );
      expect(dumps().filter((f) => f.includes("-to-1.1.0"))).toEqual([]);
      expect(await stateDisagreements(await stack.export(), after)).toEqual([]);
      expect(await health()).toBe(200);
      return `${run.logs.get(`${PREFIX}-backup`)?.join("\n") ?? ""}\n${run.stdout}\n${run.stderr}`;
    }

    test(
      "database unreachable",
      async () => {
        stack.configure(config("1.1.0"));
        await docker(["pause", `${PREFIX}-postgres`]);
        let run: RealRun;
        try {
          run = await stack.up();
        } finally {
          await docker(["unpause", `${PREFIX}-postgres`]);
        }
        expect(await expectStoppedAtBackup(run)).toContain(`database unreachable at 127.0.0.1:${PORTS.postgres}`);
      },
      4 * MINUTE,
    );

    test(
      "target directory unwritable",
      async () => {
        const file = path.join(backups, "not-a-directory");
        fs.writeFileSync(file, "");
        stack.configure(config("1.1.0", { backup: { dir: path.join(file, "backups"), keep: 5 } }));
        expect(await expectStoppedAtBackup(await stack.up())).toMatch(/backup: .*not-a-directory\/backups/);
        fs.rmSync(file);
      },
      4 * MINUTE,
    );

    test(
      "not enough free space",
      async () => {
        stack.configure(config("1.1.0", { backup: { dir: backups, keep: 5, minFreeMb: 9_000_000 } }));
        expect(await expectStoppedAtBackup(await stack.up())).toContain("not enough free space");
      },
      4 * MINUTE,
    );
  });

  test(
    "1.0.0 -> 1.2.0 stops at migrate with the migration's own error; nothing after it ran; the state is true",
    async () => {
      stream.current = udpStream("rf-zl-", 40);
      await sleep(2000);
      stack.configure(config("1.2.0"));
      failed = await stack.up();
      expect(failed.code).not.toBe(0);
      expect(failedSteps(failed)).toEqual([`create-replacement ${PREFIX}-migrate`]);
      expect(failed.logs.get(`${PREFIX}-migrate`)?.join("\n")).toMatch(/negative/i);
      // No step began after migrate failed: the followers, static and verify never started.
      expect(stepsAfterFailure(failed)).toEqual([]);
      const state = await stack.export();
      expect(await stateDisagreements(state, await stackContainers(PREFIX))).toEqual([]);
      expect(state.pending_operations ?? []).toEqual([]);
      expect(await health()).toBe(200); // the new API runs (unmigrated parts aside), as the failure guide says
    },
    5 * MINUTE,
  );

  test(
    "a re-run resumes at migrate without a second backup, and fails there again",
    async () => {
      const before = dumps();
      const rerun = await stack.up();
      expect(rerun.code).not.toBe(0);
      expect(changes(rerun).filter((c) => c.endsWith(`${PREFIX}-backup`))).toEqual([]);
      expect(rerun.steps.filter((s) => s.failed).map((s) => s.name)).toEqual([`${PREFIX}-migrate`]);
      expect(dumps()).toEqual(before);
    },
    5 * MINUTE,
  );

  test(
    "the rollback to 1.0.0 restores the verified backup; every reading sent throughout is stored exactly once",
    async () => {
      stack.configure(config("1.0.0", { restoreFrom: "latest" }));
      const rollback = await stack.up();
      expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
      const done = changes(rollback);
      expect(done).toContain(`create ${PREFIX}-restore`);
      const restore = rollback.steps.find((s) => s.name === `${PREFIX}-restore`)!;
      const api = rollback.steps.find((s) => s.name === `${PREFIX}-api` && s.op === "create-replacement")!;
      expect(api.start).toBeGreaterThan(restore.end);
      expect(await health()).toBe(200);
      for (const [name, c] of await stackContainers(PREFIX))
        if (/-(api|beat|worker-default-1)$/.test(name)) expect(c.version, name).toBe("1.0.0");
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
      zeroLoss.stopWriters = { sent, lost: delivery.missing.length, duplicated: delivery.duplicated.length };
      expect(sent).toBeGreaterThan(100);
      expect(delivery.missing).toEqual([]);
      expect(delivery.duplicated).toEqual([]);
    },
    8 * MINUTE,
  );

  test(
    "the new API cannot start (its port is taken): the run stops with the container created, not started, and recorded with its error; once the port is free, `pulumi up --refresh` starts it and finishes without a second backup",
    async () => {
      stack.configure(config("1.1.0"));
      const before = dumps();
      const squatter = net.createServer();
      let squatting = false;
      const run = await stack.up([], {
        during: async (live) => {
          // Something else takes the API's port between the old API's removal and the new one's start.
          await live.began(`${PREFIX}-api`);
          const deadline = Date.now() + 2 * MINUTE;
          while (!squatting && Date.now() < deadline) {
            squatting = await new Promise<boolean>((resolve) => {
              squatter.once("error", () => resolve(false)).listen(PORTS.api, "127.0.0.1", () => resolve(true));
            });
            if (!squatting) await sleep(5);
          }
          expect(squatting).toBe(true);
        },
      });
      try {
        expect(run.code).not.toBe(0);
        expect(failedSteps(run)).toEqual([`create-replacement ${PREFIX}-api`]);
        expect(run.stdout + run.stderr).toMatch(/Unable to start container: .*address already in use/s);
        expect(stepsAfterFailure(run)).toEqual([]);
        // Kept with its ID and the error as initErrors, as the engine records a partial create.
        const api = (await stack.export()).resources.find((r) => nameOf(r.urn) === `${PREFIX}-api` && !r.delete)!;
        expect(api.initErrors?.[0]).toMatch(/Unable to start container/);
        expect((await stackContainers(PREFIX)).get(`${PREFIX}-api`)?.running).toBe(false);
      } finally {
        await new Promise<void>((resolve) => squatter.close(() => resolve()));
      }
      // The failure guide: free the port, then `pulumi up --refresh`.
      const resumed = await stack.up(["--refresh"]);
      expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
      const done = changes(resumed);
      // The refresh read the stopped container, so the update starts it; the maintenance goes on from there.
      expect(done).toContain(`update ${PREFIX}-api`);
      expect(done).toContain(`create-replacement ${PREFIX}-migrate`);
      // No backup runs again (the refresh reads it; the record it replaced is deleted at the end).
      expect(
        done.filter((c) => /^(create|create-replacement|update) /.test(c) && c.endsWith(` ${PREFIX}-backup`)),
      ).toEqual([]);
      expect(dumps().filter((f) => !before.includes(f))).toHaveLength(1);
      expect(await health()).toBe(200);
      for (const [name, c] of await stackContainers(PREFIX)) expect(c.running, name).toBe(true);
      expect(await countReadings("broken-meter")).toBe(1);
    },
    8 * MINUTE,
  );

  test(
    "control, backup.stopWriters off: the readings the writers stored between the backup and their stop are lost by the rollback",
    async () => {
      const writersRun = { backup: { dir: backups, keep: 5, stopWriters: false } };
      const meters = "rf-off-";
      stream.current = udpStream(meters, 25);
      await sleep(3000);
      stack.configure(config("1.2.0", writersRun));
      const upgrade = await stack.up();
      expect(failedSteps(upgrade)).toEqual([`create-replacement ${PREFIX}-migrate`]);
      stack.configure(config("1.1.0", { ...writersRun, restoreFrom: "latest" }));
      const rollback = await stack.up();
      expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
      await sleep(3000);
      const sent = await stream.current.stop();
      stream.current = undefined;
      await drained(meters);
      const delivery = deliveryOf(await rowsPerMeter(meters), meters, sent);
      zeroLoss.writersRunning = { sent, lost: delivery.missing.length, duplicated: delivery.duplicated.length };
      expect(sent).toBeGreaterThan(200);
      // The difference the setting makes, on the same stack and stream as the test above.
      expect(delivery.missing.length).toBeGreaterThan(0);
      expect(delivery.duplicated).toEqual([]);
    },
    10 * MINUTE,
  );
});
