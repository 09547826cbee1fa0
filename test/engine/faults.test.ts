/**
 * Faults under the real `pulumi` CLI, on the fault stack (test/support/faults.ts: API images with
 * slow migrations, the UDP server in the host's network): interrupts, PostgreSQL and the Docker
 * daemon restarted during migrate, a release that exits at once, the backup disk filling up, a
 * second backup and a second run at once; each with a UDP stream across the fault and its recovery. The recoveries are the failure guide's (README "When something fails"), run as
 * written. The upgrades go up one version each (test/support/faults.ts buildFaultImages says what
 * each version is for): 1.1.0, 1.3.0, 1.3.1, 1.4.0, 1.5.0 then 1.5.1, 1.6.0, 1.7.0, 1.8.0, 1.9.0, 2.0.0.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { docker, exec, sleep, waitFor } from "../support/exec";
import {
  dockerDaemon,
  restartDockerDaemon,
  restartWouldLoseReadings,
  type DaemonRestart,
} from "../support/docker-daemon";
import {
  FAULT_PREFIX,
  faultConfig,
  filesIn,
  flt,
  holdLock,
  prepareFaultStack,
  processesIn,
  queryRunning,
  readingStream,
  removeFaultStack,
  waitsForLock,
  WRITERS,
} from "../support/faults";
import {
  changes,
  nameOf,
  RealStack,
  revealed,
  stateDisagreements,
  type LiveRun,
  type RealRun,
} from "../support/real-stack";
import { runScript } from "../support/run-script";
import {
  health,
  PORTS,
  SECRETS,
  sendUdp,
  sql,
  stackContainers,
  tempDir,
  waitForReadings,
} from "../support/standin-stack";

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
  fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
  fs.writeFileSync(
    path.resolve(__dirname, "../.work/engine-faults.json"),
    JSON.stringify({ seconds: Math.round((Date.now() - suiteStartedAt) / 1000), deliveries }, null, 2),
  );
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

/** Each fault's stream, by the version its recovery completed: written to test/.work/engine-faults.json. */
const deliveries: Record<string, { sent: number; lost: number; duplicated: number }> = {};
const suiteStartedAt = Date.now();

/** The recovery is complete: state true, the API, beat and workers on `version`, every reading of the stream stored once. */
async function expectCompleted(version: string, stream: ReturnType<typeof readingStream>): Promise<void> {
  expect(await stateIsTrue()).toEqual([]);
  const all = await stackContainers("flt");
  for (const s of ["api", "beat", "worker-default-1"])
    expect(`${all.get(flt(s))?.running} ${all.get(flt(s))?.version}`, s).toBe(`true ${version}`);
  expect(await health()).toBe(200);
  const delivery = await stream.stop();
  deliveries[version] = { sent: delivery.sent, lost: delivery.missing.length, duplicated: delivery.duplicated.length };
  expect(delivery.sent).toBeGreaterThan(50);
  expect(delivery.missing).toEqual([]);
  expect(delivery.duplicated).toEqual([]);
}

const signal = (run: LiveRun, sig: NodeJS.Signals) => process.kill(run.pid, sig);

/** The version a maintenance step last completed for (its first trigger), from the state's live entry. */
async function stepVersion(step: string): Promise<string | undefined> {
  const entry = (await stack.export()).resources.find((r) => nameOf(r.urn) === flt(step) && !r.delete);
  return (entry?.inputs as { triggers?: string[] } | undefined)?.triggers?.[0];
}

/** The names of the steps that failed in a run. */
const failedSteps = (run: RealRun) => run.steps.filter((s) => s.failed).map((s) => s.name);

/** What the operator reads about a failed step: its log lines and pulumi's own output. */
const told = (run: RealRun, step: string) =>
  `${run.logs.get(flt(step))?.join("\n") ?? ""}\n${run.stdout}\n${run.stderr}`;

/** The followers an upgrade deletes ahead of the API are gone while the run stopped between. */
async function expectFollowersDown(): Promise<void> {
  const all = await stackContainers(FAULT_PREFIX);
  for (const writer of WRITERS) expect(all.has(writer), `${writer} exists`).toBe(false);
}

/** Status of `GET /` on the API: 500 until `compress` ran in its container. */
async function pageStatus(): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${PORTS.api}/`, { signal: AbortSignal.timeout(5000) }).catch(
    () => undefined,
  );
  return response?.status ?? 0;
}

/** The stack's containers as "running VERSION" or "stopped VERSION". */
async function containers(): Promise<Record<string, string>> {
  return Object.fromEntries(
    [...(await stackContainers(FAULT_PREFIX))].map(([name, c]) => [
      name,
      `${c.running ? "running" : "stopped"} ${c.version}`,
    ]),
  );
}

describe.sequential(
  "faults under the real CLI: interrupts, restarts during migrate, a broken release, a full disk, two runs at once",
  () => {
    test(
      "SIGINT then SIGTERM during the backup: pulumi ends at once, the backup stays a pending create, the writers come back; `pulumi up` then `pulumi refresh --clear-pending-creates` recover",
      async () => {
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
        expect((state.pending_operations ?? []).map((o) => `${o.type} ${o.resource.urn.split("::").pop()}`)).toEqual([
          `creating ${flt("backup")}`,
        ]);
        expect(await stateIsTrue()).toEqual([]);
        // The backup's guard starts the writers again once the backup has ended.
        expect(
          await waitFor(
            async () => {
              const all = await stackContainers("flt");
              return WRITERS.every((w) => all.get(w)?.running);
            },
            30_000,
            250,
          ),
        ).toBe(true);
        // The failure guide: wait until nothing of the step runs, then `pulumi up`, then the refresh.
        expect(
          await waitFor(
            async () => (await exec("pgrep", ["-f", "scripts/backup.sh|pg_dump"])).stdout.trim() === "",
            60_000,
            500,
          ),
        ).toBe(true);
        const recovery = await stack.up();
        expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
        expect(recovery.stdout + recovery.stderr).toMatch(/pending/i);
        expect(changes(recovery)).toContain(`create-replacement ${flt("backup")}`);
        const refresh = await stack.run(["refresh", "--yes", "--clear-pending-creates", "--skip-preview"]);
        expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
        expect((await stack.export()).pending_operations ?? []).toEqual([]);
        await expectCompleted("1.1.0", stream);
      },
      8 * MINUTE,
    );

    test(
      "one SIGINT during migrate: the engine waits for the killed step's migration to end and fails the step; nothing pending; `pulumi up` completes",
      async () => {
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
      },
      8 * MINUTE,
    );

    test(
      "SIGINT then SIGTERM during the static step (the followers down): static stays a pending create, the API serves without compressed assets; `pulumi up` runs static and starts the followers",
      async () => {
        const stream = readingStream("e7-");
        await sleep(1000);
        stack.configure(config("1.3.1"));
        const run = await stack.up([], {
          during: async (live) => {
            await live.began(flt("static"));
            // 1.3.1's collectstatic waits 5 s before it collects: caught inside the API container.
            expect(
              await waitFor(async () => (await processesIn(flt("api"), "collectstatic")).length > 0, 60_000, 100),
            ).toBe(true);
            signal(live, "SIGINT");
            await sleep(500);
            signal(live, "SIGTERM");
          },
        });
        expect(run.code).not.toBe(0);
        expect(run.stdout + run.stderr).toMatch(/received; terminating/);
        const state = await stack.export();
        expect((state.pending_operations ?? []).map((o) => `${o.type} ${nameOf(o.resource.urn)}`)).toEqual([
          `creating ${flt("static")}`,
        ]);
        expect(await stepVersion("static")).toBe("1.3.0");
        expect(await stepVersion("migrate")).toBe("1.3.1");
        expect(await stateIsTrue()).toEqual([]);
        await expectFollowersDown();
        expect(await health()).toBe(200);
        // `compress` never ran in the new API container: its pages answer 500 until static runs.
        expect(await pageStatus()).toBe(500);
        // The failure guide: wait until `docker top <prefix>-api` lists no manage.py, then `pulumi up`, then the refresh.
        expect(await waitFor(async () => (await processesIn(flt("api"), "manage.py")).length === 0, 60_000, 500)).toBe(
          true,
        );
        const recovery = await stack.up();
        expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
        expect(changes(recovery)).toContain(`create-replacement ${flt("static")}`);
        // Migrate is not run again: only its 1.3.0 record, whose deletion the interrupted run never reached, goes.
        expect(changes(recovery).filter((c) => c.endsWith(` ${flt("migrate")}`))).toEqual([
          `delete-replaced ${flt("migrate")}`,
        ]);
        const refresh = await stack.run(["refresh", "--yes", "--clear-pending-creates", "--skip-preview"]);
        expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
        await expectCompleted("1.3.1", stream);
        expect(await pageStatus()).toBe(200);
      },
      8 * MINUTE,
    );

    test(
      "PostgreSQL restarted during migrate: migrate fails with the lost connection, its migration rolled back; `pulumi up` migrates and completes",
      async () => {
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
        expect(run.logs.get(flt("migrate"))?.join("\n")).toMatch(
          /terminating connection|server closed the connection|connection to server .* failed|could not connect/i,
        );
        expect((await stack.export()).pending_operations ?? []).toEqual([]);
        expect(await stateIsTrue()).toEqual([]);
        expect(
          await waitFor(
            async () => (await sql("select count(*) from django_migrations where name = '0006_fault_slow'")) === "0",
            30_000,
          ),
        ).toBe(true);
        const recovery = await stack.up();
        expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
        expect(recovery.logs.get(flt("migrate"))?.join("\n")).toMatch(/1 migration\(s\) applied/);
        await expectCompleted("1.4.0", stream);
      },
      8 * MINUTE,
    );

    test(
      "a broken release (1.5.0's API exits at once): the API is created and recorded, Docker restarts it over and over, migrate fails waiting for it; the fixed release 1.5.1 by `pulumi up` completes",
      async () => {
        const stream = readingStream("e8-");
        await sleep(1000);
        stack.configure(config("1.5.0"));
        const run = await stack.up();
        expect(run.code).not.toBe(0);
        // The provider's create succeeded: Docker reports a restarting container as running.
        expect(changes(run)).toContain(`create-replacement ${flt("api")}`);
        expect(failedSteps(run)).toEqual([flt("migrate")]);
        expect(told(run, "migrate")).toMatch(
          /container flt-api is not running after 20s \(state: restarting true \d+\)|is restarting|is not running/,
        );
        expect(Number(await docker(["inspect", "-f", "{{.RestartCount}}", flt("api")]))).toBeGreaterThan(0);
        expect((await exec("docker", ["logs", "--tail", "1", flt("api")])).stderr).toContain(
          "broken release: exits at once",
        );
        expect(
          (await stack.export()).resources.find((r) => nameOf(r.urn) === flt("api") && !r.delete)?.initErrors ?? [],
        ).toEqual([]);
        expect(await stepVersion("backup")).toBe("1.5.0");
        expect(await stateIsTrue()).toEqual([]);
        await expectFollowersDown();
        // The failure guide: a release that starts (or the rollback), then `pulumi up`.
        stack.configure(config("1.5.1"));
        const recovery = await stack.up();
        expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
        expect(changes(recovery)).toContain(`create-replacement ${flt("api")}`);
        await expectCompleted("1.5.1", stream);
      },
      8 * MINUTE,
    );

    describe("the backup directory's disk fills up during the dump", () => {
      const small = fs.mkdtempSync("/tmp/flt-small-disk-");
      let mounted = false;

      afterAll(async () => {
        if (mounted) await exec("umount", [small]);
        fs.rmSync(small, { recursive: true, force: true });
        await sql("drop table if exists fault_ballast");
      }, MINUTE);

      test(
        "pg_dump fails on the full disk, no partial file stays, the writers start again, nothing else changed; after space is freed `pulumi up` completes",
        async () => {
          // 40 MB of table data: a dump that takes long enough to be caught half way.
          await sql(
            "create table fault_ballast as select i, md5(i::text) || md5((i * 7)::text) as junk from generate_series(1, 400000) i",
          );
          const mount = await exec("mount", ["-t", "tmpfs", "-o", "size=192m", "tmpfs", small]);
          expect(mount.code, mount.stderr).toBe(0);
          mounted = true;
          const dir = path.join(small, "backups");
          const filler = path.join(small, "other-process.log");
          const stream = readingStream("e9-");
          await sleep(1000);
          stack.configure(faultConfig("1.6.0", backups, { backup: { dir, keep: 5 } }));
          const run = await stack.up([], {
            during: async (live) => {
              await live.began(flt("backup"));
              // Something else fills the disk as soon as the dump has begun.
              expect(await waitFor(async () => filesIn(dir).some((f) => f.endsWith(".partial")), 60_000, 20)).toBe(
                true,
              );
              const fill = await exec("dd", ["if=/dev/zero", `of=${filler}`, "bs=1M"]);
              expect(fill.stderr).toMatch(/No space left on device/);
            },
          });
          expect(run.code).not.toBe(0);
          expect(failedSteps(run)).toEqual([flt("backup")]);
          expect(told(run, "backup")).toMatch(/no backup was written/);
          expect(told(run, "backup")).toMatch(/the writers it had stopped are started again/);
          expect(told(run, "backup")).toMatch(/No space left on device/);
          expect(filesIn(dir).filter((f) => f.startsWith("."))).toEqual([".backup.lock"]);
          expect(filesIn(dir).filter((f) => f.endsWith(".dump") || f.endsWith(".partial"))).toEqual([]);
          expect(await stepVersion("backup")).toBe("1.5.1");
          expect(await stateIsTrue()).toEqual([]);
          const after = await containers();
          for (const service of ["api", "beat", "worker-default-1"])
            expect(after[flt(service)], service).toBe("running 1.5.1");
          for (const writer of WRITERS) expect(after[writer], writer).toMatch(/^running/);
          // The failure guide: free space, then `pulumi up`.
          fs.rmSync(filler);
          const recovery = await stack.up();
          expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
          expect(filesIn(dir).filter((f) => f.endsWith("-1.5.1-to-1.6.0.dump"))).toHaveLength(1);
          await expectCompleted("1.6.0", stream);
        },
        8 * MINUTE,
      );
    });

    test(
      "a second backup in the same directory when the run's backup begins: the step fails at once on the backup's flock, the writers run on; `pulumi up` once it ended completes",
      async () => {
        const stream = readingStream("e10-");
        await sleep(1000);
        // Another backup (an operator's, or another stack's sharing the directory) runs and hangs on a
        // lock. Its settings are the stack's own backup step's, read from the state.
        const entry = (await stack.export({ showSecrets: true })).resources.find(
          (r) => nameOf(r.urn) === flt("backup") && !r.delete,
        )!;
        const env = (revealed(entry.inputs) as { environment: Record<string, string> }).environment;
        const hold = await holdLock("fault_hold");
        let other: ReturnType<typeof runScript> | undefined;
        let run: RealRun;
        try {
          other = runScript("backup.sh", { ...env, BACKUP_DIR: backups }, { timeoutMs: 5 * MINUTE });
          expect(await waitFor(() => waitsForLock("utilitarian-backup"), 60_000, 100)).toBe(true);
          stack.configure(config("1.7.0"));
          run = await stack.up();
        } finally {
          await hold.release();
        }
        const otherResult = await other!;
        expect(otherResult.code, otherResult.stderr.slice(-2000)).toBe(0);
        expect(run.code).not.toBe(0);
        expect(failedSteps(run)).toEqual([flt("backup")]);
        expect(told(run, "backup")).toMatch(/another backup is running in .* \(lock .*\.backup\.lock is held\)/);
        expect(await stepVersion("backup")).toBe("1.6.0");
        expect(await stateIsTrue()).toEqual([]);
        const after = await containers();
        for (const writer of WRITERS) expect(after[writer], writer).toMatch(/^running/);
        const recovery = await stack.up();
        expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
        await expectCompleted("1.7.0", stream);
      },
      8 * MINUTE,
    );

    test(
      "`pulumi` SIGKILLed during migrate: the lock and pending operations stay; `pulumi cancel`, then `pulumi up` and `pulumi refresh --clear-pending-creates` recover",
      async () => {
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
        expect((state.pending_operations ?? []).map((o) => `${o.type} ${o.resource.urn.split("::").pop()}`)).toContain(
          `creating ${flt("migrate")}`,
        );
        // The next run is refused by the lock the killed one left.
        const refused = await stack.up();
        expect(refused.code).not.toBe(0);
        expect(refused.stdout + refused.stderr).toMatch(/the stack is currently locked by 1 lock/);
        // The failure guide: wait until `docker top <prefix>-api` lists no `manage.py migrate`, then `pulumi cancel`, `pulumi up`, the refresh.
        expect(
          await waitFor(
            async () => !(await exec("docker", ["top", flt("api")])).stdout.includes("manage.py migrate"),
            60_000,
            500,
          ),
        ).toBe(true);
        const cancel = await stack.run(["cancel", "--yes"]);
        expect(cancel.code, cancel.stdout + cancel.stderr).toBe(0);
        const recovery = await stack.up();
        expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
        const refresh = await stack.run(["refresh", "--yes", "--clear-pending-creates", "--skip-preview"]);
        expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
        expect((await stack.export()).pending_operations ?? []).toEqual([]);
        expect(await sql("select count(*) from django_migrations where name = '0007_fault_slow'")).toBe("1");
        await expectCompleted("1.8.0", stream);
      },
      8 * MINUTE,
    );

    test(
      "the Docker daemon restarted during migrate: the step fails, every container runs on (live-restore); once the migration has ended, `pulumi up` completes; no datagram lost",
      async () => {
        const daemon = await dockerDaemon();
        const unsafe = await restartWouldLoseReadings(daemon);
        if (unsafe) throw new Error(unsafe);
        const kept = [flt("api"), flt("postgres"), flt("rabbitmq"), flt("udp-server")];
        const startedAt = async () =>
          Object.fromEntries(
            await Promise.all(kept.map(async (n) => [n, await docker(["inspect", "-f", "{{.State.StartedAt}}", n])])),
          );
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
        expect(run.logs.get(flt("migrate"))?.join("\n")).toMatch(
          /lost the Docker daemon while migrate ran|docker exec ended, but the migration still runs/,
        );
        expect(await startedAt()).toEqual(before);
        expect(await stateIsTrue()).toEqual([]);
        // The failure guide: wait until `docker top <prefix>-api` lists no `manage.py migrate`, then `pulumi up`.
        expect(
          await waitFor(
            async () => !(await exec("docker", ["top", flt("api")])).stdout.includes("manage.py migrate"),
            60_000,
            500,
          ),
        ).toBe(true);
        const recovery = await stack.up();
        expect(recovery.code, recovery.stdout + recovery.stderr).toBe(0);
        const sentWhileDown = stream.sentAt.filter((t) => t >= restart!.stoppedAt && t <= restart!.answeredAt).length;
        expect(sentWhileDown).toBeGreaterThan(0);
        await expectCompleted("1.9.0", stream);
        expect(await sql("select count(*) from django_migrations where name = '0008_fault_slow'")).toBe("1");
      },
      8 * MINUTE,
    );

    test(
      "two `pulumi up` at once: the second is refused at once by the backend's lock and changes nothing; the first completes",
      async () => {
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
      },
      8 * MINUTE,
    );
  },
);
