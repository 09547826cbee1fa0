/**
 * Faults under the real `pulumi` CLI, on the fault stack (test/support/faults.ts: API images with
 * slow migrations, the UDP server in the host's network): interrupts, PostgreSQL and the Docker
 * daemon restarted during migrate, two runs at once; each with a UDP stream across the fault and
 * its recovery. The recoveries are the failure guide's (README "When something fails"), run as
 * written. The upgrades go up one version each: 1.1.0, 1.3.0, 1.4.0, 1.8.0, 1.9.0, 2.0.0.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { docker, exec, sleep, waitFor } from "../support/exec";
import { dockerDaemon, restartDockerDaemon, restartWouldLoseReadings, type DaemonRestart } from "../support/docker-daemon";
import {
  FAULT_PREFIX, faultConfig, flt, holdLock, prepareFaultStack, queryRunning, readingStream, removeFaultStack, waitsForLock, WRITERS,
} from "../support/faults";
import { changes, RealStack, stateDisagreements, type LiveRun } from "../support/real-stack";
import { health, SECRETS, sendUdp, sql, stackContainers, tempDir, waitForReadings } from "../support/standin-stack";

const MINUTE = 60_000;
const backups = tempDir("engine-interrupts-backups");
const stack = new RealStack("interrupts", SECRETS);
const config = (version: string) => faultConfig(version, backups);

beforeAll(async () => {
  await prepareFaultStack();
  await stack.init();
  stack.configure(config("1.0.0"));
  const install = await stack.up();
  if (install.code !== 0) throw new Error(`install failed:\n${install.stdout}\n${install.stderr}`);
  for (let i = 0; i < 20; i++) await sendUdp(`base-${i}`, i);
  expect(await waitForReadings("base-", 20)).toBe(20);
  await sql("create table fault_hold (id int)");
}, 6 * MINUTE);

afterAll(async () => {
  await killOrphanedPlugins();
  await removeFaultStack();
  stack.remove();
}, 2 * MINUTE);

/** Plugins a SIGKILLed `pulumi` left behind (they run in process groups of their own). */
async function killOrphanedPlugins(): Promise<void> {
  await exec("pkill", ["-f", `utilitarian-standin-providers/test/provider/server.js`]);
}

/** Which versions the stack's containers run, and whether the state agrees with Docker. */
async function stateIsTrue(): Promise<string[]> {
  return stateDisagreements(await stack.export(), await stackContainers(FAULT_PREFIX));
}

/** The recovery is complete: state true, the API, beat and workers on `version`, every reading of the stream stored once. */
async function expectCompleted(version: string, stream: ReturnType<typeof readingStream>): Promise<void> {
  expect(await stateIsTrue()).toEqual([]);
  const all = await stackContainers("flt");
  for (const s of ["api", "beat", "worker-default-1"]) expect(`${all.get(flt(s))?.running} ${all.get(flt(s))?.version}`, s).toBe(`true ${version}`);
  expect(await health()).toBe(200);
  const delivery = await stream.stop();
  expect(delivery.sent).toBeGreaterThan(50);
  expect(delivery.missing).toEqual([]);
  expect(delivery.duplicated).toEqual([]);
}

const signal = (run: LiveRun, sig: NodeJS.Signals) => process.kill(run.pid, sig);

describe.sequential("faults under the real CLI: interrupts, restarts during migrate, two runs at once", () => {
  test("SIGINT then SIGTERM during the backup: pulumi ends at once, the backup stays a pending create, the writers come back; `pulumi up` then `pulumi refresh --clear-pending-creates` recover", async () => {
    const stream = readingStream("e1-");
    await sleep(1000);
    stack.configure(config("1.1.0"));
    const hold = await holdLock("fault_hold");
    let run;
    try {
      run = await stack.up([], {
        during: async (live) => {
          await live.began(flt("backup"));
          expect(await waitFor(() => waitsForLock("utilitarian-backup"), 60_000, 200)).toBe(true);
          signal(live, "SIGINT");
          await sleep(500);
          signal(live, "SIGTERM");
        },
      });
    } finally {
      await hold.release();
    }
    expect(run.code).not.toBe(0);
    expect(run.stdout + run.stderr).toMatch(/\^C received; cancelling/);
    expect(run.stdout + run.stderr).toMatch(/received; terminating/);
    const state = await stack.export();
    expect((state.pending_operations ?? []).map((o) => `${o.type} ${o.resource.urn.split("::").pop()}`)).toEqual([`creating ${flt("backup")}`]);
    expect(await stateIsTrue()).toEqual([]);
    // The backup's guard starts the writers again once the backup has ended.
    expect(await waitFor(async () => {
      const all = await stackContainers("flt");
      return WRITERS.every((w) => all.get(w)?.running);
    }, 30_000, 250)).toBe(true);
    // The failure guide: wait until nothing of the step runs, then `pulumi up`, then the refresh.
    expect(await waitFor(async () => (await exec("pgrep", ["-f", "scripts/backup.sh|pg_dump"])).stdout.trim() === "", 60_000, 500)).toBe(true);
    const recovery = await stack.up();
    expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
    expect(recovery.stdout + recovery.stderr).toMatch(/pending/i);
    expect(changes(recovery)).toContain(`create-replacement ${flt("backup")}`);
    const refresh = await stack.run(["refresh", "--yes", "--clear-pending-creates", "--skip-preview"]);
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect((await stack.export()).pending_operations ?? []).toEqual([]);
    await expectCompleted("1.1.0", stream);
  }, 8 * MINUTE);

  test("one SIGINT during migrate: the engine waits for the killed step's migration to end and fails the step; nothing pending; `pulumi up` completes", async () => {
    const stream = readingStream("e2-");
    await sleep(1000);
    stack.configure(config("1.3.0"));
    const run = await stack.up([], {
      during: async (live) => {
        await live.began(flt("migrate"));
        expect(await waitFor(() => queryRunning("fault-test slow migration 0005"), 60_000, 200)).toBe(true);
        signal(live, "SIGINT");
      },
    });
    expect(run.code).not.toBe(0);
    expect(run.stdout + run.stderr).toMatch(/\^C received; cancelling/);
    // The engine returned only after the migration had ended in the container.
    expect(await queryRunning("fault-test slow migration 0005")).toBe(false);
    expect(run.steps.filter((s) => s.failed).map((s) => s.name)).toEqual([flt("migrate")]);
    expect((await stack.export()).pending_operations ?? []).toEqual([]);
    expect(await stateIsTrue()).toEqual([]);
    const recovery = await stack.up();
    expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
    expect(recovery.logs.get(flt("migrate"))?.join("\n")).toMatch(/0 migration\(s\) applied/);
    expect(changes(recovery)).not.toContain(`create-replacement ${flt("backup")}`);
    await expectCompleted("1.3.0", stream);
  }, 8 * MINUTE);

  test("PostgreSQL restarted during migrate: migrate fails with the lost connection, its migration rolled back; `pulumi up` migrates and completes", async () => {
    const stream = readingStream("e5-");
    await sleep(1000);
    stack.configure(config("1.4.0"));
    const run = await stack.up([], {
      during: async (live) => {
        await live.began(flt("migrate"));
        expect(await waitFor(() => queryRunning("fault-test slow migration 0006"), 60_000, 100)).toBe(true);
        await docker(["restart", flt("postgres")]);
      },
    });
    expect(run.code).not.toBe(0);
    expect(run.steps.filter((s) => s.failed).map((s) => s.name)).toEqual([flt("migrate")]);
    expect(run.logs.get(flt("migrate"))?.join("\n")).toMatch(/terminating connection|server closed the connection|connection to server .* failed|could not connect/i);
    expect((await stack.export()).pending_operations ?? []).toEqual([]);
    expect(await stateIsTrue()).toEqual([]);
    expect(await waitFor(async () => (await sql("select count(*) from django_migrations where name = '0006_fault_slow'")) === "0", 30_000)).toBe(true);
    const recovery = await stack.up();
    expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
    expect(recovery.logs.get(flt("migrate"))?.join("\n")).toMatch(/1 migration\(s\) applied/);
    await expectCompleted("1.4.0", stream);
  }, 8 * MINUTE);

  test("`pulumi` SIGKILLed during migrate: the lock and pending operations stay; `pulumi cancel`, then `pulumi up` and `pulumi refresh --clear-pending-creates` recover", async () => {
    const stream = readingStream("e3-");
    await sleep(1000);
    stack.configure(config("1.8.0"));
    const run = await stack.up([], {
      during: async (live) => {
        await live.began(flt("migrate"));
        expect(await waitFor(() => queryRunning("fault-test slow migration 0007"), 60_000, 200)).toBe(true);
        signal(live, "SIGKILL");
      },
    });
    expect(run.code).not.toBe(0);
    const state = await stack.export();
    expect((state.pending_operations ?? []).map((o) => `${o.type} ${o.resource.urn.split("::").pop()}`)).toContain(`creating ${flt("migrate")}`);
    // The next run is refused by the lock the killed one left.
    const refused = await stack.up();
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/the stack is currently locked by 1 lock/);
    // The failure guide: wait until `docker top <prefix>-api` lists no `manage.py migrate`, then `pulumi cancel`, `pulumi up`, the refresh.
    expect(await waitFor(async () => !(await exec("docker", ["top", flt("api")])).stdout.includes("manage.py migrate"), 60_000, 500)).toBe(true);
    const cancel = await stack.run(["cancel", "--yes"]);
    expect(cancel.code, cancel.stdout + cancel.stderr).toBe(0);
    const recovery = await stack.up();
    expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
    const refresh = await stack.run(["refresh", "--yes", "--clear-pending-creates", "--skip-preview"]);
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect((await stack.export()).pending_operations ?? []).toEqual([]);
    expect(await sql("select count(*) from django_migrations where name = '0007_fault_slow'")).toBe("1");
    await expectCompleted("1.8.0", stream);
  }, 8 * MINUTE);

  test("the Docker daemon restarted during migrate: the step fails, every container runs on (live-restore); once the migration has ended, `pulumi up` completes; no datagram lost", async () => {
    const daemon = await dockerDaemon();
    const unsafe = await restartWouldLoseReadings(daemon);
    if (unsafe) throw new Error(unsafe);
    const kept = [flt("api"), flt("postgres"), flt("rabbitmq"), flt("udp-server")];
    const startedAt = async () => Object.fromEntries(await Promise.all(kept.map(async (n) => [n, await docker(["inspect", "-f", "{{.State.StartedAt}}", n])])));
    const stream = readingStream("e6-");
    await sleep(1000);
    stack.configure(config("1.9.0"));
    let restart: DaemonRestart | undefined;
    let before: Record<string, string> = {};
    const run = await stack.up([], {
      during: async (live) => {
        await live.began(flt("migrate"));
        expect(await waitFor(() => queryRunning("fault-test slow migration 0008"), 60_000, 100)).toBe(true);
        before = await startedAt();
        restart = await restartDockerDaemon(daemon);
      },
    });
    expect(run.code).not.toBe(0);
    expect(run.steps.filter((s) => s.failed).map((s) => s.name)).toEqual([flt("migrate")]);
    expect(run.logs.get(flt("migrate"))?.join("\n")).toMatch(/lost the Docker daemon while migrate ran|docker exec ended, but the migration still runs/);
    expect(await startedAt()).toEqual(before);
    expect(await stateIsTrue()).toEqual([]);
    // The failure guide: wait until `docker top <prefix>-api` lists no `manage.py migrate`, then `pulumi up`.
    expect(await waitFor(async () => !(await exec("docker", ["top", flt("api")])).stdout.includes("manage.py migrate"), 60_000, 500)).toBe(true);
    const recovery = await stack.up();
    expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
    const sentWhileDown = stream.sentAt.filter((t) => t >= restart!.stoppedAt && t <= restart!.answeredAt).length;
    expect(sentWhileDown).toBeGreaterThan(0);
    await expectCompleted("1.9.0", stream);
    expect(await sql("select count(*) from django_migrations where name = '0008_fault_slow'")).toBe("1");
  }, 8 * MINUTE);

  test("two `pulumi up` at once: the second is refused at once by the backend's lock and changes nothing; the first completes", async () => {
    const stream = readingStream("e4-");
    stack.configure(config("2.0.0"));
    let second;
    const first = await stack.up([], {
      during: async (live) => {
        await live.began(flt("backup"));
        const startedAt = Date.now();
        second = await stack.up();
        expect(Date.now() - startedAt).toBeLessThan(30_000);
      },
    });
    expect(second!.code).not.toBe(0);
    expect(second!.stdout + second!.stderr).toMatch(/the stack is currently locked by 1 lock/);
    expect(changes(second!)).toEqual([]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    await expectCompleted("2.0.0", stream);
    expect(await waitForReadings("base-", 20, 10_000)).toBe(20);
  }, 8 * MINUTE);
});
