/**
 * The plan is the one place the order lives, checked against what the real runtime sends: the
 * register requests of index.ts under the SDK's cmd/run carry exactly the dependencies, input
 * edges and `replaceWith` the plan says (test/unit/plan-edges.test.ts does the same under mocks).
 */
import { describe, expect, test } from "vitest";
import { planDeployment } from "../../components/plan";
import { planEdgeDifferences } from "../support/plan-edges";
import { BACKUPS } from "../unit/support/backups";
import { loaded } from "../unit/support/fixtures";
import { explain, RUN_TIMEOUT_MS, runDev } from "./support";

describe("under the real runtime, the resources wait for exactly what the plan says", () => {
  for (const [title, values] of [
    ["an upgrade to 1.1.0", { version: "1.1.0" }],
    [
      "an upgrade to 1.1.0, the UDP server in the host's network",
      { version: "1.1.0", udpServer: { version: "1.0.0", network: "host" } },
    ],
    // The shared fixture directory holds verified backups, as restoreFrom is checked at preview.
    ["a rollback to 1.0.0", { version: "1.0.0", restoreFrom: "latest", backup: { dir: BACKUPS.dir } }],
  ] as const) {
    test(
      title,
      async () => {
        // A rollback needs an earlier version in the state, or the guard refuses it (rightly).
        const guard = {
          id: "schema-guard",
          inputs: { version: "1.1.0" },
          outputs: { version: "1.1.0", previousVersion: "1.0.0" },
        };
        const run = await runDev(values, {
          preview: false,
          priorState: new Map([["utilitarian-dev-schema-guard", guard]]),
        });
        expect(run.succeeded, explain(run)).toBe(true);
        const plan = planDeployment(loaded(values).settings);
        expect(planEdgeDifferences(plan, run.registrations, "utilitarian-dev")).toEqual([]);
        // The check sees the followers' replaceWith as the runtime sent it.
        expect(run.registrations.find((r) => r.name === "utilitarian-dev-beat")!.replaceWith).toEqual([
          "utilitarian-dev-api",
        ]);
      },
      RUN_TIMEOUT_MS,
    );
  }
});
