/**
 * On an engine older than 3.208 (no `replaceWith`), the SDK refuses the option: the component
 * leaves it out there, and its ForceNew input edges on the API still make the engine stop the
 * followers first. The harness answers SupportsFeature as such an engine would.
 */
import { describe, expect, test } from "vitest";
import { explain, RUN_TIMEOUT_MS, runDev } from "./support";

const FOLLOWERS = ["beat", "worker-default-1", "processor", "poster"].map((k) => `utilitarian-dev-${k}`);

describe("an engine without replaceWith", () => {
  test(
    "the program runs, the followers carry no replaceWith, and their ForceNew edges on the API remain",
    async () => {
      const run = await runDev({ version: "1.1.0" }, { preview: false, features: { replaceWith: false } });
      expect(run.succeeded, explain(run)).toBe(true);
      for (const name of FOLLOWERS) {
        const r = run.registrations.find((x) => x.name === name)!;
        expect(r.replaceWith, name).toEqual([]);
        expect(r.propertyDependencies.labels, name).toContain("utilitarian-dev-api");
      }
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "with it, the followers are replaced with the API",
    async () => {
      const run = await runDev({ version: "1.1.0" }, { preview: false });
      expect(run.succeeded, explain(run)).toBe(true);
      for (const name of FOLLOWERS)
        expect(run.registrations.find((x) => x.name === name)!.replaceWith, name).toEqual(["utilitarian-dev-api"]);
    },
    RUN_TIMEOUT_MS,
  );
});
