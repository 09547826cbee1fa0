/**
 * Request latency direct to the API's published port against through the maintenance proxy,
 * sequential requests alternating between the two paths one by one (who goes first changes every
 * round), so that whatever else the machine does falls on both alike.
 */
import * as http from "node:http";
import { performance } from "node:perf_hooks";

/** One kind of request: what is sent and the status that counts as passing. */
export interface RequestKind {
  name: string;
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  expect: number;
}

/** The two paths to the same API container: its own published port, and the proxy's. */
export interface Paths {
  direct: string;
  proxy: string;
}

export interface LatencyResult {
  kind: string;
  /** Milliseconds of each timed request, in the order sent. */
  direct: number[];
  proxy: number[];
  /** Per round, the median through the proxy over the median direct. */
  roundRatios: number[];
}

/**
 * One request on `agent`, timed from before it is sent to the last byte of the response. Kept-alive
 * agents, as a browser or a client library keeps them: the proxy keeps the client's connection,
 * while the API's sync workers close every one (so direct, each request opens a new one).
 */
function timed(agent: http.Agent, base: string, kind: RequestKind): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = kind.body ? { ...kind.headers, "Content-Length": String(kind.body.length) } : kind.headers;
    const started = performance.now();
    const request = http.request(`${base}${kind.path}`, { method: kind.method, agent, headers }, (response) => {
      response.on("data", () => undefined);
      response.on("error", reject);
      response.on("end", () => {
        const ms = performance.now() - started;
        // A failed request is not a fast one: stop rather than time an error page.
        if (response.statusCode !== kind.expect)
          reject(new Error(`${kind.name} via ${base}: status ${response.statusCode}, expected ${kind.expect}`));
        else resolve(ms);
      });
    });
    request.setTimeout(30_000, () => request.destroy(new Error(`${kind.name} via ${base}: no answer in 30 s`)));
    request.on("error", reject);
    request.end(kind.body);
  });
}

/** `count` requests of `kind` on each path in `rounds` rounds, after `warmup` untimed ones on each. */
export async function measureLatency(
  paths: Paths,
  kind: RequestKind,
  count: number,
  rounds: number,
  warmup: number,
): Promise<LatencyResult> {
  const agents = { direct: new http.Agent({ keepAlive: true }), proxy: new http.Agent({ keepAlive: true }) };
  const result: LatencyResult = { kind: kind.name, direct: [], proxy: [], roundRatios: [] };
  try {
    for (let i = 0; i < warmup; i++) {
      await timed(agents.direct, paths.direct, kind);
      await timed(agents.proxy, paths.proxy, kind);
    }
    const perRound = Math.ceil(count / rounds);
    for (let round = 0; round < rounds; round++) {
      const order: (keyof Paths)[] = round % 2 === 0 ? ["direct", "proxy"] : ["proxy", "direct"];
      const these: Record<keyof Paths, number[]> = { direct: [], proxy: [] };
      for (let i = 0; i < perRound && result.direct.length + these.direct.length < count; i++) {
        for (const path of order) these[path].push(await timed(agents[path], paths[path], kind));
      }
      result.direct.push(...these.direct);
      result.proxy.push(...these.proxy);
      result.roundRatios.push(percentile(these.proxy, 0.5) / percentile(these.direct, 0.5));
    }
  } finally {
    agents.direct.destroy();
    agents.proxy.destroy();
  }
  return result;
}

/** The nearest-rank percentile `p` (0 to 1) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}
