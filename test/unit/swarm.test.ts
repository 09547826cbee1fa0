/**
 * The swarm target's settings and plan: what it refuses (each with its fix), how the same plan's
 * services become swarm services (a worker group one service of `count` replicas, the API's
 * replicas, one UDP server per edge node), and that the one-host plan does not change.
 */
import { describe, expect, test } from "vitest";
import { ConfigError } from "../../config/load";
import { planDeployment, servicesOf, type DeploymentPlan } from "../../components/plan";
import { placementLabel, pullTargets, renderPlacement } from "../../components/swarm";
import { loaded } from "./support/fixtures";
import { deploy } from "./support/program";

/** A swarm stack that passes: what the swarm needs set, and what it cannot do yet turned off. */
const SWARM = {
  target: "swarm",
  dockerHost: "ssh://deploy@manager-1",
  swarm: { nodeHosts: { "app-1": "ssh://deploy@app-1" } },
  proxy: { enabled: false },
  backup: { stopWriters: false },
  database: { operatorHost: "10.0.0.12" },
};

function problems(values: Record<string, unknown>): string[] {
  try {
    loaded(values);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

const order = (plan: DeploymentPlan) => plan.nodes.map((n) => n.key);

describe("target: swarm settings", () => {
  test("the default target is one Docker host, and its plan has no replicas", () => {
    const { settings } = loaded({});
    expect(settings.target).toBe("docker");
    expect(servicesOf(planDeployment(settings)).some((s) => "replicas" in s)).toBe(false);
  });

  test("a swarm stack with what it needs loads", () => {
    const { settings } = loaded(SWARM);
    expect(settings.target).toBe("swarm");
    expect(settings.swarm.labels).toEqual({
      app: "utilitarian.app",
      workers: "utilitarian.workers",
      edge: "utilitarian.edge",
      data: "utilitarian.data",
    });
    expect(settings.swarm.apiReplicas).toBe(1);
  });

  test.each([
    ["swarm.nodeHosts", { swarm: {} }, /swarm\.nodeHosts.*is empty.*pulumi config set --path/],
    ["proxy.enabled", { proxy: { enabled: true } }, /proxy\.enabled.*does not run on a swarm yet.*false/],
    ["backup.stopWriters", { backup: { stopWriters: true } }, /backup\.stopWriters.*not built for a swarm yet/],
    [
      "udpServer.network",
      { udpServer: { version: "1.0.0", network: "host" } },
      /udpServer\.network.*host mode, no routing mesh.*pulumi config rm/,
    ],
    ["restoreFrom", { restoreFrom: "latest" }, /restoreFrom.*not built for a swarm yet.*pulumi config rm/],
    [
      "database.operatorHost",
      { database: {} },
      /database\.operatorHost.*required with target swarm.*utilitarian\.data/,
    ],
  ])("refused, with its fix: %s", (key, change, message) => {
    const found = problems({ ...SWARM, ...change });
    expect(found, key).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  test("the same settings on one Docker host refuse none of that", () => {
    expect(problems({ ...SWARM, target: "docker", swarm: {}, proxy: { enabled: true } })).toEqual([]);
  });

  test("a label key that Docker would not take is refused", () => {
    expect(problems({ ...SWARM, swarm: { ...SWARM.swarm, labels: { app: "App Nodes" } } })).toEqual([
      expect.stringMatching(/swarm\.labels\.app.*node label key/),
    ]);
  });
});

describe("the plan on a swarm", () => {
  const workers = [
    { name: "default", queues: [], concurrency: 2, count: 3 },
    { name: "amr", queues: ["amr"], concurrency: 1, count: 2 },
  ];

  test("a worker group is one service of `count` replicas; the API has apiReplicas; one UDP server per edge node", () => {
    const plan = planDeployment(loaded({ ...SWARM, workers, swarm: { ...SWARM.swarm, apiReplicas: 2 } }).settings);
    const replicas = Object.fromEntries(servicesOf(plan).map((s) => [s.key, s.replicas]));
    expect(replicas).toEqual({
      api: 2,
      beat: 1,
      "worker-default": 3,
      "worker-amr": 2,
      processor: 1,
      poster: 1,
      "udp-server": "global",
    });
    const amr = servicesOf(plan).find((s) => s.key === "worker-amr")!;
    // `%h` is each task's own host name: the replicas tell themselves apart.
    expect(amr.command).toContain("--hostname=amr@%h");
    expect(amr.command).toEqual(expect.arrayContaining(["-Q", "amr"]));
  });

  test("the order is the one-host plan's, with each worker group in place of its replicas", () => {
    const onSwarm = planDeployment(loaded({ ...SWARM, workers }).settings);
    const oneHost = planDeployment(loaded({ ...SWARM, target: "docker", workers }).settings);
    const grouped = order(oneHost)
      .map((key) => key.replace(/^(worker-[a-z0-9-]+?)-\d+$/, "$1"))
      .filter((key, i, keys) => keys.indexOf(key) === i);
    // The swarm's one addition, the nodes' pull, is the next test's.
    expect(order(onSwarm).filter((key) => key !== "pull")).toEqual(grouped);
    // The same waits, edge for edge, apart from the group's name.
    const waits = (plan: DeploymentPlan) =>
      plan.nodes
        .filter((n) => n.key !== "pull")
        .flatMap((n) =>
          n.waits
            .filter((w) => w.on !== "pull")
            .map((w) => `${n.key.replace(/-\d+$/, "")} <- ${w.on.replace(/^(worker-\w+)-\d+$/, "$1")} by ${w.via}`),
        );
    expect(new Set(waits(onSwarm))).toEqual(new Set(waits(oneHost)));
  });

  test("the nodes pull every new image before anything stops: after the images, before the backup and every service", () => {
    const poster = { version: "1.0.0", dependsOnApi: false };
    const plan = planDeployment(loaded({ ...SWARM, workers, poster }).settings);
    const node = (key: string) => plan.nodes.find((n) => n.key === key)!;
    const pull = node("pull");
    expect(pull).toMatchObject({ kind: "step", step: "pull", script: "pull.sh", runsOnceFor: "images", runbook: [4] });
    expect(pull.waits.map((w) => `${w.on} by ${w.via}`)).toEqual(
      ["image-app", "image-processor", "image-poster", "image-udpServer"].map((k) => `${k} by nodesPull`),
    );
    expect(node("backup").waits).toContainEqual(expect.objectContaining({ on: "pull", via: "dependsOn" }));
    // Every service waits for the pull, directly or through what it waits for: none of them is
    // stopped (replaced, deleted first) before every node has its new image.
    const reaches = (key: string, target: string, seen = new Set<string>()): boolean =>
      key === target || (!seen.has(key) && (seen.add(key), node(key).waits.some((w) => reaches(w.on, target, seen))));
    for (const service of servicesOf(plan)) expect(reaches(service.key, "pull"), service.key).toBe(true);
    // The independent ones (here the poster and the UDP server) wait for the pull itself, not for the backup.
    for (const key of ["poster", "udp-server"]) {
      expect(node(key).waits.map((w) => w.on)).toContain("pull");
      expect(reaches(key, "backup"), key).toBe(false);
    }
    // On one host nothing of this: the image is on the host once its pull is done.
    const oneHost = planDeployment(loaded({ ...SWARM, target: "docker", workers }).settings);
    expect(oneHost.nodes.some((n) => n.key === "pull" || n.waits.some((w) => w.on === "pull"))).toBe(false);
  });

  test("which nodes pull what: each image on the labels of the services that run it", () => {
    const { settings } = loaded({ ...SWARM, workers });
    expect(pullTargets(servicesOf(planDeployment(settings)), settings.swarm.labels)).toEqual([
      { image: "app", label: "utilitarian.app", services: ["api", "beat"] },
      { image: "app", label: "utilitarian.workers", services: ["worker-default", "worker-amr"] },
      { image: "processor", label: "utilitarian.app", services: ["processor"] },
      { image: "poster", label: "utilitarian.app", services: ["poster"] },
      { image: "udpServer", label: "utilitarian.edge", services: ["udp-server"] },
    ]);
  });

  test("each role's label: app, workers, edge, data", () => {
    const labels = loaded(SWARM).settings.swarm.labels;
    expect(
      (["api", "beat", "worker", "processor", "poster", "udpServer", "postgres", "rabbitmq"] as const).map((r) =>
        placementLabel(r, labels),
      ),
    ).toEqual([
      "utilitarian.app",
      "utilitarian.app",
      "utilitarian.workers",
      "utilitarian.app",
      "utilitarian.app",
      "utilitarian.edge",
      "utilitarian.data",
      "utilitarian.data",
    ]);
  });

  test("npm run plan's placement: each service, its tasks and its nodes' label", () => {
    const { settings } = loaded({ ...SWARM, workers });
    const text = renderPlacement(servicesOf(planDeployment(settings)), settings.swarm.labels, (k) => `p-${k}`, {
      postgres: true,
      rabbitmq: false,
    });
    const lines = text.trim().split("\n").slice(1);
    expect(lines.map((l) => l.trim().split(/\s{2,}/))).toEqual([
      ["p-postgres", "1 task", "on nodes with utilitarian.data=true"],
      ["p-api", "1 task", "on nodes with utilitarian.app=true"],
      ["p-beat", "1 task", "on nodes with utilitarian.app=true"],
      ["p-worker-default", "3 tasks", "on nodes with utilitarian.workers=true"],
      ["p-worker-amr", "2 tasks", "on nodes with utilitarian.workers=true"],
      ["p-processor", "1 task", "on nodes with utilitarian.app=true"],
      ["p-poster", "1 task", "on nodes with utilitarian.app=true"],
      ["p-udp-server", "one per node", "on nodes with utilitarian.edge=true"],
    ]);
  });
});

describe("the component on a swarm", () => {
  test("a started service's tasks are waited for swarm.startTimeoutSeconds (PostgreSQL and RabbitMQ their own health waits), the global UDP server not at all", async () => {
    const { mocks } = await deploy({ ...SWARM, swarm: { ...SWARM.swarm, startTimeoutSeconds: 90 } });
    const timeouts = Object.fromEntries(
      mocks.ofType("docker:index/service:Service").map((s) => [s.name, s.inputs.convergeConfig?.timeout ?? "none"]),
    );
    expect(timeouts).toEqual({
      "u-postgres": "120s",
      "u-rabbitmq": "180s",
      "u-api": "90s",
      "u-beat": "90s",
      "u-worker-default": "90s",
      "u-processor": "90s",
      "u-poster": "90s",
      "u-udp-server": "none",
    });
  });
});
