/**
 * The rehearsal of install and upgrade: what the program declares under mocks, carried out
 * against the real Docker engine with the stand-in images, in the engine's order for
 * replacements (test/support/engine.ts). Evidence comes from Docker's events, the steps'
 * timestamps and the database's contents.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EventLog, type StepRecord } from "../support/rehearsal";
import { exec, waitFor } from "../support/exec";
import { SECRET_VALUES } from "../unit/support/fixtures";
import {
  countReadings, newRehearsal, health, healthProbe, PORTS, postReading, PREFIX, prepareStandinStack, sendUdp, sql, stackContainers,
  standinConfig, teardown, tempDir, udpStream, waitForReadings,
} from "../support/standin-stack";

const MINUTES = 60_000;
const backups = tempDir("rehearsal-backups");
const rehearsal = newRehearsal();
const events = new EventLog();

interface UpgradeEvidence {
  startedAt: number;
  endedAt: number;
  records: StepRecord[];
  udpSent: number;
  probe: { samples: number; longestOutageMs: number };
  containersBefore: Awaited<ReturnType<typeof stackContainers>>;
}
let upgrade: UpgradeEvidence;

beforeAll(async () => {
  await prepareStandinStack();
  await events.start(PREFIX);
}, 2 * MINUTES);

afterAll(async () => {
  events.stop();
  await teardown();
}, 2 * MINUTES);

describe("rehearsal: fresh install of 1.0.0, then an upgrade to 1.1.0 while meter data keeps arriving", () => {
  test("fresh install of 1.0.0 comes up healthy; readings arrive through the API and through the UDP server", async () => {
    const records = await rehearsal.up(standinConfig("1.0.0", backups));
    expect(records.filter((r) => r.step.type === "command:local:Command").map((r) => r.step.name))
      .toEqual(["rh-backup", "rh-migrate", "rh-static", "rh-verify"]);
    expect(await health()).toBe(200);

    for (let i = 0; i < 5; i++) expect(await postReading(`api-${i}`, 1.25 + i)).toBe(201);
    for (let i = 0; i < 10; i++) await sendUdp(`udp-${i}`, 2.5 + i);
    expect(await waitForReadings("api-", 5)).toBe(5);
    expect(await waitForReadings("udp-", 10)).toBe(10);
  }, 5 * MINUTES);

  test("upgrade to 1.1.0 as one run, with UDP messages sent throughout", async () => {
    const containersBefore = await stackContainers();
    const stream = udpStream("during-", 100);
    const probe = healthProbe(200);
    const startedAt = Date.now();
    const records = await rehearsal.up(standinConfig("1.1.0", backups));
    const endedAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const udpSent = await stream.stop();
    upgrade = { startedAt, endedAt, records, udpSent, probe: await probe.stop(), containersBefore };
    expect(records.some((r) => r.step.name === "rh-migrate")).toBe(true);
  }, 5 * MINUTES);

  test("only the writers stopped before the backup finished, by the backup step itself; the API stopped after it; the backup restores with identical row counts", async () => {
    const backup = upgrade.records.find((r) => r.step.name === "rh-backup")!;
    const stops = events.events.filter((e) => e.time >= upgrade.startedAt && ["kill", "stop", "die"].includes(e.action));
    const writers = ["rh-beat", "rh-poster", "rh-processor", "rh-worker-default-1"];
    const beforeBackupEnded = stops.filter((e) => e.time < backup.endedAt);
    expect([...new Set(beforeBackupEnded.map((e) => e.name))].sort()).toEqual(writers);
    for (const e of beforeBackupEnded) expect(e.time, e.name).toBeGreaterThanOrEqual(backup.startedAt);
    expect(backup.output).toMatch(/stopped the writers in [\d.]+s: rh-beat rh-worker-default-1 rh-processor rh-poster/);
    expect(backup.endedAt).toBeLessThan(Math.min(...stops.filter((e) => e.name === "rh-api").map((e) => e.time)));
    // The program told the backup where the managed server runs, so its disk was checked first.
    expect(backup.output).toMatch(/free space on the database server \(rh-postgres\) for the test restore: \d+ MB \(need \d+ MB\)/);

    const file = /^BACKUP_FILE=(.*)$/m.exec(backup.output)![1];
    expect(path.basename(file)).toMatch(/^utilitarian-\d{8}T\d{6}Z-1\.0\.0-to-1\.1\.0\.dump$/);
    const manifest = JSON.parse(fs.readFileSync(`${file}.json`, "utf8"));
    await sql("drop database if exists scratch_check");
    await sql("create database scratch_check");
    const env = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(PORTS.postgres), PGUSER: "postgres", PGPASSWORD: SECRET_VALUES.databaseAdminPassword };
    const restored = await exec("pg_restore", ["--no-owner", "-d", "scratch_check", file], { env });
    expect(restored.code, restored.stderr).toBe(0);
    for (const [table, rows] of Object.entries(manifest.row_counts as Record<string, number>)) {
      expect(Number(await sql(`select count(*) from ${table}`, "scratch_check")), table).toBe(rows);
    }
    // 15 readings written before the upgrade, plus what the poster delivered while the backup ran.
    expect(manifest.row_counts["public.readings_meterreading"]).toBeGreaterThanOrEqual(15);
    await sql("drop database scratch_check");
  }, 2 * MINUTES);

  test("the UDP server was never stopped, and every message sent during the upgrade reached the database", async () => {
    const udp = events.events.filter((e) => e.name === `${PREFIX}-udp-server` && e.time >= upgrade.startedAt);
    expect(udp.filter((e) => ["kill", "stop", "die", "start"].includes(e.action))).toEqual([]);
    const before = upgrade.containersBefore.get(`${PREFIX}-udp-server`)!;
    const after = (await stackContainers()).get(`${PREFIX}-udp-server`)!;
    expect(after.id).toBe(before.id);
    expect(after.startedAt).toBe(before.startedAt);
    expect(upgrade.udpSent).toBeGreaterThan(20);
    expect(await waitForReadings("during-", upgrade.udpSent, 3 * MINUTES)).toBe(upgrade.udpSent);
  }, 4 * MINUTES);

  test("PostgreSQL and RabbitMQ kept running, the same containers", async () => {
    const after = await stackContainers();
    for (const name of [`${PREFIX}-postgres`, `${PREFIX}-rabbitmq`]) {
      expect(after.get(name)!.id).toBe(upgrade.containersBefore.get(name)!.id);
      expect(after.get(name)!.startedAt).toBe(upgrade.containersBefore.get(name)!.startedAt);
    }
  });

  test("at no moment did two beats run", () => {
    const beat = events.events.filter((e) => e.service === "beat" && ["start", "die"].includes(e.action));
    let running = 0;
    for (const e of beat) {
      running += e.action === "start" ? 1 : -1;
      expect(running).toBeLessThanOrEqual(1);
    }
    expect(beat.filter((e) => e.action === "start").length).toBeGreaterThanOrEqual(2); // install + upgrade
  });

  test("the migration ran once, in the new API only, after the followers and the old API stopped", async () => {
    const migrations = events.events.filter((e) => e.time >= upgrade.startedAt && e.action.startsWith("exec_start") && e.action.includes("migrate --noinput"));
    expect(migrations.map((e) => e.name)).toEqual([`${PREFIX}-api`]);
    expect(await sql("select count(*) from django_migrations where app = 'readings' and name like '0002%'")).toBe("1");
    const apiDied = events.events.find((e) => e.time >= upgrade.startedAt && e.name === `${PREFIX}-api` && e.action === "die")!;
    for (const follower of ["beat", "worker-default-1", "processor", "poster"]) {
      const died = events.events.find((e) => e.time >= upgrade.startedAt && e.name === `${PREFIX}-${follower}` && e.action === "die");
      const started = events.events.find((e) => e.time >= upgrade.startedAt && e.name === `${PREFIX}-${follower}` && e.action === "start");
      expect(died!.time, follower).toBeLessThanOrEqual(apiDied.time);
      expect(started!.time, follower).toBeGreaterThan(migrations[0].time);
    }
  });

  test("health is 200 at the end; everything runs on its version", async () => {
    expect(await health()).toBe(200);
    const after = await stackContainers();
    for (const name of ["api", "beat", "worker-default-1"]) expect(after.get(`${PREFIX}-${name}`)!.version, name).toBe("1.1.0");
    for (const [name, state] of after) expect(state.running, name).toBe(true);
    // Beat schedules a heartbeat every 5 s and a worker stores it: both work on the new version.
    const heartbeats = Number(await sql("select count(*) from readings_heartbeat"));
    expect(await waitFor(async () => Number(await sql("select count(*) from readings_heartbeat")) > heartbeats, 30_000)).toBe(true);
  }, MINUTES);

  test("readings from before the upgrade are present and transformed by 1.1.0's migration", async () => {
    expect(await countReadings("api-")).toBe(5);
    expect(await countReadings("udp-")).toBe(10);
    const rows = await sql("select meter, value, value_wh from readings_meterreading where meter like 'API-%' or meter like 'UDP-%' order by id");
    for (const line of rows.split("\n")) {
      const [meter, value, valueWh] = line.split("|");
      expect(meter).toBe(meter.toUpperCase());
      expect(Number(valueWh)).toBe(Math.round(Number(value) * 1000));
    }
  });

  test("no secret appears in the steps' output, the containers' logs, the backups' manifests or Docker's events", async () => {
    const needles = Object.values(SECRET_VALUES).flatMap((v) => [v, encodeURIComponent(v)]);
    const texts: [string, string][] = rehearsal.records.map((r) => [`step ${r.step.op} ${r.step.name}`, r.output]);
    for (const name of (await stackContainers()).keys()) {
      const logs = await exec("docker", ["logs", name]);
      texts.push([`logs of ${name}`, logs.stdout + logs.stderr]);
    }
    for (const f of fs.readdirSync(backups)) {
      texts.push([`backup file name ${f}`, f]);
      if (f.endsWith(".json") || f.endsWith(".sha256")) texts.push([f, fs.readFileSync(path.join(backups, f), "utf8")]);
    }
    texts.push(["docker events", JSON.stringify(events.events)]);
    expect(texts.length).toBeGreaterThan(20);
    // The search does find them where they belong: the API container's environment.
    const inspect = await exec("docker", ["inspect", `${PREFIX}-api`]);
    expect(needles.some((n) => inspect.stdout.includes(n))).toBe(true);
    const leaks = texts.filter(([, text]) => needles.some((n) => text.includes(n))).map(([where]) => where);
    expect(leaks).toEqual([]);
  }, MINUTES);

  test("timeline and downtime are recorded", () => {
    // The window is the steps' span: the program's own run (the harness compiles and runs it first
    // here; in `pulumi up` it runs alongside the steps) is not maintenance time.
    const windowStart = upgrade.records[0].startedAt;
    const since = (t: number) => ((t - upgrade.startedAt) / 1000).toFixed(2);
    const timeline = events.events
      .filter((e) => e.time >= windowStart && e.time <= upgrade.endedAt && ["start", "die"].includes(e.action))
      .map((e) => `${since(e.time)}s ${e.action} ${e.name}`);
    const steps = upgrade.records.map((r) => `${since(r.startedAt)}-${since(r.endedAt)}s ${r.step.op} ${r.step.name}`);
    const followerStops = events.events.filter((e) => e.time >= windowStart && e.action === "die").map((e) => e.time);
    const followerStarts = events.events.filter((e) => e.time >= windowStart && e.action === "start").map((e) => e.time);
    const backup = upgrade.records.find((r) => r.step.name === `${PREFIX}-backup`)!;
    const upgradeMs = upgrade.records.at(-1)!.endedAt - windowStart;
    const servicesDownMs = Math.max(...followerStarts) - Math.min(...followerStops);
    // Ratios within this one run: the machine's speed cancels out.
    const share = (ms: number) => Number((ms / upgradeMs).toFixed(2));
    const summary = {
      upgradeSeconds: upgradeMs / 1000,
      apiOutageSeconds: upgrade.probe.longestOutageMs / 1000,
      servicesDownSeconds: servicesDownMs / 1000,
      backupSeconds: (backup.endedAt - backup.startedAt) / 1000,
      shareOfUpgrade: { apiOutage: share(upgrade.probe.longestOutageMs), servicesDown: share(servicesDownMs), backup: share(backup.endedAt - backup.startedAt) },
      udpMessagesDuringUpgrade: upgrade.udpSent,
    };
    const report = { summary, steps, timeline };
    fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
    fs.writeFileSync(path.resolve(__dirname, "../.work/rehearsal-timeline.json"), JSON.stringify(report, null, 2));
    console.log(JSON.stringify(report, null, 2));
    expect(timeline.length).toBeGreaterThanOrEqual(10);
    expect(summary.apiOutageSeconds).toBeGreaterThan(0);
    expect(summary.apiOutageSeconds).toBeLessThan(summary.upgradeSeconds);
  });

  test("nothing changed: a second `up` runs nothing and restarts nothing", async () => {
    const before = await stackContainers();
    const records = await rehearsal.up(standinConfig("1.1.0", backups));
    expect(records.map((r) => `${r.step.op} ${r.step.name}`)).toEqual([]);
    const after = await stackContainers();
    for (const [name, state] of after) expect(state.startedAt, name).toBe(before.get(name)!.startedAt);
  }, 2 * MINUTES);

  test("a changed backup setting updates the backup step without a new backup, and lastBackup survives", async () => {
    const last = rehearsal.lastBackup(PREFIX);
    expect(last).toMatch(/-1\.0\.0-to-1\.1\.0\.dump$/);
    const dumps = fs.readdirSync(backups).filter((f) => f.endsWith(".dump"));
    const records = await rehearsal.up(standinConfig("1.1.0", backups, { backup: { dir: backups, keep: 4 } }));
    expect(records.map((r) => `${r.step.op} ${r.step.name}`)).toEqual([`update ${PREFIX}-backup`]);
    expect(records[0].output).toMatch(/backup\.sh: already done for these triggers; settings recorded/);
    expect(rehearsal.lastBackup(PREFIX)).toBe(last);
    expect(fs.readdirSync(backups).filter((f) => f.endsWith(".dump"))).toEqual(dumps);
  }, 2 * MINUTES);
});
