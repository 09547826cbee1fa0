/**
 * migrate, static and verify on a Docker Swarm of two nodes (test/support/swarm.ts): the API is a
 * swarm service of two replicas, one on each node, and the scripts reach each task's container
 * through its node's engine (SWARM_NODE_HOSTS); and the writers' services scaled to 0 around a step
 * (writers-stopped.sh). What the one host does is test/real/steps.test.ts and test/real/writers.test.ts.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exec, waitFor } from "../support/exec";
import { lastLine, runScript, SCRIPTS_DIR } from "../support/run-script";
import { requireEngineAndImages, tempDir } from "../support/standin-stack";
import { startSwarm, type Swarm, type SwarmNode } from "../support/swarm";

// Overridable so that two checkouts on one machine can run this file at once (each its own swarm).
const PREFIX = process.env.SWARM_TEST_PREFIX ?? "sststeps";
const NET = "sst-steps-net";
const PG = "sst-steps-postgres";
const API = "sst-steps-api";
const EDGE = "sst-steps-edge";
const CRASH = "sst-steps-crash";
const IMAGES = ["utilitarian-standin/utilitarian:1.1.0", "utilitarian-standin/postgres:15"];
const PASSWORD = "sst-steps-pw-7Qm";
const T = 180_000;

let swarm: Swarm;
let worker: SwarmNode;
/** SWARM_NODE_HOSTS naming both nodes by host name, as `docker node ls` shows them. */
let nodeHosts = "";

/** `docker ARGS` on NODE; throws with its stderr on failure. */
async function on(node: SwarmNode, args: string[]): Promise<string> {
  const result = await swarm.docker(node, args);
  if (result.code !== 0)
    throw new Error(`docker ${args.slice(0, 3).join(" ")} on ${node.name}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** Each running task of SERVICE: its ID, its node and its container's ID there. */
async function runningTasks(service: string): Promise<{ task: string; node: SwarmNode; container: string }[]> {
  const ids = (
    await on(swarm.manager, ["service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", service])
  )
    .split("\n")
    .filter(Boolean);
  if (ids.length === 0) return [];
  const lines = await on(swarm.manager, [
    "inspect",
    "--type",
    "task",
    "-f",
    "{{.ID}} {{.NodeID}} {{.Status.State}} {{with .Status.ContainerStatus}}{{.ContainerID}}{{end}}",
    ...ids,
  ]);
  return lines
    .split("\n")
    .map((line) => line.split(" "))
    .filter(([, , state, container]) => state === "running" && container)
    .map(([task, nodeId, , container]) => ({ task, node: swarm.nodes.find((n) => n.id === nodeId)!, container }));
}

/** The `docker exec` starts of manage.py COMMAND on NODE since SINCE (Unix seconds), from Docker's own events. */
async function execStarts(node: SwarmNode, command: string, since: number): Promise<string[]> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const events = await on(node, [
    "events",
    "--since",
    String(since),
    "--until",
    String(until),
    "--filter",
    "event=exec_start",
    "--format",
    "{{.Actor.ID}} {{.Action}}",
  ]);
  return events.split("\n").filter((line) => line.includes(`manage.py ${command}`));
}

/** The statuses of `count` requests for the API's front page, from inside CONTAINER on NODE. */
async function pageStatuses(node: SwarmNode, container: string, count: number): Promise<number[]> {
  const python = `import urllib.request, urllib.error
for _ in range(${count}):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8000/", timeout=5).status)
    except urllib.error.HTTPError as e:
        print(e.code)`;
  return (await on(node, ["exec", container, "python", "-c", python])).split("\n").map(Number);
}

const swarmEnv = () => ({ DOCKER_HOST: swarm.manager.host, SWARM_NODE_HOSTS: nodeHosts, API_CONTAINER: API });
const nowSeconds = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  await requireEngineAndImages();
  const started = Date.now();
  const seconds = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  swarm = await startSwarm({ prefix: PREFIX, workers: 1 });
  console.log(`swarm up after ${seconds()}`);
  worker = swarm.nodes.find((n) => n.role === "worker")!;
  nodeHosts = swarm.nodes.map((n) => `${n.name}=${n.host}`).join(" ");
  // Straight into each node's engine: quicker than through the registry, and the services are
  // created with --no-resolve-image, so no node asks a registry for them.
  await Promise.all(
    swarm.nodes.map(async (node) => {
      const loaded = await exec("sh", ["-c", `docker save ${IMAGES.join(" ")} | DOCKER_HOST=${node.host} docker load`]);
      if (loaded.code !== 0) throw new Error(`loading the images into ${node.name}: ${loaded.stderr}`);
    }),
  );
  console.log(`images loaded into both nodes after ${seconds()}`);
  const m = swarm.manager;
  await on(m, ["network", "create", "--driver", "overlay", "--attachable", NET]);
  await on(m, [
    "run",
    "-d",
    "--name",
    PG,
    "--network",
    NET,
    "--network-alias",
    "postgres",
    "-e",
    `POSTGRES_PASSWORD=${PASSWORD}`,
    "-e",
    "POSTGRES_DB=utilitarian",
    IMAGES[1],
  ]);
  // The kernel here has no IPVS: dnsrr, no virtual IP (swarm.ts). One task on each node.
  await on(m, [
    "service",
    "create",
    "--detach",
    "--quiet",
    "--no-resolve-image",
    "--name",
    API,
    "--replicas",
    "2",
    "--replicas-max-per-node",
    "1",
    "--endpoint-mode",
    "dnsrr",
    "--network",
    NET,
    "-e",
    `DATABASE_URL=postgres://postgres:${PASSWORD}@postgres:5432/utilitarian`,
    "-e",
    "SECRET_KEY=sst-steps-secret-key-0123456789abcdef",
    "-e",
    "ALLOWED_HOSTS=*",
    IMAGES[0],
  ]);
  // A global service: one task on each node.
  await on(m, [
    "service",
    "create",
    "--detach",
    "--quiet",
    "--no-resolve-image",
    "--mode",
    "global",
    "--name",
    EDGE,
    IMAGES[0],
    "sleep",
    "infinity",
  ]);
  const up = await waitFor(
    async () => (await runningTasks(API)).length === 2 && (await runningTasks(EDGE)).length === 2,
    120_000,
    1000,
  );
  if (!up) throw new Error(`the services did not come up: ${await on(m, ["service", "ps", API, EDGE])}`);
  console.log(`services running after ${seconds()}`);
}, 6 * 60_000);

afterAll(async () => {
  await swarm?.stop();
}, 2 * 60_000);

describe("the step scripts on a swarm of two nodes", () => {
  test(
    "the API runs one task on each node",
    async () => {
      const tasks = await runningTasks(API);
      expect(new Set(tasks.map((t) => t.node.name))).toEqual(new Set(swarm.nodes.map((n) => n.name)));
    },
    T,
  );

  test(
    "migrate runs once, in one task's container, on that task's node",
    async () => {
      const since = nowSeconds();
      const migrate = await runScript("migrate.sh", swarmEnv());
      expect(migrate.code, migrate.stderr).toBe(0);
      expect(migrate.stdout).toMatch(/Applying readings\.0002_value_wh\.\.\. OK/);
      const summary = migrate.stdout.match(
        /migrate: ok, 16 migration\(s\) applied in \d+s \(in (\S+) on swarm node (\S+)\)/,
      );
      expect(summary, migrate.stdout).not.toBeNull();
      const [, container, nodeName] = summary!;
      // Docker's own record, on every node: one exec of `manage.py migrate`, in that container.
      const execs = await Promise.all(swarm.nodes.map((node) => execStarts(node, "migrate", since)));
      expect(execs.flat()).toHaveLength(1);
      const where = swarm.nodes[execs.findIndex((e) => e.length === 1)];
      expect(where.name).toBe(nodeName);
      const id = execs.flat()[0].split(" ")[0];
      expect(await on(where, ["inspect", "-f", "{{.Name}}", id])).toBe(`/${container}`);
    },
    T,
  );

  test(
    "static collects and compresses in every task, each on its node, and every task then serves the compressed page, in the same containers",
    async () => {
      const before = await runningTasks(API);
      // Pages requested before `compress` fail, and each Gunicorn worker that served one keeps the
      // empty offline manifest it read: in both tasks.
      for (const t of before) expect(new Set(await pageStatuses(t.node, t.container, 12))).toEqual(new Set([500]));
      const since = nowSeconds();
      const result = await runScript("static.sh", swarmEnv());
      expect(result.code, result.stderr).toBe(0);
      for (const node of swarm.nodes) {
        expect(await execStarts(node, "collectstatic", since)).toHaveLength(1);
        expect(await execStarts(node, "compress", since)).toHaveLength(1);
        expect(result.stdout).toMatch(
          new RegExp(`static: API reloaded and healthy in \\d+s \\(in \\S+ on swarm node ${node.name}\\)`),
        );
      }
      expect(result.stdout).toContain(`static: 2 task(s) of ${API} done`);
      // The same tasks in the same containers: none was replaced (its files would be gone).
      const after = await runningTasks(API);
      expect(after.map((t) => `${t.task} ${t.container}`).sort()).toEqual(
        before.map((t) => `${t.task} ${t.container}`).sort(),
      );
      for (const t of after) {
        expect(new Set(await pageStatuses(t.node, t.container, 12))).toEqual(new Set([200]));
        expect(await on(t.node, ["exec", t.container, "sh", "-c", "ls /app/static_root/CACHE/css | wc -l"])).not.toBe(
          "0",
        );
      }
    },
    T,
  );

  test(
    "verify passes with every service at its replicas (a number, or global), nodes named by host name or by ID",
    async () => {
      const byName = await runScript("verify.sh", { ...swarmEnv(), EXPECTED_SERVICES: `${API}=2 ${EDGE}=global` });
      expect(byName.code, byName.stderr).toBe(0);
      expect(byName.stdout).toMatch(/verify: health +ok/);
      expect(byName.stdout).toMatch(/verify: migrations +ok +all 16 migrations applied/);
      expect(byName.stdout).toMatch(new RegExp(`verify: service +ok +${API} has 2 of 2 task\\(s\\) running`));
      expect(byName.stdout).toMatch(new RegExp(`verify: service +ok +${EDGE} has 2 of 2 task\\(s\\) running`));
      expect(byName.stdout).toContain("verify: all checks passed (2 service(s))");
      const byId = await runScript("verify.sh", {
        ...swarmEnv(),
        SWARM_NODE_HOSTS: swarm.nodes.map((n) => `${n.id}=${n.host}`).join(" "),
        EXPECTED_SERVICES: `${API}=2`,
      });
      expect(byId.code, byId.stderr).toBe(0);
    },
    T,
  );

  test(
    "verify fails naming a service with fewer running tasks than EXPECTED_SERVICES says, and one that does not exist",
    async () => {
      const result = await runScript("verify.sh", {
        ...swarmEnv(),
        EXPECTED_SERVICES: `${API}=3 ${EDGE}=global sst-steps-nowhere=1`,
      });
      expect(result.code).not.toBe(0);
      expect(result.stdout).toMatch(
        new RegExp(`verify: service +FAIL +${API} has 2 of 3 task\\(s\\) running \\(${API}=3 in EXPECTED_SERVICES`),
      );
      expect(result.stdout).toMatch(new RegExp(`verify: service +ok +${EDGE}`));
      expect(result.stdout).toMatch(/verify: service +FAIL +sst-steps-nowhere does not exist/);
      expect(lastLine(result.stderr)).toContain(`verification failed (2 check(s)); first: service: ${API} has 2 of 3`);
    },
    T,
  );

  test(
    "verify fails when a service's task is replaced during the checks (a crash loop that looks running at each instant)",
    async () => {
      // Its first task ends when the test says (a marker in a directory of this machine that every
      // node's task mounts), once verify has taken its "before" (it is then in the slow manage.py:
      // the health check came first), and is replaced by one that keeps running; the checks last
      // 45 s, time for the replacement to run (its "preparing" took over 5 s). Not by the clock:
      // under CI's load a crash 3 s after the start came before verify had looked.
      const marks = tempDir("sst-steps-crash");
      await on(swarm.manager, [
        "service",
        "create",
        "--detach",
        "--quiet",
        "--no-resolve-image",
        "--name",
        CRASH,
        "--restart-delay",
        "0s",
        "--mount",
        `type=bind,source=${marks},target=/marks`,
        IMAGES[0],
        "sh",
        "-c",
        "if [ ! -e /marks/crashed ]; then until [ -e /marks/go ]; do sleep 0.2; done; touch /marks/crashed; exit 3; fi; exec sleep infinity",
      ]);
      try {
        const api = await runningTasks(API);
        for (const t of api) {
          await on(t.node, [
            "exec",
            t.container,
            "sh",
            "-c",
            'rm -f /tmp/slow-started; printf \'import pathlib, runpy, sys, time\\npathlib.Path("/tmp/slow-started").touch()\\ntime.sleep(45)\\nsys.argv[0] = "manage.py"\\nsys.path.insert(0, "/app")\\nrunpy.run_path("/app/manage.py", run_name="__main__")\\n\' >/tmp/slow_manage.py',
          ]);
        }
        expect(await waitFor(async () => (await runningTasks(CRASH)).length === 1, 60_000, 200)).toBe(true);
        const verify = runScript(
          "verify.sh",
          { ...swarmEnv(), MANAGE: "python /tmp/slow_manage.py", EXPECTED_SERVICES: `${API}=2 ${CRASH}=1` },
          { timeoutMs: 150_000 },
        );
        const slowStarted = async () => {
          for (const t of api)
            if (
              (await exec("docker", ["-H", t.node.host, "exec", t.container, "test", "-e", "/tmp/slow-started"]))
                .code === 0
            )
              return true;
          return false;
        };
        expect(await waitFor(slowStarted, 60_000, 250), "verify reached its migrations check").toBe(true);
        fs.writeFileSync(path.join(marks, "go"), "");
        const result = await verify;
        expect(result.code).not.toBe(0);
        expect(result.stdout).toMatch(/verify: migrations +ok/);
        expect(result.stdout).toMatch(
          new RegExp(`verify: service +FAIL +${CRASH} had task\\(s\\) replaced during verification`),
        );
        expect(result.stdout).toMatch(new RegExp(`verify: service +ok +${API}`));
      } finally {
        await on(swarm.manager, ["service", "rm", CRASH]);
        fs.rmSync(marks, { recursive: true, force: true });
      }
    },
    T,
  );

  test(
    "a node missing from SWARM_NODE_HOSTS stops the step before any work, naming the node and swarm.nodeHosts",
    async () => {
      const since = nowSeconds();
      const result = await runScript("migrate.sh", {
        ...swarmEnv(),
        SWARM_NODE_HOSTS: `${swarm.manager.name}=${swarm.manager.host}`,
      });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toContain(
        `swarm node ${worker.name} (ID ${worker.id}) runs a task of ${API}, but SWARM_NODE_HOSTS has no entry for it; add ${worker.name}=`,
      );
      expect(lastLine(result.stderr)).toContain("swarm.nodeHosts");
      const execs = await Promise.all(swarm.nodes.map((node) => execStarts(node, "migrate", since)));
      expect(execs.flat()).toEqual([]);
    },
    T,
  );

  test(
    "migrate waits for a running task of the service, and says so when none comes",
    async () => {
      const result = await runScript("migrate.sh", {
        ...swarmEnv(),
        API_CONTAINER: "sst-steps-nowhere",
        API_START_TIMEOUT_SECONDS: "3",
      });
      expect(result.code).not.toBe(0);
      expect(lastLine(result.stderr)).toContain(
        "service sst-steps-nowhere has no running task whose container runs after 3s (0 of 0 task(s) up; states: no task); see: docker service ps sst-steps-nowhere",
      );
    },
    T,
  );

  test(
    "the maintenance window's record works as on one host: the steps record themselves, a failure with its reason, verify closes it",
    async () => {
      const dir = tempDir("sst-steps-window");
      try {
        // The backup opens the window (as the deployment runs it: WINDOW_STAGES given).
        const stages = JSON.stringify([{ key: "backup", title: "Backup" }]);
        const opened = await exec(
          "bash",
          ["-c", `STEP=backup; source "${SCRIPTS_DIR}/lib.sh"; window_begin backup 1.0.0 1.1.0; window_step_end '{}'`],
          {
            env: { ...process.env, BACKUP_DIR: dir, WINDOW_STAGES: stages },
          },
        );
        expect(opened.code, opened.stderr).toBe(0);
        const env = { ...swarmEnv(), BACKUP_DIR: dir };
        expect((await runScript("migrate.sh", env)).code).toBe(0);
        const failed = await runScript("static.sh", {
          ...env,
          SWARM_NODE_HOSTS: `${swarm.manager.name}=${swarm.manager.host}`,
        });
        expect(failed.code).not.toBe(0);
        const verify = await runScript("verify.sh", { ...env, EXPECTED_SERVICES: `${API}=2` });
        expect(verify.code, verify.stderr).toBe(0);
        const report = lastLine(verify.stdout);
        expect(report).toMatch(/^REPORT_FILE=.*\/report\.md$/);
        expect(fs.existsSync(report.slice("REPORT_FILE=".length))).toBe(true);
        const journal = fs
          .readFileSync(path.join(path.dirname(report.slice("REPORT_FILE=".length)), "journal.jsonl"), "utf8")
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line));
        expect(journal.map((e) => [e.event, e.step])).toEqual([
          ["open", undefined],
          ["start", "backup"],
          ["end", "backup"],
          ["start", "migrate"],
          ["end", "migrate"],
          ["start", "static"],
          ["fail", "static"],
          ["start", "verify"],
          ["end", "verify"],
          ["close", undefined],
        ]);
        expect(journal[6].reason).toContain(`swarm node ${worker.name} (ID ${worker.id}) runs a task of ${API}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    T,
  );
});

describe("writers-stopped.sh on a swarm: the writers' services scaled to 0 around a step", () => {
  const WRITERS = ["sst-steps-writer-a", "sst-steps-writer-b"];
  const REPLICAS = [2, 1];
  let step = "";
  const replicas = async () =>
    Promise.all(
      WRITERS.map(async (w) =>
        Number(await on(swarm.manager, ["service", "inspect", "-f", "{{.Spec.Mode.Replicated.Replicas}}", w])),
      ),
    );
  const running = async () => (await Promise.all(WRITERS.map((w) => runningTasks(w)))).map((t) => t.length);
  const wrapped = (env: Record<string, string>, options: Parameters<typeof runScript>[2] = {}) =>
    runScript(
      "writers-stopped.sh",
      { DOCKER_HOST: swarm.manager.host, SWARM_NODE_HOSTS: nodeHosts, ...env },
      { ...options, args: [step] },
    );

  beforeAll(async () => {
    const dir = tempDir("sst-steps-writers");
    step = path.join(dir, "step.sh");
    // What the wrapped step sees: the writers' tasks still alive (any state before complete/shutdown).
    fs.writeFileSync(
      step,
      `alive=0
for w in ${WRITERS.join(" ")}; do
  for id in $(docker service ps -q --no-trunc "$w"); do
    case $(docker inspect --type task -f '{{.Status.State}}' "$id" 2>/dev/null) in
      new|allocated|pending|assigned|accepted|preparing|ready|starting|running) alive=$((alive + 1)) ;;
    esac
  done
done
echo "step: writers' tasks alive: $alive"
if [ -n "\${STEP_STARTED:-}" ]; then : >"$STEP_STARTED"; fi
sleep "\${STEP_SLEEP:-0}"
exit "\${STEP_EXIT:-0}"
`,
    );
    for (const [i, w] of WRITERS.entries())
      await on(swarm.manager, [
        "service",
        "create",
        "--detach",
        "--quiet",
        "--no-resolve-image",
        "--name",
        w,
        "--replicas",
        String(REPLICAS[i]),
        "--stop-grace-period",
        "2s",
        "--endpoint-mode",
        "dnsrr",
        IMAGES[0],
        "sleep",
        "infinity",
      ]);
    const up = await waitFor(async () => (await running()).join() === REPLICAS.join(), 120_000, 1000);
    if (!up) throw new Error(`the writers did not come up: ${await on(swarm.manager, ["service", "ps", ...WRITERS])}`);
  }, 3 * 60_000);

  test(
    "the step fails: the writers were scaled to 0 and their tasks gone before it ran; they are scaled back to the replicas each had",
    async () => {
      const run = await wrapped({ STOP_WRITERS: `${WRITERS[0]} sst-steps-absent ${WRITERS[1]}`, STEP_EXIT: "3" });
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain("writer sst-steps-absent is not running (absent); nothing to stop");
      expect(run.stderr).toMatch(new RegExp(`stopped the writers in [\\d.]+s, scaled to 0: ${WRITERS.join(" ")} `));
      expect(run.stdout).toContain("step: writers' tasks alive: 0");
      expect(run.stderr).toContain(`started the writers again: ${WRITERS.join(" ")}`);
      expect(lastLine(run.stderr)).toMatch(
        /step\.sh failed \(exit 3, reason above\); the writers it had stopped are started again$/,
      );
      expect(await replicas()).toEqual(REPLICAS);
      expect(await waitFor(async () => (await running()).join() === REPLICAS.join(), 120_000, 1000)).toBe(true);
    },
    T,
  );

  test(
    "the step succeeds: the writers stay at 0 (the deployment replaces them); a later run finds them stopped and leaves them so",
    async () => {
      const run = await wrapped({ STOP_WRITERS: WRITERS.join(" ") });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(
        `the writers stay stopped until the upgrade starts them on the new version: ${WRITERS.join(" ")}`,
      );
      expect(await replicas()).toEqual([0, 0]);
      const again = await wrapped({ STOP_WRITERS: WRITERS.join(" "), STEP_EXIT: "1" });
      expect(again.code).not.toBe(0);
      for (const w of WRITERS)
        expect(again.stderr).toContain(`writer ${w} is not running (scaled to 0); nothing to stop`);
      expect(await replicas()).toEqual([0, 0]);
      await on(swarm.manager, ["service", "scale", "--detach", ...WRITERS.map((w, i) => `${w}=${REPLICAS[i]}`)]);
      expect(await waitFor(async () => (await running()).join() === REPLICAS.join(), 120_000, 1000)).toBe(true);
    },
    T,
  );

  test(
    "the wrapper SIGKILLed while the step runs (a cancelled pulumi up): its guard scales the writers back once the step has ended",
    async () => {
      let killedAt = 0;
      // Killed once the step runs (the writers scaled to 0 and their tasks gone): not while the
      // wrapper is still scaling them down, which a look at the replicas alone cannot tell.
      const stepStarted = path.join(tempDir("sst-steps-killed"), "step-started");
      const run = await wrapped(
        { STOP_WRITERS: WRITERS.join(" "), STEP_SLEEP: "6", STEP_STARTED: stepStarted },
        {
          started: (child) => {
            void (async () => {
              await waitFor(async () => fs.existsSync(stepStarted), 120_000, 100);
              killedAt = Date.now();
              child.kill("SIGKILL");
            })();
          },
        },
      );
      expect(run.code).toBe(128 + 9);
      expect(killedAt).toBeGreaterThan(0);
      // The guard waits for the step, which holds its pipe (and the wrapper's output: `run` ends with it).
      expect(await waitFor(async () => (await replicas()).join() === REPLICAS.join(), 30_000, 200)).toBe(true);
      expect(Date.now() - killedAt).toBeGreaterThan(3000);
      expect(await waitFor(async () => (await running()).join() === REPLICAS.join(), 120_000, 1000)).toBe(true);
    },
    T,
  );
});
