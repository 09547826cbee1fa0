/**
 * docker.Service and docker.Secret under the real engine (toolchain/pulumi) with the stand-in docker
 * provider (test/provider/docker-service.ts), on a swarm of three daemons (test/support/swarm.ts):
 * test/fixtures/programs/swarm-service deploys a two-replica service with a placement constraint on a
 * node label, a host-mode UDP port, env carrying a secret config value and a swarm secret, and a
 * one-replica service; then a no-op run, an in-place stop-first update, a replacement of a ForceNew
 * field with deleteBeforeReplace, and destroy.
 */
import * as dgram from "dgram";
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exec } from "../support/exec";
import { freeLoopbackPort } from "../support/ports";
import { program, PROJECT_DIR, PULUMI, toolchainDir, type Workspace } from "../support/real-engine";
import { startSwarm, type Swarm, type SwarmNode } from "../support/swarm";

const MINUTE = 60_000;
const PREFIX = "swsvc";
const FIXTURE = path.join(PROJECT_DIR, "test/fixtures/programs/swarm-service");
/** Secret values that must reach the tasks and nothing else. */
const ENV_SECRET = "sws-env-7f3c9a1d2b";
const FILE_SECRET = "sws-file-0e8d4c6b5a";

let swarm: Swarm;
let ws: Workspace;
let images: { edge: string; single: string; single2: string };
let udpPort = 0;
const timings: Record<string, number> = {};

async function pulumiRun(args: string[], traceFile?: string): Promise<{ code: number; output: string }> {
  const started = Date.now();
  const full = [...args, "--stack", "dev", "--non-interactive"];
  const result = traceFile
    ? await exec("strace", ["-f", "-qq", "-s", "65535", "-e", "trace=execve", "-o", traceFile, PULUMI, ...full], {
        cwd: ws.dir,
        env: ws.env,
        timeoutMs: 6 * MINUTE,
      })
    : await exec(PULUMI, full, { cwd: ws.dir, env: ws.env, timeoutMs: 6 * MINUTE });
  timings[`${Object.keys(timings).length + 1}. ${args.join(" ")}`] = Date.now() - started;
  return { code: result.code, output: result.stdout + result.stderr };
}

async function pulumiOk(args: string[], traceFile?: string): Promise<string> {
  const run = await pulumiRun(args, traceFile);
  expect(run.code, run.output).toBe(0);
  return run.output;
}

async function setConfig(key: string, value: string, secret = false): Promise<void> {
  const args = ["config", "set", ...(secret ? ["--secret"] : []), "--stack", "dev", key];
  // A secret from stdin, never on a command line.
  const result = await exec(PULUMI, secret ? args : [...args, value], {
    cwd: ws.dir,
    env: ws.env,
    input: secret ? value : undefined,
  });
  expect(result.code, result.stderr).toBe(0);
}

const node = (name: string): SwarmNode => swarm.nodes.find((n) => n.name === name)!;

async function onManager(args: string[]): Promise<string> {
  const result = await swarm.docker(swarm.manager, args);
  expect(result.code, `docker ${args.join(" ")}: ${result.stderr}`).toBe(0);
  return result.stdout.trim();
}

/** The service's tasks whose desired state is running: task ID, node name, state, container. */
async function runningTasks(service: string): Promise<{ id: string; node: string; state: string }[]> {
  const out = await onManager([
    "service",
    "ps",
    service,
    "--filter",
    "desired-state=running",
    "--no-trunc",
    "--format",
    "{{.ID}} {{.Node}} {{.CurrentState}}",
  ]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, nodeName, ...state] = line.split(" ");
      return { id, node: nodeName, state: state.join(" ") };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

async function waitRunning(service: string, count: number): Promise<{ id: string; node: string; state: string }[]> {
  const deadline = Date.now() + 2 * MINUTE;
  for (;;) {
    const tasks = await runningTasks(service);
    if (tasks.length === count && tasks.every((t) => t.state.startsWith("Running"))) return tasks;
    if (Date.now() > deadline) throw new Error(`${service}: ${JSON.stringify(tasks)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** A datagram to a node's published port; the answer (the task's VERSION) or "" after 2 s. */
async function udpAsk(address: string): Promise<string> {
  const socket = dgram.createSocket("udp4");
  try {
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(""), 2000);
      socket.on("message", (m) => {
        clearTimeout(timer);
        resolve(m.toString());
      });
      socket.send("ping", udpPort, address);
    });
  } finally {
    socket.close();
  }
}

async function udpAnswer(address: string, expected: string): Promise<string> {
  let answer = "";
  for (let i = 0; i < 30 && answer !== expected; i++) answer = await udpAsk(address);
  return answer;
}

/** The container of a running task on its node (swarm labels every task container with its task ID). */
async function containerOf(task: { id: string; node: string }): Promise<string> {
  const result = await swarm.docker(node(task.node), [
    "ps",
    "-q",
    "--filter",
    `label=com.docker.swarm.task.id=${task.id}`,
  ]);
  return result.stdout.trim();
}

function execveLines(traceFile: string): string[] {
  return fs
    .readFileSync(traceFile, "utf8")
    .split("\n")
    .filter((l) => l.includes("execve("));
}

beforeAll(async () => {
  await toolchainDir();
  swarm = await startSwarm({ prefix: PREFIX, workers: 2 });
  const pushed = await swarm.push([
    "utilitarian-standin/dlms-udp-server:1.0.0",
    "utilitarian-standin/poster:1.0.0",
    "utilitarian-standin/dlms-processor:1.0.0",
  ]);
  images = { edge: pushed[0], single: pushed[1], single2: pushed[2] };
  // The edge tasks may run on the two workers only: the manager has no label.
  await swarm.label(node(`${PREFIX}-w1`), { "sws.edge": "true" });
  await swarm.label(node(`${PREFIX}-w2`), { "sws.edge": "true" });

  ws = program("swarm-service", fs.readFileSync(path.join(FIXTURE, "index.ts"), "utf8"), {
    "@pulumi/docker": "*",
    "@pulumi/pulumi": "*",
  });
  for (const file of ["Pulumi.yaml", "package.json"])
    fs.copyFileSync(path.join(FIXTURE, file), path.join(ws.dir, file));
  const installed = await exec("bash", [path.join(PROJECT_DIR, "toolchain/standin-providers.sh"), ws.home, "docker"], {
    env: ws.env,
  });
  expect(installed.code, installed.stderr).toBe(0);
  const init = await exec(PULUMI, ["stack", "init", "dev", "--non-interactive"], { cwd: ws.dir, env: ws.env });
  expect(init.code, init.stderr).toBe(0);
  udpPort = await freeLoopbackPort("udp");
  await setConfig("prefix", PREFIX);
  await setConfig("host", swarm.manager.host);
  await setConfig("image", images.edge);
  await setConfig("singleImage", images.single);
  await setConfig("version", "1");
  await setConfig("alias", "edge-a");
  await setConfig("udpPort", String(udpPort));
  await setConfig("envSecret", ENV_SECRET, true);
  await setConfig("fileSecret", FILE_SECRET, true);
}, 30 * MINUTE);

afterAll(async () => {
  if (ws) await pulumiRun(["destroy", "--yes"]).catch(() => undefined);
  await swarm?.stop();
  console.log(`swarm-service timings (ms): ${JSON.stringify(timings)}`);
}, 10 * MINUTE);

describe("docker.Service on a swarm, through the stand-in provider under the real engine", () => {
  let edgeTasks: { id: string; node: string; state: string }[] = [];
  let singleTasks: { id: string; node: string; state: string }[] = [];
  let ids: Record<string, string> = {};

  const outputs = async () => {
    const result = await exec(PULUMI, ["stack", "output", "--json", "--stack", "dev"], { cwd: ws.dir, env: ws.env });
    return JSON.parse(result.stdout) as Record<string, string>;
  };

  test(
    "preview shows no secret; up creates the services where the constraint says, secrets on no command line",
    async () => {
      const preview = await pulumiOk(["preview", "--diff"]);
      expect(preview).toContain(`${PREFIX}-edge`);
      for (const secret of [ENV_SECRET, FILE_SECRET]) expect(preview).not.toContain(secret);

      const trace = path.join(ws.dir, "up-1.strace");
      const up = await pulumiOk(["up", "--yes"], trace);
      for (const secret of [ENV_SECRET, FILE_SECRET]) expect(up).not.toContain(secret);
      // Every program the engine, the language host and the plugins started, with its arguments: the
      // trace saw the stand-in's `docker network create`, so it is not a trace that saw nothing.
      const execs = execveLines(trace);
      expect(execs.some((l) => l.includes('"network", "create"'))).toBe(true);
      for (const secret of [ENV_SECRET, FILE_SECRET, Buffer.from(FILE_SECRET).toString("base64")])
        expect(execs.filter((l) => l.includes(secret))).toEqual([]);
      // The stack's state holds them encrypted only.
      const state = await exec(PULUMI, ["stack", "export", "--stack", "dev"], { cwd: ws.dir, env: ws.env });
      expect(state.stdout).toContain(`${PREFIX}-edge`);
      for (const secret of [ENV_SECRET, FILE_SECRET]) expect(state.stdout).not.toContain(secret);

      ids = await outputs();
      expect(ids.edgeName).toBe(`${PREFIX}-edge`);
      expect(await onManager(["service", "inspect", "-f", "{{.ID}}", `${PREFIX}-edge`])).toBe(ids.edgeId);

      edgeTasks = await waitRunning(`${PREFIX}-edge`, 2);
      singleTasks = await waitRunning(`${PREFIX}-single`, 1);
      // node.labels.sws.edge==true: one task on each labelled worker, none on the manager.
      expect(edgeTasks.map((t) => t.node).sort()).toEqual([`${PREFIX}-w1`, `${PREFIX}-w2`]);
      expect(singleTasks[0].node).toMatch(new RegExp(`^${PREFIX}-w[12]$`));

      // The spec as Docker holds it: dnsrr, the UDP port published in host mode, the stop-first update.
      const spec = JSON.parse(await onManager(["service", "inspect", "-f", "{{json .Spec}}", `${PREFIX}-edge`]));
      expect(spec.EndpointSpec.Mode).toBe("dnsrr");
      expect(spec.EndpointSpec.Ports).toEqual([
        { Protocol: "udp", TargetPort: 4059, PublishedPort: udpPort, PublishMode: "host" },
      ]);
      expect(spec.UpdateConfig.Order).toBe("stop-first");
      expect(spec.TaskTemplate.Placement.Constraints).toEqual(["node.labels.sws.edge==true"]);
      expect(spec.TaskTemplate.Networks[0].Aliases).toEqual(["edge-a"]);
      // The port answers on both workers' addresses with the tasks' VERSION.
      for (const worker of [`${PREFIX}-w1`, `${PREFIX}-w2`])
        expect(await udpAnswer(node(worker).address, "1")).toBe("1");

      // The swarm secret is in no inspect output, and the task reads it from its file; the env secret
      // (an env value, plain in the spec as the real provider leaves it) reached the task.
      const inspect = await onManager(["service", "inspect", `${PREFIX}-edge`]);
      expect(inspect).not.toContain(FILE_SECRET);
      expect(inspect).not.toContain(Buffer.from(FILE_SECRET).toString("base64"));
      expect(inspect).toContain(ENV_SECRET);
      const container = await containerOf(edgeTasks[0]);
      expect(container).not.toBe("");
      const read = await swarm.docker(node(edgeTasks[0].node), ["exec", container, "cat", "/run/secrets/token"]);
      expect(read.stdout).toBe(FILE_SECRET);
      const env = await swarm.docker(node(edgeTasks[0].node), ["exec", container, "printenv", "API_TOKEN"]);
      expect(env.stdout.trim()).toBe(ENV_SECRET);
    },
    15 * MINUTE,
  );

  test(
    "up --expect-no-changes passes and no task was restarted",
    async () => {
      await pulumiOk(["up", "--yes", "--expect-no-changes"]);
      await pulumiOk(["up", "--yes", "--expect-no-changes", "--refresh"]);
      // The same tasks on the same nodes, still running (CurrentState's "Running N seconds ago" grows).
      const same = (tasks: { id: string; node: string; state: string }[]) =>
        tasks.map((t) => `${t.id} ${t.node} ${t.state.startsWith("Running")}`);
      expect(same(await runningTasks(`${PREFIX}-edge`))).toEqual(same(edgeTasks));
      expect(same(await runningTasks(`${PREFIX}-single`))).toEqual(same(singleTasks));
      // No task of either service ever ended: every task the swarm has is one of the first ones.
      const all = await onManager(["service", "ps", "-q", "--no-trunc", `${PREFIX}-edge`, `${PREFIX}-single`]);
      expect(all.split("\n").filter(Boolean).sort()).toEqual([...edgeTasks, ...singleTasks].map((t) => t.id).sort());
    },
    10 * MINUTE,
  );

  test(
    "an image and env change updates in place, stop-first: never two tasks of the one-replica service at once",
    async () => {
      await setConfig("singleImage", images.single2);
      await setConfig("version", "2");
      const since = Math.floor(Date.now() / 1000) - 1;
      const up = await pulumiOk(["up", "--yes"]);
      expect(up).toMatch(/2 updated/);
      const until = Math.ceil(Date.now() / 1000) + 1;
      const after = await outputs();
      expect(after.edgeId).toBe(ids.edgeId);
      expect(after.singleId).toBe(ids.singleId);

      const single = await waitRunning(`${PREFIX}-single`, 1);
      expect(single[0].id).not.toBe(singleTasks[0].id);
      const spec = JSON.parse(await onManager(["service", "inspect", "-f", "{{json .Spec}}", `${PREFIX}-single`]));
      expect(spec.TaskTemplate.ContainerSpec.Image).toBe(images.single2);
      expect(spec.TaskTemplate.ContainerSpec.Env).toContain("VERSION=2");

      // Every start and die of the single service's containers on both workers, in time order: with
      // stop-first the old container dies before the new one starts.
      const events: { time: number; action: string; id: string }[] = [];
      for (const worker of [`${PREFIX}-w1`, `${PREFIX}-w2`]) {
        const out = await swarm.docker(node(worker), [
          "events",
          "--since",
          String(since),
          "--until",
          String(until),
          "--filter",
          "type=container",
          "--filter",
          `label=com.docker.swarm.service.name=${PREFIX}-single`,
          "--filter",
          "event=start",
          "--filter",
          "event=die",
          "--format",
          "{{.TimeNano}} {{.Action}} {{.Actor.ID}}",
        ]);
        for (const line of out.stdout.split("\n").filter(Boolean)) {
          const [time, action, id] = line.split(" ");
          events.push({ time: Number(time), action, id });
        }
      }
      events.sort((a, b) => a.time - b.time);
      let running = 1;
      let most = 1;
      for (const e of events) {
        running += e.action === "start" ? 1 : -1;
        most = Math.max(most, running);
      }
      expect(events.map((e) => e.action)).toEqual(["die", "start"]);
      expect(most).toBe(1);
      expect(running).toBe(1);

      // The edge service rolled too (same ID), both tasks now answer VERSION 2.
      const edge = await waitRunning(`${PREFIX}-edge`, 2);
      expect(edge.map((t) => t.node).sort()).toEqual([`${PREFIX}-w1`, `${PREFIX}-w2`]);
      for (const worker of [`${PREFIX}-w1`, `${PREFIX}-w2`])
        expect(await udpAnswer(node(worker).address, "2")).toBe("2");
      edgeTasks = edge;
    },
    10 * MINUTE,
  );

  test(
    "a ForceNew change (a network alias) replaces the service, deleting first: the fixed name is free",
    async () => {
      await setConfig("alias", "edge-b");
      const preview = await pulumiOk(["preview", "--diff"]);
      expect(preview).toMatch(/\+-\s*docker:index\/service:Service: \(replace\)[\s\S]*edge/);
      expect(preview).toContain("networksAdvanceds");
      const up = await pulumiOk(["up", "--yes"]);
      expect(up).toMatch(/1 replaced/);
      const after = await outputs();
      expect(after.edgeId).not.toBe(ids.edgeId);
      expect(after.singleId).toBe(ids.singleId);
      expect(await onManager(["service", "inspect", "-f", "{{.ID}}", `${PREFIX}-edge`])).toBe(after.edgeId);
      expect((await onManager(["service", "ls", "-q", "--filter", `name=${PREFIX}-edge`])).split("\n")).toHaveLength(1);
      const spec = JSON.parse(await onManager(["service", "inspect", "-f", "{{json .Spec}}", `${PREFIX}-edge`]));
      expect(spec.TaskTemplate.Networks[0].Aliases).toEqual(["edge-b"]);
      await waitRunning(`${PREFIX}-edge`, 2);
      for (const worker of [`${PREFIX}-w1`, `${PREFIX}-w2`])
        expect(await udpAnswer(node(worker).address, "2")).toBe("2");
    },
    10 * MINUTE,
  );

  test(
    "destroy removes the services, the secret and the network",
    async () => {
      await pulumiOk(["destroy", "--yes"]);
      expect(await onManager(["service", "ls", "-q"])).toBe("");
      expect(await onManager(["secret", "ls", "-q"])).toBe("");
      expect(await onManager(["network", "ls", "-q", "--filter", `name=${PREFIX}-net`])).toBe("");
    },
    10 * MINUTE,
  );
});
