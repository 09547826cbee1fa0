import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig } from "../../config/load";
import { EDGE_VERSIONS, loaded, rawConfig, secretKeysOf, SECRET_VALUES } from "./support/fixtures";

function problemsOf(values: Record<string, unknown>, secrets: Record<string, string> = SECRET_VALUES, storedAsSecret = secretKeysOf(secrets)): string[] {
  try {
    loadConfig(rawConfig({ ...EDGE_VERSIONS, ...values }, secrets), storedAsSecret);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("configuration was accepted");
}

const { databasePassword: _omitted, ...withoutDbPassword } = SECRET_VALUES;

describe("a valid configuration", () => {
  test("defaults: managed PostgreSQL and RabbitMQ, quay.io images, one default worker group", () => {
    const { settings, secrets } = loaded();
    expect(settings.version).toBe("1.0.0");
    expect(settings.database).toMatchObject({ mode: "managed", name: "utilitarian", user: "utilitarian", image: "postgres:15" });
    expect(settings.rabbitmq.mode).toBe("managed");
    expect(settings.images.api).toBe("quay.io/pwit/utilitarian");
    expect(settings.workers).toEqual([{ name: "default", queues: [], concurrency: 2, count: 1 }]);
    expect(settings.udpServer).toMatchObject({ enabled: true, dependsOnApi: false, port: 4059 });
    expect(settings.backup).toEqual({ dir: "./backups", keep: 5, testRestore: true });
    expect(secrets.secretKey).toBe(SECRET_VALUES.secretKey);
  });

  test("strings from YAML are read as numbers and booleans; a configured 0 is kept", () => {
    const { settings } = loaded({ backup: { keep: "3", testRestore: "false" }, stopGraceSeconds: { api: 0 } });
    expect(settings.backup.keep).toBe(3);
    expect(settings.backup.testRestore).toBe(false);
    expect(settings.stopGraceSeconds.api).toBe(0);
  });

  test("an external database and RabbitMQ need their host and URL, not the managed password", () => {
    const { rabbitmqPassword: _r, ...secrets } = SECRET_VALUES;
    const { settings } = loaded(
      { database: { mode: "external", host: "db.internal", operatorHost: "127.0.0.1", operatorPort: 6543 }, rabbitmq: { mode: "external" } },
      { ...secrets, rabbitmqUrl: "amqp://u:p@mq.internal:5672/utilitarian" },
    );
    expect(settings.database).toMatchObject({ mode: "external", host: "db.internal", operatorPort: 6543 });
  });
});

describe("every problem is reported at once, naming the key and the fix", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["version missing", { version: undefined }, "`utilitarian:version` is required"],
    ["version 'latest'", { version: "latest" }, "`utilitarian:version` must be a release tag like 1.2.0"],
    ["version with a v", { version: "v1.2.0" }, "`utilitarian:version` must be a release tag"],
    ["unknown top-level key", { verison: "1.2.0" }, "`utilitarian:verison` is not a known setting"],
    ["unknown nested key", { database: { hots: "x" } }, "`utilitarian:database.hots` is not a known setting"],
    ["bad database mode", { database: { mode: "cloud" } }, "`utilitarian:database.mode` must be managed or external"],
    ["external database without host", { database: { mode: "external" } }, "`utilitarian:database.host` is required when database.mode is external"],
    ["database name with a dash", { database: { name: "my-db" } }, "`utilitarian:database.name` must be a lower-case SQL identifier"],
    ["port out of range", { api: { port: 70000 } }, "`utilitarian:api.port` must be at most 65535"],
    ["port not a number", { api: { port: "eighty" } }, "`utilitarian:api.port` must be a whole number from 1 to 65535"],
    ["publish address not an IP", { api: { publishAddress: "localhost" } }, "`utilitarian:api.publishAddress` must be an IP address"],
    ["worker name with underscore", { workers: [{ name: "amr_fast" }] }, "`utilitarian:workers[0].name` must be lower case letters, digits and - (no underscores"],
    ["worker concurrency 0", { workers: [{ name: "a", concurrency: 0 }] }, "`utilitarian:workers[0].concurrency` must be at least 1"],
    ["worker count not whole", { workers: [{ name: "a", count: 1.5 }] }, "`utilitarian:workers[0].count` must be a whole number"],
    ["two worker groups with one name", { workers: [{ name: "a" }, { name: "a" }] }, "`utilitarian:workers` has two groups named 'a'"],
    ["bad queue name", { workers: [{ name: "a", queues: ["bad queue"] }] }, "`utilitarian:workers[0].queues[0]` queue names may hold"],
    ["edge version malformed", { poster: { version: "new" } }, "`utilitarian:poster.version` must be a release tag"],
    ["enabled edge without its version", { udpServer: { port: 4060 } }, "`utilitarian:udpServer.version` is required while udpServer is enabled"],
    ["boolean as word", { beat: { enabled: "yes" } }, "`utilitarian:beat.enabled` must be true or false"],
    ["image with tag", { images: { api: "quay.io/pwit/utilitarian:1.0.0" } }, "`utilitarian:images.api` must be an image repository without a tag"],
    ["docker host scheme", { dockerHost: "docker.example.com" }, "`utilitarian:dockerHost` must be unix:///path/to/docker.sock, ssh://user@host"],
    ["backup keep 0", { backup: { keep: 0 } }, "`utilitarian:backup.keep` must be at least 1"],
    ["env var name lower case", { api: { env: { debug: "1" } } }, "`utilitarian:api.env.debug` environment variable names must be UPPER_CASE"],
    ["reserved env var", { api: { env: { DATABASE_URL: "postgres://x" } } }, "`utilitarian:api.env.DATABASE_URL` is set by the deployment itself"],
    ["UDP port equals API port", { udpServer: { port: 8000 }, api: { publishAddress: "0.0.0.0" } }, "`utilitarian:udpServer.port` equals api.port"],
    ["grace period negative", { stopGraceSeconds: { worker: -5 } }, "`utilitarian:stopGraceSeconds.worker` must be at least 0"],
    ["registry without username", { registry: { server: "quay.io" } }, "`utilitarian:registry.username`"],
    ["sslmode unknown", { database: { sslmode: "on" } }, "`utilitarian:database.sslmode`"],
  ];

  test.each(cases)("%s", (_label, values, expected) => {
    const problems = problemsOf({ version: "1.0.0", ...values });
    expect(problems.join("\n")).toContain(expected);
  });

  test(`at least twenty malformed configurations are covered (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  test("several problems come back together, each on its own line", () => {
    const problems = problemsOf({ version: "latest", api: { port: 0 }, workers: [{ name: "A" }], database: { mode: "x" } });
    expect(problems).toHaveLength(4);
    expect(problems.map((p) => /`(utilitarian:[^`]+)`/.exec(p)?.[1]).sort()).toEqual([
      "utilitarian:api.port", "utilitarian:database.mode", "utilitarian:version", "utilitarian:workers[0].name",
    ]);
  });

  test("a missing secret names the key and the command that sets it", () => {
    const problems = problemsOf({ version: "1.0.0" }, withoutDbPassword);
    expect(problems).toEqual(["`utilitarian:databasePassword` is required (password of the application's database role); set it with `pulumi config set --secret utilitarian:databasePassword ...`"]);
  });

  test("a secret stored in plain text is refused without echoing it", () => {
    const storedAsSecret = new Set([...secretKeysOf()].filter((k) => k !== "utilitarian:edgeAuthToken"));
    const problems = problemsOf({ version: "1.0.0" }, SECRET_VALUES, storedAsSecret);
    expect(problems).toEqual(["`utilitarian:edgeAuthToken` is stored in plain text; set it again with `pulumi config set --secret utilitarian:edgeAuthToken ...`"]);
    expect(problems.join("\n")).not.toContain(SECRET_VALUES.edgeAuthToken);
  });

  test("a short SECRET_KEY is refused with a way to generate one", () => {
    const problems = problemsOf({ version: "1.0.0" }, { ...SECRET_VALUES, secretKey: "short" });
    expect(problems).toEqual(["`utilitarian:secretKey` is too short (5 characters); use at least 32 random characters, e.g. `openssl rand -base64 48`"]);
  });

  test("the external RabbitMQ URL is required and must be amqp://", () => {
    expect(problemsOf({ version: "1.0.0", rabbitmq: { mode: "external" } }).join("\n")).toContain("`utilitarian:rabbitmqUrl` is required");
    expect(problemsOf({ version: "1.0.0", rabbitmq: { mode: "external" } }, { ...SECRET_VALUES, rabbitmqUrl: "http://mq" }).join("\n"))
      .toContain("`utilitarian:rabbitmqUrl` must start with amqp:// or amqps://");
  });

  test("the error message lists every problem and says nothing was changed", () => {
    try {
      loadConfig(rawConfig({ ...EDGE_VERSIONS, version: "latest", api: { port: 0 } }), secretKeysOf());
      throw new Error("accepted");
    } catch (e) {
      expect((e as Error).message).toMatch(/^The stack configuration has 2 problems; nothing was changed:\n {2}- /);
    }
  });
});
