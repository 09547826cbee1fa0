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
 * reading sent to the two edge nodes meanwhile exactly once. The secrets reach the tasks as swarm
 * secrets: no service's spec (`docker service inspect`) holds a secret value, and the services work.
 */
import * as http from "http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { sleep, waitFor } from "../support/exec";
import { changes, RealStack, type EngineStep } from "../support/real-stack";
import { lastLine, runScript } from "../support/run-script";
import { SECRETS, tempDir } from "../support/standin-stack";
import { startSwarm, type Swarm, type SwarmNode } from "../support/swarm";
import {
  apiHealth,
  duplicatesOf,
  meters,
  nodesOf,
  placeStack,
  readingsOf,
  runningTasks,
  swarmConfig,
  swarmServices,
  swarmStateDisagreements,
  type SwarmPlacement,
  type SwarmStack,
} from "../support/swarm-stack";

const MINUTE = 60_000;
// Overridable so that two checkouts on one machine can run this file at once (each its own swarm).
const PREFIX = process.env.SWARM_TEST_PREFIX ?? "swe";
const STACK = "swarm-engine";
let swarm: Swarm;
let stack: RealStack;
let placement: SwarmPlacement;
/** The placed stack with its prefix, as the shared read-back helpers take it. */
let s: SwarmStack;
let data: SwarmNode;
let app: SwarmNode;
let workers: SwarmNode;
const START_TIMEOUT_SECONDS = 90;

const config = (version: string, backupDir: string, startTimeoutSeconds?: number) =>
  swarmConfig(placement, version, backupDir, { prefix: PREFIX, startTimeoutSeconds });

/**
 * Each secret value as it may be written: as it is, and percent-encoded (inside DATABASE_URL and
 * AMQP_CONNECTION_STRING).
 */
const SECRET_FORMS = [...new Set(Object.values(SECRET_VALUES).flatMap((v) => [v, encodeURIComponent(v)]))];

/** `docker service inspect` of every service of the stack, as the manager shows it. */
async function inspectServices(): Promise<{ name: string; text: string; spec: any }[]> {
  const names = Object.keys(await runningTasks(s));
  const out = await swarm.docker(swarm.manager, ["service", "inspect", ...names]);
  return (JSON.parse(out.stdout) as any[]).map((s) => ({ name: s.Spec.Name, text: JSON.stringify(s), spec: s.Spec }));
}

/** The application image of VERSION by digest, as the manager's pull resolved it (what the services run). */
async function repoDigest(version: string): Promise<string> {
  const ref = `${placement.registry}/utilitarian-standin/utilitarian:${version}`;
  const out = await swarm.docker(swarm.manager, ["image", "inspect", "-f", "{{index .RepoDigests 0}}", ref]);
  if (out.code !== 0 || !out.stdout.includes("@sha256:")) throw new Error(`no digest of ${ref}: ${out.stderr}`);
  return out.stdout.trim();
}

/** pull.sh as the deployment runs it, against this swarm. */
const runPull = (pullImages: string, nodeHosts = `${app.name}=${app.host} ${workers.name}=${workers.host}`) =>
  runScript("pull.sh", { DOCKER_HOST: swarm.manager.host, SWARM_NODE_HOSTS: nodeHosts, PULL_IMAGES: pullImages });

/** GET on a node's Engine API (its unix socket): cheaper than a docker CLI process, polled often. */
function engineGet(node: SwarmNode, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: node.host.replace(/^unix:\/\//, ""), path, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(body))));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/**
 * Watches every node's running beat containers until stopped: the most seen at once in the whole
 * swarm, and how many looks were taken. A node whose engine does not answer (stopped) runs none.
 */
function watchBeat(): { stop: () => Promise<{ most: number; looks: number; last: number }> } {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.name=${PREFIX}-beat`] }));
  let most = 0;
  let looks = 0;
  let last = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const counts = await Promise.all(
        swarm.nodes.map((n) =>
          engineGet(n, `/containers/json?filters=${filters}`).then(
            (list) => (list as unknown[]).length,
            () => 0,
          ),
        ),
      );
      last = counts.reduce((a, b) => a + b, 0);
      most = Math.max(most, last);
      looks++;
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { most, looks, last };
    },
  };
}

beforeAll(async () => {
  swarm = await startSwarm({ prefix: PREFIX });
  placement = await placeStack(swarm);
  s = { prefix: PREFIX, ...placement };
  ({ data, app, workers } = placement);
  stack = new RealStack(STACK, SECRETS);
  await stack.init();
}, 20 * MINUTE);

afterAll(async () => {
  await swarm?.stop();
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
      expect(nodesOf(service("postgres"))).toEqual([data.name]);
      expect(nodesOf(service("rabbitmq"))).toEqual([data.name]);
      for (const key of ["api", "beat", "processor", "poster"]) expect(nodesOf(service(key)), key).toEqual([app.name]);
      expect(service("beat")).toHaveLength(1);
      expect(service("worker-default")).toHaveLength(2);
      expect(nodesOf(service("worker-default"))).toEqual([workers.name]);
      // One UDP server on each edge node, none on the manager.
      expect(nodesOf(service("udp-server"))).toEqual([app.name, workers.name].sort());
      expect(service("udp-server")).toHaveLength(2);
      expect(await apiHealth(s)).toBe(200);
      expect((run.logs.get(`${PREFIX}-verify`) ?? []).join("\n")).toMatch(/verify: all checks passed/);
      // Secrets never reach the engine's output.
      for (const secret of SECRET_FORMS) expect(preview.stdout + run.stdout + run.stderr).not.toContain(secret);
      // Nor any service's spec: each secret variable is a swarm secret mounted in its tasks, which
      // the loader exports before the task's command (the API healthy and verify passed above).
      const inspected = await inspectServices();
      expect(inspected.map((s) => s.name).sort()).toEqual(Object.keys(installed).sort());
      for (const s of inspected) {
        for (const secret of SECRET_FORMS) expect(s.text, `${s.name} holds a secret`).not.toContain(secret);
        const container = s.spec.TaskTemplate.ContainerSpec;
        const env: string[] = container.Env ?? [];
        for (const name of ["DATABASE_URL", "SECRET_KEY", "AMQP_CONNECTION_STRING", "UTILITARIAN_AUTH_TOKEN"])
          expect(
            env.filter((e) => e.startsWith(`${name}=`)),
            `${s.name} ${name}`,
          ).toEqual([]);
        expect(container.Command, s.name).toEqual(["sh", "/run/secrets/utilitarian-load-env"]);
        expect(
          (container.Secrets ?? []).map((x: any) => x.File.Name),
          s.name,
        ).toContain("utilitarian-load-env");
      }
      const files = (key: string) =>
        inspected
          .find((s) => s.name === `${PREFIX}-${key}`)!
          .spec.TaskTemplate.ContainerSpec.Secrets.map((x: any) => x.File.Name)
          .sort();
      // STANDIN_ACCEPTED_TOKEN: the stand-in API's apiSecretEnv entry, the token it accepts.
      expect(files("api")).toEqual([
        "utilitarian-env.AMQP_CONNECTION_STRING",
        "utilitarian-env.DATABASE_URL",
        "utilitarian-env.SECRET_KEY",
        "utilitarian-env.STANDIN_ACCEPTED_TOKEN",
        "utilitarian-load-env",
      ]);
      expect(files("poster")).toEqual([
        "utilitarian-env.AMQP_CONNECTION_STRING",
        "utilitarian-env.UTILITARIAN_AUTH_TOKEN",
        "utilitarian-load-env",
      ]);
      expect(files("postgres")).toEqual(["utilitarian-env.POSTGRES_PASSWORD", "utilitarian-load-env"]);
      expect(files("rabbitmq")).toEqual(["utilitarian-env.RABBITMQ_DEFAULT_PASS", "utilitarian-load-env"]);
      // The tasks got the values: the API answers and verify's migrations check ran manage.py
      // through the loader against PostgreSQL; the upgrade below stores readings through RabbitMQ,
      // the processor and the poster.
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
      const stream = meters(s, [app, workers], "swm", 200);
      const beat = watchBeat();
      stack.configure(config("1.1.0", backupDir));
      const run = await stack.up();
      const sent = await stream.stop();
      const beats = await beat.stop();
      expect(run.code, run.stdout + run.stderr).toBe(0);
      // Never two beats (the old one is deleted, its task stopped, before the new one is created).
      expect(beats.looks).toBeGreaterThan(40);
      expect(beats.most).toBe(1);
      expect(beats.last).toBe(1);
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
      // The nodes' pull: done before the backup, so before anything stops, and each node that runs
      // a task of the new image has it, by the digest the services run.
      const pull = step("create-replacement", "pull");
      expect(before(pull, backup), "the nodes' pull before the backup").toBe(true);
      for (const f of [...followers, "api"]) expect(before(pull, step("delete-replaced", f)), f).toBe(true);
      const digest = await repoDigest("1.1.0");
      expect((run.logs.get(`${PREFIX}-pull`) ?? []).join("\n")).toMatch(
        /pull: 2 image\(s\) pulled, 4 already there, on 2 node\(s\)/,
      );
      for (const node of [app, workers])
        expect((await swarm.docker(node, ["image", "inspect", digest])).code, node.name).toBe(0);
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

  test(
    "with the registry stopped: the old version's image is still on each node and a task of it starts; the pull step passes for images the nodes have and stops, naming the node and the image, for one they lack or a node it cannot reach",
    async () => {
      const old = await repoDigest("1.0.0");
      const postgres = (
        await swarm.docker(swarm.manager, [
          "image",
          "inspect",
          "-f",
          "{{index .RepoDigests 0}}",
          `${placement.registry}/utilitarian-standin/postgres:15`,
        ])
      ).stdout.trim();
      await swarm.stopRegistry();
      try {
        // Nothing pruned 1.0.0 on the nodes that ran it.
        for (const node of [app, workers])
          expect((await swarm.docker(node, ["image", "inspect", old])).code, node.name).toBe(0);
        // What a rollback's re-run does first: nothing to pull, so no registry needed.
        const present = await runPull(
          `utilitarian.app ${old} ${PREFIX}-api\nutilitarian.workers ${old} ${PREFIX}-worker-default`,
        );
        expect(present.code, present.stderr).toBe(0);
        expect(present.stdout).toMatch(/pull: 0 image\(s\) pulled, 2 already there, on 2 node\(s\)/);
        // A task of the old version by digest starts on the app node without the registry (the
        // swarm's agent skips the pull of a digest it has).
        const check = `${PREFIX}-oldcheck`;
        const created = await swarm.docker(swarm.manager, [
          "service",
          "create",
          "--detach",
          "--name",
          check,
          "--constraint",
          "node.labels.utilitarian.app == true",
          "--restart-condition",
          "none",
          "--endpoint-mode",
          "dnsrr",
          old,
          "true",
        ]);
        expect(created.code, created.stderr).toBe(0);
        let state = "";
        await waitFor(
          async () => {
            state = (
              await swarm.docker(swarm.manager, [
                "service",
                "ps",
                check,
                "--no-trunc",
                "--format",
                "{{.CurrentState}} {{.Error}}",
              ])
            ).stdout.trim();
            return /^(Running|Complete|Failed)/.test(state);
          },
          2 * MINUTE,
          1000,
        );
        expect(state).not.toMatch(/No such image|rejected/i);
        await swarm.docker(swarm.manager, ["service", "rm", check]);
        // An image the app node lacks (PostgreSQL's is only on the data node) cannot come: the
        // step stops, naming the node, the image and the fix.
        const lacking = await runPull(`utilitarian.app ${postgres} ${PREFIX}-api`);
        expect(lacking.code).toBe(1);
        expect(lastLine(lacking.stderr)).toMatch(
          new RegExp(
            `pull: node ${app.name} \\(ID ${app.id}\\) cannot pull ${postgres.replace(/[.]/g, "\\.")}, which ${PREFIX}-api run there: .*nothing was stopped\\. Make the registry reachable from that node`,
          ),
        );
        // A labelled node that swarm.nodeHosts does not name: a config error, before any pull.
        const unnamed = await runPull(`utilitarian.workers ${old} ${PREFIX}-worker-default`, `${app.name}=${app.host}`);
        expect(unnamed.code).toBe(1);
        expect(lastLine(unnamed.stderr)).toMatch(
          new RegExp(
            `pull: swarm node ${workers.name} \\(ID ${workers.id}, labelled utilitarian.workers=true, runs ${PREFIX}-worker-default\\), but SWARM_NODE_HOSTS has no entry for it.*swarm\\.nodeHosts`,
          ),
        );
      } finally {
        await swarm.startRegistry();
      }
    },
    10 * MINUTE,
  );

  test(
    "the workers' node lost during 1.1.0 -> 1.2.0: the run fails at the workers after swarm.startTimeoutSeconds, the state true, one beat throughout; the node back, a re-run finishes the upgrade",
    async () => {
      // Meters on the app node only: a UDP server whose node is down receives nothing (README).
      const stream = meters(s, [app], "swl", 200);
      const beat = watchBeat();
      // A shorter wait, so that the run gives up within the test (it changes no service that stays:
      // every one that has the wait is replaced by this version anyway).
      stack.configure(config("1.2.0", backupDir, START_TIMEOUT_SECONDS));
      const failed = await stack.up([], {
        during: async (live) => {
          // The node goes as the old workers are deleted: after the backup, before anything starts.
          await live.began(`${PREFIX}-worker-default`);
          await swarm.stopNode(workers);
        },
      });
      expect(failed.code, failed.stdout + failed.stderr).not.toBe(0);
      const output = failed.stdout + failed.stderr;
      expect(output).toMatch(new RegExp(`${PREFIX}-worker-default[\\s\\S]*did not converge`));
      const worker = failed.steps.find((s) => s.op === "create-replacement" && s.name === `${PREFIX}-worker-default`);
      expect(worker?.failed).toBe(true);
      expect(worker && worker.endedAt - worker.startedAt, "waited for the workers' tasks").toBeGreaterThanOrEqual(
        START_TIMEOUT_SECONDS * 1000,
      );
      // Migrate and static ran; verify did not; the rest started.
      const created = changes(failed).filter((c) => c.startsWith("create-replacement "));
      for (const key of ["api", "migrate", "static", "beat", "processor", "poster"])
        expect(created, key).toContain(`create-replacement ${PREFIX}-${key}`);
      expect(created).not.toContain(`create-replacement ${PREFIX}-verify`);
      // The state is true: the service that never ran was removed, and the state does not hold it.
      const live = await swarmServices(s);
      expect(live.has(`${PREFIX}-worker-default`)).toBe(false);
      expect(swarmStateDisagreements(await stack.export(), live)).toEqual([]);
      expect(await apiHealth(s)).toBe(200);

      // What the operator does next (README): bring the node back, wait for it, run `pulumi up` again.
      await swarm.startNode(workers);
      await waitFor(
        async () =>
          (
            await swarm.docker(swarm.manager, ["node", "inspect", workers.id, "--format", "{{.Status.State}}"])
          ).stdout.trim() === "ready",
        2 * MINUTE,
        1000,
      );
      const resumed = await stack.up();
      const sent = await stream.stop();
      const beats = await beat.stop();
      expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
      // Only what the failed run left undone: the lost service and verify, no second backup, migrate
      // or static, nothing else restarted. (The old backup, migrate and image resources the failed
      // run had replaced are deleted now: the engine deletes replaced resources at a run's end.)
      const made = changes(resumed).filter((c) => !/^(delete|delete-replaced) /.test(c));
      expect([...new Set(made.map((c) => c.split(" ")[1]))].sort(), changes(resumed).join(", ")).toEqual([
        `${PREFIX}-verify`,
        `${PREFIX}-worker-default`,
      ]);
      expect((resumed.logs.get(`${PREFIX}-verify`) ?? []).join("\n")).toMatch(/verify: all checks passed/);
      const tasks = await runningTasks(s);
      expect(tasks[`${PREFIX}-worker-default`]).toHaveLength(2);
      expect(nodesOf(tasks[`${PREFIX}-udp-server`] ?? [])).toEqual([app.name, workers.name].sort());
      // One beat at every look, through the loss and the return.
      expect(beats.looks).toBeGreaterThan(100);
      expect(beats.most).toBe(1);
      expect(beats.last).toBe(1);
      await waitFor(async () => (await readingsOf(s, "swl")) >= sent, 3 * MINUTE, 1000);
      expect(await readingsOf(s, "swl")).toBe(sent);
      expect(await duplicatesOf(s, "swl")).toBe(0);
    },
    30 * MINUTE,
  );
});
