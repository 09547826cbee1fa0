import { createRequire } from "module";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, test } from "vitest";
import { checkVersionChange, compareVersions } from "../../components/schemaGuard";
import { deploy } from "./support/program";

describe("compareVersions", () => {
  test.each([
    ["1.10.0", "1.9.2", 1],
    ["1.2.0", "1.2.0", 0],
    ["1.2.0", "1.2.1", -1],
    ["2.0.0", "1.99.99", 1],
    ["1.2.0-rc.1", "1.2.0", -1],
    ["1.2.0", "1.2.0-rc.1", 1],
  ])("%s vs %s is %i", (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
  });
});

describe("checkVersionChange: the rule the schema guard applies at preview", () => {
  test("first install and upgrades pass", () => {
    expect(checkVersionChange(undefined, { version: "1.0.0" })).toEqual([]);
    expect(checkVersionChange({ version: "1.0.0" }, { version: "1.1.0" })).toEqual([]);
    expect(checkVersionChange({ version: "1.1.0" }, { version: "1.1.0" })).toEqual([]);
  });

  test("lowering the version without a restore is refused, saying why and how", () => {
    const [failure] = checkVersionChange({ version: "1.2.0" }, { version: "1.0.0" });
    expect(failure.property).toBe("version");
    expect(failure.reason).toContain("from 1.2.0 down to 1.0.0");
    expect(failure.reason).toContain("migrations");
    expect(failure.reason).toContain("pulumi config set utilitarian:restoreFrom");
  });

  test("lowering the version with a restore passes, and so does resuming that rollback", () => {
    expect(checkVersionChange({ version: "1.2.0" }, { version: "1.0.0", restoreFrom: "latest" })).toEqual([]);
    expect(
      checkVersionChange({ version: "1.0.0", restoreFrom: "latest" }, { version: "1.0.0", restoreFrom: "latest" }),
    ).toEqual([]);
  });

  test("a restore left in the config is refused on the next upgrade, before it could run again", () => {
    const failures = checkVersionChange(
      { version: "1.0.0", restoreFrom: "latest" },
      { version: "1.1.0", restoreFrom: "latest" },
    );
    expect(failures.map((f) => f.property)).toEqual(["restoreFrom"]);
    expect(failures[0].reason).toContain("pulumi config rm utilitarian:restoreFrom");
    expect(checkVersionChange(undefined, { version: "1.0.0", restoreFrom: "x.dump" }).map((f) => f.property)).toEqual([
      "restoreFrom",
    ]);
  });
});

describe("the guard as the dynamic provider host loads it", () => {
  /**
   * `@pulumi/pulumi/cmd/dynamic-provider` does `requireFromString(props.__provider).handler()` and
   * calls the result: the provider's closure as Pulumi serialised it, nothing of this module.
   */
  async function hostedGuard(): Promise<pulumi.dynamic.ResourceProvider> {
    const { mocks } = await deploy({});
    const guard = mocks.registrations.find((r) => r.type === "pulumi-nodejs:dynamic/utilitarian-schema-guard:Resource");
    const requireFromString = createRequire(require.resolve("@pulumi/pulumi/package.json"))("require-from-string");
    return requireFromString(guard!.inputs.__provider).handler();
  }

  test("check runs its rule: an upgrade passes, a downgrade is refused with the rule's reason", async () => {
    const provider = await hostedGuard();
    expect(await provider.check!({ version: "1.0.0" }, { version: "1.1.0" })).toEqual({
      inputs: { version: "1.1.0" },
      failures: [],
    });
    const refused = await provider.check!({ version: "1.2.0" }, { version: "1.0.0" });
    expect(refused.failures).toEqual(checkVersionChange({ version: "1.2.0" }, { version: "1.0.0" }));
    expect(refused.failures?.[0].reason).toContain("from 1.2.0 down to 1.0.0");
  });

  test("diff, create and update record the version", async () => {
    const provider = await hostedGuard();
    expect(await provider.diff!("schema-guard", { version: "1.0.0" }, { version: "1.0.0" })).toEqual({
      changes: false,
    });
    expect(await provider.create!({ version: "1.0.0" })).toEqual({
      id: "schema-guard",
      outs: { version: "1.0.0", previousVersion: "none" },
    });
    expect(await provider.update!("schema-guard", { version: "1.0.0" }, { version: "1.1.0" })).toEqual({
      outs: { version: "1.1.0", previousVersion: "1.0.0" },
    });
  });
});
