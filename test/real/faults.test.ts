/**
 * Faults during an upgrade, on the stand-in stack (its own prefix `flt`): each is injected while UDP
 * readings stream in, then the documented next command completes the upgrade; every test checks the
 * engine's state against the containers, and that every message sent was stored exactly once.
 * The stack goes through one version per fault (test/support/faults.ts buildFaultImages), so the
 * tests run in order, each starting where the one before left the stack.
 *
 * Where the engine decides (an interrupted `pulumi up`), the rehearsal follows pulumi/pulumi v3.250.0
 * and the command provider as test/support/interrupt.ts cites them.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { Interrupted, type InterruptedRun } from "../support/interrupt";
import { docker, exec, sleep, waitFor } from "../support/exec";
import { StackLocked, StepFailed, stepFailure } from "../support/rehearsal";
import { runScript } from "../support/run-script";
import {
  FAULT_PREFIX, faultConfig, filesIn, flt, holdLock, newFaultRehearsal, prepareFaultStack, processesIn, queryRunning, readingStream,
  removeFaultStack, stateDisagreements, stepVersion, waitsForLock, WRITERS, type Delivery, type ReadingStream,
} from "../support/faults";
import { plain } from "../support/engine";
import { dockerDaemon, restartDockerDaemon, restartWouldLoseReadings, type DaemonRestart } from "../support/docker-daemon";
import { health, PORTS, sendUdp, sql, stackContainers, tempDir, waitForReadings } from "../support/standin-stack";

const MINUTES = 60_000;
const backups = tempDir("faults-backups");
const rehearsal = newFaultRehearsal();

interface Outcome extends Delivery {
  injected: string;
  stateAfter: string;
  recovery: string;
  /** For an interrupt: the processes that kept the step in flight after the first signal. */
  inFlightAfterFirstSignal?: string[];
  /** For a failed step: the lines of its error that say why. */
  observed?: string[];
  /** For the daemon restart: messages sent while the daemon did not answer (all must arrive). */
  sentWhileDaemonDown?: number;
}

/** The lines of `message` that match `pattern`: what the operator reads in the error. */
const linesMatching = (message: string, pattern: RegExp) => [...new Set(message.split("\n").map((line) => line.trim()).filter((line) => pattern.test(line)))];
const outcomes: Record<string, Outcome> = {};
let suiteStarted = 0;
/** Seconds of the fresh install in `beforeAll`: the yardstick each fault's time is compared with. */
let installSeconds = 0;
let stream: ReadingStream | undefined;

/** The test's UDP stream, stopped after the test whatever happened. */
function startStream(prefix: string): ReadingStream {
  stream = readingStream(prefix);
  return stream;
}

const testSeconds: Record<string, number> = {};
let testStarted = 0;
beforeEach(() => {
  testStarted = Date.now();
});
afterEach(async (context) => {
  testSeconds[context.task.name.split(":")[0]] = Math.round((Date.now() - testStarted) / 1000);
  await stream?.abort();
  stream = undefined;
});


async function interruption(run: Promise<unknown>): Promise<Interrupted> {
  try {
    await run;
  } catch (e) {
    if (e instanceof Interrupted) return e;
    throw e;
  }
  throw new Error("the run was not interrupted");
}

/** Status of each container of the stack: name -> "running <version>" or "stopped <version>". */
async function containers(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, c] of await stackContainers(FAULT_PREFIX)) out[name] = `${c.running ? "running" : "stopped"} ${c.version}`;
  return out;
}

/** The followers an upgrade deletes ahead of the API: absent, and pending replacement in the state. */
async function expectFollowersDown(): Promise<void> {
  const all = await containers();
  for (const writer of WRITERS) {
    expect(all[writer], writer).toBeUndefined();
    expect(rehearsal.state.get(writer)?.pendingReplacement, writer).toBe(true);
  }
}

/** Status of `GET /` on the API: 500 until `compress` ran in its container. */
async function pageStatus(): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${PORTS.api}/`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  return response?.status ?? 0;
}

/** When each container last started (`docker inspect`): unchanged when it ran on throughout. */
async function startedAt(names: string[]): Promise<Record<string, string>> {
  return Object.fromEntries(await Promise.all(names.map(async (name) => [name, await docker(["inspect", "-f", "{{.State.StartedAt}}", name])])));
}

/**
 * After the recovery: the state true, every service running the version, the readings of the
 * stream all stored once.
 */
async function expectCompleted(version: string, delivery: Delivery): Promise<void> {
  expect(await stateDisagreements(rehearsal)).toEqual([]);
  const all = await containers();
  for (const service of ["api", "beat", "worker-default-1"]) expect(all[flt(service)], service).toBe(`running ${version}`);
  // The edge services and the data services run their own versions.
  for (const service of ["processor", "poster", "udp-server", "postgres", "rabbitmq"]) expect(all[flt(service)], service).toMatch(/^running/);
  expect(await health()).toBe(200);
  expect(delivery.sent).toBeGreaterThan(100);
  expect(delivery.missing).toEqual([]);
  expect(delivery.duplicated).toEqual([]);
  // The readings stored before the first fault are all still there.
  expect(await waitForReadings("base-", 20, 10_000)).toBe(20);
}

beforeAll(async () => {
  suiteStarted = Date.now();
  await prepareFaultStack();
  const installStarted = Date.now();
  await rehearsal.up(faultConfig("1.0.0", backups));
  installSeconds = Math.round((Date.now() - installStarted) / 1000);
  for (let i = 0; i < 20; i++) await sendUdp(`base-${i}`, i);
  expect(await waitForReadings("base-", 20)).toBe(20);
  // A table the first test locks: what makes a backup hang (a long ALTER, a VACUUM FULL elsewhere).
  await sql("create table fault_hold (id int)");
}, 5 * MINUTES);

afterAll(async () => {
  const summary = { seconds: Math.round((Date.now() - suiteStarted) / 1000), installSeconds, testSeconds, faults: Object.fromEntries(Object.entries(outcomes).map(([k, o]) => [k, {
    injected: o.injected, stateAfter: o.stateAfter, recovery: o.recovery, inFlightAfterFirstSignal: o.inFlightAfterFirstSignal, observed: o.observed, sent: o.sent, delivered: o.delivered, lost: o.missing.length, sentWhileDaemonDown: o.sentWhileDaemonDown, duplicated: o.duplicated.length,
  }])) };
  fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
  fs.writeFileSync(path.resolve(__dirname, "../.work/faults.json"), JSON.stringify(summary, null, 2));
  // Where the time went: every step carried out, with its duration.
  fs.writeFileSync(path.resolve(__dirname, "../.work/faults-steps.json"), JSON.stringify(rehearsal.records.map((r) => ({
    step: `${r.step.op} ${r.step.name}`, ok: r.ok, ms: r.endedAt - r.startedAt, at: Math.round((r.startedAt - suiteStarted) / 1000),
  })), null, 1));
  console.log(JSON.stringify(summary, null, 2));
  await removeFaultStack();
  fs.rmSync(backups, { recursive: true, force: true });
}, 2 * MINUTES);

describe("`pulumi up` interrupted (SIGINT, then SIGTERM)", () => {
  test("during the backup: the step is not recorded and stays a pending create, the writers start again once the backup has ended; `pulumi up` completes the upgrade", async () => {
    const stream = startStream("f1-");
    await sleep(1000);
    // The backup hangs on a lock; the operator presses ^C, then sends SIGTERM.
    const hold = await holdLock("fault_hold");
    let interrupted: Interrupted;
    let interrupt: InterruptedRun;
    try {
      interrupted = await interruption(rehearsal.up(faultConfig("1.1.0", backups), {
        interrupt: { atStep: (s) => s.name === flt("backup"), when: () => waitsForLock("utilitarian-backup"), signals: ["SIGINT", "SIGTERM"] },
      }));
      interrupt = rehearsal.lastInterrupt!;
      // The first signal killed the wrapper the provider started; the backup it ran kept the step in flight.
      expect(interrupt.afterFirstSignal.map((p) => p.args).join("\n")).toMatch(/scripts\/backup\.sh/);
      expect(interrupt.afterFirstSignal.map((p) => p.pid)).not.toContain(interrupt.pgid);
      expect(interrupt.afterFirstSignal.map((p) => p.args).join("\n")).not.toMatch(/writers-stopped\.sh/);
      await interrupt.processesEnded(30_000);
    } finally {
      await hold.release();
    }
    expect(interrupted.outcome).toBe("terminated");
    expect(interrupted.printed[0]).toBe("^C received; cancelling. If you would like to terminate immediately, press ^C again.");
    expect(interrupted.printed.at(-1)).toBe("SIGTERM received; terminating");

    // The state: the backup of 1.1.0 never completed, the engine left its create pending; nothing else moved.
    expect(stepVersion(rehearsal, "backup")).toBe("1.0.0");
    expect(rehearsal.pendingOperations).toEqual([{ name: flt("backup"), type: "creating" }]);
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    expect(filesIn(backups).filter((f) => f.includes("-to-1.1.0") || f.endsWith(".partial"))).toEqual([]);
    // The wrapper was killed before its exit handler could start the writers again; its guard
    // did, once the backup it had started was over (their input queued in RabbitMQ meanwhile).
    let after: Record<string, string> = {};
    const writersRunning = await waitFor(async () => {
      after = await containers();
      return WRITERS.every((w) => /^running /.test(after[w] ?? ""));
    }, 20_000, 250);
    expect(writersRunning, JSON.stringify(after)).toBe(true);
    expect(after[flt("api")]).toBe("running 1.0.0");
    expect(after[flt("udp-server")]).toMatch(/^running/);

    // Recovery: `pulumi up` takes the backup again and completes the upgrade.
    const records = await rehearsal.up(faultConfig("1.1.0", backups));
    expect(records.map((r) => `${r.step.op} ${r.step.name}`)).toContain(`replace ${flt("backup")}`);
    expect(stepVersion(rehearsal, "backup")).toBe("1.1.0");
    // The pending create outlives the run that completed it, until `pulumi refresh --clear-pending-creates`.
    expect(rehearsal.pendingOperations).toEqual([{ name: flt("backup"), type: "creating" }]);
    await rehearsal.refreshOnly({ clearPendingCreates: true });
    expect(rehearsal.pendingOperations).toEqual([]);
    const delivery = await stream.stop();
    outcomes.backupInterrupted = {
      inFlightAfterFirstSignal: interrupt.afterFirstSignal.map((p) => p.args),
      injected: "SIGINT, then SIGTERM 0.5 s later, to `pulumi up` while the backup waited for a lock",
      stateAfter: "backup not recorded (pending create); writers started again by the backup's guard once the backup ended; API 1.0.0 running; no dump or partial file",
      recovery: "pulumi up; pulumi refresh --clear-pending-creates",
      ...delivery,
    };
    await expectCompleted("1.1.0", delivery);
  }, 6 * MINUTES);

  test("during migrate: the migration goes on in the API container after `pulumi up` ended; once it has, `pulumi up` finds nothing to migrate and completes", async () => {
    const stream = startStream("f2-");
    await sleep(1000);
    const interrupted = await interruption(rehearsal.up(faultConfig("1.3.0", backups), {
      interrupt: { atStep: (s) => s.name === flt("migrate"), when: () => queryRunning("fault-test slow migration 0005"), signals: ["SIGINT", "SIGTERM"] },
    }));
    const interrupt = rehearsal.lastInterrupt!;
    const afterFirst = interrupt.afterFirstSignal.map((p) => p.args).join("\n");
    expect(afterFirst).toMatch(/docker exec flt-api python manage\.py migrate/);
    // Killed: the process the provider started. Left: its subshell running the migration's pipeline.
    expect(interrupt.afterFirstSignal.map((p) => p.pid)).not.toContain(interrupt.pgid);
    expect(interrupted.outcome).toBe("terminated");
    // `pulumi up` has ended; the migration has not.
    expect(await queryRunning("fault-test slow migration 0005")).toBe(true);

    expect(stepVersion(rehearsal, "migrate")).toBe("1.1.0");
    expect(rehearsal.pendingOperations).toEqual([{ name: flt("migrate"), type: "creating" }]);
    expect(stepVersion(rehearsal, "backup")).toBe("1.3.0");
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    expect((await containers())[flt("api")]).toBe("running 1.3.0");
    await expectFollowersDown();

    // Recovery: wait until the migration has ended (`docker top flt-api` lists no `manage.py migrate`), then `pulumi up`.
    expect(await waitFor(async () => (await processesIn(flt("api"), "manage.py migrate")).length === 0, 60_000, 500)).toBe(true);
    await interrupt.processesEnded(30_000);
    expect(await sql("select count(*) from django_migrations where name = '0005_fault_slow'")).toBe("1");
    const records = await rehearsal.up(faultConfig("1.3.0", backups));
    const migrate = records.find((r) => r.step.name === flt("migrate"))!;
    expect(migrate.output).toMatch(/migrate: ok, 0 migration\(s\) applied/);
    // No second backup: the interrupted run had recorded it. (The old backup Command, replaced
    // create-before-delete, is deleted now: the terminated run never reached its deletes.)
    expect(records.map((r) => `${r.step.op} ${r.step.name}`)).not.toContain(`replace ${flt("backup")}`);
    expect(records.map((r) => `${r.step.op} ${r.step.name}`)).toContain(`delete-replaced ${flt("backup")}`);
    await rehearsal.refreshOnly({ clearPendingCreates: true });
    expect(rehearsal.pendingOperations).toEqual([]);
    const delivery = await stream.stop();
    outcomes.migrateInterrupted = {
      inFlightAfterFirstSignal: interrupt.afterFirstSignal.map((p) => p.args),
      injected: "SIGINT, then SIGTERM 0.5 s later, to `pulumi up` during a 6 s migration",
      stateAfter: "migrate not recorded (pending create); new API running; followers deleted (pending replacement); the migration finished inside the API container after pulumi ended",
      recovery: "wait for `manage.py migrate` to leave `docker top <prefix>-api`; pulumi up; pulumi refresh --clear-pending-creates",
      ...delivery,
    };
    await expectCompleted("1.3.0", delivery);
    expect(await sql("select count(*) from django_migrations where name = '0005_fault_slow'")).toBe("1");
  }, 6 * MINUTES);

  test("while the followers are down (the static step): static is not recorded, the API serves without compressed assets; `pulumi up` runs static and starts the followers", async () => {
    const stream = startStream("f3-");
    await sleep(1000);
    const interrupted = await interruption(rehearsal.up(faultConfig("1.3.1", backups), {
      interrupt: { atStep: (s) => s.name === flt("static"), when: async (group) => group.some((p) => p.args.includes("collectstatic")), signals: ["SIGINT", "SIGTERM"] },
    }));
    const interrupt = rehearsal.lastInterrupt!;
    expect(interrupt.afterFirstSignal.map((p) => p.args).join("\n")).toMatch(/docker exec flt-api python manage\.py collectstatic/);
    expect(interrupted.outcome).toBe("terminated");
    expect(stepVersion(rehearsal, "static")).toBe("1.3.0");
    expect(stepVersion(rehearsal, "migrate")).toBe("1.3.1");
    expect(rehearsal.pendingOperations).toEqual([{ name: flt("static"), type: "creating" }]);
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    await expectFollowersDown();
    expect(await health()).toBe(200);
    // `compress` never ran in the new API container: its pages answer 500 until the static step runs.
    expect(await pageStatus()).toBe(500);

    // Recovery: the killed step's `docker exec` leaves its collectstatic running inside the API
    // container; wait until `docker top` lists no manage.py, then `pulumi up`. (The request above
    // left an empty offline manifest in the Gunicorn worker that served it: pages kept answering
    // 500 after the recovery in one CI run, until static.sh restarted the API after compress.)
    expect(await waitFor(async () => (await processesIn(flt("api"), "manage.py")).length === 0, 60_000, 500)).toBe(true);
    await interrupt.processesEnded(30_000);
    const records = await rehearsal.up(faultConfig("1.3.1", backups));
    const done = records.map((r) => `${r.step.op} ${r.step.name}`);
    expect(done).toContain(`replace ${flt("static")}`);
    expect(done).not.toContain(`replace ${flt("migrate")}`);
    await rehearsal.refreshOnly({ clearPendingCreates: true });
    const delivery = await stream.stop();
    outcomes.followersDownInterrupted = {
      inFlightAfterFirstSignal: interrupt.afterFirstSignal.map((p) => p.args),
      injected: "SIGINT, then SIGTERM 0.5 s later, to `pulumi up` during collectstatic (followers deleted)",
      stateAfter: "static not recorded (pending create); new API running, migrated, its pages 500 (no compress); followers deleted (pending replacement)",
      recovery: "wait for `manage.py` to leave `docker top <prefix>-api`; pulumi up; pulumi refresh --clear-pending-creates",
      ...delivery,
    };
    await expectCompleted("1.3.1", delivery);
    expect(await pageStatus()).toBe(200);
  }, 6 * MINUTES);
});

describe("PostgreSQL restarted while migrate runs", () => {
  test("migrate fails with the lost connection, its migration rolled back; `pulumi up` migrates and completes", async () => {
    const stream = startStream("f4-");
    await sleep(1000);
    let restart: Promise<void> | undefined;
    const failed = await stepFailure(rehearsal.up(faultConfig("1.4.0", backups), {
      beforeStep: async (step) => {
        if (step.name !== flt("migrate") || restart) return;
        restart = (async () => {
          if (!(await waitFor(() => queryRunning("fault-test slow migration 0006"), 60_000, 100))) throw new Error("the migration never ran");
          await docker(["restart", flt("postgres")]);
        })();
      },
    }));
    await restart;
    expect(failed.record.step.name).toBe(flt("migrate"));
    expect(failed.message).toMatch(/terminating connection|server closed the connection|connection to server .* failed|could not connect/i);
    expect(failed.message).toContain("migrate failed; the log is above");
    expect(stepVersion(rehearsal, "migrate")).toBe("1.3.1");
    expect(rehearsal.pendingOperations).toEqual([]);
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    await expectFollowersDown();
    // Django ran the migration in one transaction: nothing of it stayed.
    expect(await waitFor(async () => (await sql("select count(*) from django_migrations where name = '0006_fault_slow'")) === "0", 30_000)).toBe(true);
    expect(await sql("select count(*) from information_schema.tables where table_name = 'readings_fault_b'")).toBe("0");
    expect((await containers())[flt("api")]).toBe("running 1.4.0");

    const records = await rehearsal.up(faultConfig("1.4.0", backups));
    expect(records.find((r) => r.step.name === flt("migrate"))!.output).toMatch(/migrate: ok, 1 migration\(s\) applied/);
    const delivery = await stream.stop();
    outcomes.postgresRestarted = {
      observed: linesMatching(failed.message, /terminating connection|server closed|connection to server|could not connect|migrate failed/i),
      injected: "docker restart <prefix>-postgres during a 6 s migration",
      stateAfter: "migrate failed, not recorded; its migration rolled back; new API running; followers deleted (pending replacement)",
      recovery: "pulumi up",
      ...delivery,
    };
    await expectCompleted("1.4.0", delivery);
    expect(await sql("select count(*) from information_schema.tables where table_name = 'readings_fault_b'")).toBe("1");
  }, 6 * MINUTES);
});

describe("the new API's image exits at once", () => {
  test("the API is created (Docker restarts it over and over), migrate fails waiting for it; a release that starts, `pulumi up`, completes", async () => {
    const stream = startStream("f5-");
    await sleep(1000);
    const recorded = rehearsal.records.length;
    const failed = await stepFailure(rehearsal.up(faultConfig("1.5.0", backups)));
    // The provider's create succeeded: ContainerStart worked, and its read found the container running
    // (Docker reports a restarting container as running), so the engine recorded it without errors.
    const api = rehearsal.records.slice(recorded).find((r) => r.step.name === flt("api") && r.step.op === "replace");
    expect(api?.ok).toBe(true);
    expect(rehearsal.state.get(flt("api"))!.initErrors).toBeUndefined();
    expect(failed.record.step.name).toBe(flt("migrate"));
    expect(failed.message).toMatch(/container flt-api is not running after 20s \(state: restarting true \d+\)|is restarting|is not running/);
    const restarts = Number(await docker(["inspect", "-f", "{{.RestartCount}}", flt("api")]));
    expect(restarts).toBeGreaterThan(0);
    expect((await exec("docker", ["logs", "--tail", "1", flt("api")])).stderr).toContain("broken release: exits at once");
    expect(stepVersion(rehearsal, "backup")).toBe("1.5.0");
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    await expectFollowersDown();

    // Recovery: the fixed release.
    const records = await rehearsal.up(faultConfig("1.5.1", backups));
    expect(records.map((r) => `${r.step.op} ${r.step.name}`)).toContain(`replace ${flt("api")}`);
    const delivery = await stream.stop();
    outcomes.apiImageExits = {
      observed: linesMatching(failed.message, /not running|restarting|migrate failed/),
      injected: "an API image whose command exits 1 at once (1.5.0)",
      stateAfter: "API created and recorded (no init errors), restarting over and over; migrate failed waiting for it; followers deleted (pending replacement)",
      recovery: "pulumi config set utilitarian:version <a release that starts>; pulumi up (or roll back)",
      ...delivery,
    };
    await expectCompleted("1.5.1", delivery);
  }, 6 * MINUTES);
});

describe("the backup directory's disk fills up during the dump", () => {
  const small = fs.mkdtempSync("/tmp/flt-small-disk-");
  let mounted = false;

  afterAll(async () => {
    if (mounted) await exec("umount", [small]);
    fs.rmSync(small, { recursive: true, force: true });
    await sql("drop table if exists fault_ballast");
  }, MINUTES);

  test("pg_dump fails on the full disk, no partial file stays, the writers start again; after space is freed `pulumi up` completes", async () => {
    // 40 MB of table data: a dump that takes long enough to be caught half way.
    await sql("create table fault_ballast as select i, md5(i::text) || md5((i * 7)::text) as junk from generate_series(1, 400000) i");
    const mount = await exec("mount", ["-t", "tmpfs", "-o", "size=192m", "tmpfs", small]);
    expect(mount.code, mount.stderr).toBe(0);
    mounted = true;
    const dir = path.join(small, "backups");
    const config = (version: string) => faultConfig(version, backups, { backup: { dir, keep: 5 } });
    const filler = path.join(small, "other-process.log");
    const stream = startStream("f6-");
    await sleep(1000);
    let fill: Promise<void> | undefined;
    const failed = await stepFailure(rehearsal.up(config("1.6.0"), {
      beforeStep: async (step) => {
        if (step.name !== flt("backup") || fill) return;
        // Something else fills the disk as soon as the dump has begun.
        fill = (async () => {
          if (!(await waitFor(async () => filesIn(dir).some((f) => f.endsWith(".partial")), 60_000, 20))) throw new Error("no dump began");
          const r = await exec("dd", ["if=/dev/zero", `of=${filler}`, "bs=1M"]);
          if (!/No space left on device/.test(r.stderr)) throw new Error(`the disk did not fill: ${r.stderr}`);
        })();
      },
    }));
    await fill;
    expect(failed.record.step.name).toBe(flt("backup"));
    expect(failed.message).toMatch(/no backup was written/);
    expect(failed.message).toMatch(/the writers it had stopped are started again/);
    // The operator must see why: the full disk. (Soft: the rest shows the run stopped cleanly either way.)
    expect.soft(failed.message).toMatch(/No space left on device/);
    expect(filesIn(dir).filter((f) => f.startsWith("."))).toEqual([".backup.lock"]);
    expect(filesIn(dir).filter((f) => f.endsWith(".dump"))).toEqual([]);
    expect(stepVersion(rehearsal, "backup")).toBe("1.5.1");
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    const after = await containers();
    for (const service of ["api", "beat", "worker-default-1"]) expect(after[flt(service)], service).toBe("running 1.5.1");
    for (const writer of WRITERS) expect(after[writer], writer).toMatch(/^running/);

    fs.rmSync(filler);
    await rehearsal.up(config("1.6.0"));
    expect(filesIn(dir).filter((f) => f.endsWith("-1.5.1-to-1.6.0.dump"))).toHaveLength(1);
    const delivery = await stream.stop();
    outcomes.backupDiskFull = {
      observed: linesMatching(failed.message, /space|failed/),
      injected: "a 192 MiB tmpfs as backup.dir, filled by another file as soon as the dump began",
      stateAfter: "backup failed, not recorded; no partial file; writers started again; everything else unchanged",
      recovery: "free space; pulumi up",
      ...delivery,
    };
    await expectCompleted("1.6.0", delivery);
  }, 6 * MINUTES);
});

describe("two runs at once", () => {
  test("a second `pulumi up` is refused by the stack's lock; a second backup in the same directory fails on the backup's flock, the run stops cleanly and a re-run completes", async () => {
    const stream = startStream("f7-");
    await sleep(1000);
    // Another backup (an operator's, or another stack's sharing the directory) runs and hangs on a lock.
    const env = plain(rehearsal.state.get(flt("backup"))!.inputs).environment as Record<string, string>;
    const hold = await holdLock("fault_hold");
    let other: ReturnType<typeof runScript> | undefined;
    let failed: StepFailed;
    try {
      other = runScript("backup.sh", { ...env, BACKUP_DIR: backups }, { timeoutMs: 5 * MINUTES });
      expect(await waitFor(() => waitsForLock("utilitarian-backup"), 60_000, 100)).toBe(true);
      failed = await stepFailure(rehearsal.up(faultConfig("1.7.0", backups)));
    } finally {
      await hold.release();
    }
    const otherResult = await other!;
    expect(otherResult.code, otherResult.stderr).toBe(0);
    expect(failed.record.step.name).toBe(flt("backup"));
    expect(failed.message).toMatch(/another backup is running in .* \(lock .*\.backup\.lock is held\)/);
    expect(stepVersion(rehearsal, "backup")).toBe("1.6.0");
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    for (const writer of WRITERS) expect((await containers())[writer], writer).toMatch(/^running/);

    // The re-run; while it runs, a second `pulumi up` of the same stack is refused at once.
    const rerun = rehearsal.up(faultConfig("1.7.0", backups));
    await expect(rehearsal.up(faultConfig("1.7.0", backups))).rejects.toThrow(StackLocked);
    await expect(rehearsal.up(faultConfig("1.7.0", backups))).rejects.toThrow(/the stack is currently locked by 1 lock\(s\)/);
    await rerun;
    const delivery = await stream.stop();
    outcomes.concurrentRuns = {
      observed: linesMatching(failed.message, /another backup|failed/),
      injected: "a second backup.sh in the same backup.dir when the run's backup began; a second `pulumi up` during the re-run",
      stateAfter: "backup failed at once on the flock, not recorded; writers started again; the second `pulumi up` refused by the stack lock, nothing changed",
      recovery: "pulumi up once the other backup ended",
      ...delivery,
    };
    await expectCompleted("1.7.0", delivery);
  }, 6 * MINUTES);
});

describe("the Docker daemon restarted in the middle of the upgrade", () => {
  test("during migrate: the step's `docker exec` ends with the daemon and the step fails, saying the migration may run on; every container keeps running (live-restore); once the migration has ended, `pulumi up` completes; the UDP server in the host's network loses no datagram", async () => {
    const daemon = await dockerDaemon();
    const unsafe = await restartWouldLoseReadings(daemon);
    if (unsafe) throw new Error(unsafe);
    const kept = [flt("api"), flt("postgres"), flt("rabbitmq"), flt("udp-server")];
    expect(await docker(["inspect", "-f", "{{.HostConfig.NetworkMode}}", flt("udp-server")])).toBe("host");
    const stream = startStream("f8-");
    await sleep(1000);
    let restart: Promise<DaemonRestart> | undefined;
    let startedBefore: Record<string, string> = {};
    const failed = await stepFailure(rehearsal.up(faultConfig("1.8.0", backups), {
      beforeStep: async (step) => {
        if (step.name !== flt("migrate") || restart) return;
        restart = (async () => {
          if (!(await waitFor(() => queryRunning("fault-test slow migration 0007"), 60_000, 100))) throw new Error("the migration never ran");
          startedBefore = await startedAt(kept);
          return restartDockerDaemon(daemon);
        })();
      },
    }));
    const { downMs, stoppedAt, answeredAt } = await restart!;
    expect(failed.record.step.name).toBe(flt("migrate"));
    expect(failed.message).toMatch(/lost the Docker daemon while migrate ran; the migration may still run inside flt-api|docker exec ended, but the migration still runs inside flt-api/);
    expect(failed.message).toContain(`wait until \`docker top ${flt("api")}\` lists no manage.py migrate, then run pulumi up again`);
    expect(stepVersion(rehearsal, "migrate")).toBe("1.7.0");
    expect(rehearsal.pendingOperations).toEqual([]);
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    await expectFollowersDown();
    // Live-restore: the daemon's restart restarted no container (the new API, the data services
    // and the UDP server ran on throughout).
    expect(await startedAt(kept)).toEqual(startedBefore);

    // Recovery: wait until the migration has ended inside the API container, then `pulumi up`.
    expect(await waitFor(async () => (await processesIn(flt("api"), "manage.py migrate")).length === 0, 60_000, 500)).toBe(true);
    const finishedAlone = (await sql("select count(*) from django_migrations where name = '0007_fault_slow'")) === "1";
    const records = await rehearsal.up(faultConfig("1.8.0", backups));
    expect(records.find((r) => r.step.name === flt("migrate"))!.output).toMatch(finishedAlone ? /migrate: ok, 0 migration\(s\) applied/ : /migrate: ok, 1 migration\(s\) applied/);
    const delivery = await stream.stop();
    // On `udpServer.network: bridge` a starting daemon flushes its NAT chain before it restores
    // the running containers' port mappings, and a datagram of a new flow (each message here comes
    // from a new socket, as from another meter) that arrives in between is lost: this test lost 3
    // of 190 that way. The fault stack's UDP server is in the host's network: no NAT in front of
    // its socket, so every message must arrive, those sent while the daemon was down too.
    const sentWhileDown = stream.sentAt.filter((t) => t >= stoppedAt && t <= answeredAt).length;
    expect(sentWhileDown, "the stream sent nothing while the daemon was down: the test shows nothing").toBeGreaterThan(0);
    outcomes.dockerRestarted = {
      observed: linesMatching(failed.message, /lost the Docker daemon|docker exec ended|Cannot connect to the Docker daemon/),
      injected: `dockerd stopped (SIGTERM) and started again with its own flags (--live-restore --userland-proxy=false) during a 6 s migration; it did not answer for ${(downMs / 1000).toFixed(1)} s`,
      stateAfter: `migrate failed, not recorded; new API, PostgreSQL, RabbitMQ and UDP server running, none restarted; the migration ${finishedAlone ? "finished" : "did not finish"} inside the API container on its own; followers deleted (pending replacement)`,
      recovery: "wait for `manage.py migrate` to leave `docker top <prefix>-api`; pulumi up",
      sentWhileDaemonDown: sentWhileDown,
      ...delivery,
    };
    await expectCompleted("1.8.0", delivery);
    expect(await sql("select count(*) from django_migrations where name = '0007_fault_slow'")).toBe("1");
    expect(await sql("select count(*) from information_schema.tables where table_name = 'readings_fault_c'")).toBe("1");
  }, 6 * MINUTES);
});

describe("`pulumi up` interrupted by one ^C only", () => {
  test("during migrate: `pulumi up` waits for the migration the killed step had started, reports the step failed and stops; nothing is pending; `pulumi up` completes", async () => {
    const stream = startStream("f9-");
    await sleep(1000);
    const interrupted = await interruption(rehearsal.up(faultConfig("1.9.0", backups), {
      interrupt: { atStep: (s) => s.name === flt("migrate"), when: () => queryRunning("fault-test slow migration 0008"), signals: ["SIGINT"] },
    }));
    const interrupt = rehearsal.lastInterrupt!;
    // The provider killed the step's script; its `docker exec` (and the migration) went on, and the
    // engine waited for it: the run ended only when the migration had, with the step failed.
    expect(interrupt.afterFirstSignal.map((p) => p.args).join("\n")).toMatch(/docker exec flt-api python manage\.py migrate/);
    expect(interrupted.outcome).toBe("failed");
    expect(interrupted.printed[0]).toBe("^C received; cancelling. If you would like to terminate immediately, press ^C again.");
    expect(interrupted.printed.join("\n")).not.toMatch(/received; terminating/);
    expect(await processesIn(flt("api"), "manage.py migrate")).toEqual([]);
    expect(await sql("select count(*) from django_migrations where name = '0008_fault_slow'")).toBe("1");

    expect(stepVersion(rehearsal, "migrate")).toBe("1.8.0");
    expect(rehearsal.pendingOperations).toEqual([]);
    expect(await stateDisagreements(rehearsal)).toEqual([]);
    expect((await containers())[flt("api")]).toBe("running 1.9.0");
    await expectFollowersDown();

    // Recovery: `pulumi up` (nothing to wait for: the single ^C let the step's work end).
    const records = await rehearsal.up(faultConfig("1.9.0", backups));
    expect(records.find((r) => r.step.name === flt("migrate"))!.output).toMatch(/migrate: ok, 0 migration\(s\) applied/);
    expect(records.map((r) => `${r.step.op} ${r.step.name}`)).not.toContain(`replace ${flt("backup")}`);
    const delivery = await stream.stop();
    outcomes.migrateSingleSigint = {
      inFlightAfterFirstSignal: interrupt.afterFirstSignal.map((p) => p.args),
      injected: "one SIGINT to `pulumi up` during a 6 s migration, no second signal",
      stateAfter: "migrate failed, not recorded, nothing pending (the engine waited for the migration to end); new API running, migrated; followers deleted (pending replacement)",
      recovery: "pulumi up",
      ...delivery,
    };
    await expectCompleted("1.9.0", delivery);
  }, 6 * MINUTES);
});
