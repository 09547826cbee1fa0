/**
 * The health probe of the downtime benchmarks (bench/downtime, bench/swarm): a GET of a
 * `/_health/` URL every `intervalMs` (1 s timeout each), each answer a sample for metrics.ts.
 */
import { sleep } from "../../test/support/exec";
import type { Sample } from "./metrics";

/** Asks `url` every `intervalMs` until stopped; a sample is ok when the answer was a 200. */
export function probe(url: string, intervalMs: number): { stop: () => Promise<Sample[]> } {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      let ok = false;
      try {
        ok = (await fetch(url, { signal: AbortSignal.timeout(1000) })).status === 200;
      } catch {
        ok = false;
      }
      samples.push({ t, ok });
      await sleep(Math.max(0, intervalMs - (Date.now() - t)));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return samples;
    },
  };
}
