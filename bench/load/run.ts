/**
 * Load benchmark (docs/benchmarks.md, "Load"): the load test's scenario (test/support/
 * load-upgrade.ts) at full size, the 1.0.0 -> 1.1.0 upgrade with the steady rate of 10,000 meters
 * every 15 minutes and a burst of 500 messages per second for a minute, started 2 s before the
 * upgrade. run.sh starts it (`npm run bench:load`); the figures go to the JSON file it names and,
 * in short, to the console. Fails when a message is lost or duplicated, or the queues do not
 * drain.
 *
 * Its own prefix (`bld`) and free ports: the tests' stacks may run on the same engine.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  loadReport,
  upgradeUnderLoad,
  type UpgradeLoadOutcome,
  type UpgradeLoadPlan,
} from "../../test/support/load-upgrade";
import { RealStack } from "../../test/support/real-stack";
import { prepareStack, removeStack, SECRETS, standinConfig, tempDir } from "../../test/support/standin-stack";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: start the benchmark with npm run bench:load (bench/load/run.sh)`);
  return value;
}
const MINUTES = 60_000;
const PREFIX = "bld";
const JSON_OUT = required("LOAD_BENCH_JSON");
const backups = tempDir("load-bench-backups");
const plan: UpgradeLoadPlan = {
  prefix: PREFIX,
  steady: { meterPrefix: "BL-S-", ratePerSecond: 10_000 / (15 * 60) },
  burst: {
    meterPrefix: "BL-B-",
    ratePerSecond: Number(required("LOAD_BENCH_BURST_RATE")),
    seconds: Number(required("LOAD_BENCH_BURST_SECONDS")),
  },
  drainTimeoutMs: 60 * MINUTES,
  stack: new RealStack("bench-load", SECRETS),
  config: (version: string) => standinConfig(version, backups, { prefix: PREFIX }),
};
const startedAt = Date.now();
let outcome: UpgradeLoadOutcome | undefined;

beforeAll(async () => {
  await prepareStack(PREFIX);
  await plan.stack.init();
}, 2 * MINUTES);

afterAll(async () => {
  await removeStack(PREFIX);
  plan.stack.remove();
  fs.rmSync(backups, { recursive: true, force: true });
}, 2 * MINUTES);

test(`1.0.0 -> 1.1.0 with the steady rate and ${plan.burst.ratePerSecond} msg/s for ${plan.burst.seconds} s`, async () => {
  plan.stack.configure(plan.config("1.0.0"));
  const install = await plan.stack.up();
  if (install.code !== 0) throw new Error(`install failed:\n${install.stdout}\n${install.stderr}`);
  console.log(
    `bench:load: 1.0.0 installed in ${Math.round((Date.now() - startedAt) / 1000)} s; the scenario starts (load average ${fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")})`,
  );
  outcome = await upgradeUnderLoad(plan);
  const r = loadReport(plan, outcome);
  const summary = {
    ...r,
    plan: { steady: plan.steady, burst: plan.burst },
    benchSeconds: Math.round((Date.now() - startedAt) / 1000),
    loadAverageAtEnd: fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
  };
  fs.mkdirSync(path.dirname(JSON_OUT), { recursive: true });
  fs.writeFileSync(JSON_OUT, JSON.stringify(summary, null, 2));
  console.log(
    JSON.stringify({ ...summary, depthSeries: `${summary.depthSeries.length} samples in ${JSON_OUT}` }, null, 2),
  );

  expect(outcome.sampler.exitCode, `the queue sampler failed: ${outcome.sampler.stderr}`).toBe(0);
  expect(r.loss.missing).toEqual({ steady: 0, burst: 0 });
  expect(r.loss.duplicated).toEqual({ steady: 0, burst: 0 });
  expect(r.loss.stray).toBe(0);
  expect(outcome.drainComplete).toBe(true);
  expect(outcome.burst.sent).toBe(Math.round(plan.burst.ratePerSecond * plan.burst.seconds));
});
