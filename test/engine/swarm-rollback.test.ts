/**
 * The failing 1.2.0 migration and the rollback on a swarm of three nodes under the real engine
 * (test/engine/failure.test.ts is the one-host version): 1.1.0 installed with backup.stopWriters
 * (the default) and a negative reading, which 1.2.0's migration 0004 refuses. Meters push UDP to
 * both edge nodes from before the upgrade to after the rollback. 1.1.0 -> 1.2.0: the backup scales
 * the writers' services (beat, workers, processor, poster) to 0 before it dumps, the run stops at
 * migrate with the migration's log in the engine's output, nothing after it runs, and the engine's
 * state matches the swarm's services. The writers the failed run removed stay in the state pending
 * replacement, and are dropped from it first (README, "Docker Swarm": the engine would delete them
 * again and the provider fails on a service that is gone). The rollback to 1.1.0 (`restoreFrom:
 * latest`) restores the backup taken before the upgrade after scaling the 1.2.0 API to 0, the
 * engine starts 1.1.0, and every reading sent is stored exactly once: what came after the backup
 * waited in RabbitMQ.
 * Placement as in test/engine/swarm.test.ts (test/support/swarm-stack.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exec, sleep, waitFor } from "../support/exec";
import { SERVICE } from "../support/provider-facts";
import { PROJECT_DIR, PULUMI } from "../support/real-engine";
import { changes, nameOf, RealStack, type EngineStep, type RealRun } from "../support/real-stack";
import { SECRETS, tempDir } from "../support/standin-stack";
import {
  apiHealth,
  duplicatesOf,
  meters,
  postReading,
  readingsOf,
  runningTasks,
  startSwarmStack,
  swarmConfig,
  swarmServices,
  swarmSql,
  swarmStateDisagreements,
  SWARM_IMAGES,
  type SwarmStack,
} from "../support/swarm-stack";

const MINUTE = 60_000;
// Overridable so that two checkouts on one machine can run this file at once (each its own swarm).
const PREFIX = process.env.SWARM_TEST_PREFIX ?? "swr";
const STACK = "swarm-rollback";
// Each `pulumi up` may take this long on a machine shared with other test runs (RealStack's default is 10 minutes).
const UP = { timeoutMs: 20 * MINUTE };
// Every swarm image but 1.0.0's: this file starts at 1.1.0.
const IMAGES = SWARM_IMAGES.filter((image) => !image.endsWith("/utilitarian:1.0.0"));
const WRITERS = ["beat", "worker-default", "processor", "poster"];
const METERS = "swr-zl";
let s: SwarmStack;
let stack: RealStack;
let stream: ReturnType<typeof meters> | undefined;
const backupDir = tempDir("swarm-rollback-backups");
const named = (key: string) => `${PREFIX}-${key}`;

beforeAll(async () => {
  s = await startSwarmStack(PREFIX, IMAGES);
  stack = new RealStack(STACK, SECRETS);
  await stack.init();
}, 20 * MINUTE);

afterAll(async () => {
  await stream?.stop();
  await s?.swarm.stop();
  stack?.remove();
}, 5 * MINUTE);

/** The steps that failed in a run, as "op name". */
const failedSteps = (run: RealRun) => run.steps.filter((x) => x.failed).map((x) => `${x.op} ${x.name}`);

/** Steps that began after the failed one ended: none, when the engine stopped at the failure. */
function stepsAfterFailure(run: RealRun): string[] {
  const failure = run.steps.find((x) => x.failed)!;
  return run.steps.filter((x) => x.start > failure.end && x.op !== "same").map((x) => `${x.op} ${x.name}`);
}

function step(run: RealRun, op: string, key: string): EngineStep {
  const found = run.steps.find((x) => x.op === op && x.name === named(key));
  if (!found) throw new Error(`no ${op} of ${key}: ${changes(run).join(", ")}`);
  return found;
}

const stateDisagreements = async () => swarmStateDisagreements(await stack.export(), await swarmServices(s));

describe.sequential("the failing 1.2.0 migration and the rollback on a swarm of three nodes", () => {
  let installed: Record<string, string[]> = {};

  test(
    "1.1.0 installs with the writers stopped for each backup (the default); a negative reading is stored",
    async () => {
      stack.configure(swarmConfig(s, "1.1.0", backupDir, { prefix: s.prefix, backup: { stopWriters: true } }));
      const install = await stack.up([], UP);
      expect(install.code, install.stdout + install.stderr).toBe(0);
      // A first install has no writer to stop yet.
      expect((install.logs.get(named("backup")) ?? []).join("\n")).toMatch(/writer .*-beat is not running \(absent\)/);
      installed = await runningTasks(s);
      expect(await apiHealth(s)).toBe(200);
      // 1.2.0's migration 0004 refuses negative readings: the upgrade fails half way through it.
      expect(await postReading(s, "broken-meter", -5)).toBe(201);
    },
    25 * MINUTE,
  );

  test(
    "1.1.0 -> 1.2.0 with meters pushing to both edge nodes: the writers' services scaled to 0 before the dump; the run stops at migrate with the migration's log; nothing after it ran; the state is true",
    async () => {
      stream = meters(s, [s.app, s.workers], METERS, 300);
      // Readings stored before the upgrade are in its backup.
      await waitFor(async () => (await readingsOf(s, METERS)) > 10, MINUTE, 500);
      stack.configure(swarmConfig(s, "1.2.0", backupDir, { prefix: s.prefix, backup: { stopWriters: true } }));
      const failed = await stack.up([], UP);
      expect(failed.code).not.toBe(0);
      expect(failedSteps(failed)).toEqual([`create-replacement ${named("migrate")}`]);
      // The migration's own error, in the step's log and in what `pulumi up` printed.
      expect((failed.logs.get(named("migrate")) ?? []).join("\n")).toMatch(/has a negative value/);
      expect(failed.stdout + failed.stderr).toMatch(/has a negative value/);
      expect(stepsAfterFailure(failed)).toEqual([]);

      // The backup stopped the writers (scaled to 0, waited for their tasks) before it dumped.
      const backupLog = (failed.logs.get(named("backup")) ?? []).join("\n");
      const stopped = backupLog.search(/writers: stopped the writers in [\d.]+s, scaled to 0: /);
      expect(stopped, backupLog).toBeGreaterThanOrEqual(0);
      for (const w of WRITERS) expect(backupLog).toMatch(new RegExp(`scaled to 0: [^\\n]*${named(w)}\\b`));
      expect(backupLog.search(/backup: database .* answers/)).toBeGreaterThan(stopped);
      // Then the engine removed them, before the API; static and the followers' new services never came.
      const backup = step(failed, "create-replacement", "backup");
      const apiDeleted = step(failed, "delete-replaced", "api");
      for (const w of WRITERS) {
        const deleted = step(failed, "delete-replaced", w);
        expect(backup.end < deleted.start, `${w} removed after the backup`).toBe(true);
        expect(deleted.end < apiDeleted.start, `${w} removed before the API`).toBe(true);
      }

      // The state is true: every service it holds runs with its version and replicas, nothing else.
      expect(await stateDisagreements()).toEqual([]);
      expect((await stack.export()).pending_operations ?? []).toEqual([]);
      const live = await swarmServices(s);
      expect(live.get(named("api"))).toEqual({ version: "1.2.0", replicas: "1" });
      for (const w of WRITERS) expect(live.has(named(w)), w).toBe(false);
      // The UDP servers, PostgreSQL and RabbitMQ were not touched: the same tasks as after the install.
      const tasks = await runningTasks(s);
      for (const key of ["postgres", "rabbitmq", "udp-server"])
        expect(tasks[named(key)], key).toEqual(installed[named(key)]);
      expect(await apiHealth(s)).toBe(200); // the new API runs, as the failure guide says
    },
    25 * MINUTE,
  );

  test(
    "the rollback to 1.1.0 (restoreFrom latest) restores the backup taken before the upgrade, the 1.2.0 API scaled to 0 first; every reading sent throughout is stored exactly once",
    async () => {
      // The failed run left the writers in the state pending replacement (deleted, not created again).
      // Pulumi 3.250's step generator deletes the dependents of a delete-before-replace resource (the
      // API) without skipping those already deleted, and the docker provider's delete of a service
      // that is gone fails: until the engine skips them, the rollback needs them out of the state.
      const pending = (await stack.export()).resources.filter((r) => r.type === SERVICE && r.pendingReplacement);
      expect(pending.map((r) => nameOf(r.urn)).sort()).toEqual(WRITERS.map(named).sort());
      for (const r of pending) {
        const deleted = await exec(
          PULUMI,
          ["state", "delete", r.urn, "--target-dependents", "--yes", "--stack", STACK],
          {
            cwd: PROJECT_DIR,
            env: stack.env,
          },
        );
        expect(deleted.code, deleted.stderr).toBe(0);
      }
      stack.configure({
        ...swarmConfig(s, "1.1.0", backupDir, { prefix: s.prefix, backup: { stopWriters: true } }),
        restoreFrom: "latest",
      });
      const rollback = await stack.up([], UP);
      expect(rollback.code, rollback.stdout + rollback.stderr).toBe(0);
      const restore = step(rollback, "create", "restore");
      const restoreLog = (rollback.logs.get(named("restore")) ?? []).join("\n");
      // The backup taken while 1.1.0 ran, not the one this run took of the failed state.
      expect(restoreLog).toMatch(/newest verified backup is utilitarian-\d{8}T\d{6}Z-1\.1\.0-to-1\.2\.0\.dump/);
      expect(restoreLog).toMatch(new RegExp(`stopping \\(scaling to 0\\): ${named("api")}\\b`));
      expect(restore.end).toBeLessThan(step(rollback, "delete-replaced", "api").start);
      expect(restore.end).toBeLessThan(step(rollback, "create-replacement", "api").start);
      // The writers, removed by the failed run, come back on 1.1.0 after the restore (created anew).
      for (const w of WRITERS) {
        const created = rollback.steps.find((x) => x.name === named(w) && /^create/.test(x.op));
        expect(created?.start, w).toBeGreaterThan(restore.end);
      }
      expect(changes(rollback)).toContainEqual(expect.stringMatching(new RegExp(`^create\\S* ${named("verify")}$`)));

      expect(await stateDisagreements()).toEqual([]);
      const live = await swarmServices(s);
      // The app's services on 1.1.0; the processor and poster (their own releases) back on 1.0.0.
      for (const key of ["api", "beat", "worker-default"]) expect(live.get(named(key))?.version, key).toBe("1.1.0");
      for (const key of ["processor", "poster"]) expect(live.get(named(key))?.version, key).toBe("1.0.0");
      expect(await apiHealth(s)).toBe(200);
      // The database is the backup's: 1.2.0's migration 0003 is not applied; the failed one is kept aside.
      expect(await swarmSql(s, "select count(*) from django_migrations where name = '0003_tariff'")).toBe("0");
      expect(
        await swarmSql(
          s,
          "select count(*) from pg_database where datname like 'utilitarian_before_restore_%'",
          "postgres",
        ),
      ).toBe("1");
      expect(await readingsOf(s, "broken-meter")).toBe(1);

      await sleep(2000);
      const sent = await stream!.stop();
      stream = undefined;
      await waitFor(async () => (await readingsOf(s, METERS)) >= sent, 3 * MINUTE, 1000);
      // A duplicate would be a redelivery right behind its original: give it a moment to show.
      await sleep(1500);
      expect(await readingsOf(s, METERS)).toBe(sent);
      expect(await duplicatesOf(s, METERS)).toBe(0);
      expect(sent).toBeGreaterThan(100);
    },
    25 * MINUTE,
  );
});
