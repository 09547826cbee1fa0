/**
 * The operator's commands under the real engine: `toolchain/pulumi` runs index.ts from the project
 * directory against the local Docker engine with the stand-in images. Order comes from the
 * engine's own event log (test/support/real-stack.ts), Docker's events and the step scripts'
 * output; no model is consulted. The docker, postgresql and command plugins are the stand-ins of
 * test/provider (README "The engine toolchain" says why).
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exec, waitFor } from "../support/exec";
import { consistentOrders, followEngine, type TimedStep } from "../support/replay";
import { stateOf, type Declared } from "../support/engine";
import { deploy } from "../unit/support/program";
import { EventLog } from "../support/docker-events";
import { changes, liveContainers, RealStack, type EngineStep, type RealRun } from "../support/real-stack";
import { CONTAINER } from "../support/provider-facts";
import type { StateEntry, Step, StepOp } from "../support/engine-types";
import {
  countReadings,
  health,
  healthProbe,
  PORTS,
  postReading,
  prepareStack,
  removeStack,
  SECRETS,
  sendUdp,
  sql,
  stackContainers,
  standinConfig,
  tempDir,
  udpStream,
  waitForReadings,
} from "../support/standin-stack";
import { INVARIANTS } from "../unit/support/runbook";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { PROJECT_DIR } from "../support/real-engine";

const MINUTE = 60_000;
const PREFIX = "re";
const backups = tempDir("engine-backups");
const stack = new RealStack("engine", SECRETS);
const events = new EventLog();
const config = (version: string, extra: Record<string, unknown> = {}) =>
  standinConfig(version, backups, { prefix: PREFIX, ...extra });

beforeAll(async () => {
  await prepareStack(PREFIX);
  await stack.init();
  await events.start(PREFIX);
}, 5 * MINUTE);

afterAll(async () => {
  events.stop();
  await removeStack(PREFIX);
  stack.remove();
}, 2 * MINUTE);

/** The model's names for the engine's ops (the runbook's checks are written in them); the logical `replace` has no provider call. */
const OPS: Record<string, StepOp | undefined> = {
  same: "same",
  create: "create",
  update: "update",
  delete: "delete",
  "create-replacement": "replace",
  "delete-replaced": "delete-replaced",
};

/** The run's steps as the runbook's checks read them: this stack's names under the checks' `u-` prefix. */
function asModelSteps(steps: EngineStep[]): (Step & { start: number; end: number })[] {
  return steps
    .filter((s) => OPS[s.op])
    .map(
      (s) =>
        ({
          op: OPS[s.op]!,
          name: s.name.replace(new RegExp(`^${PREFIX}-`), "u-"),
          type: s.type,
          start: s.start,
          end: s.end,
        }) as Step & { start: number; end: number },
    );
}

/** Every order of the run's steps that its event log is consistent with (overlapping steps taken either way). */
function ordersOf(run: RealRun): Step[][] {
  const steps = asModelSteps(run.steps);
  return consistentOrders(steps).map((order) =>
    order.map(({ op, name }) => steps.find((s) => s.op === op && s.name === name)!),
  );
}

/** The containers the state held before a run, as the checks read them. */
function stateBefore(containers: string[]): Map<string, StateEntry> {
  return new Map(
    containers.map((n) => {
      const name = n.replace(new RegExp(`^${PREFIX}-`), "u-");
      return [name, { name, type: CONTAINER } as StateEntry];
    }),
  );
}

/**
 * Docker events that a run caused: a container's lifecycle, or a step script's `docker exec` of
 * manage.py. Health checks are execs too, every few seconds, and are left out.
 */
const caused = (since: number) =>
  events.events.filter(
    (e) =>
      e.time >= since &&
      (["create", "start", "restart", "kill", "stop", "die", "destroy"].includes(e.action) ||
        (e.action.startsWith("exec_") && e.action.includes("manage.py"))),
  );

/**
 * The steps of a real run as the model names them (test/support/replay.ts), in the order the
 * engine began them; the engine's default providers (the command package's `default_1_2_1`, the
 * dynamic provider's), which the program never registers, are left out.
 */
function asTimedSteps(run: RealRun): TimedStep[] {
  return run.steps
    .filter((s) => OPS[s.op] && !(s.type.startsWith("pulumi:providers:") && s.name.startsWith("default")))
    .map((s) => ({ op: OPS[s.op]!, name: s.name, start: s.start, end: s.end }));
}

const runs: { install?: RealRun; noop?: RealRun } = {};

let upgrade: {
  run: RealRun;
  before: Map<string, StateEntry>;
  udpSent: number;
  containersBefore: Awaited<ReturnType<typeof stackContainers>>;
  probe: { samples: number; longestOutageMs: number };
};

describe.sequential("the real engine: install, a no-op, the upgrade to 1.1.0 while meter data arrives, a no-op", () => {
  test(
    "fresh install of 1.0.0 by `pulumi up`: every resource created, the API healthy, readings stored",
    async () => {
      stack.configure(config("1.0.0"));
      const run = await stack.up();
      runs.install = run;
      expect(run.code, run.stdout + run.stderr).toBe(0);
      const created = changes(run);
      for (const name of [
        "api",
        "beat",
        "worker-default-1",
        "processor",
        "poster",
        "udp-server",
        "postgres",
        "rabbitmq",
        "backup",
        "migrate",
        "static",
        "verify",
        "role",
        "database",
      ]) {
        expect(created, name).toContain(`create ${PREFIX}-${name}`);
      }
      expect(created.every((c) => c.startsWith("create "))).toBe(true);
      expect(await health()).toBe(200);
      for (let i = 0; i < 5; i++) expect(await postReading(`api-${i}`, 1.25 + i)).toBe(201);
      for (let i = 0; i < 10; i++) await sendUdp(`udp-${i}`, 2.5 + i);
      expect(await waitForReadings("api-", 5)).toBe(5);
      expect(await waitForReadings("udp-", 10)).toBe(10);
      // The command provider's output reached the engine line by line, attached to its step.
      expect(run.logs.get(`${PREFIX}-migrate`)?.some((l) => /Applying readings\.0001/.test(l))).toBe(true);
    },
    8 * MINUTE,
  );

  test(
    "nothing changed: `pulumi preview --expect-no-changes` and `pulumi up --expect-no-changes` pass; no container event, no step ran",
    async () => {
      const before = await stackContainers(PREFIX);
      const since = Date.now();
      const preview = await stack.up(["--expect-no-changes"], { preview: true });
      expect(preview.code, preview.stdout + preview.stderr).toBe(0);
      const up = await stack.up(["--expect-no-changes"]);
      runs.noop = up;
      expect(up.code, up.stdout + up.stderr).toBe(0);
      expect(changes(up)).toEqual([]);
      expect(up.steps.filter((s) => s.type === "command:local:Command").map((s) => s.op)).toEqual([
        "same",
        "same",
        "same",
        "same",
      ]);
      await new Promise((r) => setTimeout(r, 500));
      expect(caused(since)).toEqual([]);
      const after = await stackContainers(PREFIX);
      for (const [name, state] of after) expect(state.startedAt, name).toBe(before.get(name)!.startedAt);
    },
    5 * MINUTE,
  );

  test(
    "`pulumi preview` of the bump to 1.1.0 shows the maintenance plan's change and runs nothing",
    async () => {
      stack.configure(config("1.1.0"));
      const since = Date.now();
      const preview = await stack.run(["preview", "--diff"]);
      expect(preview.code, preview.stdout + preview.stderr).toBe(0);
      expect(preview.stdout).toMatch(/maintenancePlan/);
      expect(preview.stdout).toMatch(/1\.0\.0 -> 1\.1\.0|1\.1\.0/);
      expect(preview.stdout).toMatch(/\+-.*command:local:Command.*re-migrate|re-migrate/);
      await new Promise((r) => setTimeout(r, 500));
      expect(caused(since)).toEqual([]);
    },
    5 * MINUTE,
  );

  test(
    "the upgrade to 1.1.0 as one `pulumi up`, with UDP messages sent throughout",
    async () => {
      const containersBefore = await stackContainers(PREFIX);
      const before = stateBefore(liveContainers(await stack.export()));
      const stream = udpStream("during-", 100);
      const probe = healthProbe(100);
      const run = await stack.up();
      await new Promise((r) => setTimeout(r, 1000));
      const udpSent = await stream.stop();
      upgrade = { run, before, udpSent, containersBefore, probe: await probe.stop() };
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(changes(run)).toContain(`create-replacement ${PREFIX}-migrate`);
    },
    8 * MINUTE,
  );

  test("every runbook check holds in every order the engine's event log is consistent with", () => {
    const orders = ordersOf(upgrade.run);
    expect(orders.length).toBeGreaterThan(10);
    for (const steps of orders) {
      const failed = INVARIANTS.map((i) => [
        i.name,
        i.check(steps, upgrade.before, { rollback: false, migrates: true }),
      ]).filter(([, v]) => v);
      expect(failed).toEqual([]);
    }
  });

  test("the engine model takes the real runs' steps (install, no-op, upgrade) and allows every order their event logs are consistent with", async () => {
    const v100 = (await deploy(config("1.0.0"), { prefix: PREFIX })).mocks.registrations;
    const v110 = (await deploy(config("1.1.0"), { prefix: PREFIX })).mocks.registrations;
    const scenarios: [string, Declared[], Declared[], RealRun][] = [
      ["install", [], v100, runs.install!],
      ["no-op", v100, v100, runs.noop!],
      ["upgrade", v100, v110, upgrade.run],
    ];
    for (const [name, before, next, run] of scenarios) {
      const steps = asTimedSteps(run);
      const state = () => (before.length ? stateOf(before) : new Map<string, StateEntry>());
      const listed = (xs: { op: string; name: string }[]) => xs.map((x) => `${x.op} ${x.name}`);
      expect(listed(followEngine(state(), next, steps).steps), name).toEqual(listed(steps));
      const departures = consistentOrders(steps).flatMap((order) => followEngine(state(), next, order).departures);
      expect(departures, name).toEqual([]);
    }
  });

  test("Docker's events agree: the writers stopped during the backup, the followers before the API, the migration once in the new API, the followers after static", () => {
    const { run } = upgrade;
    const step = (op: string, name: string) => run.steps.find((s) => s.op === op && s.name === `${PREFIX}-${name}`)!;
    const backup = step("create-replacement", "backup");
    const migrate = step("create-replacement", "migrate");
    const stat = step("create-replacement", "static");
    const during = events.events.filter((e) => e.time >= run.startedAt && e.time <= run.endedAt);
    const died = (name: string) => during.find((e) => e.name === `${PREFIX}-${name}` && e.action === "die");
    const started = (name: string) =>
      during.filter((e) => e.name === `${PREFIX}-${name}` && e.action === "start").at(-1);
    const followers = ["beat", "worker-default-1", "processor", "poster"];
    for (const f of followers) {
      expect(died(f)!.time, f).toBeGreaterThanOrEqual(backup.startedAt - 50);
      expect(died(f)!.time, f).toBeLessThanOrEqual(died("api")!.time);
      expect(started(f)!.time, f).toBeGreaterThanOrEqual(stat.endedAt - 50);
    }
    expect(died("api")!.time).toBeGreaterThanOrEqual(backup.endedAt - 50);
    const migrations = during.filter(
      (e) => e.action.startsWith("exec_start") && e.action.includes("migrate --noinput"),
    );
    expect(migrations.map((e) => e.name)).toEqual([`${PREFIX}-api`]);
    expect(migrations[0].time).toBeGreaterThanOrEqual(migrate.startedAt - 50);
    // Never two beats.
    let beats = 0;
    for (const e of events.events.filter((x) => x.service === "beat" && ["start", "die"].includes(x.action))) {
      beats += e.action === "start" ? 1 : -1;
      expect(beats).toBeLessThanOrEqual(1);
    }
  });

  test(
    "the UDP server, PostgreSQL and RabbitMQ ran on, the same containers; every UDP message was stored exactly once",
    async () => {
      const after = await stackContainers(PREFIX);
      for (const name of ["udp-server", "postgres", "rabbitmq"]) {
        expect(after.get(`${PREFIX}-${name}`)!.startedAt, name).toBe(
          upgrade.containersBefore.get(`${PREFIX}-${name}`)!.startedAt,
        );
        expect(
          events.events.filter(
            (e) => e.name === `${PREFIX}-${name}` && e.time >= upgrade.run.startedAt && e.action === "die",
          ),
          name,
        ).toEqual([]);
      }
      expect(upgrade.udpSent).toBeGreaterThan(20);
      expect(await waitForReadings("during-", upgrade.udpSent, 3 * MINUTE)).toBe(upgrade.udpSent);
      const duplicates = await sql(
        "select count(*) from (select meter from readings_meterreading where upper(meter) like 'DURING-%' group by meter having count(*) > 1) d",
      );
      expect(duplicates).toBe("0");
      expect(await countReadings("udp-")).toBe(10);
      expect(await health()).toBe(200);
      for (const name of ["api", "beat", "worker-default-1"])
        expect(after.get(`${PREFIX}-${name}`)!.version, name).toBe("1.1.0");
    },
    4 * MINUTE,
  );

  test(
    "the upgrade's backup: the writers stopped by the step itself, the server's disk checked first; the dump restores with the manifest's row counts",
    async () => {
      const log = upgrade.run.logs.get(`${PREFIX}-backup`)?.join("\n") ?? "";
      expect(log).toMatch(
        new RegExp(
          `stopped the writers in [\\d.]+s: ${PREFIX}-beat ${PREFIX}-worker-default-1 ${PREFIX}-processor ${PREFIX}-poster`,
        ),
      );
      // The program told the backup where the managed server runs, so its disk was checked first.
      expect(log).toMatch(
        new RegExp(
          `free space on the database server \\(${PREFIX}-postgres\\) for the test restore: \\d+ MB \\(need \\d+ MB\\)`,
        ),
      );
      const file = String((await stack.outputs()).lastBackup);
      expect(path.basename(file)).toMatch(/^utilitarian-\d{8}T\d{6}Z-1\.0\.0-to-1\.1\.0\.dump$/);
      const manifest = JSON.parse(fs.readFileSync(`${file}.json`, "utf8")) as { row_counts: Record<string, number> };
      await sql("drop database if exists scratch_check");
      await sql("create database scratch_check");
      const env = {
        ...process.env,
        PGHOST: "127.0.0.1",
        PGPORT: String(PORTS.postgres),
        PGUSER: "postgres",
        PGPASSWORD: SECRET_VALUES.databaseAdminPassword,
      };
      const restored = await exec("pg_restore", ["--no-owner", "-d", "scratch_check", file], { env });
      expect(restored.code, restored.stderr).toBe(0);
      for (const [table, rows] of Object.entries(manifest.row_counts)) {
        expect(Number(await sql(`select count(*) from ${table}`, "scratch_check")), table).toBe(rows);
      }
      // 15 readings stored before the upgrade, plus what the poster delivered before its stop.
      expect(manifest.row_counts["public.readings_meterreading"]).toBeGreaterThanOrEqual(15);
      await sql("drop database scratch_check");
    },
    2 * MINUTE,
  );

  test(
    "readings from before the upgrade are there, transformed by 1.1.0's migration; beat and a worker work on the new version",
    async () => {
      const rows = await sql(
        "select meter, value, value_wh from readings_meterreading where meter like 'API-%' or meter like 'UDP-%' order by id",
      );
      expect(rows.split("\n")).toHaveLength(15);
      for (const line of rows.split("\n")) {
        const [meter, value, valueWh] = line.split("|");
        expect(meter).toBe(meter.toUpperCase());
        expect(Number(valueWh)).toBe(Math.round(Number(value) * 1000));
      }
      // Beat schedules a heartbeat every 5 s and a worker stores it.
      const heartbeats = Number(await sql("select count(*) from readings_heartbeat"));
      expect(
        await waitFor(async () => Number(await sql("select count(*) from readings_heartbeat")) > heartbeats, 30_000),
      ).toBe(true);
    },
    MINUTE,
  );

  test("the upgrade's timeline under the real engine is recorded (test/.work/engine-upgrade.json)", () => {
    const { run, probe } = upgrade;
    const work = run.steps.filter(
      (s) => s.op !== "same" && !s.type.startsWith("pulumi:providers:") && Number.isFinite(s.endedAt),
    );
    const windowStart = Math.min(...work.map((s) => s.startedAt));
    const windowMs = Math.max(...work.map((s) => s.endedAt)) - windowStart;
    const during = events.events.filter((e) => e.time >= windowStart && e.time <= run.endedAt);
    const followerDies = during.filter((e) => e.action === "die" && e.service !== "api").map((e) => e.time);
    const followerStarts = during.filter((e) => e.action === "start" && e.service !== "api").map((e) => e.time);
    const backup = run.steps.find((s) => s.name === `${PREFIX}-backup` && s.op === "create-replacement")!;
    const since = (t: number) => Number(((t - windowStart) / 1000).toFixed(2));
    const share = (ms: number) => Number((ms / windowMs).toFixed(2));
    const summary = {
      engine: "pulumi 3.250.0 (toolchain/pulumi), stand-in docker/postgresql/command plugins",
      pulumiUpSeconds: (run.endedAt - run.startedAt) / 1000,
      windowSeconds: windowMs / 1000,
      apiOutageSeconds: probe.longestOutageMs / 1000,
      followersDownSeconds: (Math.max(...followerStarts) - Math.min(...followerDies)) / 1000,
      backupSeconds: (backup.endedAt - backup.startedAt) / 1000,
      shareOfWindow: {
        apiOutage: share(probe.longestOutageMs),
        followersDown: share(Math.max(...followerStarts) - Math.min(...followerDies)),
        backup: share(backup.endedAt - backup.startedAt),
      },
      udpMessagesDuringUpgrade: upgrade.udpSent,
      steps: work.map((s) => `${since(s.startedAt)}-${since(s.endedAt)}s ${s.op} ${s.name}`),
    };
    fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
    fs.writeFileSync(path.resolve(__dirname, "../.work/engine-upgrade.json"), JSON.stringify(summary, null, 2));
    expect(summary.apiOutageSeconds).toBeGreaterThan(0);
    expect(summary.apiOutageSeconds).toBeLessThan(summary.windowSeconds);
    expect(summary.backupSeconds).toBeGreaterThan(0);
  });

  test(
    "no secret in the engine's output, its event log (less debug messages), the stack's exported state, Docker's events, the containers' logs or the backups' manifests",
    async () => {
      const needles = Object.values(SECRET_VALUES).flatMap((v) => [v, encodeURIComponent(v)]);
      const texts: [string, string][] = [
        ["pulumi up output", upgrade.run.stdout + upgrade.run.stderr],
        // The Node SDK's debug messages ("RegisterResource RPC finished: ... resp: ...") print what
        // the engine answered, secrets included: the terminal shows them only with --debug, the
        // event log always. The README's failure guide says not to share either.
        [
          "event log",
          fs
            .readFileSync(upgrade.run.eventLog, "utf8")
            .split("\n")
            .filter((l) => !l.includes('"severity":"debug"'))
            .join("\n"),
        ],
        ["stack export", JSON.stringify(await stack.export())],
        ["docker events", JSON.stringify(events.events)],
      ];
      for (const name of (await stackContainers(PREFIX)).keys()) {
        const logs = await exec("docker", ["logs", name]);
        texts.push([`logs of ${name}`, logs.stdout + logs.stderr]);
      }
      for (const f of fs.readdirSync(backups)) {
        texts.push([`backup file name ${f}`, f]);
        if (f.endsWith(".json") || f.endsWith(".sha256"))
          texts.push([f, fs.readFileSync(path.join(backups, f), "utf8")]);
      }
      expect(texts.length).toBeGreaterThan(15);
      // The search does find them where they belong: the API container's environment.
      expect((await exec("docker", ["inspect", `${PREFIX}-api`])).stdout).toContain(SECRET_VALUES.secretKey);
      expect(texts.filter(([, t]) => needles.some((n) => t.includes(n))).map(([w]) => w)).toEqual([]);
    },
    MINUTE,
  );

  test(
    "then nothing changed: `pulumi up --expect-no-changes` passes",
    async () => {
      const up = await stack.up(["--expect-no-changes"]);
      expect(up.code, up.stdout + up.stderr).toBe(0);
      expect(changes(up)).toEqual([]);
      expect(PORTS.api).toBeGreaterThan(0);
    },
    5 * MINUTE,
  );

  test(
    "a changed backup setting updates the backup step without a new backup, and lastBackup survives; changed back, the same",
    async () => {
      const last = (await stack.outputs()).lastBackup;
      expect(String(last)).toMatch(/-1\.0\.0-to-1\.1\.0\.dump$/);
      const dumps = () =>
        fs
          .readdirSync(backups)
          .filter((f) => f.endsWith(".dump"))
          .sort();
      const before = dumps();
      for (const keep of [4, 5]) {
        stack.configure(config("1.1.0", { backup: { dir: backups, keep } }));
        const run = await stack.up();
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expect(changes(run), `keep ${keep}`).toEqual([`update ${PREFIX}-backup`]);
        expect(run.logs.get(`${PREFIX}-backup`)?.join("\n")).toMatch(
          /backup\.sh: already done for these triggers; settings recorded/,
        );
        expect((await stack.outputs()).lastBackup).toBe(last);
        expect(dumps()).toEqual(before);
      }
    },
    5 * MINUTE,
  );

  test(
    "a config change touches exactly the containers it should: health check, worker count, a new group, a removed one",
    async () => {
      const api = config("1.1.0").api as Record<string, unknown>;
      const longerHealth = config("1.1.0", { api: { ...api, healthTimeoutSeconds: 300 } });
      const withGroups = (workers: unknown[]) => ({ ...longerHealth, workers });
      const cases: { name: string; values: Record<string, unknown>; changed: string[] }[] = [
        // The health check is replaced (the provider records a changed one without applying it), and
        // with the API go its followers (delete-before-replace, replaceWith), static's restart and
        // verify; migrate only records its new API start timeout (an update runs no migration).
        {
          name: "health check",
          values: longerHealth,
          changed: ["api", "beat", "worker-default-1", "processor", "poster", "static", "verify", "migrate"],
        },
        // A worker added or removed: its container, verify's list, and the writers the backup stops
        // (an update that records the list; no backup runs).
        {
          name: "two default workers",
          values: withGroups([{ name: "default", count: 2 }]),
          changed: ["worker-default-2", "verify", "backup"],
        },
        {
          name: "a reports group",
          values: withGroups([
            { name: "default", count: 2 },
            { name: "reports", queues: ["reports"] },
          ]),
          changed: ["worker-reports-1", "verify", "backup"],
        },
        {
          name: "the reports group removed",
          values: withGroups([{ name: "default", count: 2 }]),
          changed: ["worker-reports-1", "verify", "backup"],
        },
      ];
      let previous = config("1.1.0");
      for (const c of cases) {
        const before = await stackContainers(PREFIX);
        stack.configure(c.values);
        const run = await stack.up();
        expect(run.code, `${c.name}: ${run.stdout}${run.stderr}`).toBe(0);
        // The engine model takes the same steps, in every order the event log allows.
        const [was, next] = [
          (await deploy(previous, { prefix: PREFIX })).mocks.registrations,
          (await deploy(c.values, { prefix: PREFIX })).mocks.registrations,
        ];
        const steps = asTimedSteps(run);
        const listed = (xs: { op: string; name: string }[]) => xs.map((x) => `${x.op} ${x.name}`);
        expect(listed(followEngine(stateOf(was), next, steps).steps), c.name).toEqual(listed(steps));
        expect(
          consistentOrders(steps).flatMap((order) => followEngine(stateOf(was), next, order).departures),
          c.name,
        ).toEqual([]);
        previous = c.values;
        const touched = [
          ...new Set(
            run.steps
              .filter((s) => s.op !== "same" && !s.type.startsWith("pulumi:providers:"))
              .map((s) => s.name.slice(PREFIX.length + 1)),
          ),
        ];
        expect(touched.sort(), c.name).toEqual([...c.changed].sort());
        // No backup and no migration: neither step is created again.
        expect(
          run.steps.filter((s) => /-(backup|migrate)$/.test(s.name) && s.op !== "same" && s.op !== "update"),
          c.name,
        ).toEqual([]);
        const after = await stackContainers(PREFIX);
        for (const [name, state] of after) {
          if (c.changed.includes(name.slice(PREFIX.length + 1))) continue;
          expect(state.startedAt, `${c.name}: ${name}`).toBe(before.get(name)?.startedAt);
        }
      }
      expect(await health()).toBe(200);
    },
    10 * MINUTE,
  );

  test(
    "a second clone of the project at another path: `pulumi preview --expect-no-changes` passes",
    async () => {
      const clone = path.join(tempDir("engine-clone"), "elsewhere");
      const cloned = await exec("git", ["clone", "--quiet", PROJECT_DIR, clone]);
      expect(cloned.code, cloned.stderr).toBe(0);
      fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(clone, "node_modules"));
      const preview = await stack.run(["preview", "--expect-no-changes"], { cwd: clone });
      expect(preview.code, preview.stdout + preview.stderr).toBe(0);
      fs.rmSync(path.dirname(clone), { recursive: true, force: true });
    },
    5 * MINUTE,
  );

  test(
    "`pulumi destroy` is refused while the data is protected, and deletes nothing",
    async () => {
      const before = await stackContainers(PREFIX);
      const since = Date.now();
      const destroy = await stack.run(["destroy", "--yes"]);
      expect(destroy.code).not.toBe(0);
      expect(destroy.stdout + destroy.stderr).toMatch(/protect/);
      expect([...(await stackContainers(PREFIX)).keys()]).toEqual([...before.keys()]);
      expect(caused(since)).toEqual([]);
    },
    5 * MINUTE,
  );
});
