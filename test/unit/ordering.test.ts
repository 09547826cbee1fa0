import { describe, expect, test } from "vitest";
import { deploy } from "./support/program";
import type { RecordingMocks } from "./support/mocks";

/**
 * Gates: the mock holds back one resource's answer. Whatever must wait for it (through dependsOn
 * or an input) cannot register meanwhile, exactly as the engine would not step it.
 */
async function registeredWhileHeld(held: string): Promise<{ before: Set<string>; after: Set<string> }> {
  let mocks!: RecordingMocks;
  let release!: () => void;
  const run = deploy(
    { version: "1.1.0" },
    {
      before: (m) => {
        mocks = m;
        release = m.hold(held);
      },
    },
  );
  await new Promise((r) => setTimeout(r, 50));
  await mocks.idle(150);
  const before = new Set(mocks.registrations.map((r) => r.name));
  release();
  await run;
  await mocks.idle();
  return { before, after: new Set(mocks.registrations.map((r) => r.name)) };
}

const FOLLOWERS = ["u-beat", "u-worker-default-1", "u-processor", "u-poster"];

describe("nothing that must wait registers before the step it waits for answers", () => {
  test("while the backup runs: images are pulled and the UDP server is kept, but the API and its followers wait", async () => {
    const { before, after } = await registeredWhileHeld("u-backup");
    for (const r of ["u-image-app", "u-image-processor", "u-database", "u-backup", "u-udp-server"])
      expect(before.has(r), r).toBe(true);
    for (const r of ["u-schema-guard", "u-api", "u-migrate", "u-static", "u-verify", ...FOLLOWERS])
      expect(before.has(r), r).toBe(false);
    for (const r of ["u-schema-guard", "u-api", "u-migrate", "u-static", "u-verify", ...FOLLOWERS])
      expect(after.has(r), r).toBe(true);
  });

  test("the backup waits for the new images and the database", async () => {
    const { before } = await registeredWhileHeld("u-image-app");
    expect(before.has("u-backup")).toBe(false);
    const db = await registeredWhileHeld("u-database");
    expect(db.before.has("u-backup")).toBe(false);
  });

  test("while migrate runs: the new API is up, nothing else starts on the new version", async () => {
    const { before, after } = await registeredWhileHeld("u-migrate");
    expect(before.has("u-api")).toBe(true);
    for (const r of ["u-static", "u-verify", ...FOLLOWERS]) expect(before.has(r), r).toBe(false);
    for (const r of ["u-static", "u-verify", ...FOLLOWERS]) expect(after.has(r), r).toBe(true);
  });

  test("while collectstatic and compress run: beat, workers and API-dependent edges still wait", async () => {
    const { before } = await registeredWhileHeld("u-static");
    for (const r of ["u-verify", ...FOLLOWERS]) expect(before.has(r), r).toBe(false);
  });

  test("verify waits for every service container", async () => {
    const { before } = await registeredWhileHeld("u-poster");
    expect(before.has("u-verify")).toBe(false);
    const udp = await registeredWhileHeld("u-udp-server");
    expect(udp.before.has("u-verify")).toBe(false);
  });

  test("the API waits for the schema guard, which waits for the backup", async () => {
    const { before } = await registeredWhileHeld("u-schema-guard");
    expect(before.has("u-api")).toBe(false);
  });
});
