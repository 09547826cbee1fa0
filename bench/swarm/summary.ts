/**
 * The swarm benchmark's figures and summary (run.ts measures, this computes): pure functions,
 * tested on recorded shapes in summary.test.ts.
 */
import { median, type Span } from "../downtime/metrics";

export const TARGETS = ["one-host", "swarm"] as const;
export type Target = (typeof TARGETS)[number];

/** What each upgrade yields, in milliseconds; `ratios` divides swarm's by one host's of the same round. */
export const FIGURES = ["apiDowntimeMs", "unhealthyMs", "upWallMs", "windowMs", "followerStopToVerifyMs"] as const;
export type Figure = (typeof FIGURES)[number];

export type Measured = { target: Target; round: number } & Record<Figure, number>;

export const FIGURE_NAMES: Record<Figure, string> = {
  apiDowntimeMs: "API downtime (longest /_health/ gap)",
  unhealthyMs: "API unhealthy in all",
  upWallMs: "window: the upgrade's `pulumi up`, wall time",
  windowMs: "first step's start to the last step's end",
  followerStopToVerifyMs: "first follower stop to verify's end",
};

/** The upgrade's engine steps as spans named "op name" (the stack's resource names, `prefix-…`). */
export function followerStopToVerify(steps: Span[], prefix: string): number {
  const followers = /-(beat|worker-.+|processor|poster)$/;
  const stops = steps.filter(
    (s) => s.name.startsWith(`delete-replaced ${prefix}-`) && followers.test(s.name.slice("delete-replaced ".length)),
  );
  const verify = steps.find((s) => s.name === `create-replacement ${prefix}-verify`);
  if (stops.length === 0 || !verify)
    throw new Error(`no follower stopped or no verify among ${steps.map((s) => s.name).join(", ")}`);
  return verify.end - Math.min(...stops.map((s) => s.start));
}

/** The first step's start to the last step's end. */
export function stepsWindow(steps: Span[]): number {
  if (steps.length === 0) throw new Error("no steps");
  return Math.max(...steps.map((s) => s.end)) - Math.min(...steps.map((s) => s.start));
}

export interface Ratio {
  median: number;
  min: number;
  max: number;
  perRound: number[];
}

export interface Summary {
  rounds: number[];
  /** Medians over the rounds, per target, in ms. */
  medians: Record<Target, Record<Figure, number>>;
  /** swarm / one host within each round; their median and range. */
  ratios: Record<Figure, Ratio>;
}

export function summarise(runs: Measured[]): Summary {
  const rounds = [...new Set(runs.map((r) => r.round))]
    .filter((round) => TARGETS.every((t) => runs.some((r) => r.round === round && r.target === t)))
    .sort((a, b) => a - b);
  const of = (target: Target, round: number) => runs.find((r) => r.round === round && r.target === target)!;
  const medians = Object.fromEntries(
    TARGETS.map((t) => [
      t,
      Object.fromEntries(FIGURES.map((f) => [f, median(rounds.map((round) => of(t, round)[f]))])),
    ]),
  ) as Summary["medians"];
  const ratios = Object.fromEntries(
    FIGURES.map((f) => {
      const perRound = rounds.map((round) => of("swarm", round)[f] / of("one-host", round)[f]);
      return [f, { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound), perRound }];
    }),
  ) as Summary["ratios"];
  return { rounds, medians, ratios };
}

/** The summary as a Markdown table: seconds, medians, and the ratio's median and range. */
export function table(summary: Summary): string {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const r = (x: number) => x.toFixed(2);
  return [
    `| figure (median of ${summary.rounds.length}, s) | one host | swarm, 3 nodes | swarm / one host (range) |`,
    "|---|---|---|---|",
    ...FIGURES.map((f) => {
      const ratio = summary.ratios[f];
      return `| ${FIGURE_NAMES[f]} | ${s(summary.medians["one-host"][f])} | ${s(summary.medians.swarm[f])} | **${r(ratio.median)}** (${r(ratio.min)} to ${r(ratio.max)}) |`;
    }),
  ].join("\n");
}
