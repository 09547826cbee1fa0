/**
 * The swarm target's settings and plan: what it refuses (each with its fix), how the same plan's
 * services become swarm services (a worker group one service of `count` replicas, the API's
 * replicas, one UDP server per edge node), that the one-host plan does not change, and how the
 * secrets reach a swarm's tasks: as swarm secrets and a loader, never in a service's spec.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, test } from "vitest";
import { ConfigError } from "../../config/load";
import { SECRET_KEYS } from "../../config/schema";
import { appEnvironment, edgeEnvironment, wholeEnvironment } from "../../components/environment";
import { planDeployment, servicesOf, type DeploymentPlan } from "../../components/plan";
import { placementLabel, pullTargets, renderPlacement } from "../../components/swarm";
import {
  LOADER_PATH,
  LOADER_SCRIPT,
  loaderCommand,
  parseImageCommand,
  swarmSecretName,
} from "../../components/swarmSecrets";
import { loaded, SECRET_VALUES, SWARM_SETTINGS } from "./support/fixtures";
import { MOCK_IMAGE_COMMAND } from "./support/mocks";
import { deploy } from "./support/program";
import { plain } from "../support/engine";

/** A swarm stack that passes: what the swarm needs set, and what it cannot do yet turned off. */
const SWARM = SWARM_SETTINGS;

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

const SERVICE = "docker:index/service:Service";
const SECRET = "docker:index/secret:Secret";
const JWT = "jwt-signing-value-H2k&q";
const SECRETS = { ...SECRET_VALUES, apiSecretEnv: JSON.stringify({ JWT_SIGNING_KEY: JWT }) };
/** Every secret value as a spec could hold it: as it is, and percent-encoded (inside a URL). */
const SECRET_FORMS = [...Object.values(SECRET_VALUES), JWT].flatMap((v) => [v, encodeURIComponent(v)]);

describe("secrets on a swarm", () => {
  test("the environment builders put every secret value in their secret part, none in the plain one", () => {
    const { settings, secrets } = loaded(SWARM, SECRETS);
    const app = appEnvironment({
      settings,
      apiName: "p-api",
      amqpUrl: `amqp://u:${encodeURIComponent(SECRET_VALUES.rabbitmqPassword)}@rabbitmq:5672//`,
      secretKey: secrets.secretKey,
      apiSecretEnv: secrets.apiSecretEnv,
      databaseUrl: `postgres://u:${encodeURIComponent(SECRET_VALUES.databasePassword)}@postgres:5432/u`,
    });
    expect(Object.keys(app.secret).sort()).toEqual([
      "AMQP_CONNECTION_STRING",
      "DATABASE_URL",
      "JWT_SIGNING_KEY",
      "SECRET_KEY",
    ]);
    const processor = edgeEnvironment("processor", {
      settings,
      amqpUrl: "amqp://secret-url",
      apiHost: "p-api",
      edgeAuthToken: secrets.edgeAuthToken,
    });
    expect(Object.keys(processor.secret).sort()).toEqual(["AMQP_CONNECTION_STRING", "UTILITARIAN_AUTH_TOKEN"]);
    const udp = edgeEnvironment("udpServer", { settings, amqpUrl: "amqp://secret-url", apiHost: "p-api" });
    expect(Object.keys(udp.secret)).toEqual(["AMQP_CONNECTION_STRING"]);
    for (const env of [app, processor, udp]) {
      const plain = JSON.stringify(env.plain);
      for (const secret of [...SECRET_FORMS, "secret-url"]) expect(plain).not.toContain(secret);
      // One host: both parts, as before.
      expect(Object.keys(wholeEnvironment(env)).sort()).toEqual(
        [...Object.keys(env.plain), ...Object.keys(env.secret)].sort(),
      );
    }
  });

  test("under the mock: no service's spec holds a secret; each secret variable is a swarm secret its tasks mount", async () => {
    const { mocks } = await deploy(
      { ...SWARM, workers: [{ name: "default", queues: [], count: 2 }] },
      { secrets: SECRETS },
    );
    const services = mocks.ofType(SERVICE);
    expect(services.map((s) => s.name).sort()).toEqual(
      ["api", "beat", "postgres", "processor", "poster", "rabbitmq", "udp-server", "worker-default"]
        .map((k) => `u-${k}`)
        .sort(),
    );
    const files = (name: string) =>
      (plain(mocks.get(name).inputs).taskSpec.containerSpec.secrets as { fileName: string }[])
        .map((m) => m.fileName)
        .sort();
    for (const service of services) {
      expect(JSON.stringify(plain(service.inputs)), service.name).not.toMatch(
        new RegExp(SECRET_FORMS.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")),
      );
      const container = plain(service.inputs).taskSpec.containerSpec;
      expect(container.commands, service.name).toEqual(["sh", LOADER_PATH]);
      expect(files(service.name)[files(service.name).length - 1]).toBe("utilitarian-load-env");
    }
    const app = [
      "utilitarian-env.AMQP_CONNECTION_STRING",
      "utilitarian-env.DATABASE_URL",
      "utilitarian-env.JWT_SIGNING_KEY",
      "utilitarian-env.SECRET_KEY",
      "utilitarian-load-env",
    ];
    for (const key of ["api", "beat", "worker-default"]) expect(files(`u-${key}`), key).toEqual(app);
    expect(files("u-processor")).toEqual([
      "utilitarian-env.AMQP_CONNECTION_STRING",
      "utilitarian-env.UTILITARIAN_AUTH_TOKEN",
      "utilitarian-load-env",
    ]);
    expect(files("u-udp-server")).toEqual(["utilitarian-env.AMQP_CONNECTION_STRING", "utilitarian-load-env"]);
    expect(files("u-postgres")).toEqual(["utilitarian-env.POSTGRES_PASSWORD", "utilitarian-load-env"]);
    expect(files("u-rabbitmq")).toEqual(["utilitarian-env.RABBITMQ_DEFAULT_PASS", "utilitarian-load-env"]);
    // The plain settings stay in the spec's env.
    const apiEnv = plain(mocks.get("u-api").inputs).taskSpec.containerSpec.env;
    expect(Object.keys(apiEnv).sort()).toEqual(["ALLOWED_HOSTS", "UTILITARIAN_DEBUG"]);
    expect(plain(mocks.get("u-postgres").inputs).taskSpec.containerSpec.env).toEqual({
      POSTGRES_DB: "postgres",
      POSTGRES_USER: "postgres",
    });
    // The image's entrypoint runs after the loader, then the plan's command or else the image's.
    const [entrypoint, cmd] = JSON.parse(MOCK_IMAGE_COMMAND) as string[][];
    expect(plain(mocks.get("u-api").inputs).taskSpec.containerSpec.args).toEqual([...entrypoint, ...cmd]);
    expect(plain(mocks.get("u-beat").inputs).taskSpec.containerSpec.args).toEqual([
      ...entrypoint,
      "celery",
      "-A",
      "utilitarian",
      "beat",
      "--loglevel=INFO",
    ]);
    // One secret per variable, shared by the services that get the same value, plus the loader.
    const secrets = mocks.ofType(SECRET);
    const byVariable = Object.fromEntries(
      secrets.map((s) => [
        s.inputs.labels.find((l: { label: string }) => l.label === "io.utilitarian.variable")?.value ?? "loader",
        s,
      ]),
    );
    expect(Object.keys(byVariable).sort()).toEqual([
      "AMQP_CONNECTION_STRING",
      "DATABASE_URL",
      "JWT_SIGNING_KEY",
      "POSTGRES_PASSWORD",
      "RABBITMQ_DEFAULT_PASS",
      "SECRET_KEY",
      "UTILITARIAN_AUTH_TOKEN",
      "loader",
    ]);
    const data = (variable: string) => Buffer.from(plain(byVariable[variable].inputs).data, "base64").toString();
    expect(data("SECRET_KEY")).toBe(SECRET_VALUES.secretKey);
    expect(data("POSTGRES_PASSWORD")).toBe(SECRET_VALUES.databaseAdminPassword);
    expect(data("RABBITMQ_DEFAULT_PASS")).toBe(SECRET_VALUES.rabbitmqPassword);
    expect(data("UTILITARIAN_AUTH_TOKEN")).toBe(SECRET_VALUES.edgeAuthToken);
    expect(data("JWT_SIGNING_KEY")).toBe(JWT);
    expect(data("DATABASE_URL")).toContain(encodeURIComponent(SECRET_VALUES.databasePassword));
    expect(data("loader")).toBe(LOADER_SCRIPT);
    for (const s of secrets) for (const f of SECRET_FORMS) expect(plain(s.inputs).name).not.toContain(f);
    // manage.py runs through the loader in the steps that call it.
    for (const step of ["u-migrate", "u-static", "u-verify"])
      expect(plain(mocks.get(step).inputs.environment).MANAGE, step).toBe(`sh ${LOADER_PATH} python manage.py`);
  });

  test("one Docker host: no swarm secrets, and the containers' environment holds the values as before", async () => {
    const { mocks } = await deploy({}, { secrets: SECRETS });
    expect(mocks.ofType(SECRET)).toEqual([]);
    expect(plain(mocks.get("u-api").inputs.envs)).toContain(`SECRET_KEY=${SECRET_VALUES.secretKey}`);
    expect(plain(mocks.get("u-api").inputs.envs)).toContain(`JWT_SIGNING_KEY=${JWT}`);
    expect(plain(mocks.get("u-migrate").inputs.environment).MANAGE).toBeUndefined();
  });

  test("the loader exports each secret file as its variable, byte for byte, and execs the command as PID 1's successor", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarm-loader-"));
    try {
      const script = LOADER_SCRIPT.split("/run/secrets").join(dir);
      fs.writeFileSync(path.join(dir, "utilitarian-env.DATABASE_URL"), "postgres://u:p w$x'\"@h/db\n\n");
      fs.writeFileSync(path.join(dir, "utilitarian-env.SECRET_KEY"), "k");
      const out = execFileSync(
        "sh",
        ["-c", script, "sh", "sh", "-c", 'printf "%s|%s|%s" "$DATABASE_URL" "$SECRET_KEY" "$0"', "child"],
        {
          env: { PATH: process.env.PATH },
        },
      ).toString();
      expect(out).toBe("postgres://u:p w$x'\"@h/db\n\n|k|child");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a task's command: the loader, then the image's entrypoint, then the plan's command or the image's", () => {
    const image = parseImageCommand('[["/usr/local/bin/docker-entrypoint.sh"],["postgres"]]\n');
    expect(loaderCommand(image)).toEqual({
      commands: ["sh", LOADER_PATH],
      args: ["/usr/local/bin/docker-entrypoint.sh", "postgres"],
    });
    const app = parseImageCommand('[null,["gunicorn","app"]]');
    expect(loaderCommand(app).args).toEqual(["gunicorn", "app"]);
    expect(loaderCommand(app, ["celery", "beat"]).args).toEqual(["celery", "beat"]);
    expect(() => loaderCommand(parseImageCommand("[null,null]"))).toThrow(/neither an entrypoint nor a command/);
    expect(() => parseImageCommand('{"Cmd":[]}')).toThrow(/expected \[entrypoint, cmd\]/);
  });

  test("a swarm secret's name: stable for a value, new for another, never the value, at most 64 characters", () => {
    const a = swarmSecretName("p", "DATABASE_URL", "postgres://u:pw@h/db");
    expect(a).toMatch(/^p-database_url-[0-9a-f]{16}$/);
    expect(swarmSecretName("p", "DATABASE_URL", "postgres://u:pw@h/db")).toBe(a);
    expect(swarmSecretName("p", "DATABASE_URL", "postgres://u:pw2@h/db")).not.toBe(a);
    expect(swarmSecretName("q", "DATABASE_URL", "postgres://u:pw@h/db")).not.toBe(a.replace(/^p/, "q"));
    const long = swarmSecretName("a-long-stack-prefix", "A_VERY_LONG_SECRET_VARIABLE_NAME_FOR_THE_API_X", "v");
    expect(long.length).toBeLessThanOrEqual(64);
    expect(long).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9-_.]*[a-zA-Z0-9]$/);
  });

  test("which settings are secret is SECRET_KEYS' list: every one that reaches a service has its variable", () => {
    // The keys a swarm service's secret variables come from (environment.ts, database.ts, broker.ts);
    // registryPassword reaches the provider only.
    expect(
      Object.keys(SECRET_KEYS)
        .filter((k) => k !== "registryPassword")
        .sort(),
    ).toEqual([
      "apiSecretEnv",
      "databaseAdminPassword",
      "databasePassword",
      "edgeAuthToken",
      "rabbitmqPassword",
      "rabbitmqUrl",
      "secretKey",
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
