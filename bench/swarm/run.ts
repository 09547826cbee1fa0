/**
 * Swarm against one host (docs/benchmarks.md, "Swarm against one host"): the 1.0.0 -> 1.1.0
 * upgrade of the stand-in stack by the project's `pulumi up` under the real engine, side by side
 * in one process, on
 *
 * - `one-host`: the local Docker engine (test/support/standin-stack.ts), stack prefix `bench1`;
 * - `swarm`: the three-node swarm fixture (test/support/swarm.ts, fixture prefix `swbench`),
 *   placed and configured as test/engine/swarm does (test/support/swarm-stack.ts), stack prefix
 *   `swbench`.
 *
 * Both with the same settings where the swarm allows a choice: no maintenance proxy (the probe
 * asks the API's own port), `backup.stopWriters` off (the swarm refuses it), two worker replicas.
 * The swarm is started once; every round installs 1.0.0 on a fresh stack of each target (the
 * order alternating from round to round), posts 50 readings, then upgrades to 1.1.0 while a probe
 * asks `/_health/` every 100 ms; then the stack is removed. Per upgrade: the API's longest gap and
 * its unhealthy time in all, the `pulumi up`'s wall time, the first step's start to the last
 * one's end, and the first follower stop to verify's end (summary.ts). Ratios swarm / one host
 * are taken within a round, medians over the rounds.
 *
 *   SWARM_BENCH_ROUNDS=3 npm run bench:swarm      # figures in test/.work/swarm-bench.json
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { longestOutage, outages, unhealthyMs, type Span } from "../downtime/metrics";
import { probe } from "../downtime/probe";
import { sleep } from "../../test/support/exec";
import { PROJECT_DIR } from "../../test/support/real-engine";
import { RealStack } from "../../test/support/real-stack";
import {
  PORTS,
  postReading,
  prepareStack,
  removeStack,
  SECRETS,
  standinConfig,
  tempDir,
} from "../../test/support/standin-stack";
import { startSwarm, type Swarm } from "../../test/support/swarm";
import {
  placeStack,
  removeSwarmStack,
  SWARM_IMAGES,
  swarmConfig,
  type SwarmPlacement,
} from "../../test/support/swarm-stack";
import { followerStopToVerify, stepsWindow, summarise, table, TARGETS, type Measured, type Target } from "./summary";

const ROUNDS = Number(process.env.SWARM_BENCH_ROUNDS ?? "2");
if (!Number.isInteger(ROUNDS) || ROUNDS < 1)
  throw new Error(`SWARM_BENCH_ROUNDS must be a whole number >= 1; got '${process.env.SWARM_BENCH_ROUNDS}'`);
const JSON_OUT = process.env.SWARM_BENCH_JSON ?? path.join(PROJECT_DIR, "test/.work/swarm-bench.json");
/** The swarm fixture's prefix and the swarm stack's; the one-host stack's. */
const SWARM_PREFIX = "swbench";
const ONE_HOST_PREFIX = "bench1";
const FROM = "1.0.0";
const TO = "1.1.0";
const MINUTE = 60_000;

let swarm: Swarm;
let placement: SwarmPlacement;

interface Run extends Measured {
  outages: number;
  loadAverage: number[];
  /** Steps and the probe's outages, in seconds since the upgrade's `pulumi up` started. */
  timeline: string[];
}

const TARGET = {
  "one-host": {
    prefix: ONE_HOST_PREFIX,
    apiUrl: () => `http://127.0.0.1:${PORTS.api}`,
    config: (version: string, backups: string) =>
      standinConfig(version, backups, {
        prefix: ONE_HOST_PREFIX,
        proxy: { enabled: false },
        backup: { dir: backups, keep: 5, stopWriters: false },
        workers: [{ name: "default", queues: [], concurrency: 1, count: 2 }],
      }),
    remove: () => removeStack(ONE_HOST_PREFIX),
  },
  swarm: {
    prefix: SWARM_PREFIX,
    apiUrl: () => `http://${placement.app.address}:${placement.ports.api}`,
    config: (version: string, backups: string) =>
      swarmConfig(placement, version, backups, { prefix: SWARM_PREFIX, startTimeoutSeconds: 300 }),
    remove: () => removeSwarmStack(swarm, SWARM_PREFIX),
  },
} satisfies Record<Target, unknown>;

async function upOrThrow(stack: RealStack, what: string) {
  const run = await stack.up();
  if (run.code !== 0) throw new Error(`${what} failed:\n${run.stdout}\n${run.stderr}`);
  return run;
}

async function runOnce(target: Target, round: number): Promise<Run> {
  const t = TARGET[target];
  const workDir = tempDir(`swarm-bench-${target}`);
  const backups = path.join(workDir, "backups");
  fs.mkdirSync(backups);
  const stack = new RealStack(`swarm-bench-${target}-${round}`, SECRETS);
  try {
    await t.remove();
    await stack.init();
    stack.configure(t.config(FROM, backups));
    await upOrThrow(stack, `${target}: the install of ${FROM}`);
    for (let i = 0; i < 50; i++) {
      const status = await postReading(`bench-${i}`, i + 0.25, t.apiUrl());
      if (status !== 201) throw new Error(`${target}: posting a reading after the install: HTTP ${status}`);
    }
    // Let the just-started services finish booting: the upgrade starts on a settled stack.
    await sleep(5000);
    const loadAverage = os.loadavg();
    const health = probe(`${t.apiUrl()}/_health/`, 100);
    await sleep(1000);
    stack.configure(t.config(TO, backups));
    const run = await upOrThrow(stack, `${target}: the upgrade to ${TO}`);
    await sleep(1000);
    const samples = (await health.stop()).filter((s) => s.t >= run.startedAt);
    const gap = longestOutage(samples);
    if (!gap) throw new Error(`${target}: the probe never saw the API down: did the upgrade replace it?`);
    const steps: Span[] = run.steps
      .filter((s) => s.op !== "same" && !s.type.startsWith("pulumi:providers:") && Number.isFinite(s.endedAt))
      .map((s) => ({ name: `${s.op} ${s.name}`, start: s.startedAt, end: s.endedAt }))
      .sort((a, b) => a.start - b.start);
    const since = (ms: number) => ((ms - run.startedAt) / 1000).toFixed(2);
    return {
      target,
      round,
      apiDowntimeMs: gap.ms,
      unhealthyMs: unhealthyMs(samples),
      upWallMs: run.endedAt - run.startedAt,
      windowMs: stepsWindow(steps),
      followerStopToVerifyMs: followerStopToVerify(steps, t.prefix),
      outages: outages(samples).length,
      loadAverage: loadAverage.map((l) => Number(l.toFixed(2))),
      timeline: [
        ...steps.map((s) => `${since(s.start)}-${since(s.end)}s ${s.name}`),
        ...outages(samples).map((o) => `${since(o.start)}-${since(o.end)}s probe: API without a 200`),
      ].sort((a, b) => parseFloat(a) - parseFloat(b)),
    };
  } finally {
    await t.remove().catch((e) => console.log(`removing the ${target} stack: ${e}`));
    stack.remove();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  await prepareStack(ONE_HOST_PREFIX);
  swarm = await startSwarm({ prefix: SWARM_PREFIX });
  placement = await placeStack(swarm);
  // Every node holds every image before the first round, as the one host does: no round pays a pull.
  for (const node of swarm.nodes)
    for (const image of SWARM_IMAGES) {
      const pulled = await swarm.docker(node, ["pull", "-q", `${placement.registry}/${image}`]);
      if (pulled.code !== 0) throw new Error(`pulling ${image} on ${node.name}: ${pulled.stderr}`);
    }
}, 30 * MINUTE);

afterAll(async () => {
  await removeStack(ONE_HOST_PREFIX);
  await swarm?.stop();
}, 10 * MINUTE);

const s = (ms: number) => (ms / 1000).toFixed(2);

test(`the ${FROM} -> ${TO} upgrade on the three-node swarm against one host, ${ROUNDS} round(s)`, async () => {
  const runs: Run[] = [];
  const write = () => {
    const summary = runs.length ? summarise(runs) : undefined;
    fs.mkdirSync(path.dirname(JSON_OUT), { recursive: true });
    fs.writeFileSync(
      JSON_OUT,
      JSON.stringify(
        { command: `SWARM_BENCH_ROUNDS=${ROUNDS} npm run bench:swarm`, cpus: os.cpus().length, summary, runs },
        null,
        2,
      ),
    );
    return summary;
  };
  for (let round = 1; round <= ROUNDS; round++) {
    // The order alternates from round to round: a drift in the machine's load favours neither.
    const order = round % 2 ? TARGETS : [...TARGETS].reverse();
    for (const target of order) {
      const run = await runOnce(target, round);
      runs.push(run);
      write();
      console.log(
        `round ${round} ${target}: API down ${s(run.apiDowntimeMs)} s (unhealthy ${s(run.unhealthyMs)} s in ${run.outages} gap(s)), ` +
          `pulumi up ${s(run.upWallMs)} s, steps ${s(run.windowMs)} s, first follower stop to verify ${s(run.followerStopToVerifyMs)} s, ` +
          `load ${run.loadAverage.join(" ")}`,
      );
    }
  }
  const summary = write()!;
  console.log(table(summary));
  for (const run of runs.filter((r) => r.round === 1))
    console.log(`timeline, round 1, ${run.target}:\n  ${run.timeline.join("\n  ")}`);
  expect(summary.rounds).toHaveLength(ROUNDS);
  for (const run of runs) expect(run.apiDowntimeMs, `${run.target} round ${run.round}`).toBeGreaterThan(0);
});
