/**
 * The upgrade under load under the real engine (issue 8, "Load"; issue 15 made it short and moved
 * it onto `pulumi up`): UDP pushes at the steady rate
 * of 10,000 meters every 15 minutes from before the 1.0.0 -> 1.1.0 upgrade until after it, and a
 * burst of 500 messages per second for 20 s, started 2 s before the upgrade (so it still runs when
 * the processor and the poster stop for the backup). RabbitMQ's queues
 * are sampled every second. Every message must reach the database exactly once; the figures (rates
 * held, peak depth per queue, time to drain after the upgrade) go to test/.work/load.json. The
 * scenario is test/support/load-upgrade.ts; `npm run bench:load` (bench/load/) runs it with the
 * burst of a full minute.
 *
 * Its own prefix and ports: other real tests and the downtime benchmark may run on the same Docker
 * engine at the same time.
 */
import * as dgram from "dgram";
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sleep } from "../support/exec";
import { parseSamplerOutput, queueDepths, startLoad } from "../support/load";
import {
  DLMS_QUEUE,
  READINGS_QUEUE,
  loadReport,
  upgradeUnderLoad,
  type UpgradeLoadOutcome,
  type UpgradeLoadPlan,
} from "../support/load-upgrade";
import { RealStack } from "../support/real-stack";
import { prepareStack, removeStack, SECRETS, standinConfig, tempDir } from "../support/standin-stack";

const MINUTES = 60_000;
const PREFIX = "ld";
const RABBITMQ = `${PREFIX}-rabbitmq`;
/** The achieved rate may differ from the target by this share (the generator catches up after stalls). */
const RATE_TOLERANCE = 0.05;

const backups = tempDir("load-backups");
const plan: UpgradeLoadPlan = {
  prefix: PREFIX,
  steady: { meterPrefix: "LD-S-", ratePerSecond: 10_000 / (15 * 60) },
  // 10,000 messages at the benchmark's 500/s (the rate that once overflowed the UDP server's socket
  // buffer): long enough to run into the meter path's stop for the backup, short enough to drain
  // within a minute of the upgrade's end.
  burst: { meterPrefix: "LD-B-", ratePerSecond: 500, seconds: 20 },
  drainTimeoutMs: 15 * MINUTES,
  stack: new RealStack("load", SECRETS),
  config: (version: string) => standinConfig(version, backups, { prefix: PREFIX }),
};
const testStartedAt = Date.now();
let outcome: UpgradeLoadOutcome | undefined;

beforeAll(async () => {
  await prepareStack(PREFIX);
  await plan.stack.init();
}, 2 * MINUTES);

afterAll(async () => {
  if (outcome) {
    const summary = { ...loadReport(plan, outcome), testSeconds: Math.round((Date.now() - testStartedAt) / 100) / 10 };
    fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
    fs.writeFileSync(path.resolve(__dirname, "../.work/load.json"), JSON.stringify(summary, null, 2));
    console.log(
      JSON.stringify(
        { ...summary, depthSeries: `${summary.depthSeries.length} samples in test/.work/load.json` },
        null,
        2,
      ),
    );
  }
  await removeStack(PREFIX);
  plan.stack.remove();
}, 2 * MINUTES);

describe("the load generator and the sampler's parser, on their own", () => {
  test("sends at the target rate to loopback, each meter id once, and stops by itself", async () => {
    const receiver = dgram.createSocket("udp4");
    const meters: string[] = [];
    receiver.on("message", (m) => meters.push(JSON.parse(m.toString()).meter));
    await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", resolve));
    const record = await startLoad({
      meterPrefix: "T-",
      ratePerSecond: 500,
      maxSeconds: 2,
      port: receiver.address().port,
    }).done;
    await sleep(200);
    receiver.close();
    expect(record.sent).toBe(1000);
    expect(Math.abs(record.achievedRate / 500 - 1)).toBeLessThan(RATE_TOLERANCE);
    // Stopped by itself at its count: the last message was due at 1.998 s.
    expect(record.endedAt - record.startedAt).toBeGreaterThanOrEqual(1998);
    expect(new Set(meters).size).toBe(meters.length);
    expect(meters.length).toBe(1000);
  });

  test("refuses a host that is not loopback", () => {
    expect(() => startLoad({ meterPrefix: "T-", ratePerSecond: 1, maxSeconds: 1, port: 9, host: "192.0.2.1" })).toThrow(
      /not loopback/,
    );
  });

  test("reads the sampler's lines into samples, leaving out a queue whose figures are not numbers", () => {
    const samples = parseSamplerOutput([
      "3 1 2 utilitarian.dlms_push_messages",
      "'' '' '' a queue being recovered",
      "-- 1700000000000",
      "0 0 0 q",
      "-- 1700000001000",
      "ok",
    ]);
    expect(samples).toEqual([
      { at: 1700000000000, queues: { "utilitarian.dlms_push_messages": { messages: 3, ready: 1, unacked: 2 } } },
      { at: 1700000001000, queues: { q: { messages: 0, ready: 0, unacked: 0 } } },
    ]);
  });
});

describe("1.0.0 -> 1.1.0 under the steady rate and a 500/s burst of 20 s", () => {
  test(
    "fresh install of 1.0.0 by `pulumi up` on its own prefix; the queues can be sampled",
    async () => {
      plan.stack.configure(plan.config("1.0.0"));
      const install = await plan.stack.up();
      expect(install.code, install.stdout + install.stderr).toBe(0);
      const queues = await queueDepths(RABBITMQ);
      expect(Object.keys(queues)).toEqual(expect.arrayContaining([DLMS_QUEUE, READINGS_QUEUE]));
    },
    5 * MINUTES,
  );

  test(
    "every message sent during the upgrade is stored exactly once; the queues drain",
    async () => {
      outcome = await upgradeUnderLoad(plan);
      expect(outcome.sampler.exitCode, `the queue sampler failed: ${outcome.sampler.stderr}`).toBe(0);

      const r = loadReport(plan, outcome);
      // Loss 0, duplicates 0: every meter id sent is stored exactly once, and nothing else.
      expect(
        r.loss.missing,
        `lost messages; the UDP server's socket dropped ${r.udpServerSocket.receiveBufferDrops} datagrams on a full receive buffer`,
      ).toEqual({ steady: 0, burst: 0 });
      expect(r.loss.duplicated).toEqual({ steady: 0, burst: 0 });
      expect(r.loss.stray).toBe(0);
      expect(r.loss.stored).toBe(r.loss.sent);
      expect(outcome.drainComplete).toBe(true);
      // The rates held.
      expect(outcome.burst.sent).toBe(plan.burst.ratePerSecond * plan.burst.seconds);
      expect(Math.abs(outcome.burst.achievedRate / plan.burst.ratePerSecond - 1)).toBeLessThan(RATE_TOLERANCE);
      expect(Math.abs(outcome.steady.achievedRate / plan.steady.ratePerSecond - 1)).toBeLessThan(RATE_TOLERANCE);
      expect(outcome.steady.sendErrors + outcome.burst.sendErrors).toBe(0);
      // Caught up within a second whenever the machine stalled the generator: no second went unsent.
      expect(outcome.burst.maxLagMs).toBeLessThan(1000);
      expect(outcome.steady.maxLagMs).toBeLessThan(1000);
      // The burst started before the upgrade and overlapped it; the steady stream ran from before it to after it.
      expect(outcome.burst.startedAt).toBeLessThan(outcome.upgrade.startedAt);
      expect(outcome.burst.endedAt).toBeGreaterThan(outcome.upgrade.startedAt);
      expect(outcome.steady.startedAt).toBeLessThan(outcome.upgrade.startedAt);
      expect(outcome.steady.endedAt).toBeGreaterThan(Math.max(outcome.upgrade.endedAt, outcome.burst.endedAt));
      // The sampler saw the burst queue up, about every second.
      expect(r.peakDepth[DLMS_QUEUE].messages).toBeGreaterThan(0);
      expect(r.sampling.samples).toBeGreaterThan((outcome.drainedAt - outcome.steady.startedAt) / 1000 / 2);
    },
    30 * MINUTES,
  );
});
