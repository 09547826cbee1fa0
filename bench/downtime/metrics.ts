/**
 * What the downtime benchmark measures, from three records of one upgrade: the health probe's
 * samples, Docker's container events and the upgrade's steps (each a name and a span). Pure
 * functions, so that each figure's definition is tested on its own (metrics.test.ts).
 */

/** One health request: when it was sent, and whether it got a 200. */
export interface Sample {
  t: number;
  ok: boolean;
}

export interface ContainerEvent {
  time: number;
  action: string;
  name: string;
}

export interface Span {
  name: string;
  start: number;
  end: number;
}

export interface Outage {
  /** The first request that got no 200. */
  start: number;
  /** The first request after it that got a 200 (the end of the samples when none did). */
  end: number;
  ms: number;
}

/**
 * Every stretch of requests without a 200, in order: from the first request that got none to the
 * first request after it that got a 200 (a stretch still open at the end lasts until the last sample).
 */
export function outages(samples: Sample[]): Outage[] {
  const found: Outage[] = [];
  let downSince: number | undefined;
  for (const s of samples) {
    if (!s.ok && downSince === undefined) downSince = s.t;
    if (s.ok && downSince !== undefined) {
      found.push({ start: downSince, end: s.t, ms: s.t - downSince });
      downSince = undefined;
    }
  }
  if (downSince !== undefined) {
    const end = samples[samples.length - 1].t;
    found.push({ start: downSince, end, ms: end - downSince });
  }
  return found;
}

/** The longest stretch of requests without a 200 (the first of the longest). */
export function longestOutage(samples: Sample[]): Outage | undefined {
  return outages(samples).reduce<Outage | undefined>(
    (longest, o) => (!longest || o.ms > longest.ms ? o : longest),
    undefined,
  );
}

/** How long the API was unhealthy in all: the stretches without a 200, added up. */
export function unhealthyMs(samples: Sample[]): number {
  return outages(samples).reduce((sum, o) => sum + o.ms, 0);
}

/** When the first request sent at or after `t` got a 200. */
export function firstOkAfter(samples: Sample[], t: number): number | undefined {
  return samples.find((s) => s.t >= t && s.ok)?.t;
}

/** The first event of `name` with one of `actions` at or after `since`. */
export function eventAfter(
  events: ContainerEvent[],
  name: string,
  actions: string[],
  since: number,
): ContainerEvent | undefined {
  return events.find((e) => e.name === name && e.time >= since && actions.includes(e.action));
}

/**
 * How long each container was down: from its first stop (`kill`, sent by `docker stop`, or `die`)
 * at or after `since` until the next `start` of a container of that name (the same container, or
 * its replacement). Absent when it never stopped; `end` undefined when it never started again.
 */
export function downtimeOf(
  events: ContainerEvent[],
  name: string,
  since: number,
): { start: number; end?: number; ms?: number } | undefined {
  const stopped = eventAfter(events, name, ["kill", "die"], since);
  if (!stopped) return undefined;
  const started = eventAfter(events, name, ["start"], stopped.time);
  return { start: stopped.time, end: started?.time, ms: started ? started.time - stopped.time : undefined };
}

export function span(spans: Span[], name: string): Span {
  const found = spans.find((s) => s.name === name);
  if (!found) throw new Error(`no step ${name} among ${spans.map((s) => s.name).join(", ")}`);
  return found;
}

export const duration = (s: Span) => s.end - s.start;

/** The `STEP <name> <start ms> <end ms>` lines runbook-literal.sh prints. */
export function parseSteps(output: string): Span[] {
  return [...output.matchAll(/^STEP (\S+) (\d+) (\d+)$/gm)].map((m) => ({
    name: m[1],
    start: Number(m[2]),
    end: Number(m[3]),
  }));
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
