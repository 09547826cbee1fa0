import * as http from "http";

/** One request of the poller and how it ended: a response, or the error that ended it. */
export interface PollResult {
  /** When it was sent and when it ended (answered or failed), ms since the poller started. */
  at: number;
  endedAt: number;
  /** The response's status, or 0 when the request ended without one. */
  status: number;
  retryAfter?: string;
  contentType?: string;
  body: string;
  /** The error code (`ECONNREFUSED`, `ECONNRESET`, `timeout`) when no response came. */
  error?: string;
}

/**
 * A client that sends `GET <path>` every `intervalMs`, whether or not the previous request was
 * answered, on kept-alive connections as a browser or a monitoring agent does, and records how
 * each request ended. `stop` waits for every request it sent to end.
 */
export function poller(
  url: string,
  intervalMs: number,
  headers: Record<string, string> = {},
): { stop: () => Promise<PollResult[]> } {
  const agent = new http.Agent({ keepAlive: true });
  const started = Date.now();
  const results: Promise<PollResult>[] = [];
  const send = (): Promise<PollResult> =>
    new Promise((resolve) => {
      const at = Date.now() - started;
      const request = http.get(url, { agent, headers, timeout: 15_000 }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () =>
          resolve({
            at,
            endedAt: Date.now() - started,
            status: response.statusCode ?? 0,
            retryAfter: response.headers["retry-after"],
            contentType: response.headers["content-type"],
            body,
          }),
        );
        response.on("error", (e: NodeJS.ErrnoException) =>
          resolve({ at, endedAt: Date.now() - started, status: 0, body, error: e.code ?? e.message }),
        );
      });
      request.on("timeout", () => request.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
      request.on("error", (e: NodeJS.ErrnoException) =>
        resolve({ at, endedAt: Date.now() - started, status: 0, body: "", error: e.code ?? e.message }),
      );
    });
  const timer = setInterval(() => results.push(send()), intervalMs);
  return {
    stop: async () => {
      clearInterval(timer);
      const all = await Promise.all(results);
      agent.destroy();
      return all;
    },
  };
}

/** The results that are neither a 200 nor a 503 with `Retry-After`, one line each, for a failure message. */
export function unexpected(results: PollResult[]): string[] {
  return results
    .filter((r) => !(r.status === 200 || (r.status === 503 && r.retryAfter !== undefined)))
    .map((r) => `${r.at} ms: ${r.error ?? `${r.status} retry-after=${r.retryAfter ?? "none"} ${r.body.slice(0, 80)}`}`);
}

/** The stretches of consecutive 503 answers (a request answered otherwise ends one), as [first, last] send times in ms. */
export function maintenanceStretches(results: PollResult[]): [number, number][] {
  const stretches: [number, number][] = [];
  let open: [number, number] | undefined;
  for (const r of [...results].sort((a, b) => a.at - b.at)) {
    if (r.status !== 503) open = undefined;
    else if (open) open[1] = r.at;
    else stretches.push((open = [r.at, r.at]));
  }
  return stretches;
}
