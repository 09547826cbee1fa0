import { describe, expect, test } from "vitest";
import { apiUrlFor, planDeployment, type PlanInput } from "../../components/plan";

const input: PlanInput = {
  version: "1.1.0",
  images: { app: "quay.io/pwit/utilitarian", processor: "quay.io/pwit/utilitarian-dlms-processor", poster: "quay.io/pwit/utilitarian-poster", udpServer: "quay.io/pwit/utilitarian-dlms-udp-server" },
  beat: { enabled: true },
  workers: [
    { name: "default", queues: [], concurrency: 2, count: 1 },
    { name: "amr", queues: ["utilitarian.tasks.amr", "utilitarian.tasks.amr.on_demand"], concurrency: 4, count: 2 },
  ],
  processor: { enabled: true, version: "1.1.0", dependsOnApi: true },
  poster: { enabled: true, version: "1.0.3", dependsOnApi: true },
  udpServer: { enabled: true, version: "0.9.0", dependsOnApi: false },
  stopGraceSeconds: { api: 30, beat: 10, worker: 60, edge: 15 },
};

describe("planDeployment", () => {
  test("API, beat, workers and API-dependent edges follow the runbook; the UDP server is independent", () => {
    const plan = planDeployment(input);
    expect(plan.services.map((s) => [s.key, s.phase])).toEqual([
      ["api", "withApi"],
      ["beat", "afterMigrations"],
      ["worker-default-1", "afterMigrations"],
      ["worker-amr-1", "afterMigrations"],
      ["worker-amr-2", "afterMigrations"],
      ["processor", "afterMigrations"],
      ["poster", "afterMigrations"],
      ["udp-server", "independent"],
    ]);
  });

  test("steps run in runbook order: backup and migrate once per version, static into every new API container, verify after any replacement", () => {
    expect(planDeployment(input).steps).toEqual([
      { key: "backup", script: "backup.sh", runsOnceFor: "version" },
      { key: "migrate", script: "migrate.sh", runsOnceFor: "version" },
      { key: "static", script: "static.sh", runsOnceFor: "apiContainer" },
      { key: "verify", script: "verify.sh", runsOnceFor: "services" },
    ]);
  });

  test("a rollback restores after the backup and before migrate", () => {
    const keys = planDeployment({ ...input, restoreFrom: "latest" }).steps.map((s) => s.key);
    expect(keys).toEqual(["backup", "restore", "migrate", "static", "verify"]);
  });

  test("edge services have their own version; API, beat and workers share the app image", () => {
    const plan = planDeployment(input);
    expect(plan.images).toEqual([
      { key: "app", repository: "quay.io/pwit/utilitarian", tag: "1.1.0" },
      { key: "processor", repository: "quay.io/pwit/utilitarian-dlms-processor", tag: "1.1.0" },
      { key: "poster", repository: "quay.io/pwit/utilitarian-poster", tag: "1.0.3" },
      { key: "udpServer", repository: "quay.io/pwit/utilitarian-dlms-udp-server", tag: "0.9.0" },
    ]);
    expect(new Set(plan.services.filter((s) => ["api", "beat", "worker"].includes(s.role)).map((s) => s.image))).toEqual(new Set(["app"]));
  });

  test("worker commands carry queues, concurrency and a unique Celery node name", () => {
    const amr2 = planDeployment(input).services.find((s) => s.key === "worker-amr-2")!;
    expect(amr2.command).toEqual(["celery", "-A", "utilitarian", "worker", "--loglevel=INFO", "--concurrency=4", "--hostname=amr-2@%h", "-Q", "utilitarian.tasks.amr,utilitarian.tasks.amr.on_demand"]);
    expect(amr2.graceSeconds).toBe(60);
  });

  test("exactly one beat, or none when disabled; disabled edges have no image and no container", () => {
    expect(planDeployment(input).services.filter((s) => s.role === "beat")).toHaveLength(1);
    const plan = planDeployment({ ...input, beat: { enabled: false }, processor: { enabled: false, dependsOnApi: true } });
    expect(plan.services.map((s) => s.key)).toEqual(["api", "worker-default-1", "worker-amr-1", "worker-amr-2", "poster", "udp-server"]);
    expect(plan.images.map((i) => i.key)).toEqual(["app", "poster", "udpServer"]);
  });

  test("an enabled edge service without its own version is a programming error, named", () => {
    expect(() => planDeployment({ ...input, udpServer: { enabled: true, dependsOnApi: false } })).toThrow("udpServer is enabled but has no version");
  });

  test("an edge service configured as not depending on the API keeps running through upgrades", () => {
    const plan = planDeployment({ ...input, poster: { enabled: true, version: "1.0.3", dependsOnApi: false } });
    expect(plan.services.find((s) => s.key === "poster")!.phase).toBe("independent");
  });
});

describe("apiUrlFor", () => {
  test("a wildcard publish address is reached on loopback for the local engine", () => {
    expect(apiUrlFor("0.0.0.0", 8000)).toBe("http://127.0.0.1:8000");
    expect(apiUrlFor("::", 8000, "unix:///var/run/docker.sock")).toBe("http://127.0.0.1:8000");
  });

  test("a wildcard publish address is reached on the remote engine's host name", () => {
    expect(apiUrlFor("0.0.0.0", 8000, "ssh://deploy@meters.example.net")).toBe("http://meters.example.net:8000");
    expect(apiUrlFor("0.0.0.0", 8443, "tcp://10.1.2.3:2376")).toBe("http://10.1.2.3:8443");
  });

  test("a specific address is used as it is; IPv6 gets brackets", () => {
    expect(apiUrlFor("10.0.0.5", 8000, "ssh://deploy@meters.example.net")).toBe("http://10.0.0.5:8000");
    expect(apiUrlFor("fd00::5", 8000)).toBe("http://[fd00::5]:8000");
    expect(apiUrlFor("[fd00::5]", 8000)).toBe("http://[fd00::5]:8000");
  });
});
