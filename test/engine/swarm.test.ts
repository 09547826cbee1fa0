/**
 * The swarm target under the real engine: `index.ts` with `target: swarm` on a swarm of three
 * nodes on this machine (test/fixtures/swarm.sh: a manager and two workers, each its own dockerd
 * in its own network namespace, the images in a local registry), the docker provider's stand-in
 * acting on the manager's engine. Placement: PostgreSQL and RabbitMQ on the manager (data), the
 * API, beat and edge followers on w1 (app), workers on w2, a UDP server on each of w1 and w2
 * (edge). Checked: a fresh install places every service where its label says and verify passes
 * against the API's tasks; a second run changes nothing and restarts no task; 1.0.0 -> 1.1.0 runs
 * the runbook's order (followers deleted before the API, migrate and static before they start
 * again, verify last), keeps PostgreSQL, RabbitMQ and the UDP servers' tasks, and stores every
 * reading sent to the two edge nodes meanwhile exactly once.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { waitFor } from "../support/exec";
import { changes, RealStack, type EngineStep } from "../support/real-stack";
import { SECRETS, STANDIN_IMAGES, tempDir } from "../support/standin-stack";
import {
  apiHealth,
  duplicatesOf,
  meters,
  nodesOf,
  readingsOf,
  runningTasks,
  startSwarmStack,
  swarmConfig,
  type SwarmStack,
} from "../support/swarm-stack";

const MINUTE = 60_000;
// Overridable so that two checkouts on one machine can run this file at once (each its own swarm).
const PREFIX = process.env.SWARM_TEST_PREFIX ?? "swe";
const STACK = "swarm-engine";
let s: SwarmStack;
let stack: RealStack;

const config = (version: string, backupDir: string) => swarmConfig(s, version, backupDir, { stopWriters: false });

beforeAll(async () => {
  s = await startSwarmStack(
    PREFIX,
    STANDIN_IMAGES.filter((i) => !/haproxy|utilitarian:1\.2\.0/.test(i)),
  );
  stack = new RealStack(STACK, SECRETS);
  await stack.init();
}, 20 * MINUTE);

afterAll(async () => {
  await s?.swarm.stop();
  stack?.remove();
}, 5 * MINUTE);

describe("the swarm target under the real engine, on three nodes", () => {
  const backupDir = tempDir("swarm-backups");
  let installed: Record<string, string[]> = {};

  test(
    "a fresh install places each service on the nodes of its label, publishes the API and the UDP servers on their nodes' addresses, and verifies",
    async () => {
      stack.configure(config("1.0.0", backupDir));
      const preview = await stack.up([], { preview: true });
      expect(preview.code, preview.stdout + preview.stderr).toBe(0);
      expect(preview.stdout).toMatch(new RegExp(`\\+ +docker:index:Service +${PREFIX}-api +create`));
      const run = await stack.up();
      expect(run.code, run.stdout + run.stderr).toBe(0);
      installed = await runningTasks(s);
      const service = (key: string) => installed[`${PREFIX}-${key}`] ?? [];
      expect(nodesOf(service("postgres"))).toEqual([s.data.name]);
      expect(nodesOf(service("rabbitmq"))).toEqual([s.data.name]);
      for (const key of ["api", "beat", "processor", "poster"])
        expect(nodesOf(service(key)), key).toEqual([s.app.name]);
      expect(service("beat")).toHaveLength(1);
      expect(service("worker-default")).toHaveLength(2);
      expect(nodesOf(service("worker-default"))).toEqual([s.workers.name]);
      // One UDP server on each edge node, none on the manager.
      expect(nodesOf(service("udp-server"))).toEqual([s.app.name, s.workers.name].sort());
      expect(service("udp-server")).toHaveLength(2);
      expect(await apiHealth(s)).toBe(200);
      expect((run.logs.get(`${PREFIX}-verify`) ?? []).join("\n")).toMatch(/verify: all checks passed/);
      // Secrets never reach the engine's output.
      for (const secret of Object.values(SECRET_VALUES)) expect(run.stdout + run.stderr).not.toContain(secret);
    },
    20 * MINUTE,
  );

  test(
    "a second run with nothing changed changes nothing and restarts no task",
    async () => {
      const run = await stack.up(["--expect-no-changes"]);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(changes(run)).toEqual([]);
      expect(await runningTasks(s)).toEqual(installed);
    },
    10 * MINUTE,
  );

  test(
    "1.0.0 -> 1.1.0 with meters pushing to both edge nodes: the runbook's order, the UDP servers, PostgreSQL and RabbitMQ untouched, every reading stored once",
    async () => {
      const stream = meters(s, [s.app, s.workers], "swm", 200);
      stack.configure(config("1.1.0", backupDir));
      const run = await stack.up();
      const sent = await stream.stop();
      expect(run.code, run.stdout + run.stderr).toBe(0);
      const step = (op: string, key: string): EngineStep => {
        const found = run.steps.find((s) => s.op === op && s.name === `${PREFIX}-${key}`);
        if (!found) throw new Error(`no ${op} of ${key}: ${changes(run).join(", ")}`);
        return found;
      };
      const before = (a: EngineStep, b: EngineStep) => a.end < b.start;
      const followers = ["beat", "worker-default", "processor", "poster"];
      const backup = step("create-replacement", "backup");
      const apiDeleted = step("delete-replaced", "api");
      const apiCreated = step("create-replacement", "api");
      const migrate = step("create-replacement", "migrate");
      const staticStep = step("create-replacement", "static");
      const verify = step("create-replacement", "verify");
      for (const f of followers) {
        const deleted = step("delete-replaced", f);
        const created = step("create-replacement", f);
        expect(before(backup, deleted), `backup before ${f} stops`).toBe(true);
        expect(before(deleted, apiDeleted), `${f} stops before the API`).toBe(true);
        expect(before(staticStep, created), `${f} starts after static`).toBe(true);
        expect(before(created, verify), `${f} starts before verify`).toBe(true);
      }
      expect(before(apiDeleted, apiCreated)).toBe(true);
      expect(before(apiCreated, migrate)).toBe(true);
      expect(before(migrate, staticStep)).toBe(true);
      // What keeps running: the engine touched none of them and their tasks are the same.
      const after = await runningTasks(s);
      for (const key of ["postgres", "rabbitmq", "udp-server"]) {
        expect(changes(run).filter((c) => c.endsWith(` ${PREFIX}-${key}`))).toEqual([]);
        expect(after[`${PREFIX}-${key}`], key).toEqual(installed[`${PREFIX}-${key}`]);
      }
      expect(await apiHealth(s)).toBe(200);
      // Every reading pushed to either edge node during the upgrade is stored, once.
      await waitFor(async () => (await readingsOf(s, "swm")) >= sent, 3 * MINUTE, 1000);
      expect(await readingsOf(s, "swm")).toBe(sent);
      expect(await duplicatesOf(s, "swm")).toBe(0);
      expect(sent).toBeGreaterThan(50);
    },
    25 * MINUTE,
  );
});
