/**
 * The maintenance proxy's overhead benchmark (docs/benchmarks.md, "The maintenance proxy").
 *
 *   npm run bench:proxy -- [--requests 4000] [--uploads 200] [--rounds 20] [--windows 3] [--json out.json]
 *                          [--proxy-log haproxy.log]
 *
 * Starts the stand-in API behind the proxy as test/real/proxy.test.ts does
 * (test/support/proxy-stack.ts), with the API's own port published on loopback too, then:
 * latency of `--requests` sequential `GET /_health/` and `--uploads` sequential 2.4 MB `POST
 * /api/v1/readings/` on each path, the two paths alternating request by request (latency.ts);
 * then `--windows` replacements of the API container under a client polling each path every 100
 * ms (window.ts). Every container and the network it made (names starting with `bp`) are removed
 * at the end, on failure and on Ctrl-C.
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { docker } from "../../test/support/exec";
import { ProxyStack } from "../../test/support/proxy-stack";
import { measureLatency, percentile, type LatencyResult, type RequestKind } from "./latency";
import { measureWindow, POLL_MS, type ClientView, type WindowRound } from "./window";

const OPTIONS = ["requests", "uploads", "rounds", "windows", "json", "proxy-log"] as const;
type Options = {
  requests: number;
  uploads: number;
  rounds: number;
  windows: number;
  json?: string;
  proxyLog?: string;
};

function parseArgs(argv: string[]): Options {
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const int = (name: string, fallback: number, min: number) => {
    const raw = value(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}; got '${raw}'`);
    return n;
  };
  for (const arg of argv)
    if (arg.startsWith("--") && !(OPTIONS as readonly string[]).includes(arg.slice(2)))
      throw new Error(`unknown option ${arg}; see the header of bench/proxy/run.ts`);
  return {
    requests: int("requests", 4000, 1),
    uploads: int("uploads", 200, 0),
    rounds: int("rounds", 20, 1),
    windows: int("windows", 3, 0),
    json: value("json"),
    proxyLog: value("proxy-log"),
  };
}

const say = (line: string) => console.log(line);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const ms = (n: number) => n.toFixed(2);
const s = (n: number | undefined) => (n === undefined ? "-" : (n / 1000).toFixed(1));

function latencyRow(r: LatencyResult): string {
  const cells = [0.5, 0.9, 0.99].map((p) => {
    const [d, t] = [percentile(r.direct, p), percentile(r.proxy, p)];
    return `${ms(d)} / ${ms(t)} (${(t / d).toFixed(2)}×)`;
  });
  const range = `${Math.min(...r.roundRatios).toFixed(2)}–${Math.max(...r.roundRatios).toFixed(2)}`;
  return `| ${r.kind} | ${r.direct.length} + ${r.proxy.length} | ${cells.join(" | ")} | ${range} |`;
}

function windowRow(round: number, path: string, v: ClientView, w: WindowRound): string {
  const kinds = Object.entries(v.kinds)
    .map(([k, n]) => `${n} ${k}`)
    .join(", ");
  const span = v.firstFailedMs === undefined || v.backMs === undefined ? undefined : v.backMs - v.firstFailedMs;
  return (
    `| ${round} | ${path} | ${v.requests} | ${v.failed} | ${s(v.firstFailedMs)} | ${s(v.backMs)} | ${s(span)} | ` +
    `${kinds || "-"} | ${v.unanswered} | ${s(v.slowestMs)} (${v.slowestEnd}) | ${s(w.stoppedMs)} / ${s(w.runMs)} / ${s(w.healthyMs)} |`
  );
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const stack = new ProxyStack({
    prefix: "bp-proxy",
    retryAfterSeconds: 5,
    message: "Benchmark: the API is being replaced.",
    publishApi: true,
  });
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)
    process.on(signal, () => void stack.remove().then(() => process.exit(code)));
  const loads: Record<string, string> = { start: load() };
  try {
    say(`${new Date().toISOString()}; ${cpus().length} CPUs; load average ${loads.start}`);
    say(`docker ${await docker(["version", "--format", "{{.Server.Version}}"])}; node ${process.version}`);
    await stack.start();
    say(`the API on ${stack.apiBase}, the proxy on ${stack.base}`);
    const paths = { direct: stack.apiBase, proxy: stack.base };
    const health: RequestKind = { name: "GET /_health/", method: "GET", path: "/_health/", headers: {}, expect: 200 };
    // Under Django's 2.5 MB request limit, as the large upload in test/real/proxy.test.ts.
    const reading = {
      meter: "bp-large",
      value: 2.5,
      timestamp: new Date().toISOString(),
      padding: "x".repeat(2_400_000),
    };
    const upload: RequestKind = {
      name: "POST 2.4 MB /api/v1/readings/",
      method: "POST",
      path: "/api/v1/readings/",
      headers: { Authorization: `Token ${stack.token}`, "Content-Type": "application/json" },
      body: Buffer.from(JSON.stringify(reading)),
      expect: 201,
    };
    const latency: LatencyResult[] = [];
    latency.push(await measureLatency(paths, health, options.requests, options.rounds, 100));
    loads.health = load();
    if (options.uploads > 0) {
      latency.push(await measureLatency(paths, upload, options.uploads, Math.min(options.rounds, options.uploads), 5));
      loads.upload = load();
    }
    say("");
    say("ms, direct / through the proxy (through ÷ direct); last column: per-round ratio of medians, min–max");
    say("| request | timed | median | p90 | p99 | rounds |");
    say("|---|---|---|---|---|---|");
    for (const r of latency) say(latencyRow(r));

    const windows: WindowRound[] = [];
    for (let round = 1; round <= options.windows; round++) windows.push(await measureWindow(stack));
    if (windows.length) {
      loads.windows = load();
      say("");
      say(`the API replaced under a client polling each path every ${POLL_MS} ms; times in s after \`docker stop\``);
      say(
        "| round | path | requests | not 200 | first not 200 | 200 again | span | how they ended | unanswered | slowest (how it ended, sent at) | stopped / new API run / 200 direct |",
      );
      say("|---|---|---|---|---|---|---|---|---|---|---|");
      windows.forEach((w, i) => {
        say(windowRow(i + 1, "direct", w.direct, w));
        say(windowRow(i + 1, "proxy", w.proxy, w));
      });
    }
    loads.end = load();
    say("");
    say(
      `load average (1, 5, 15 min): ${Object.entries(loads)
        .map(([k, v]) => `${k} ${v}`)
        .join("; ")}`,
    );
    if (options.json) writeFileSync(options.json, JSON.stringify({ options, loads, latency, windows }, null, 2));
  } finally {
    // HAProxy's log of every request (timers, retries, how it ended) goes with its container.
    if (options.proxyLog)
      writeFileSync(options.proxyLog, await docker(["logs", stack.proxy], { allowFailure: true }).catch(() => ""));
    await stack.remove();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
