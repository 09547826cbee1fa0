/**
 * What happens when things go wrong, for real: a backup that cannot be taken stops the run before
 * anything stops; a migration that fails half way stops the run with its log, and a re-run
 * resumes; a rollback restores the verified pre-upgrade backup and brings the older version up.
 */
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { docker } from "../support/exec";
import { PreviewRefused, Rehearsal, StepFailed, stepFailure } from "../support/rehearsal";
import {
  countReadings, newRehearsal, health, PORTS, postReading, PREFIX, prepareStandinStack, sql, stackContainers, standinConfig, teardown,
  tempDir, waitForReadings, sendUdp,
} from "../support/standin-stack";

const MINUTES = 60_000;


/** Installs 1.0.0 from scratch and writes readings through the API and the UDP server. */
async function installWithData(rehearsal: Rehearsal, backups: string): Promise<void> {
  await teardown();
  await rehearsal.up(standinConfig("1.0.0", backups));
  for (let i = 0; i < 4; i++) expect(await postReading(`pre-${i}`, 10 + i)).toBe(201);
  for (let i = 0; i < 4; i++) await sendUdp(`pre-udp-${i}`, 20 + i);
  expect(await waitForReadings("pre-", 8)).toBe(8);
}

beforeAll(prepareStandinStack, MINUTES);
afterAll(teardown, MINUTES);

describe("a backup that cannot be taken stops the run before any service is stopped", () => {
  const backups = tempDir("fail-backups");
  const rehearsal = newRehearsal();
  let before: Awaited<ReturnType<typeof stackContainers>>;

  beforeAll(async () => {
    await installWithData(rehearsal, backups);
    before = await stackContainers();
  }, 5 * MINUTES);

  async function expectNothingStoppedOrReplaced(failed: StepFailed): Promise<void> {
    expect(failed.record.step.name).toBe(`${PREFIX}-backup`);
    const after = await stackContainers();
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [name, state] of after) {
      expect(state.running, name).toBe(true);
      expect(state.id, name).toBe(before.get(name)!.id);
      expect(state.version, name).toBe(before.get(name)!.version);
    }
    const stepsAfterBackup = rehearsal.records.slice(rehearsal.records.indexOf(failed.record) + 1);
    expect(stepsAfterBackup).toEqual([]);
    expect(fs.readdirSync(backups).filter((f) => f.includes("-to-1.1.0"))).toEqual([]);
    expect(await health()).toBe(200);
  }

  test("database unreachable", async () => {
    await docker(["pause", `${PREFIX}-postgres`]);
    let failed: StepFailed;
    try {
      failed = await stepFailure(rehearsal.up(standinConfig("1.1.0", backups)));
    } finally {
      await docker(["unpause", `${PREFIX}-postgres`]);
    }
    expect(failed.message).toContain(`database unreachable at 127.0.0.1:${PORTS.postgres}`);
    await expectNothingStoppedOrReplaced(failed);
  }, 3 * MINUTES);

  test("target directory unwritable", async () => {
    const file = path.join(backups, "not-a-directory");
    fs.writeFileSync(file, "");
    const failed = await stepFailure(rehearsal.up(standinConfig("1.1.0", path.join(file, "backups"))));
    expect(failed.message).toMatch(/backup: .*not-a-directory\/backups/);
    await expectNothingStoppedOrReplaced(failed);
  }, 3 * MINUTES);

  test("not enough free space", async () => {
    const failed = await stepFailure(rehearsal.up(standinConfig("1.1.0", backups, { backup: { dir: backups, minFreeMb: 9_000_000 } })));
    expect(failed.message).toContain("not enough free space");
    await expectNothingStoppedOrReplaced(failed);
  }, 3 * MINUTES);
});

describe("a migration that fails half way, and the way back", () => {
  const backups = tempDir("rollback-backups");
  const rehearsal = newRehearsal();
  let failed: StepFailed;
  let preUpgrade: string;

  beforeAll(async () => {
    await installWithData(rehearsal, backups);
    // 1.2.0's migration 0004 refuses negative readings: the cause an operator fixes.
    expect(await postReading("broken-meter", -5)).toBe(201);
    preUpgrade = await sql("select meter || '=' || value from readings_meterreading order by id");
    failed = await stepFailure(rehearsal.up(standinConfig("1.2.0", backups)));
  }, 6 * MINUTES);

  test("the run stops at the migration, with the migration's log in the error", () => {
    expect(failed.record.step.name).toBe(`${PREFIX}-migrate`);
    expect(failed.message).toContain("negative value");
    expect(failed.message).toMatch(/Applying readings\.0003/);
  });

  test("nothing after it starts on the new version; the UDP server, PostgreSQL and RabbitMQ still run", async () => {
    const after = await stackContainers();
    for (const follower of ["beat", "worker-default-1", "processor", "poster"]) expect(after.has(`${PREFIX}-${follower}`), follower).toBe(false);
    expect(after.get(`${PREFIX}-api`)!.version).toBe("1.2.0");
    for (const kept of ["udp-server", "postgres", "rabbitmq"]) expect(after.get(`${PREFIX}-${kept}`)!.running, kept).toBe(true);
    expect(rehearsal.records.at(-1)).toBe(failed.record);
  });

  test("lowering the version without a restore is refused at preview, and nothing runs", async () => {
    const recorded = rehearsal.records.length;
    const refusal = rehearsal.up(standinConfig("1.0.0", backups));
    await expect(refusal).rejects.toThrow(PreviewRefused);
    await expect(refusal).rejects.toThrow(/from 1\.2\.0 down to 1\.0\.0 .*migrations.*utilitarian:restoreFrom/s);
    expect(rehearsal.records.length).toBe(recorded);
  });

  test("rolling back restores the verified pre-upgrade backup and brings 1.0.0 up with every pre-upgrade reading and none of 1.2.0's schema", async () => {
    const records = await rehearsal.up(standinConfig("1.0.0", backups, { restoreFrom: "latest" }));
    const restore = records.find((r) => r.step.name === `${PREFIX}-restore`)!;
    expect(restore.output).toMatch(/RESTORED_FILE=.*-1\.0\.0-to-1\.2\.0\.dump/);
    expect(await health()).toBe(200);
    const after = await stackContainers();
    for (const [name, state] of after) expect(state.running, name).toBe(true);
    expect(after.get(`${PREFIX}-api`)!.version).toBe("1.0.0");
    expect(await sql("select meter || '=' || value from readings_meterreading order by id")).toBe(preUpgrade);
    expect(await sql("select count(*) from information_schema.tables where table_name = 'readings_tariff'")).toBe("0");
    expect(await sql("select count(*) from information_schema.columns where table_name = 'readings_meterreading' and column_name = 'value_wh'")).toBe("0");
    expect(await sql("select string_agg(name, ',' order by name) from django_migrations where app = 'readings'")).toBe("0001_initial");
    // The failed state is kept beside it, not dropped.
    expect(await sql("select count(*) from pg_database where datname like 'utilitarian_before_restore_%'", "postgres")).toBe("1");
  }, 5 * MINUTES);

  test("after the rollback, the cause fixed, a new upgrade to 1.2.0 succeeds", async () => {
    await sql("delete from readings_meterreading where value < 0");
    const records = await rehearsal.up(standinConfig("1.2.0", backups));
    expect(records.map((r) => r.step.name)).toContain(`${PREFIX}-backup`);
    expect(await health()).toBe(200);
    expect(await sql("select count(*) from information_schema.tables where table_name = 'readings_tariff'")).toBe("1");
    expect(await countReadings("pre-")).toBe(8);
  }, 5 * MINUTES);
});

describe("a re-run after the cause is fixed resumes where the failed run stopped", () => {
  const backups = tempDir("resume-backups");
  const rehearsal = newRehearsal();

  test("no second backup, no repeated step, the rest carried out", async () => {
    await installWithData(rehearsal, backups);
    expect(await postReading("broken-meter", -1)).toBe(201);
    const failed = await stepFailure(rehearsal.up(standinConfig("1.2.0", backups)));
    expect(failed.record.step.name).toBe(`${PREFIX}-migrate`);
    const backupsAfterFailure = fs.readdirSync(backups).filter((f) => f.endsWith(".dump"));

    await sql("delete from readings_meterreading where value < 0");
    const records = await rehearsal.up(standinConfig("1.2.0", backups));
    const done = records.map((r) => `${r.step.op} ${r.step.name}`);
    expect(done).not.toContain(`replace ${PREFIX}-backup`);
    expect(done.some((d) => d.endsWith(`${PREFIX}-api`))).toBe(false);
    // static was deleted with the old API container (its trigger holds the API's ID) and is
    // pending replacement: it runs anew, as do the followers deleted ahead of the API.
    expect(done.indexOf(`replace ${PREFIX}-migrate`)).toBeGreaterThanOrEqual(0);
    expect(done.indexOf(`replace ${PREFIX}-migrate`)).toBeLessThan(done.indexOf(`replace ${PREFIX}-static`));
    for (const follower of ["beat", "worker-default-1", "processor", "poster"]) {
      expect(done.indexOf(`replace ${PREFIX}-${follower}`), follower).toBeGreaterThan(done.indexOf(`replace ${PREFIX}-static`));
    }
    expect(fs.readdirSync(backups).filter((f) => f.endsWith(".dump"))).toEqual(backupsAfterFailure);
    expect(await health()).toBe(200);
    expect(await sql("select count(*) from django_migrations where app = 'readings' and name like '0004%'")).toBe("1");
  }, 8 * MINUTES);
});

describe("the new API container cannot start (its port is taken): `pulumi up --refresh` resumes", () => {
  const backups = tempDir("start-failure-backups");
  const rehearsal = newRehearsal();

  test("the run stops with the container created but not started; after the port is freed, `up --refresh` starts it and finishes", async () => {
    await installWithData(rehearsal, backups);
    // Something else takes the API's port between the old API's removal and the new one's start.
    const squatter = net.createServer();
    const failed = await stepFailure(rehearsal.up(standinConfig("1.1.0", backups), {
      beforeStep: async (step) => {
        if (step.name === `${PREFIX}-api` && step.op === "replace") {
          await new Promise<void>((resolve, reject) => squatter.once("error", reject).listen(PORTS.api, "127.0.0.1", resolve));
        }
      },
    }));
    expect(failed.record.step.name).toBe(`${PREFIX}-api`);
    expect(failed.message).toMatch(/Unable to start container: .*address already in use/s);
    // Kept with initialisation errors, as the engine records a partial create; nothing after it ran.
    expect(rehearsal.state.get(`${PREFIX}-api`)!.initErrors?.[0]).toMatch(/Unable to start container/);
    expect((await stackContainers()).get(`${PREFIX}-api`)!.running).toBe(false);
    expect(rehearsal.records.some((r) => r.step.name === `${PREFIX}-migrate` && r.startedAt >= failed.record.endedAt)).toBe(false);
    const dumps = fs.readdirSync(backups).filter((f) => f.endsWith(".dump"));

    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    const records = await rehearsal.up(standinConfig("1.1.0", backups), { refresh: true });
    const done = records.map((r) => `${r.step.op} ${r.step.name}`);
    // The refresh read the stopped container (must_run false), so the update starts it.
    expect(done[0]).toBe(`update ${PREFIX}-api`);
    expect(records[0].output).toBe(`started ${PREFIX}-api`);
    expect(done).toContain(`replace ${PREFIX}-migrate`);
    expect(done).not.toContain(`replace ${PREFIX}-backup`);
    expect(fs.readdirSync(backups).filter((f) => f.endsWith(".dump"))).toEqual(dumps);
    expect(await health()).toBe(200);
    for (const [name, state] of await stackContainers()) expect(state.running, name).toBe(true);
    expect(await countReadings("pre-")).toBe(8);
  }, 8 * MINUTES);
});

