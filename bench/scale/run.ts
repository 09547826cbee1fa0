/**
 * Scale of the program (docs/benchmarks.md, "Scale of the program").
 *
 *   npm run bench:scale [-- --rounds 3 --sizes 1,10,100]
 *
 * Time from the start of the component's construction to its last resource registration, for
 * 1, 10 and 100 worker containers, two ways:
 * - in-process mocks, compiled JavaScript in plain Node (one child process per measurement, so
 *   every run starts cold the same way; module loading is not counted);
 * - the SDK's real runtime through the harness (`cmd/run`, TypeScript compiled by the SDK's
 *   ts-node as `pulumi up` does): wall time of the whole program run, and the span from its
 *   first registration to its last.
 * Sizes are measured in an order that changes every round; medians are reported, and each size's
 * time as a ratio to the 1-worker time of the same round.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";

const workers = (n: number) =>
  n <= 32
    ? [{ name: "default", count: n }]
    : Array.from({ length: Math.ceil(n / 25) }, (_, i) => ({ name: `g${i}`, count: Math.min(25, n - 25 * i) }));

interface Args {
  rounds: number;
  sizes: number[];
}

function parseArgs(argv: string[]): Args & { one?: { mode: "mocks" | "runtime"; size: number } } {
  const args: Args & { one?: { mode: "mocks" | "runtime"; size: number } } = { rounds: 3, sizes: [1, 10, 100] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--rounds") args.rounds = Number(argv[++i]);
    else if (argv[i] === "--sizes") args.sizes = argv[++i].split(",").map(Number);
    else if (argv[i] === "--one") {
      const [mode, size] = argv[++i].split(":");
      args.one = { mode: mode as "mocks" | "runtime", size: Number(size) };
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

/** One measurement in this process: prints a JSON line. */
async function measureOne(mode: "mocks" | "runtime", size: number): Promise<void> {
  const values = { workers: workers(size) };
  if (mode === "mocks") {
    const pulumi = await import("@pulumi/pulumi");
    const { RecordingMocks } = await import("../../test/unit/support/mocks");
    const { loaded } = await import("../../test/unit/support/fixtures");
    const { UtilitarianDeployment } = await import("../../components/deployment");
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "utilitarian", "dev", false);
    const { settings, secrets } = loaded(values);
    let last = 0;
    let lastCpu = { user: 0, system: 0 };
    const original = mocks.newResource.bind(mocks);
    mocks.newResource = (a) => {
      last = performance.now();
      lastCpu = process.cpuUsage(startCpu);
      return original(a);
    };
    // CPU time as well as wall time: on a shared machine the process's own CPU time varies far less.
    const startCpu = process.cpuUsage();
    const start = performance.now();
    new UtilitarianDeployment("u", { ...settings, secrets, prefix: "u" });
    await mocks.idle(200);
    const cpuMs = (lastCpu.user + lastCpu.system) / 1000;
    console.log(
      JSON.stringify({ mode, size, registrations: mocks.registrations.length, toLastMs: last - start, cpuMs }),
    );
    return;
  }
  const { configFromValues, modelEngine, runProgram } = await import("../../test/harness");
  const { EDGE_VERSIONS, SECRET_VALUES } = await import("../../test/unit/support/fixtures");
  const { packageRoot } = await import("../../components/paths");
  const model = modelEngine();
  const times: number[] = [];
  // The project itself (this file runs compiled from a cache directory).
  const { config, secretKeys } = configFromValues({ ...EDGE_VERSIONS, version: "1.0.0", ...values }, SECRET_VALUES);
  const start = performance.now();
  const run = await runProgram({
    programDir: packageRoot(),
    stack: "dev",
    config,
    secretKeys,
    preview: false,
    engine: {
      register: (r) => {
        times.push(performance.now());
        return model.register(r);
      },
    },
  });
  if (!run.succeeded) throw new Error(`the program failed: ${run.stderr.slice(-1000)}`);
  console.log(
    JSON.stringify({
      mode,
      size,
      registrations: run.registrations.length,
      wallMs: performance.now() - start,
      firstToLastMs: Math.max(...times) - Math.min(...times),
    }),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.one) return measureOne(args.one.mode, args.one.size);
  const results: Record<string, any>[] = [];
  for (let round = 0; round < args.rounds; round++) {
    const order = round % 2 === 0 ? args.sizes : [...args.sizes].reverse();
    for (const mode of ["mocks", "runtime"] as const) {
      for (const size of order) {
        const out = execFileSync(process.execPath, [__filename, "--one", `${mode}:${size}`], {
          cwd: path.resolve(__dirname, "../../../../.."),
          encoding: "utf8",
          stdio: ["ignore", "pipe", "inherit"],
        });
        const line = JSON.parse(out.trim().split("\n").at(-1)!);
        results.push({ round, ...line });
        console.error(`round ${round + 1}: ${mode} ${size} workers: ${JSON.stringify(line)}`);
      }
    }
  }
  const metric = (r: Record<string, any>) => (r.mode === "mocks" ? r.toLastMs : r.firstToLastMs);
  console.log(
    `\n| workers | registrations | mocks: to last registration (ms) | ratio to 1 worker | runtime: first to last registration (ms) | ratio to 1 worker | runtime: whole run (s) |`,
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const size of args.sizes) {
    const cells = (mode: string) => {
      const rs = results.filter((r) => r.mode === mode && r.size === size);
      const ratios = rs.map(
        (r) =>
          metric(r) / metric(results.find((x) => x.mode === mode && x.size === args.sizes[0] && x.round === r.round)!),
      );
      return {
        ms: median(rs.map(metric)),
        ratio: median(ratios),
        regs: rs[0].registrations,
        wall: median(rs.map((r) => r.wallMs ?? 0)),
      };
    };
    const m = cells("mocks");
    const r = cells("runtime");
    console.log(
      `| ${size} | ${m.regs} | ${m.ms.toFixed(0)} | ${m.ratio.toFixed(2)} | ${r.ms.toFixed(0)} | ${r.ratio.toFixed(2)} | ${(r.wall / 1000).toFixed(1)} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
