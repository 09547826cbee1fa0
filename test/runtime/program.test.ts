import { describe, expect, test } from "vitest";
import { plain } from "../support/engine";
import { deploy } from "../unit/support/program";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { modelEngine, UNKNOWN, unknownOutputsEngine, type EngineHook, type ProgramRun } from "../harness";
import { isSecret } from "../harness/wire";
import { callsFor, customResources, explain, RUN_TIMEOUT_MS, runDev, showsASecret } from "./support";

/**
 * index.ts run as `pulumi preview` and `pulumi up` run it: the SDK's program entry started as
 * the Node language host starts it, the schema guard checked, diffed, created and updated by the
 * SDK's real dynamic provider host. The runs build on each other like a stack's history:
 * install 1.0.0, upgrade to 1.1.0, then try to go back and re-run unchanged.
 */

const GUARD = "utilitarian-dev-schema-guard";
const BACKUP = "utilitarian-dev-backup";
const API = "utilitarian-dev-api";

/** The default provider of package pulumi-nodejs, set up as the provider registry does. */
const PROVIDER_SETUP = [
  "Handshake: UNIMPLEMENTED",
  "GetPluginInfo: version 3.248.0",
  "CheckConfig: UNIMPLEMENTED",
  "Configure: acceptSecrets=false supportsPreview=false",
];

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

const UDP_SERVER = "utilitarian-dev-udp-server";

/**
 * Holds the backup's answer until the UDP server (which waits for nothing of the backup) has
 * registered and no registration arrived for a while; notes what registered meanwhile.
 */
function gateOnBackup(): { hook: EngineHook; registeredWhileHeld: string[] } {
  const model = modelEngine();
  const seen: string[] = [];
  const registeredWhileHeld: string[] = [];
  const pause = () => new Promise((resolve) => setTimeout(resolve, 500));
  const hook: EngineHook = {
    register: async (r) => {
      seen.push(r.name);
      if (r.name === BACKUP) {
        for (let waited = 0; !seen.includes(UDP_SERVER) && waited < 60; waited++) await pause();
        for (let count = -1; count !== seen.length; count = seen.length) await pause();
        registeredWhileHeld.push(...seen);
      }
      return model.register(r);
    },
  };
  return { hook, registeredWhileHeld };
}

const gate = gateOnBackup();
const firstPreview = once(() => runDev({}, { preview: true }));
const install = once(() => runDev({}, { preview: false, engine: gate.hook }));
const upgrade = once(async () => runDev({ version: "1.1.0" }, { preview: false, priorState: (await install()).state }));
const downgradePreview = once(async () =>
  runDev({ version: "1.0.0" }, { preview: true, priorState: (await upgrade()).state }),
);
const rerun = once(async () => runDev({ version: "1.1.0" }, { preview: false, priorState: (await upgrade()).state }));

async function succeeded(run: Promise<ProgramRun>): Promise<ProgramRun> {
  const result = await run;
  expect(result.succeeded, explain(result)).toBe(true);
  return result;
}

describe("first install, preview: the real program under the real runtime", () => {
  test(
    "the program registers the resources the in-process mock run registers",
    async () => {
      const run = await succeeded(firstPreview());
      const { mocks } = await deploy({}, { prefix: "utilitarian-dev" });
      const resources = (list: { type: string; name: string }[]) => list.map((r) => `${r.type} ${r.name}`).sort();
      expect(run.registrations[0]).toMatchObject({
        type: "pulumi:pulumi:Stack",
        name: "utilitarian-dev",
        custom: false,
      });
      expect(resources(run.registrations.slice(1))).toEqual(resources(mocks.registrations));
      expect(customResources(run)).toContain(`pulumi-nodejs:dynamic/utilitarian-schema-guard:Resource ${GUARD}`);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "every registration carries the options and edges the mock run recorded (the engine's ordering input)",
    async () => {
      const run = await succeeded(firstPreview());
      const { mocks } = await deploy({}, { prefix: "utilitarian-dev" });
      const edges = (r: {
        name: string;
        dependencies: string[];
        propertyDependencies: Record<string, string[]>;
        protect: boolean;
        retainOnDelete: boolean;
        replaceOnChanges: string[];
      }) => [
        r.name,
        {
          dependencies: [...r.dependencies].sort(),
          propertyDependencies: r.propertyDependencies,
          protect: r.protect,
          retainOnDelete: r.retainOnDelete,
          replaceOnChanges: r.replaceOnChanges,
        },
      ];
      const byName = (list: [string, unknown][]) => Object.fromEntries(list);
      expect(byName(run.registrations.slice(1).map(edges) as [string, unknown][])).toEqual(
        byName(mocks.registrations.map(edges) as [string, unknown][]),
      );
      expect(run.registrations.find((r) => r.name === "utilitarian-dev-postgres-data")).toMatchObject({
        protect: true,
        retainOnDelete: true,
      });
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "the real dynamic provider host checks the schema guard; a preview neither diffs nor creates it",
    async () => {
      const run = await succeeded(firstPreview());
      expect(callsFor(run, "default")).toEqual(PROVIDER_SETUP);
      expect(callsFor(run, GUARD)).toEqual(["Check: ok"]);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "the stack outputs are the version, the API's URL, the container names and the backup",
    async () => {
      const run = await succeeded(firstPreview());
      expect(run.outputs).toMatchObject({
        version: "1.0.0",
        apiUrl: "http://127.0.0.1:8000",
        lastBackup: "/backups/utilitarian-test.dump",
        containers: { api: API, beat: "utilitarian-dev-beat", "udp-server": "utilitarian-dev-udp-server" },
      });
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "as a first install really previews (no IDs, computed outputs unknown), the guard is still checked",
    async () => {
      const run = await succeeded(runDev({}, { preview: true, engine: unknownOutputsEngine() }));
      expect(callsFor(run, GUARD)).toEqual(["Check: ok"]);
      expect(run.registrations.find((r) => r.name === API)?.inputs.image).toBe(UNKNOWN);
      expect(run.outputs).toMatchObject({ version: "1.0.0", lastBackup: UNKNOWN });
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "a preview writes no state",
    async () => {
      const run = await succeeded(firstPreview());
      expect(run.state.size).toBe(0);
    },
    RUN_TIMEOUT_MS,
  );
});

describe("first install, up", () => {
  test(
    "the host checks and creates the guard, whose outputs reach the stack and the state",
    async () => {
      const run = await succeeded(install());
      expect(callsFor(run, GUARD)).toEqual(["Check: ok", "Create"]);
      expect(run.state.get(GUARD)).toMatchObject({
        id: "schema-guard",
        outputs: { version: "1.0.0", previousVersion: "none" },
      });
      expect(run.outputs.version).toBe("1.0.0");
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "while the backup's answer is held, nothing that waits for it registers (the guard, then the API)",
    async () => {
      const run = await succeeded(install());
      expect(gate.registeredWhileHeld).toContain(BACKUP);
      expect(gate.registeredWhileHeld).toContain(UDP_SERVER);
      expect(gate.registeredWhileHeld).not.toContain(API);
      const seq = (name: string) => run.registrations.find((r) => r.name === name)!.seq;
      expect(seq(GUARD)).toBeGreaterThan(seq(BACKUP));
      expect(run.registrations.find((r) => r.name === GUARD)!.dependencies).toContain(BACKUP);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "secrets reach the records wrapped as secrets and never what a user sees",
    async () => {
      const run = await succeeded(install());
      const backup = run.registrations.find((r) => r.name === BACKUP)!;
      expect(isSecret(backup.inputs.environment)).toBe(true);
      expect(JSON.stringify(plain(backup.inputs.environment)).includes(SECRET_VALUES.databaseAdminPassword)).toBe(true);
      expect(showsASecret(run)).toBe(false);
    },
    RUN_TIMEOUT_MS,
  );
});

describe("later runs against the state of earlier ones", () => {
  test(
    "an upgrade: the host diffs the guard (changes) and updates it",
    async () => {
      const run = await succeeded(upgrade());
      expect(callsFor(run, "default")).toContain("DiffConfig: UNIMPLEMENTED");
      expect(callsFor(run, GUARD)).toEqual(["Check: ok", "Diff: DIFF_SOME", "Update"]);
      expect(run.state.get(GUARD)?.outputs).toMatchObject({ version: "1.1.0", previousVersion: "1.0.0" });
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "lowering the version is refused at preview with the guard's reason, before the API registers",
    async () => {
      const run = await downgradePreview();
      expect(run.succeeded).toBe(false);
      expect(callsFor(run, GUARD)).toEqual(["Check: failures: version"]);
      const errors = run.diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
      expect(errors).toEqual([
        expect.stringContaining(
          "property version value {1.0.0} has a problem: Refusing to go from 1.1.0 down to 1.0.0",
        ),
      ]);
      expect(run.registrations.map((r) => r.name)).not.toContain(API);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "the same version again: the host's Diff reports no change and the guard is not updated",
    async () => {
      const before = (await upgrade()).state.get(GUARD);
      const run = await succeeded(rerun());
      expect(callsFor(run, GUARD)).toEqual(["Check: ok", "Diff: DIFF_NONE"]);
      expect(run.state.get(GUARD)?.outputs).toEqual(before?.outputs);
    },
    RUN_TIMEOUT_MS,
  );
});
