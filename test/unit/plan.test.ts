import { describe, expect, test } from "vitest";
import { settingsSchema } from "../../config/schema";
import { apiUrlFor } from "../../components/urls";
import {
  appImagesOf,
  planDeployment,
  RUNBOOK,
  servicesOf,
  stepsOf,
  type DeploymentPlan,
  type PlanNode,
  type RunbookStep,
  type Via,
} from "../../components/plan";

/** Validated settings (schema defaults applied) for plain values, as the loader gives them. */
const settings = (values: Record<string, unknown> = {}) =>
  settingsSchema.parse({
    version: "1.1.0",
    workers: [
      { name: "default" },
      { name: "amr", queues: ["utilitarian.tasks.amr", "utilitarian.tasks.amr.on_demand"], concurrency: 4, count: 2 },
    ],
    processor: { version: "1.1.0" },
    poster: { version: "1.0.3" },
    udpServer: { version: "0.9.0" },
    ...values,
  });
const plan = (values: Record<string, unknown> = {}) => planDeployment(settings(values));
const node = (p: DeploymentPlan, key: string): PlanNode => {
  const n = p.nodes.find((x) => x.key === key);
  if (!n) throw new Error(`no node ${key} in ${p.nodes.map((x) => x.key).join(", ")}`);
  return n;
};
/** What `key` waits for, as "<on> by <via>". */
const waits = (p: DeploymentPlan, key: string) =>
  node(p, key)
    .waits.map((w) => `${w.on} by ${w.via}`)
    .sort();
const FOLLOWERS = ["beat", "worker-default-1", "worker-amr-1", "worker-amr-2", "processor", "poster"];

describe("planDeployment: the one place the upgrade's order lives", () => {
  test("every node comes after all it waits for, and every wait says why", () => {
    for (const p of [
      plan(),
      plan({ restoreFrom: "latest" }),
      plan({ database: { mode: "external", host: "db.example.net" }, rabbitmq: { mode: "external" } }),
    ]) {
      const seen = new Set<string>();
      for (const n of p.nodes) {
        for (const w of n.waits) {
          expect(seen.has(w.on), `${n.key} waits for ${w.on}, which comes later`).toBe(true);
          expect(w.why.length, `${n.key} -> ${w.on}`).toBeGreaterThan(10);
        }
        expect(seen.has(n.key), `${n.key} twice`).toBe(false);
        seen.add(n.key);
      }
    }
  });

  test("runbook 4 then 1: new images pulled, then the verified backup, which the API's replacement waits for through the guard", () => {
    const p = plan();
    expect(waits(p, "backup")).toEqual([
      "database by dependsOn",
      "image-app by dependsOn",
      "image-poster by dependsOn",
      "image-processor by dependsOn",
      "image-udpServer by dependsOn",
    ]);
    expect(waits(p, "schema-guard")).toEqual(["backup by dependsOn"]);
    expect(waits(p, "api")).toEqual([
      "image-app by image",
      "network by network",
      "rabbitmq by dependsOn",
      "schema-guard by dependsOn",
    ]);
  });

  test("runbooks 2, 3: every follower takes a ForceNew input from the API (the engine stops it first); the processor and poster also call it by name", () => {
    const p = plan();
    for (const f of FOLLOWERS) {
      expect(waits(p, f), f).toEqual(
        expect.arrayContaining(["api by followsApi", "static by dependsOn", "backup by stoppedForBackup"]),
      );
    }
    for (const f of ["processor", "poster"]) expect(waits(p, f)).toContain("api by apiBaseUrl");
    // ... and says so directly to engines that know `replaceWith`.
    expect(
      servicesOf(p)
        .filter((s) => s.replacedWith.includes("api"))
        .map((s) => s.key),
    ).toEqual(FOLLOWERS);
  });

  test("runbooks 6, 7, 8: migrate in the new API container, then static files into it", () => {
    const p = plan();
    expect(waits(p, "migrate")).toEqual(["api by dependsOn"]);
    expect(waits(p, "static")).toEqual(["api by apiContainerId", "migrate by dependsOn"]);
  });

  test("runbook 10: verify waits for every service container", () => {
    const p = plan();
    expect(waits(p, "verify")).toEqual(
      servicesOf(p)
        .map((s) => `${s.key} by containerIds`)
        .sort(),
    );
    expect(p.nodes.at(-1)!.key).toBe("verify");
  });

  test("the UDP server, PostgreSQL and RabbitMQ have no edge on the API or the upgrade's steps: they keep running", () => {
    const p = plan();
    for (const key of ["udp-server", "postgres", "rabbitmq", "database", "network"]) {
      expect(
        node(p, key)
          .waits.map((w) => w.on)
          .filter((on) => ["api", "backup", "static", "migrate", "schema-guard"].includes(on)),
        key,
      ).toEqual([]);
    }
    expect(waits(p, "udp-server")).toEqual(["image-udpServer by image", "network by network", "rabbitmq by dependsOn"]);
  });

  test("each of the runbook's ten steps is carried out by a node of the plan", () => {
    const p = plan();
    const carried = new Set(p.nodes.flatMap((n) => n.runbook));
    expect([...carried].sort((a, b) => a - b)).toEqual(Object.keys(RUNBOOK).map(Number) as RunbookStep[]);
    expect(node(p, "migrate").runbook).toEqual([7]);
    expect(node(p, "processor").runbook).toEqual([2, 9]);
    expect(node(p, "beat").runbook).toEqual([3, 5, 9]);
  });

  test("a rollback restores after the backup and before the guard lets the older API start", () => {
    const p = plan({ restoreFrom: "latest" });
    expect(waits(p, "restore")).toEqual(["backup by dependsOn"]);
    expect(waits(p, "schema-guard")).toEqual(["restore by dependsOn"]);
    expect(stepsOf(p).map((s) => s.key)).toEqual(["backup", "restore", "migrate", "static", "verify"]);
  });

  test("with backup.stopWriters off, the backup stops nothing and no service waits for it", () => {
    const p = plan({ backup: { stopWriters: false } });
    const viaBackup = p.nodes.flatMap((n) => n.waits.filter((w) => w.on === "backup" && w.via !== "dependsOn"));
    expect(viaBackup).toEqual([]);
  });

  test("an edge service configured as not depending on the API keeps running through upgrades", () => {
    const p = plan({ poster: { version: "1.0.3", dependsOnApi: false } });
    expect(waits(p, "poster")).toEqual(["image-poster by image", "network by network", "rabbitmq by dependsOn"]);
    expect(servicesOf(p).find((s) => s.key === "poster")!.followsApi).toBe(false);
  });

  test("external database and RabbitMQ: no containers of theirs; the database node waits for nothing", () => {
    const p = plan({ database: { mode: "external", host: "db.example.net" }, rabbitmq: { mode: "external" } });
    expect(p.nodes.map((n) => n.key)).not.toEqual(expect.arrayContaining(["postgres"]));
    expect(p.nodes.some((n) => ["postgres", "rabbitmq", "image-postgres", "image-rabbitmq"].includes(n.key))).toBe(
      false,
    );
    expect(waits(p, "database")).toEqual([]);
    expect(waits(p, "udp-server")).toEqual(["image-udpServer by image", "network by network"]);
  });

  test("every property edge is one of the kinds the builder turns into an input", () => {
    const kinds = new Set<Via>(plan().nodes.flatMap((n) => n.waits.map((w) => w.via)));
    expect([...kinds].sort()).toEqual([
      "apiBaseUrl",
      "apiContainerId",
      "containerIds",
      "dependsOn",
      "followsApi",
      "image",
      "network",
      "stoppedForBackup",
    ]);
  });
});

describe("planDeployment: services and images", () => {
  test("API, beat, workers and API-dependent edges follow the API; the maintenance proxy and the UDP server are independent", () => {
    expect(servicesOf(plan()).map((s) => [s.key, s.followsApi])).toEqual([
      ["api", false],
      ["proxy", false],
      ["beat", true],
      ["worker-default-1", true],
      ["worker-amr-1", true],
      ["worker-amr-2", true],
      ["processor", true],
      ["poster", true],
      ["udp-server", false],
    ]);
  });

  test("edge services have their own version; API, beat and workers share the app image", () => {
    const p = plan();
    expect(appImagesOf(p).map((i) => [i.key, i.ref])).toEqual([
      ["image-app", "quay.io/pwit/utilitarian:1.1.0"],
      ["image-processor", "quay.io/pwit/utilitarian-dlms-processor:1.1.0"],
      ["image-poster", "quay.io/pwit/utilitarian-poster:1.0.3"],
      ["image-udpServer", "quay.io/pwit/utilitarian-dlms-udp-server:0.9.0"],
    ]);
    expect(
      new Set(
        servicesOf(p)
          .filter((s) => ["api", "beat", "worker"].includes(s.role))
          .map((s) => s.image),
      ),
    ).toEqual(new Set(["app"]));
  });

  test("worker commands carry queues, concurrency and a unique Celery node name", () => {
    const amr2 = servicesOf(plan()).find((s) => s.key === "worker-amr-2")!;
    expect(amr2.command).toEqual([
      "celery",
      "-A",
      "utilitarian",
      "worker",
      "--loglevel=INFO",
      "--concurrency=4",
      "--hostname=amr-2@%h",
      "-Q",
      "utilitarian.tasks.amr,utilitarian.tasks.amr.on_demand",
    ]);
    expect(amr2.graceSeconds).toBe(60);
  });

  test("exactly one beat, or none when disabled; disabled edges have no image and no container", () => {
    expect(servicesOf(plan()).filter((s) => s.role === "beat")).toHaveLength(1);
    const p = plan({ beat: { enabled: false }, processor: { enabled: false } });
    expect(servicesOf(p).map((s) => s.key)).toEqual([
      "api",
      "proxy",
      "worker-default-1",
      "worker-amr-1",
      "worker-amr-2",
      "poster",
      "udp-server",
    ]);
    expect(appImagesOf(p).map((i) => i.key)).toEqual(["image-app", "image-poster", "image-udpServer"]);
  });

  test("an enabled edge service without its own version is a programming error, named", () => {
    const s = settings();
    expect(() => planDeployment({ ...s, udpServer: { ...s.udpServer, version: undefined } })).toThrow(
      "udpServer is enabled but has no version",
    );
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
