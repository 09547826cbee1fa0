/**
 * The 1.0.0 -> 1.1.0 upgrade under load, as one scenario that the load test
 * (test/engine/load.test.ts, a short burst) and the load benchmark (bench/load/run.ts, 500 msg/s
 * for a minute) both run under the real engine (`pulumi up` of a RealStack): UDP pushes at a
 * steady rate from before the upgrade until after it, and a burst started 2 s before it;
 * RabbitMQ's queues sampled every second; then the wait for the drain, and every meter id counted
 * in the database (lost, duplicated, stray).
 */
import type { EngineStep, RealStack } from "./real-stack";
import { sleep } from "./exec";
import {
  peakDepths,
  sampleQueues,
  startLoad,
  udpCounters,
  udpServerBacklog,
  type LoadRecord,
  type QueueSample,
} from "./load";
import { PORTS, sql } from "./standin-stack";

const MINUTES = 60_000;
/** The queues meter data passes through: UDP server -> processor, processor -> poster. */
export const DLMS_QUEUE = "utilitarian.dlms_push_messages";
export const READINGS_QUEUE = "utilitarian.new_meter_readings";

export interface UpgradeLoadPlan {
  /** The stack's prefix: containers `${prefix}-rabbitmq`, `${prefix}-udp-server`, steps `${prefix}-backup`... */
  prefix: string;
  /** Meter ids `${meterPrefix}${n}`, upper-case (1.1.0 upper-cases them anyway); the two prefixes must differ. */
  steady: { meterPrefix: string; ratePerSecond: number };
  burst: { meterPrefix: string; ratePerSecond: number; seconds: number };
  /** Give up waiting for the drain after this long (the test then fails with the figures). */
  drainTimeoutMs: number;
  /** The stack, installed at 1.0.0 before the scenario runs. */
  stack: RealStack;
  /** Stack config for a version. */
  config: (version: string) => Record<string, unknown>;
}

export interface UpgradeLoadOutcome {
  steady: LoadRecord;
  burst: LoadRecord;
  upgrade: { startedAt: number; endedAt: number; steps: EngineStep[] };
  /** Rows stored when the burst's last message left: what the drain started from. */
  storedAtBurstEnd: { at: number; count: number };
  samples: QueueSample[];
  /** When both edge queues were empty and the database held every message sent (or, if it never did, when the count stopped moving). */
  drainedAt: number;
  drainComplete: boolean;
  rows: Map<string, number>;
  udpBacklog: Awaited<ReturnType<typeof udpServerBacklog>>;
  udpSocket: Awaited<ReturnType<typeof udpCounters>>;
  sampler: { exitCode: number; stderr: string };
  startedAt: number;
}

const meterFilter = (plan: UpgradeLoadPlan) =>
  `(upper(meter) like '${plan.steady.meterPrefix.toUpperCase()}%' or upper(meter) like '${plan.burst.meterPrefix.toUpperCase()}%')`;

/** Stored rows per meter id of the load's meters. */
async function rowsPerMeter(plan: UpgradeLoadPlan): Promise<Map<string, number>> {
  const out = await sql(
    `select upper(meter), count(*) from readings_meterreading where ${meterFilter(plan)} group by 1`,
  );
  return new Map(
    out
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [meter, count] = line.split("|");
        return [meter, Number(count)];
      }),
  );
}

async function storedCount(plan: UpgradeLoadPlan): Promise<number> {
  return Number(await sql(`select count(*) from readings_meterreading where ${meterFilter(plan)}`));
}

/** Nothing stored and both edge queues empty for this long: whatever is missing will not come. */
const SETTLED_MS = 30_000;

/**
 * Waits for the drain: both edge queues empty (in a sample taken after the database count) and
 * `expected` rows stored. Gives up early when the queues are empty and the count has not moved
 * for SETTLED_MS (messages were lost: nothing is left to deliver them), so a loss fails the test
 * in seconds, with its figures, rather than at the timeout.
 */
async function waitForDrain(
  plan: UpgradeLoadPlan,
  sampler: ReturnType<typeof sampleQueues>,
  expected: number,
): Promise<{ at: number; complete: boolean }> {
  const deadline = Date.now() + plan.drainTimeoutMs;
  let progressAt = Date.now();
  let last = -1;
  let changedAt = Date.now();
  const emptySince = (since: number) => {
    const sample = sampler.latest();
    const depth = (q: string) => sample?.queues[q]?.messages ?? 0;
    return sample !== undefined && sample.at >= since && depth(DLMS_QUEUE) === 0 && depth(READINGS_QUEUE) === 0
      ? sample.at
      : undefined;
  };
  while (Date.now() < deadline) {
    const checkedAt = Date.now();
    const stored = await storedCount(plan);
    if (stored !== last) {
      last = stored;
      changedAt = checkedAt;
    }
    if (checkedAt - progressAt >= MINUTES) {
      progressAt = checkedAt;
      console.log(
        `load: draining, ${stored} of ${expected} stored; queues ${JSON.stringify(sampler.latest()?.queues)}`,
      );
    }
    if (stored >= expected) {
      // The rows are there; the queues must be empty too, in a sample taken after the count.
      await sleep(1500);
      const empty = emptySince(checkedAt);
      if (empty !== undefined) return { at: empty, complete: true };
      continue;
    }
    if (checkedAt - changedAt >= SETTLED_MS && emptySince(changedAt) !== undefined)
      return { at: changedAt, complete: false };
    await sleep(1000);
  }
  return { at: Date.now(), complete: false };
}

/**
 * Runs the scenario on a stack already at 1.0.0 (installed with `plan.config("1.0.0")`): the
 * steady stream starts, 10 s later the burst, 2 s later the upgrade to 1.1.0; the steady stream
 * goes on for 10 s past both the upgrade and the burst; then the drain, and the count.
 */
export async function upgradeUnderLoad(plan: UpgradeLoadPlan): Promise<UpgradeLoadOutcome> {
  const startedAt = Date.now();
  const rabbitmq = `${plan.prefix}-rabbitmq`;
  const maxSeconds = plan.burst.seconds + 20 * 60;
  const sampler = sampleQueues(rabbitmq, 1000, Math.ceil((plan.drainTimeoutMs + maxSeconds * 1000) / 1000));
  const steady = startLoad({ ...plan.steady, maxSeconds, port: PORTS.udp });
  try {
    await sleep(10_000);
    const burst = startLoad({ ...plan.burst, maxSeconds: plan.burst.seconds, port: PORTS.udp });
    await sleep(2_000);
    const upgradeStartedAt = Date.now();
    plan.stack.configure(plan.config("1.1.0"));
    const run = await plan.stack.up();
    if (run.code !== 0) throw new Error(`the upgrade under load failed:\n${run.stdout}\n${run.stderr}`);
    const upgrade = { startedAt: upgradeStartedAt, endedAt: Date.now(), steps: run.steps };
    const burstRecord = await burst.done;
    const storedAtBurstEnd = { at: Date.now(), count: await storedCount(plan) };
    await sleep(Math.max(0, Math.max(upgrade.endedAt, burstRecord.endedAt) + 10_000 - Date.now()));
    const steadyRecord = await steady.stop();
    const drain = await waitForDrain(plan, sampler, steadyRecord.sent + burstRecord.sent);
    await sleep(3_000); // a late duplicate would land now
    const { samples, exitCode, stderr } = await sampler.stop();
    return {
      steady: steadyRecord,
      burst: burstRecord,
      upgrade,
      storedAtBurstEnd,
      samples,
      drainedAt: drain.at,
      drainComplete: drain.complete,
      rows: await rowsPerMeter(plan),
      udpBacklog: await udpServerBacklog(`${plan.prefix}-udp-server`),
      udpSocket: await udpCounters(`${plan.prefix}-udp-server`),
      sampler: { exitCode, stderr },
      startedAt,
    };
  } finally {
    await steady.stop();
    await sampler.stop();
  }
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** How long the processor and the poster were down: stopped at the backup step's start, back when their replacements were created. */
function meterPathDown(prefix: string, steps: EngineStep[]): Record<string, number> {
  const backup = steps.find((s) => s.name === `${prefix}-backup` && s.op !== "same");
  const down: Record<string, number> = {};
  for (const service of ["processor", "poster"]) {
    const back = steps.find((s) => s.name === `${prefix}-${service}` && s.op === "create-replacement");
    if (backup && back) down[service] = seconds(back.endedAt - backup.startedAt);
  }
  return down;
}

function rateSummary(r: LoadRecord) {
  return {
    target: Math.round(r.targetRate * 100) / 100,
    achieved: Math.round(r.achievedRate * 100) / 100,
    sent: r.sent,
    seconds: seconds(r.endedAt - r.startedAt),
    perSecondMin: Math.min(...r.perSecond),
    perSecondMax: Math.max(...r.perSecond),
    maxLagMs: r.maxLagMs,
    sendErrors: r.sendErrors,
  };
}

/** The figures of a run (written to test/.work/load.json by the test, to the benchmark's JSON by the benchmark). */
export function loadReport(plan: UpgradeLoadPlan, o: UpgradeLoadOutcome) {
  const missing = { steady: 0, burst: 0 };
  const duplicated = { steady: 0, burst: 0 };
  // Runs of consecutive missing ids ("first-last"): one run is one stall somewhere on the path.
  const missingRuns: string[] = [];
  for (const [key, load] of [
    ["steady", o.steady],
    ["burst", o.burst],
  ] as const) {
    let runStart = -1;
    for (let n = 0; n <= load.sent; n++) {
      const count = n < load.sent ? (o.rows.get(`${load.meterPrefix.toUpperCase()}${n}`) ?? 0) : 1;
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
    const load = m.startsWith(o.steady.meterPrefix.toUpperCase()) ? o.steady : o.burst;
    const n = Number(m.slice(load.meterPrefix.length));
    return !(Number.isInteger(n) && n >= 0 && n < load.sent);
  }).length;
  const lastSend = Math.max(o.steady.endedAt, o.burst.endedAt);
  const stored = [...o.rows.values()].reduce((a, b) => a + b, 0);
  const peaks = Object.fromEntries(
    Object.entries(peakDepths(o.samples)).map(([q, p]) => [
      q,
      { messages: p.messages, secondsAfterUpgradeStart: seconds(p.at - o.upgrade.startedAt) },
    ]),
  );
  const intervals = o.samples.slice(1).map((s, i) => s.at - o.samples[i].at);
  return {
    rates: { steady: rateSummary(o.steady), burst: rateSummary(o.burst) },
    upgrade: {
      seconds: seconds(o.upgrade.endedAt - o.upgrade.startedAt),
      meterPathDownSeconds: meterPathDown(plan.prefix, o.upgrade.steps),
      burstStartedSecondsBefore: seconds(o.upgrade.startedAt - o.burst.startedAt),
      steadyStartedSecondsBefore: seconds(o.upgrade.startedAt - o.steady.startedAt),
    },
    peakDepth: peaks,
    // Received by the UDP server but not yet in RabbitMQ: its publisher waits for each confirm.
    udpServerBuffer: {
      peak: o.udpBacklog.peak,
      secondsAfterUpgradeStart: seconds(o.udpBacklog.peakAt - o.upgrade.startedAt),
      emptiedSecondsAfterUpgradeStart:
        o.udpBacklog.emptiedAt === undefined ? null : seconds(o.udpBacklog.emptiedAt - o.upgrade.startedAt),
    },
    drain: {
      complete: o.drainComplete,
      secondsAfterUpgradeEnded: seconds(o.drainedAt - o.upgrade.endedAt),
      secondsAfterLastSend: seconds(o.drainedAt - lastSend),
      // The pipeline's pace from the burst's end to the drain (the steady stream still adds to it for a while).
      storedPerSecondAfterBurst: Math.round(
        ((stored - o.storedAtBurstEnd.count) * 1000) / Math.max(1, o.drainedAt - o.storedAtBurstEnd.at),
      ),
    },
    // The kernel's UDP counters in the UDP server's network namespace: datagrams its socket took
    // in, and those dropped because its receive buffer was full (the server did not read in time).
    udpServerSocket: { datagramsIn: o.udpSocket.InDatagrams, receiveBufferDrops: o.udpSocket.RcvbufErrors },
    loss: {
      sent: o.steady.sent + o.burst.sent,
      stored,
      missing,
      duplicated,
      stray,
      missingRuns: missingRuns.slice(0, 20),
    },
    sampling: {
      samples: o.samples.length,
      meanIntervalMs: Math.round(intervals.reduce((a, b) => a + b, 0) / Math.max(1, intervals.length)),
      maxIntervalMs: Math.max(0, ...intervals),
    },
    // Per-second depth of the two edge queues, seconds from the upgrade's start.
    depthSeries: o.samples.map((s) => [
      seconds(s.at - o.upgrade.startedAt),
      s.queues[DLMS_QUEUE]?.messages ?? 0,
      s.queues[READINGS_QUEUE]?.messages ?? 0,
    ]),
    scenarioSeconds: seconds(o.drainedAt - o.startedAt),
  };
}

export type LoadReport = ReturnType<typeof loadReport>;
