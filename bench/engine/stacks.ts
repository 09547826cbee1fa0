/**
 * `npm run bench:engine-stacks` (BENCH_ROUNDS=5 by default): the real CLI's `pulumi preview` and no-op `pulumi up`
 * of the dev stack (one worker) and of a 100-worker stack, both installed for real on the local
 * Docker engine with the stand-in images and plugins, against the engine's floor: the same two
 * commands on an empty TypeScript program. The six commands are interleaved in every round, so
 * load from other work falls on all alike; medians and ratios to the floor are printed and written
 * to test/.work/bench-engine-stacks.json. Needs Docker and the stand-in images (npm test builds
 * them); removes its stacks afterwards.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { test } from "vitest";
import { program, pulumiOk, pulumi as runPulumi, type Workspace } from "../../test/support/real-engine";
import { RealStack } from "../../test/support/real-stack";
import { prepareStack, removeStack, SECRETS, standinConfig, tempDir } from "../../test/support/standin-stack";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timed(
  run: () => Promise<{ code: number; stdout: string; stderr: string }>,
  what: string,
): Promise<number> {
  const started = process.hrtime.bigint();
  const result = await run();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return ms;
}

async function installed(name: string, prefix: string, workers: number): Promise<RealStack> {
  await prepareStack(prefix);
  const stack = new RealStack(name, SECRETS);
  await stack.init();
  // At most 32 workers a group (the schema's limit): groups of 25, as bench/scale does.
  const groups =
    workers <= 32
      ? [{ name: "default", count: workers }]
      : Array.from({ length: Math.ceil(workers / 25) }, (_, i) => ({
          name: `g${i}`,
          count: Math.min(25, workers - 25 * i),
        }));
  stack.configure(standinConfig("1.0.0", tempDir(`bench-${name}`), { prefix, workers: groups }));
  const started = Date.now();
  let up = await stack.up([], { timeoutMs: 30 * 60_000 });
  // On 2 cores, 100 workers starting at once starve RabbitMQ's handshakes: some time out, Docker
  // restarts them, and verify fails on the restart. A re-run resumes at verify, as the failure guide says.
  if (up.code !== 0) {
    console.log(
      `installing ${name}: the first up failed (${up.steps
        .filter((s) => s.failed)
        .map((s) => s.name)
        .join(", ")}); running it again`,
    );
    up = await stack.up([], { timeoutMs: 30 * 60_000 });
  }
  if (up.code !== 0) throw new Error(`installing ${name} failed:\n${up.stdout.slice(-5000)}\n${up.stderr}`);
  console.log(`installed ${name} (${workers} workers) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return stack;
}

async function main(): Promise<void> {
  const floor: Workspace = program("floor", "export const answer = 42;\n");
  await pulumiOk(floor, ["stack", "init", "bench"]);
  await pulumiOk(floor, ["up", "--yes", "--stack", "bench"]);
  const stacks = { dev: await installed("bench-dev", "bd", 1), workers100: await installed("bench-100", "bh", 100) };
  const times: Record<string, number[]> = {};
  const add = (key: string, ms: number) => (times[key] ??= []).push(ms);
  try {
    for (let round = 0; round < rounds; round++) {
      add(
        "floor preview",
        await timed(() => runPulumi(floor, ["preview", "--expect-no-changes", "--stack", "bench"]), "floor preview"),
      );
      add(
        "floor up",
        await timed(() => runPulumi(floor, ["up", "--yes", "--expect-no-changes", "--stack", "bench"]), "floor up"),
      );
      for (const [name, stack] of Object.entries(stacks)) {
        add(`${name} preview`, await timed(() => stack.run(["preview", "--expect-no-changes"]), `${name} preview`));
        add(`${name} up`, await timed(() => stack.run(["up", "--yes", "--expect-no-changes"]), `${name} up`));
      }
    }
  } finally {
    await removeStack("bd");
    await removeStack("bh");
    for (const s of Object.values(stacks)) s.remove();
    fs.rmSync(floor.dir, { recursive: true, force: true });
  }
  const result: Record<string, unknown> = {
    engine: "pulumi 3.250.0 (toolchain/pulumi), stand-in docker/postgresql/command plugins",
    cores: os.cpus().length,
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(1))),
    rounds,
  };
  for (const command of ["preview", "up"]) {
    const f = median(times[`floor ${command}`]);
    for (const name of Object.keys(stacks)) {
      const m = median(times[`${name} ${command}`]);
      result[`${name} ${command}`] = {
        medianMs: Math.round(m),
        floorMs: Math.round(f),
        ratio: Number((m / f).toFixed(2)),
      };
    }
  }
  const out = path.resolve(__dirname, "../../test/.work/bench-engine-stacks.json");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ ...result, times }, null, 2));
  console.log(JSON.stringify(result, null, 2));
}

test("preview and no-op up of the dev and a 100-worker stack against the empty program", main);
