/**
 * The upgrade under realistic load (issue 8, "Load"): UDP pushes at the steady rate of 10,000
 * meters every 15 minutes from before the 1.0.0 -> 1.1.0 upgrade until after it, and a burst of
 * 500 messages per second for one minute, started 2 s before the upgrade. RabbitMQ's queues are
 * sampled every second. Every message must reach the database exactly once; the figures (rates
 * held, peak depth per queue, time to drain after the upgrade) go to test/.work/load.json.
 *
 * Its own prefix and ports: other real tests (prefix `rh`) and the downtime benchmark may run on
 * the same engine at the same time.
 */
import * as dgram from "dgram";
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sleep } from "../support/exec";
import type { StepRecord } from "../support/rehearsal";
import { parseSamplerOutput, peakDepths, queueDepths, sampleQueues, startLoad, udpCounters, udpServerBacklog, type LoadRecord, type QueueSample } from "../support/load";
import { newRehearsal, PORTS, prepareStack, removeStack, sql, standinConfig, tempDir } from "../support/standin-stack";

const MINUTES = 60_000;
const PREFIX = "ld";
const RABBITMQ = `${PREFIX}-rabbitmq`;
const UDP_SERVER = `${PREFIX}-udp-server`;
/** The queues meter data passes through: UDP server -> processor, processor -> poster. */
const DLMS_QUEUE = "utilitarian.dlms_push_messages";
const READINGS_QUEUE = "utilitarian.new_meter_readings";
const STEADY = { meterPrefix: "LD-S-", ratePerSecond: 10_000 / (15 * 60) };
const BURST = { meterPrefix: "LD-B-", ratePerSecond: 500, seconds: 60 };
/** The achieved rate may differ from the target by this share (the generator catches up after stalls). */
const RATE_TOLERANCE = 0.05;
const DRAIN_TIMEOUT = 45 * MINUTES;

const backups = tempDir("load-backups");
const rehearsal = newRehearsal();
const config = (version: string) => standinConfig(version, backups, { prefix: PREFIX });
const testStartedAt = Date.now();

interface Outcome {
  steady: LoadRecord;
  burst: LoadRecord;
  upgrade: { startedAt: number; endedAt: number; records: StepRecord[] };
  /** Rows stored when the burst's last message left: what the drain started from. */
  storedAtBurstEnd: { at: number; count: number };
  samples: QueueSample[];
  /** When both edge queues were empty and the database held every message sent (or, if it never did, when the count stopped moving). */
  drainedAt: number;
  drainComplete: boolean;
  rows: Map<string, number>;
  udpBacklog: Awaited<ReturnType<typeof udpServerBacklog>>;
  udpSocket: Awaited<ReturnType<typeof udpCounters>>;
}
let outcome: Outcome | undefined;

/** Stored rows per meter id of the load's meters (ids are sent upper-case: 1.1.0 upper-cases them anyway). */
async function rowsPerMeter(): Promise<Map<string, number>> {
  const out = await sql("select upper(meter), count(*) from readings_meterreading where upper(meter) like 'LD-%' group by 1");
  return new Map(out.split("\n").filter(Boolean).map((line) => {
    const [meter, count] = line.split("|");
    return [meter, Number(count)];
  }));
}

async function storedCount(): Promise<number> {
  return Number(await sql("select count(*) from readings_meterreading where upper(meter) like 'LD-%'"));
}

/** Nothing stored and both edge queues empty for this long: whatever is missing will not come. */
const SETTLED_MS = 30_000;

/**
 * Waits for the drain: both edge queues empty (in a sample taken after the database count) and
 * `expected` rows stored. Gives up early when the queues are empty and the count has not moved
 * for SETTLED_MS (messages were lost: nothing is left to deliver them), so a loss fails the test
 * in seconds, with its figures, rather than at the timeout.
 */
async function waitForDrain(sampler: ReturnType<typeof sampleQueues>, expected: number): Promise<{ at: number; complete: boolean }> {
  const deadline = Date.now() + DRAIN_TIMEOUT;
  let progressAt = Date.now();
  let last = -1;
  let changedAt = Date.now();
  const emptySince = (since: number) => {
    const sample = sampler.latest();
    const depth = (q: string) => sample?.queues[q]?.messages ?? 0;
    return sample !== undefined && sample.at >= since && depth(DLMS_QUEUE) === 0 && depth(READINGS_QUEUE) === 0 ? sample.at : undefined;
  };
  while (Date.now() < deadline) {
    const checkedAt = Date.now();
    const stored = await storedCount();
    if (stored !== last) {
      last = stored;
      changedAt = checkedAt;
    }
    if (checkedAt - progressAt >= MINUTES) {
      progressAt = checkedAt;
      console.log(`load: draining, ${stored} of ${expected} stored; queues ${JSON.stringify(sampler.latest()?.queues)}`);
    }
    if (stored >= expected) {
      // The rows are there; the queues must be empty too, in a sample taken after the count.
      await sleep(1500);
      const empty = emptySince(checkedAt);
      if (empty !== undefined) return { at: empty, complete: true };
      continue;
    }
    if (checkedAt - changedAt >= SETTLED_MS && emptySince(changedAt) !== undefined) return { at: changedAt, complete: false };
    await sleep(1000);
  }
  return { at: Date.now(), complete: false };
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** How long the processor and the poster were down: stopped at the backup step's start, back when their replacements were created. */
function meterPathDown(records: StepRecord[]): Record<string, number> {
  const backup = records.find((r) => r.step.name === `${PREFIX}-backup`);
  const down: Record<string, number> = {};
  for (const service of ["processor", "poster"]) {
    const back = records.find((r) => r.step.name === `${PREFIX}-${service}` && r.step.op === "replace");
    if (backup && back) down[service] = seconds(back.endedAt - backup.startedAt);
  }
  return down;
}

function rateSummary(r: LoadRecord) {
  return {
    target: Math.round(r.targetRate * 100) / 100, achieved: Math.round(r.achievedRate * 100) / 100, sent: r.sent,
    seconds: seconds(r.endedAt - r.startedAt), perSecondMin: Math.min(...r.perSecond), perSecondMax: Math.max(...r.perSecond),
    maxLagMs: r.maxLagMs, sendErrors: r.sendErrors,
  };
}

function report(o: Outcome) {
  const missing = { steady: 0, burst: 0 };
  const duplicated = { steady: 0, burst: 0 };
  // Runs of consecutive missing ids ("first-last"): one run is one stall somewhere on the path.
  const missingRuns: string[] = [];
  for (const [key, load] of [["steady", o.steady], ["burst", o.burst]] as const) {
    let runStart = -1;
    for (let n = 0; n <= load.sent; n++) {
      const count = n < load.sent ? o.rows.get(`${load.meterPrefix}${n}`) ?? 0 : 1;
      if (count === 0) missing[key]++;
      if (count > 1) duplicated[key]++;
      if (count === 0 && runStart < 0) runStart = n;
      if (count !== 0 && runStart >= 0) {
        missingRuns.push(`${load.meterPrefix}${runStart}-${n - 1}`);
        runStart = -1;
      }
    }
  }
  const stray = [...o.rows.keys()].filter((m) => {
    const load = m.startsWith(STEADY.meterPrefix) ? o.steady : o.burst;
    const n = Number(m.slice(load.meterPrefix.length));
    return !(Number.isInteger(n) && n >= 0 && n < load.sent);
  }).length;
  const lastSend = Math.max(o.steady.endedAt, o.burst.endedAt);
  const stored = [...o.rows.values()].reduce((a, b) => a + b, 0);
  const peaks = Object.fromEntries(Object.entries(peakDepths(o.samples)).map(([q, p]) => [q, { messages: p.messages, secondsAfterUpgradeStart: seconds(p.at - o.upgrade.startedAt) }]));
  const intervals = o.samples.slice(1).map((s, i) => s.at - o.samples[i].at);
  return {
    rates: { steady: rateSummary(o.steady), burst: rateSummary(o.burst) },
    upgrade: { seconds: seconds(o.upgrade.endedAt - o.upgrade.startedAt), meterPathDownSeconds: meterPathDown(o.upgrade.records), burstStartedSecondsBefore: seconds(o.upgrade.startedAt - o.burst.startedAt), steadyStartedSecondsBefore: seconds(o.upgrade.startedAt - o.steady.startedAt) },
    peakDepth: peaks,
    // Received by the UDP server but not yet in RabbitMQ: its publisher waits for each confirm.
    udpServerBuffer: {
      peak: o.udpBacklog.peak, secondsAfterUpgradeStart: seconds(o.udpBacklog.peakAt - o.upgrade.startedAt),
      emptiedSecondsAfterUpgradeStart: o.udpBacklog.emptiedAt === undefined ? null : seconds(o.udpBacklog.emptiedAt - o.upgrade.startedAt),
    },
    drain: {
      complete: o.drainComplete, secondsAfterUpgradeEnded: seconds(o.drainedAt - o.upgrade.endedAt), secondsAfterLastSend: seconds(o.drainedAt - lastSend),
      // The pipeline's pace once the burst was over: the poster's one POST per reading sets it.
      storedPerSecondAfterBurst: Math.round(((stored - o.storedAtBurstEnd.count) * 1000) / (o.drainedAt - o.storedAtBurstEnd.at)),
    },
    // The kernel's UDP counters in the UDP server's network namespace: datagrams its socket took
    // in, and those dropped because its receive buffer was full (the server did not read in time).
    udpServerSocket: { datagramsIn: o.udpSocket.InDatagrams, receiveBufferDrops: o.udpSocket.RcvbufErrors },
    loss: { sent: o.steady.sent + o.burst.sent, stored, missing, duplicated, stray, missingRuns: missingRuns.slice(0, 20) },
    sampling: { samples: o.samples.length, meanIntervalMs: Math.round(intervals.reduce((a, b) => a + b, 0) / Math.max(1, intervals.length)), maxIntervalMs: Math.max(0, ...intervals) },
    // Per-second depth of the two edge queues, seconds from the upgrade's start.
    depthSeries: o.samples.map((s) => [seconds(s.at - o.upgrade.startedAt), s.queues[DLMS_QUEUE]?.messages ?? 0, s.queues[READINGS_QUEUE]?.messages ?? 0]),
    testSeconds: seconds(Date.now() - testStartedAt),
  };
}

beforeAll(async () => {
  await prepareStack(PREFIX);
}, 2 * MINUTES);

afterAll(async () => {
  if (outcome) {
    const summary = report(outcome);
    fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
    fs.writeFileSync(path.resolve(__dirname, "../.work/load.json"), JSON.stringify(summary, null, 2));
    console.log(JSON.stringify({ ...summary, depthSeries: `${summary.depthSeries.length} samples in test/.work/load.json` }, null, 2));
  }
  await removeStack(PREFIX);
}, 2 * MINUTES);

describe("the load generator and the sampler's parser, on their own", () => {
  test("sends at the target rate to loopback, each meter id once, and stops by itself", async () => {
    const receiver = dgram.createSocket("udp4");
    const meters: string[] = [];
    receiver.on("message", (m) => meters.push(JSON.parse(m.toString()).meter));
    await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", resolve));
    const record = await startLoad({ meterPrefix: "T-", ratePerSecond: 500, maxSeconds: 2, port: receiver.address().port }).done;
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
    expect(() => startLoad({ meterPrefix: "T-", ratePerSecond: 1, maxSeconds: 1, port: 9, host: "192.0.2.1" })).toThrow(/not loopback/);
  });

  test("reads the sampler's lines into samples, leaving out a queue whose figures are not numbers", () => {
    const samples = parseSamplerOutput(["3 1 2 utilitarian.dlms_push_messages", "'' '' '' a queue being recovered", "-- 1700000000000", "0 0 0 q", "-- 1700000001000", "ok"]);
    expect(samples).toEqual([
      { at: 1700000000000, queues: { "utilitarian.dlms_push_messages": { messages: 3, ready: 1, unacked: 2 } } },
      { at: 1700000001000, queues: { q: { messages: 0, ready: 0, unacked: 0 } } },
    ]);
  });
});

describe("1.0.0 -> 1.1.0 under the steady rate and a 500/s burst", () => {
  test("fresh install of 1.0.0 on its own prefix; the queues can be sampled", async () => {
    await rehearsal.up(config("1.0.0"));
    const queues = await queueDepths(RABBITMQ);
    expect(Object.keys(queues)).toEqual(expect.arrayContaining([DLMS_QUEUE, READINGS_QUEUE]));
  }, 5 * MINUTES);

  test("every message sent during the upgrade is stored exactly once; the queues drain", async () => {
    const sampler = sampleQueues(RABBITMQ, 1000, Math.ceil((DRAIN_TIMEOUT + 10 * MINUTES) / 1000));
    const steady = startLoad({ ...STEADY, maxSeconds: 20 * 60, port: PORTS.udp });
    try {
      await sleep(10_000);
      const burst = startLoad({ ...BURST, maxSeconds: BURST.seconds, port: PORTS.udp });
      await sleep(2_000);
      const startedAt = Date.now();
      const records = await rehearsal.up(config("1.1.0"));
      const upgrade = { startedAt, endedAt: Date.now(), records };
      const burstRecord = await burst.done;
      const storedAtBurstEnd = { at: Date.now(), count: await storedCount() };
      // The steady rate goes on for 10 s past both the upgrade and the burst.
      await sleep(Math.max(0, Math.max(upgrade.endedAt, burstRecord.endedAt) + 10_000 - Date.now()));
      const steadyRecord = await steady.stop();
      const drain = await waitForDrain(sampler, steadyRecord.sent + burstRecord.sent);
      await sleep(3_000); // a late duplicate would land now
      const { samples, exitCode, stderr } = await sampler.stop();
      expect(exitCode, `the queue sampler failed: ${stderr}`).toBe(0);
      outcome = { steady: steadyRecord, burst: burstRecord, upgrade, storedAtBurstEnd, samples, drainedAt: drain.at, drainComplete: drain.complete,
        rows: await rowsPerMeter(), udpBacklog: await udpServerBacklog(UDP_SERVER), udpSocket: await udpCounters(UDP_SERVER) };
    } finally {
      await steady.stop();
      await sampler.stop();
    }

    const r = report(outcome);
    // Loss 0, duplicates 0: every meter id sent is stored exactly once, and nothing else.
    expect(r.loss.missing, `lost messages; the UDP server's socket dropped ${r.udpServerSocket.receiveBufferDrops} datagrams on a full receive buffer`).toEqual({ steady: 0, burst: 0 });
    expect(r.loss.duplicated).toEqual({ steady: 0, burst: 0 });
    expect(r.loss.stray).toBe(0);
    expect(r.loss.stored).toBe(r.loss.sent);
    expect(outcome.drainComplete).toBe(true);
    // The rates held.
    expect(outcome.burst.sent).toBe(BURST.ratePerSecond * BURST.seconds);
    expect(Math.abs(outcome.burst.achievedRate / BURST.ratePerSecond - 1)).toBeLessThan(RATE_TOLERANCE);
    expect(Math.abs(outcome.steady.achievedRate / STEADY.ratePerSecond - 1)).toBeLessThan(RATE_TOLERANCE);
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
  }, 60 * MINUTES);
});
