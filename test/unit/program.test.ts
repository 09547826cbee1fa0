import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, test, vi } from "vitest";
import { BAD_CONFIGS } from "./support/bad-configs";
import { EDGE_VERSIONS, rawConfig, SECRET_VALUES } from "./support/fixtures";
import { promiseOf, RecordingMocks } from "./support/mocks";

/** Runs index.ts as `pulumi preview` would: config from the store, mocks for the engine. */
async function runProgram(values: Record<string, unknown>, secretKeys = Object.keys(SECRET_VALUES)) {
  const mocks = new RecordingMocks();
  await pulumi.runtime.setMocks(mocks, "utilitarian", "dev", true);
  pulumi.runtime.setAllConfig(
    rawConfig(values),
    secretKeys.map((k) => `utilitarian:${k}`),
  );
  vi.resetModules();
  const program = import("../../index");
  return { mocks, program };
}

describe("index.ts: stack config in, deployment out", () => {
  beforeEach(() => vi.resetModules());

  test("a valid dev config builds the deployment with names derived from the stack", async () => {
    const { mocks, program } = await runProgram({ ...EDGE_VERSIONS, version: "1.0.0" });
    const exports = await program;
    await mocks.idle();
    expect(await promiseOf(exports.containers)).toMatchObject({
      api: "utilitarian-dev-api",
      "udp-server": "utilitarian-dev-udp-server",
    });
    expect(mocks.get("utilitarian-dev-network").inputs.name).toBe("utilitarian-dev-net");
  });

  test("the maintenance plan is a stack output, so `pulumi preview` shows the stages before the window", async () => {
    const { mocks, program } = await runProgram({ ...EDGE_VERSIONS, version: "1.1.0" });
    const exports = await program;
    await mocks.idle();
    const stages = exports.maintenancePlan as string[];
    expect(stages.map((s) => s.slice(0, s.indexOf(":")))).toEqual([
      "1. Pull the new images while everything runs [runbook 4]",
      "2. Verified backup, before anything stops [runbook 1]",
      "3. Stop the services that depend on the API, then the API [runbook 2, 3]",
      "4. Start only the API on 1.1.0 [runbook 5, 6]",
      "5. Run migrations [runbook 7]",
      "6. Collect and compress static assets [runbook 8]",
      "7. Start everything else on 1.1.0 [runbook 9]",
      "8. Verify [runbook 10]",
    ]);
    expect(stages[1]).toContain("stop the writers first");
    for (const secret of Object.values(SECRET_VALUES)) expect(stages.join("\n")).not.toContain(secret);
  });

  test.each(BAD_CONFIGS)("%s: refused before anything is created", async (_label, values, message) => {
    const { mocks, program } = await runProgram({ ...EDGE_VERSIONS, version: "1.0.0", ...values });
    await expect(program).rejects.toThrow(message);
    await mocks.idle(50);
    expect(mocks.registrations).toEqual([]);
  });

  test("a secret stored in plain text is refused before anything is created", async () => {
    const { mocks, program } = await runProgram(
      { ...EDGE_VERSIONS, version: "1.0.0" },
      Object.keys(SECRET_VALUES).filter((k) => k !== "databasePassword"),
    );
    await expect(program).rejects.toThrow("`utilitarian:databasePassword` is stored in plain text");
    expect(mocks.registrations).toEqual([]);
  });
});
