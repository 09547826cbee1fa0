/**
 * The swarm target's settings and plan: what it refuses (each with its fix), how the same plan's
 * services become swarm services (a worker group one service of `count` replicas, the API's
 * replicas, one UDP server per edge node), and that the one-host plan does not change.
 */
import { describe, expect, test } from "vitest";
import { ConfigError } from "../../config/load";
import { planDeployment, servicesOf, type DeploymentPlan } from "../../components/plan";
import { placementLabel, renderPlacement } from "../../components/swarm";
import { plain } from "../support/engine";
import { loaded } from "./support/fixtures";
import { deploy } from "./support/program";

/** A swarm stack that passes: what the swarm needs set, and what it cannot do yet turned off. */
const SWARM = {
  target: "swarm",
  dockerHost: "ssh://deploy@manager-1",
  swarm: { nodeHosts: { "app-1": "ssh://deploy@app-1" } },
  proxy: { enabled: false },
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
    [
      "udpServer.network",
      { udpServer: { version: "1.0.0", network: "host" } },
      /udpServer\.network.*host mode, no routing mesh.*pulumi config rm/,
    ],
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

  test("the writers stopped for the backup (the default) and a rollback's restore are not refused", () => {
    const { settings } = loaded({ ...SWARM, restoreFrom: "latest" });
    expect(settings.backup.stopWriters).toBe(true);
    expect(settings.restoreFrom).toBe("latest");
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
    expect(order(onSwarm)).toEqual(grouped);
    // The same waits, edge for edge, apart from the group's name.
    const waits = (plan: DeploymentPlan) =>
      plan.nodes.flatMap((n) =>
        n.waits.map((w) => `${n.key.replace(/-\d+$/, "")} <- ${w.on.replace(/^(worker-\w+)-\d+$/, "$1")} by ${w.via}`),
      );
    expect(new Set(waits(onSwarm))).toEqual(new Set(waits(oneHost)));
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

describe("the steps' services on a swarm", () => {
  test("the backup scales the writers' services to 0 (each carries the backup's ID); a rollback's restore the API's and its followers'", async () => {
    const { mocks } = await deploy({ ...SWARM, restoreFrom: "latest" });
    const backup = mocks.get("u-backup");
    expect(backup.inputs.create).toBe("bash 'scripts/writers-stopped.sh' 'scripts/backup.sh'");
    const backupEnv = plain(backup.inputs.environment);
    // Service names: writers-stopped.sh scales them through the manager (SWARM_NODE_HOSTS says it is a swarm).
    expect(backupEnv.STOP_WRITERS).toBe("u-beat u-worker-default u-processor u-poster");
    expect(backupEnv.SWARM_NODE_HOSTS).toBe("app-1=ssh://deploy@app-1");
    expect(backupEnv.DOCKER_HOST).toBe("ssh://deploy@manager-1");
    const restoreEnv = plain(mocks.get("u-restore").inputs.environment);
    expect(restoreEnv.STOP_SERVICES).toBe("u-api u-beat u-worker-default u-processor u-poster");
    expect(restoreEnv).not.toHaveProperty("STOP_CONTAINERS");
    expect(restoreEnv.SWARM_NODE_HOSTS).toBe("app-1=ssh://deploy@app-1");
    // A writer the backup scaled to 0 is replaced after static: its label names the backup.
    for (const writer of ["u-beat", "u-worker-default", "u-processor", "u-poster"]) {
      const labels = plain(mocks.get(writer).inputs.labels) as { label: string; value: string }[];
      expect(labels.find((l) => l.label === "io.utilitarian.backup")?.value, writer).toBe("u-backup-id");
      expect(mocks.get(writer).propertyDependencies.labels, writer).toContain("u-backup");
    }
    // The UDP servers keep running: no backup label, not stopped by the restore.
    const udp = plain(mocks.get("u-udp-server").inputs.labels) as { label: string }[];
    expect(udp.map((l) => l.label)).not.toContain("io.utilitarian.backup");
  });

  test("on one Docker host the restore still stops containers", async () => {
    const { mocks } = await deploy({ ...SWARM, target: "docker", swarm: {}, restoreFrom: "latest" });
    const restoreEnv = plain(mocks.get("u-restore").inputs.environment);
    expect(restoreEnv.STOP_CONTAINERS).toBe("u-api u-beat u-worker-default-1 u-processor u-poster");
    expect(restoreEnv).not.toHaveProperty("STOP_SERVICES");
    expect(restoreEnv).not.toHaveProperty("SWARM_NODE_HOSTS");
  });
});
