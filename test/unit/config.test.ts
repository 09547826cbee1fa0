import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig } from "../../config/load";
import { BAD_CONFIGS } from "./support/bad-configs";
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
    expect(settings.backup).toEqual({ dir: "./backups", keep: 5, testRestore: true, stopWriters: true });
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

  test.each(BAD_CONFIGS)("%s", (_label, values, expected) => {
    const problems = problemsOf({ version: "1.0.0", ...values });
    expect(problems.join("\n")).toContain(expected);
  });

  test(`at least twenty malformed configurations are covered (${BAD_CONFIGS.length})`, () => {
    expect(BAD_CONFIGS.length).toBeGreaterThanOrEqual(20);
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
