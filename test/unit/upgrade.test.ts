import { describe, expect, test } from "vitest";
import { actions, planSteps, runUp, stateOf, type Step } from "../support/engine";
import { deploy } from "./support/program";

const entries = (steps: Step[]) => steps.map((s) => `${s.op} ${s.name}`);
const at = (steps: Step[], entry: string) => {
  const i = entries(steps).indexOf(entry);
  if (i < 0) throw new Error(`no step '${entry}' in:\n${entries(steps).join("\n")}`);
  return i;
};
/** Where `name`'s new physical resource was made: created, replaced, or re-created after its deletion as a dependant. */
const ran = (steps: Step[], name: string) => {
  const i = steps.findIndex((s) => s.name === name && (s.op === "create" || s.op === "replace"));
  if (i < 0) throw new Error(`${name} did not run in:\n${entries(steps).join("\n")}`);
  return i;
};

async function stepsBetween(before: Record<string, unknown>, after: Record<string, unknown>): Promise<Step[]> {
  const old = await deploy(before);
  const next = await deploy(after);
  return planSteps(old.mocks.registrations, next.mocks.registrations);
}

const FOLLOWERS = ["u-beat", "u-worker-default-1", "u-processor", "u-poster"];

describe("one `pulumi up`, stepped as the engine orders it (model: test/support/engine.ts)", () => {
  test("a version bump carries out the runbook in order", async () => {
    const steps = actions(await stepsBetween({ version: "1.0.0" }, { version: "1.1.0" }));
    // (1) new image pulled, then the verified backup, before anything stops
    expect(at(steps, "replace u-image-app")).toBeLessThan(at(steps, "replace u-backup"));
    const firstStop = Math.min(
      ...steps.map((s, i) => (s.op.startsWith("delete") && s.type.endsWith("Container") ? i : Infinity)),
    );
    expect(at(steps, "replace u-backup")).toBeLessThan(firstStop);
    // (2) followers stopped, (3) the API last
    for (const f of FOLLOWERS)
      expect(at(steps, `delete-replaced ${f}`)).toBeLessThan(at(steps, "delete-replaced u-api"));
    expect(
      steps
        .filter((s) => s.op === "delete-replaced" && s.because === "u-api" && s.type.endsWith("Container"))
        .map((s) => s.name)
        .sort(),
    ).toEqual([...FOLLOWERS].sort());
    // (4) only the new API, (5) migrate, (6) collectstatic + compress
    expect(at(steps, "delete-replaced u-api")).toBeLessThan(at(steps, "replace u-api"));
    expect(at(steps, "replace u-api")).toBeLessThan(at(steps, "replace u-migrate"));
    expect(at(steps, "replace u-migrate")).toBeLessThan(ran(steps, "u-static"));
    // (7) the rest on the new version, (8) verify
    for (const f of FOLLOWERS) {
      expect(at(steps, `replace ${f}`)).toBeGreaterThan(ran(steps, "u-static"));
      expect(at(steps, `replace ${f}`)).toBeLessThan(at(steps, "replace u-verify"));
    }
  });

  test("the UDP server, PostgreSQL, RabbitMQ, the database and the volumes are not touched by an API upgrade", async () => {
    const steps = actions(await stepsBetween({ version: "1.0.0" }, { version: "1.1.0" }));
    const touched = new Set(steps.map((s) => s.name));
    for (const untouched of [
      "u-udp-server",
      "u-postgres",
      "u-rabbitmq",
      "u-database",
      "u-role",
      "u-postgres-data",
      "u-rabbitmq-data",
      "u-network",
    ]) {
      expect(touched.has(untouched), untouched).toBe(false);
    }
  });

  test("each maintenance step runs exactly once per version", async () => {
    const steps = actions(await stepsBetween({ version: "1.0.0" }, { version: "1.1.0" }));
    for (const step of ["u-backup", "u-migrate", "u-static"]) {
      expect(
        steps.filter((s) => s.name === step && (s.op === "replace" || s.op === "create")),
        step,
      ).toHaveLength(1);
    }
  });

  test("nothing changed: nothing runs and nothing restarts", async () => {
    expect(actions(await stepsBetween({ version: "1.1.0" }, { version: "1.1.0" }))).toEqual([]);
  });

  test("only an edge service's version changed: only that service is replaced, no backup or migration", async () => {
    const steps = actions(
      await stepsBetween({ version: "1.1.0" }, { version: "1.1.0", processor: { version: "1.1.0" } }),
    );
    // verify's triggers hold the container IDs, so the engine drops it first (it has no delete
    // command: nothing runs) and runs it again after the new container started.
    expect(entries(steps)).toEqual([
      "replace u-image-processor",
      "delete-replaced u-verify",
      "delete-replaced u-processor",
      "replace u-processor",
      "replace u-verify",
      "delete-replaced u-image-processor",
    ]);
    expect(steps.find((s) => s.name === "u-verify")!.because).toBe("u-processor");
  });

  test("the UDP server's own upgrade touches nothing else", async () => {
    const steps = actions(
      await stepsBetween({ version: "1.1.0" }, { version: "1.1.0", udpServer: { version: "1.1.0" } }),
    );
    expect(steps.filter((s) => s.type.endsWith("Container")).map((s) => s.name)).toEqual([
      "u-udp-server",
      "u-udp-server",
    ]);
    expect(steps.some((s) => ["u-backup", "u-migrate", "u-api"].includes(s.name))).toBe(false);
  });

  test("switching the UDP server to the host's network replaces it and RabbitMQ (now published on loopback), nothing else; the broker's data volume stays", async () => {
    const steps = actions(
      await stepsBetween({ version: "1.1.0" }, { version: "1.1.0", udpServer: { version: "1.0.0", network: "host" } }),
    );
    expect(
      steps
        .filter((s) => s.type.endsWith("Container"))
        .map((s) => `${s.op} ${s.name}`)
        .sort(),
    ).toEqual([
      "delete-replaced u-rabbitmq",
      "delete-replaced u-udp-server",
      "replace u-rabbitmq",
      "replace u-udp-server",
    ]);
    expect(steps.some((s) => ["u-backup", "u-migrate", "u-api", "u-rabbitmq-data"].includes(s.name))).toBe(false);
    // And back: the same two, with the network edge again.
    const back = actions(
      await stepsBetween({ version: "1.1.0", udpServer: { version: "1.0.0", network: "host" } }, { version: "1.1.0" }),
    );
    expect(
      back
        .filter((s) => s.type.endsWith("Container"))
        .map((s) => s.name)
        .sort(),
    ).toEqual(["u-rabbitmq", "u-rabbitmq", "u-udp-server", "u-udp-server"]);
  });

  test("only worker settings changed: only the workers are replaced", async () => {
    const steps = actions(
      await stepsBetween(
        { version: "1.1.0", workers: [{ name: "default", count: 2 }] },
        { version: "1.1.0", workers: [{ name: "default", count: 2, concurrency: 8 }] },
      ),
    );
    // Both workers register at once and their chains run side by side; verify (its triggers hold the
    // workers' IDs) is deleted in the chain of the worker that registered first and runs again last.
    expect(entries(steps).sort()).toEqual([
      "delete-replaced u-verify",
      "delete-replaced u-worker-default-1",
      "delete-replaced u-worker-default-2",
      "replace u-verify",
      "replace u-worker-default-1",
      "replace u-worker-default-2",
    ]);
    for (const w of ["u-worker-default-1", "u-worker-default-2"])
      expect(at(steps, `delete-replaced ${w}`)).toBeLessThan(at(steps, `replace ${w}`));
    expect(at(steps, "delete-replaced u-verify")).toBeLessThan(at(steps, "delete-replaced u-worker-default-1"));
    expect(at(steps, "replace u-verify")).toBe(steps.length - 1);
  });

  test("only API settings changed: the API and its followers are replaced and get static files again; no backup, no migration", async () => {
    const steps = actions(
      await stepsBetween({ version: "1.1.0" }, { version: "1.1.0", api: { env: { UTILITARIAN_LOGLEVEL: "debug" } } }),
    );
    const names = new Set(steps.map((s) => s.name));
    for (const n of ["u-api", "u-static", "u-verify", ...FOLLOWERS]) expect(names.has(n), n).toBe(true);
    for (const n of ["u-backup", "u-migrate", "u-udp-server", "u-postgres", "u-image-app"])
      expect(names.has(n), n).toBe(false);
    expect(at(steps, "replace u-api")).toBeLessThan(ran(steps, "u-static"));
    for (const f of FOLLOWERS) expect(at(steps, `replace ${f}`)).toBeGreaterThan(ran(steps, "u-static"));
  });

  test("a health-check-only change replaces the API delete-before-create; without the option its create would hit the fixed name", async () => {
    const old = await deploy({ version: "1.1.0" });
    const next = await deploy({ version: "1.1.0", api: { healthTimeoutSeconds: 300 } });
    const api = (steps: Step[]) => steps.find((s) => s.name === "u-api" && s.op === "replace")!;
    const declared = planSteps(old.mocks.registrations, next.mocks.registrations);
    expect(api(declared).replaceKeys).toEqual(["healthcheck"]);
    expect(api(declared).deleteBeforeReplace).toBe(true);
    expect(at(declared, "delete-replaced u-api")).toBeLessThan(at(declared, "replace u-api"));
    // The bridged provider asks for delete-before-replace only for its own replace keys (not replaceOnChanges).
    const withoutOption = (rs: typeof next.mocks.registrations) =>
      rs.map((r) => ({ ...r, deleteBeforeReplace: undefined }));
    const bare = planSteps(withoutOption(old.mocks.registrations), withoutOption(next.mocks.registrations));
    expect(api(bare).deleteBeforeReplace).toBe(false);
    expect(api(bare).fixedNameConflict).toContain("create-before-delete of a fixed-name container");
  });

  test("a resumed run after a failed migration runs only what is left (no second backup, no second stop)", async () => {
    const old = await deploy({ version: "1.0.0" });
    const next = await deploy({ version: "1.2.0" });
    // Carry the upgrade out in the model until migrate fails: what finished is in the state.
    const failing = await runUp(stateOf(old.mocks.registrations), next.mocks.registrations, {
      execute: async (step) => {
        if (step.name === "u-migrate") throw new Error("migration 0004 failed");
      },
    });
    expect(failing.failed?.step.name).toBe("u-migrate");
    // The followers were deleted ahead of the API: they stay in the state, pending their replacement.
    for (const f of FOLLOWERS) expect(failing.state.get(f)?.pendingReplacement, f).toBe(true);
    expect(failing.state.get("u-api")?.inputs).toEqual(next.mocks.get("u-api").inputs);

    const steps = actions(planSteps(failing.state, next.mocks.registrations));
    expect(steps.some((s) => ["u-backup", "u-api"].includes(s.name) && s.op !== "delete-replaced")).toBe(false);
    // Only the old backup copy the failed run left for deletion goes (a Command without a delete: nothing runs).
    expect(steps.filter((s) => s.name === "u-backup").map((s) => `${s.op} ${s.old?.delete}`)).toEqual([
      "delete-replaced true",
    ]);
    expect(steps.some((s) => s.op.startsWith("delete") && s.type.endsWith("Container"))).toBe(false);
    expect(at(steps, "replace u-migrate")).toBeLessThan(ran(steps, "u-static"));
    for (const f of FOLLOWERS) expect(at(steps, `replace ${f}`)).toBeGreaterThan(ran(steps, "u-static"));
  });
});

describe("the property edges that make the engine stop followers before the API", () => {
  test("beat, workers, processor and poster take an input from the API container on a field that forces replacement", async () => {
    const { mocks } = await deploy();
    for (const f of FOLLOWERS) {
      expect(mocks.get(f).propertyDependencies.labels, f).toContain("u-api");
    }
    for (const edge of ["u-processor", "u-poster"]) {
      expect(mocks.get(edge).propertyDependencies.envs).toContain("u-api");
      expect(JSON.stringify(mocks.get(edge).inputs.envs)).toContain("UTILITARIAN_BASE_URL=http://u-api:8000");
    }
  });

  test("independent services have no edge on the API", async () => {
    const { mocks } = await deploy({ poster: { version: "1.0.0", dependsOnApi: false } });
    for (const name of ["u-udp-server", "u-poster", "u-postgres", "u-rabbitmq"]) {
      const edges = Object.values(mocks.get(name).propertyDependencies).flat();
      expect(edges, name).not.toContain("u-api");
      expect(mocks.get(name).dependencies, name).not.toContain("u-api");
    }
    expect(JSON.stringify(mocks.get("u-poster").inputs.envs)).toContain("UTILITARIAN_BASE_URL=http://api:8000");
  });

  test("containers use the pulled image's ID, so a new pull replaces them", async () => {
    const { mocks } = await deploy();
    expect(mocks.get("u-api").propertyDependencies.image).toEqual(["u-image-app"]);
    expect(mocks.get("u-udp-server").propertyDependencies.image).toEqual(["u-image-udpServer"]);
    expect(mocks.get("u-image-app").inputs).toEqual({ name: "quay.io/pwit/utilitarian:1.0.0", keepLocally: true });
  });
});
