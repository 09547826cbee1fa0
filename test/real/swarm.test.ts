/**
 * The multi-node swarm fixture for real (test/fixtures/swarm.sh, test/support/swarm.ts): three
 * dockerds in their own network namespaces form one swarm, pull a stand-in image by name from the
 * local registry, reach each other's services by name over an overlay network, take a UDP datagram
 * from outside on a host-mode port, and leave nothing behind when stopped. The engine tests that
 * deploy onto a swarm count on each of these.
 */
import { createSocket } from "node:dgram";
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exec, sleep, waitFor } from "../support/exec";
import { requireEngineAndImages } from "../support/standin-stack";
import { startSwarm, Swarm, SwarmNode } from "../support/swarm";

const PREFIX = "swtreal";
// The smallest stand-in (the base and a few files); it has python3, which the services below run.
const IMAGE = "utilitarian-standin/dlms-udp-server:1.0.0";
const T = 60_000;

let swarm: Swarm;
let ref = "";
let worker1: SwarmNode;
let worker2: SwarmNode;

/** `docker` against a node; throws with its stderr on failure. */
async function on(node: SwarmNode, args: string[]): Promise<string> {
  const result = await swarm.docker(node, args);
  if (result.code !== 0)
    throw new Error(`docker ${args.slice(0, 3).join(" ")} on ${node.name}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** The IDs of the running containers of a service's tasks on a node. */
async function taskContainers(node: SwarmNode, service: string): Promise<string[]> {
  const out = await on(node, ["ps", "-q", "--filter", `label=com.docker.swarm.service.name=${service}`]);
  return out.split("\n").filter(Boolean);
}

beforeAll(async () => {
  await requireEngineAndImages();
  let started = Date.now();
  swarm = await startSwarm({ prefix: PREFIX });
  console.log(`swarm: up in ${Date.now() - started} ms`);
  [worker1, worker2] = swarm.nodes.filter((n) => n.role === "worker");
  started = Date.now();
  [ref] = await swarm.push([IMAGE]);
  console.log(`swarm: ${IMAGE} pushed in ${Date.now() - started} ms as ${ref}`);
}, 180_000);

afterAll(() => swarm?.stop(), T);

describe("a swarm of one manager and two workers on this machine", () => {
  test("has three Ready nodes, one manager (the leader) and two workers, with their own IDs and names", async () => {
    expect(swarm.nodes.map((n) => n.name)).toEqual([`${PREFIX}-m1`, `${PREFIX}-w1`, `${PREFIX}-w2`]);
    const listed = (await on(swarm.manager, ["node", "ls", "--format", "{{json .}}"]))
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(listed).toHaveLength(3);
    expect(listed.map((n) => n.Status)).toEqual(["Ready", "Ready", "Ready"]);
    expect(new Set(listed.map((n) => n.ID)).size).toBe(3);
    expect(new Set(listed.map((n) => n.ID))).toEqual(new Set(swarm.nodes.map((n) => n.id)));
    // Each dockerd has its own UTS namespace: swarm names the nodes after their host names.
    expect(new Set(listed.map((n) => n.Hostname))).toEqual(new Set(swarm.nodes.map((n) => n.name)));
    for (const node of swarm.nodes) {
      // Every node's own daemon says which node it is, and the manager agrees on its role.
      expect(await on(node, ["info", "--format", "{{.Swarm.NodeID}} {{.Swarm.LocalNodeState}}"])).toBe(
        `${node.id} active`,
      );
      expect(await on(swarm.manager, ["node", "inspect", "--format", "{{.Spec.Role}}", node.id])).toBe(node.role);
    }
    expect(listed.filter((n) => n.ManagerStatus === "Leader").map((n) => n.ID)).toEqual([swarm.manager.id]);
  });

  test("labels set by label() are in the node's spec, and only in that node's", async () => {
    await swarm.label(worker2, { "utilitarian.udp": "yes", zone: "b" });
    const labels = async (node: SwarmNode) =>
      JSON.parse(await on(swarm.manager, ["node", "inspect", "--format", "{{json .Spec.Labels}}", node.id]));
    expect(await labels(worker2)).toEqual({ "utilitarian.udp": "yes", zone: "b" });
    expect(await labels(worker1)).toEqual({});
  });

  test("pulls the pushed image by name from the registry on every node", async () => {
    expect(ref).toBe(`${swarm.registry}/${IMAGE}`);
    // No node has it before (push copies from the root engine straight to the registry): each
    // can only have it from the registry.
    for (const node of swarm.nodes) expect((await swarm.docker(node, ["image", "inspect", ref])).code).not.toBe(0);
    await on(swarm.manager, [
      "service",
      "create",
      "--detach",
      "--name",
      "everywhere",
      "--mode",
      "global",
      ref,
      "python3",
      "-c",
      "import time; time.sleep(10**6)",
    ]);
    const running = await waitFor(
      async () =>
        (await Promise.all(swarm.nodes.map((n) => taskContainers(n, "everywhere")))).every((c) => c.length === 1),
      // Three nodes unpack 0.6 GB each at once: ~40 s here on a busy machine.
      100_000,
    );
    expect(running, await on(swarm.manager, ["service", "ps", "--no-trunc", "everywhere"])).toBe(true);
    // Swarm pins the service's image to the registry's digest for it, and every node pulled that.
    const pinned = await on(swarm.manager, [
      "service",
      "inspect",
      "--format",
      "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
      "everywhere",
    ]);
    expect(pinned).toMatch(new RegExp(`^${ref.replace(/[.]/g, "\\.")}@sha256:[0-9a-f]{64}$`));
    const digest = pinned.split("@")[1];
    for (const node of swarm.nodes) {
      const [container] = await taskContainers(node, "everywhere");
      expect(await on(node, ["inspect", "--format", "{{.Config.Image}}", container]), node.name).toBe(pinned);
      const digests = JSON.parse(await on(node, ["image", "inspect", "--format", "{{json .RepoDigests}}", pinned]));
      expect(digests, node.name).toContain(`${swarm.registry}/${IMAGE.split(":")[0]}@${digest}`);
    }
  }, 120_000);

  test(
    "answers by name over an overlay network: a dnsrr service on one worker, a container on the other",
    async () => {
      await on(swarm.manager, ["network", "create", "--driver", "overlay", "--attachable", "swtnet"]);
      await on(swarm.manager, [
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--endpoint-mode",
        "dnsrr",
        "--network",
        "swtnet",
        "--constraint",
        `node.id==${worker1.id}`,
        ref,
        "python3",
        "-m",
        "http.server",
        "8000",
      ]);
      expect(await waitFor(async () => (await taskContainers(worker1, "web")).length === 1, 30_000)).toBe(true);
      const [web] = await taskContainers(worker1, "web");
      const webAddress = await on(worker1, [
        "inspect",
        "--format",
        '{{(index .NetworkSettings.Networks "swtnet").IPAddress}}',
        web,
      ]);
      // The server may take a moment to listen; the client retries within its one container.
      const client = `
import socket, time, urllib.request
for attempt in range(40):
    try:
        print(socket.gethostbyname("web"), urllib.request.urlopen("http://web:8000/", timeout=2).status)
        break
    except OSError:
        time.sleep(0.25)
`;
      const out = await on(worker2, ["run", "--rm", "--network", "swtnet", ref, "python3", "-c", client]);
      expect(out).toBe(`${webAddress} 200`);
    },
    T,
  );

  test(
    "delivers a UDP datagram from the root namespace to a port published mode=host on the labelled worker",
    async () => {
      const server = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 4059))
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print("got", data.decode(), peer[0], flush=True)
`;
      await on(swarm.manager, [
        "service",
        "create",
        "--detach",
        "--name",
        "udp",
        "--constraint",
        "node.labels.utilitarian.udp==yes",
        "--publish",
        "mode=host,target=4059,published=4059,protocol=udp",
        ref,
        "python3",
        "-c",
        server,
      ]);
      // Only the labelled worker may run it.
      expect(await waitFor(async () => (await taskContainers(worker2, "udp")).length === 1, 30_000)).toBe(true);
      expect(await taskContainers(worker1, "udp")).toEqual([]);
      expect(await taskContainers(swarm.manager, "udp")).toEqual([]);
      const [container] = await taskContainers(worker2, "udp");
      const logs = async () => {
        const r = await swarm.docker(worker2, ["logs", container]);
        return r.stdout + r.stderr;
      };
      expect(await waitFor(async () => (await logs()).includes("listening"), 15_000)).toBe(true);

      const socket = createSocket("udp4");
      const payload = `reading-${Date.now()}`;
      try {
        // A datagram sent before the port mapping is in place is lost: send until one arrives.
        const arrived = await waitFor(async () => {
          await new Promise<void>((resolve, reject) =>
            socket.send(payload, 4059, worker2.address, (error) => (error ? reject(error) : resolve())),
          );
          await sleep(200);
          return (await logs()).includes(`got ${payload}`);
        }, 15_000);
        expect(arrived, await logs()).toBe(true);
      } finally {
        socket.close();
      }
      // Not rewritten on the way: the sender is the root namespace's address on the bridge.
      const bridgeAddress = swarm.registry.split(":")[0];
      expect(await logs()).toContain(`got ${payload} ${bridgeAddress}`);
    },
    T,
  );

  test(
    "leaves no namespace, interface, process, mount, cgroup or iptables rule once stopped",
    async () => {
      const started = Date.now();
      await swarm.stop();
      console.log(`swarm: down in ${Date.now() - started} ms`);

      const netns = (await exec("ip", ["netns", "list"])).stdout;
      expect(netns.split("\n").filter((l) => l.startsWith(`${PREFIX}-`))).toEqual([]);
      const links = (await exec("ip", ["-o", "link", "show"])).stdout;
      expect(links.split("\n").filter((l) => l.includes(` ${PREFIX}-`))).toEqual([]);
      const rules = (await exec("iptables", ["-S", "FORWARD"])).stdout;
      expect(rules).not.toContain(`${PREFIX}-br`);
      const dirs = [`/run/utilitarian-swarm/${PREFIX}`, `/var/lib/utilitarian-swarm/${PREFIX}`];
      const processes = readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            const cmdline = readFileSync(`/proc/${p}/cmdline`, "utf8");
            return dirs.some((d) => cmdline.includes(d));
          } catch {
            return false;
          }
        });
      expect(processes).toEqual([]);
      const mounts = readFileSync("/proc/self/mountinfo", "utf8");
      for (const dir of dirs) expect(mounts).not.toContain(dir);
      const cgroups = readdirSync("/sys/fs/cgroup").flatMap((c) => {
        try {
          return readdirSync(`/sys/fs/cgroup/${c}`).filter((d) => d === `utilitarian-swarm-${PREFIX}`);
        } catch {
          return [];
        }
      });
      expect(cgroups).toEqual([]);
      // The machine's own engine is untouched.
      expect((await exec("docker", ["version", "--format", "{{.Server.Version}}"])).code).toBe(0);
    },
    T,
  );
});
