/**
 * The API's outage as clients see it, with and without the proxy, in one replacement: a client
 * polls the API's own published port and another the proxy's, each every 100 ms, while the API
 * container is stopped, removed and a new one run, as an upgrade replaces it.
 */
import { docker, sleep, waitFor } from "../../test/support/exec";
import { poller, type PollResult } from "../../test/support/proxy-client";
import type { ProxyStack } from "../../test/support/proxy-stack";

export const POLL_MS = 100;

/** What one client saw. Times in ms after `docker stop` was called. */
export interface ClientView {
  requests: number;
  /** Requests not answered 200: refused or reset connections, 503s and anything else. */
  failed: number;
  /**
   * When the first request not answered 200 was sent, and when the first 200 arrived after the
   * last such request ended: the outage as this client saw it. (A request may wait through part
   * of the outage and then be answered 200; it is counted in `slowestMs`, not as a failure.)
   */
  firstFailedMs?: number;
  backMs?: number;
  /** The longest any request waited for its end, answered or not, and how it ended (as in `kinds`, or 200). */
  slowestMs: number;
  slowestEnd: string;
  /** How the failed requests ended: an error code, or `503 Retry-After`, or another status. */
  kinds: Record<string, number>;
  /** Requests that ended without any HTTP response. */
  unanswered: number;
}

export interface WindowRound {
  /** Docker's view, ms after `docker stop` was called: stopped, the new API running, healthy (200 direct). */
  stoppedMs: number;
  runMs: number;
  healthyMs: number;
  direct: ClientView;
  proxy: ClientView;
}

function view(results: PollResult[], stopAt: number): ClientView {
  const sorted = [...results].sort((a, b) => a.at - b.at);
  const failed = sorted.filter((r) => r.status !== 200);
  const end = (r: PollResult) =>
    r.error ?? (r.status === 503 && r.retryAfter !== undefined ? "503 Retry-After" : String(r.status));
  const kinds: Record<string, number> = {};
  for (const r of failed) kinds[end(r)] = (kinds[end(r)] ?? 0) + 1;
  const slowest = sorted.reduce((a, b) => (b.endedAt - b.at > a.endedAt - a.at ? b : a));
  const last = failed.at(-1);
  const back =
    last && Math.min(...sorted.filter((r) => r.status === 200 && r.endedAt > last.endedAt).map((r) => r.endedAt));
  return {
    requests: sorted.length,
    failed: failed.length,
    firstFailedMs: failed[0] && failed[0].at - stopAt,
    backMs: back !== undefined && Number.isFinite(back) ? back - stopAt : undefined,
    slowestMs: slowest.endedAt - slowest.at,
    slowestEnd: `${end(slowest)}, sent ${((slowest.at - stopAt) / 1000).toFixed(1)}`,
    kinds,
    unanswered: sorted.filter((r) => r.status === 0).length,
  };
}

/** One replacement of the API container under both clients. */
export async function measureWindow(stack: ProxyStack): Promise<WindowRound> {
  const apiStatus = async () =>
    (await fetch(`${stack.apiBase}/_health/`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.status ??
    0;
  // The poller's times count from its own start, taken within a millisecond of this one.
  const t0 = Date.now();
  const direct = poller(`${stack.apiBase}/_health/`, POLL_MS, { Accept: "application/json" });
  const proxy = poller(`${stack.base}/_health/`, POLL_MS, { Accept: "application/json" });
  await sleep(1500);
  const stopAt = Date.now() - t0;
  await docker(["stop", stack.api]);
  const stoppedMs = Date.now() - t0 - stopAt;
  await docker(["rm", stack.api]);
  // As in test/real/proxy.test.ts: the new container gets another address, which the proxy must find.
  await stack.startFiller();
  await stack.startApi();
  const runMs = Date.now() - t0 - stopAt;
  if (!(await waitFor(async () => (await apiStatus()) === 200, 90_000, 50)))
    throw new Error(`the new API did not answer 200: ${await docker(["logs", stack.api], { allowFailure: true })}`);
  const healthyMs = Date.now() - t0 - stopAt;
  await sleep(2500);
  const [d, p] = [await direct.stop(), await proxy.stop()];
  await docker(["rm", "-f", stack.filler]);
  return { stoppedMs, runMs, healthyMs, direct: view(d, stopAt), proxy: view(p, stopAt) };
}
