/** The swarm benchmark's figures and summary (summary.ts), on recorded shapes: no Docker needed. */
import { describe, expect, test } from "vitest";
import { followerStopToVerify, stepsWindow, summarise, table, type Measured } from "./summary";

const steps = [
  { name: "create-replacement sb-backup", start: 1000, end: 3000 },
  { name: "delete-replaced sb-processor", start: 3100, end: 3500 },
  { name: "delete-replaced sb-beat", start: 3050, end: 3600 },
  { name: "delete-replaced sb-api", start: 3700, end: 4000 },
  { name: "create-replacement sb-api", start: 4000, end: 5000 },
  { name: "create-replacement sb-verify", start: 8000, end: 9500 },
];

describe("figures from the upgrade's engine steps", () => {
  test("first follower stop (the API's own deletion is not one) to verify's end", () => {
    expect(followerStopToVerify(steps, "sb")).toBe(9500 - 3050);
    expect(
      followerStopToVerify(
        [{ name: "delete-replaced sb-worker-default", start: 2000, end: 2100 }, ...steps.slice(3)],
        "sb",
      ),
    ).toBe(7500);
  });

  test("no follower stopped or no verify: an error naming the steps", () => {
    expect(() => followerStopToVerify(steps.slice(3), "sb")).toThrow(/no follower stopped.*sb-api/);
    expect(() => followerStopToVerify(steps.slice(0, 5), "sb")).toThrow(/no verify/);
    // Another stack's steps are not this one's.
    expect(() => followerStopToVerify(steps, "other")).toThrow();
  });

  test("the steps' window runs from the first start to the last end, whatever their order", () => {
    expect(stepsWindow([steps[3], steps[0], steps[5]])).toBe(8500);
  });
});

describe("the summary: medians per target, ratios swarm / one host within each round", () => {
  const run = (target: "one-host" | "swarm", round: number, base: number): Measured => ({
    target,
    round,
    apiDowntimeMs: base,
    unhealthyMs: base * 2,
    upWallMs: base * 10,
    windowMs: base * 8,
    followerStopToVerifyMs: base * 4,
  });
  const runs = [
    run("one-host", 1, 1000),
    run("swarm", 1, 2000),
    run("swarm", 2, 3000),
    run("one-host", 2, 1000),
    run("one-host", 3, 4000),
    run("swarm", 3, 2000),
    run("one-host", 4, 9000), // a round without its swarm run (stopped): left out
  ];

  test("only complete rounds count; medians of each figure; ratios per round, their median and range", () => {
    const summary = summarise(runs);
    expect(summary.rounds).toEqual([1, 2, 3]);
    expect(summary.medians["one-host"].apiDowntimeMs).toBe(1000);
    expect(summary.medians.swarm.upWallMs).toBe(20000);
    expect(summary.ratios.apiDowntimeMs).toEqual({ median: 2, min: 0.5, max: 3, perRound: [2, 3, 0.5] });
  });

  test("the table: seconds, the ratio's median in bold and its range", () => {
    expect(table(summarise(runs)).split("\n").slice(0, 3)).toEqual([
      "| figure (median of 3, s) | one host | swarm, 3 nodes | swarm / one host (range) |",
      "|---|---|---|---|",
      "| API downtime (longest /_health/ gap) | 1.00 | 2.00 | **2.00** (0.50 to 3.00) |",
    ]);
  });
});
