import * as fs from "fs";
import * as path from "path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { latestFor, restoreFromProblems, verifiedBackups } from "../../config/backups";
import { ConfigError, loadConfig } from "../../config/load";
import { tempBackupDir, writeBackup } from "./support/backups";
import { BAD_CONFIGS } from "./support/bad-configs";
import { EDGE_VERSIONS, loaded, rawConfig, secretKeysOf, SECRET_VALUES } from "./support/fixtures";

function problemsOf(
  values: Record<string, unknown>,
  secrets: Record<string, string> = SECRET_VALUES,
  storedAsSecret = secretKeysOf(secrets),
): string[] {
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
    expect(settings.database).toMatchObject({
      mode: "managed",
      name: "utilitarian",
      user: "utilitarian",
      image: "postgres:15",
    });
    expect(settings.rabbitmq.mode).toBe("managed");
    expect(settings.images.api).toBe("quay.io/pwit/utilitarian");
    expect(settings.workers).toEqual([{ name: "default", queues: [], concurrency: 2, count: 1 }]);
    expect(settings.udpServer).toMatchObject({ enabled: true, dependsOnApi: false, port: 4059 });
    expect(settings.backup).toEqual({
      dir: "./backups",
      keep: 5,
      testRestore: "schema",
      compressLevel: 1,
      restoreJobs: 2,
      stopWriters: true,
    });
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
      {
        database: { mode: "external", host: "db.internal", operatorHost: "127.0.0.1", operatorPort: 6543 },
        rabbitmq: { mode: "external" },
      },
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
    const problems = problemsOf({
      version: "latest",
      api: { port: 0 },
      workers: [{ name: "A" }],
      database: { mode: "x" },
    });
    expect(problems).toHaveLength(4);
    expect(problems.map((p) => /`(utilitarian:[^`]+)`/.exec(p)?.[1]).sort()).toEqual([
      "utilitarian:api.port",
      "utilitarian:database.mode",
      "utilitarian:version",
      "utilitarian:workers[0].name",
    ]);
  });

  test("a missing secret names the key and the command that sets it", () => {
    const problems = problemsOf({ version: "1.0.0" }, withoutDbPassword);
    expect(problems).toEqual([
      "`utilitarian:databasePassword` is required (password of the application's database role); set it with `pulumi config set --secret utilitarian:databasePassword ...`",
    ]);
  });

  test("a secret stored in plain text is refused without echoing it", () => {
    const storedAsSecret = new Set([...secretKeysOf()].filter((k) => k !== "utilitarian:edgeAuthToken"));
    const problems = problemsOf({ version: "1.0.0" }, SECRET_VALUES, storedAsSecret);
    expect(problems).toEqual([
      "`utilitarian:edgeAuthToken` is stored in plain text; set it again with `pulumi config set --secret utilitarian:edgeAuthToken ...`",
    ]);
    expect(problems.join("\n")).not.toContain(SECRET_VALUES.edgeAuthToken);
  });

  test("a short SECRET_KEY is refused with a way to generate one", () => {
    const problems = problemsOf({ version: "1.0.0" }, { ...SECRET_VALUES, secretKey: "short" });
    expect(problems).toEqual([
      "`utilitarian:secretKey` is too short (5 characters); use at least 32 random characters, e.g. `openssl rand -base64 48`",
    ]);
  });

  test("the external RabbitMQ URL is required and must be amqp://", () => {
    expect(problemsOf({ version: "1.0.0", rabbitmq: { mode: "external" } }).join("\n")).toContain(
      "`utilitarian:rabbitmqUrl` is required",
    );
    expect(
      problemsOf(
        { version: "1.0.0", rabbitmq: { mode: "external" } },
        { ...SECRET_VALUES, rabbitmqUrl: "http://mq" },
      ).join("\n"),
    ).toContain("`utilitarian:rabbitmqUrl` must start with amqp:// or amqps://");
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

describe("hosts, addresses, ports and images: what is accepted", () => {
  test("IPv6 literals work where addresses are allowed, kept bare as Docker and libpq take them", () => {
    const { settings } = loaded({
      api: {
        publishAddress: "[::1]",
        allowedHosts: ["[::1]", "*", ".example.net", "10.0.0.5", "utilitarian.example.net"],
      },
      udpServer: { version: "1.0.0", publishAddress: "::" },
      database: { mode: "external", host: "[2001:db8::5]", operatorHost: "::1", port: "6432" },
    });
    expect(settings.api.publishAddress).toBe("::1");
    expect(settings.udpServer.publishAddress).toBe("::");
    expect(settings.database).toMatchObject({ host: "2001:db8::5", operatorHost: "::1", port: 6432 });
    expect(settings.api.allowedHosts).toEqual(["[::1]", "*", ".example.net", "10.0.0.5", "utilitarian.example.net"]);
  });

  test("host names and IPv4 addresses, including the edges of the ranges", () => {
    const { settings } = loaded({
      database: {
        mode: "external",
        host: "db-1.internal.example.com",
        operatorHost: "255.255.255.254",
        operatorPort: 65535,
      },
      api: { port: 1, publishAddress: "0.0.0.0" },
    });
    expect(settings.database).toMatchObject({
      host: "db-1.internal.example.com",
      operatorHost: "255.255.255.254",
      operatorPort: 65535,
    });
    expect(settings.api).toMatchObject({ port: 1, publishAddress: "0.0.0.0" });
  });

  test.each([
    "unix:///var/run/docker.sock",
    "ssh://deploy@app1.example.net",
    "ssh://app1.example.net",
    "ssh://deploy@app1.example.net:2222",
    "ssh://deploy@[2001:db8::7]:22",
    "tcp://10.0.0.5:2376",
    "tcp://docker.example.net",
  ])("dockerHost %s", (dockerHost) => {
    expect(loaded({ dockerHost }).settings.dockerHost).toBe(dockerHost);
  });

  test("image references as Docker parses them: registry with port, nested paths, __ and -- separators, tags and digests where allowed", () => {
    const images = {
      api: "localhost:5000/utilitarian",
      processor: "registry.example.net:5000/team/dlms--processor",
      poster: "pwit/utilitarian__poster",
      udpServer: "udp-server",
    };
    const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const { settings } = loaded({
      images,
      database: { image: `registry.example.net/postgres:15.8-bookworm@${digest}` },
      rabbitmq: { image: "rabbitmq" },
    });
    expect(settings.images).toEqual(images);
    expect(settings.database.image).toBe(`registry.example.net/postgres:15.8-bookworm@${digest}`);
  });

  test("registry credentials for Docker Hub images: Docker Hub's host names all mean docker.io", () => {
    const { settings } = loaded(
      {
        registry: { server: "index.docker.io", username: "pwit+robot" },
        images: { api: "pwit/utilitarian", processor: "pwit/processor", poster: "pwit/poster", udpServer: "pwit/udp" },
      },
      { ...SECRET_VALUES, registryPassword: "registry-pass" },
    );
    expect(settings.registry).toEqual({ server: "index.docker.io", username: "pwit+robot" });
  });

  test("environment values: numbers and booleans become text; spaces inside a value are fine", () => {
    const { settings } = loaded({
      api: {
        env: {
          DATA_RETENTION_DAYS: 730,
          CORS_ALLOW_ALL: false,
          CORS_WHITELIST: "https://a.example.net https://b.example.net",
        },
      },
    });
    expect(settings.api.env).toEqual({
      DATA_RETENTION_DAYS: "730",
      CORS_ALLOW_ALL: "false",
      CORS_WHITELIST: "https://a.example.net https://b.example.net",
    });
  });

  test("the API and the managed database may share a port number when the API is published elsewhere", () => {
    expect(loaded({ api: { port: 15432, publishAddress: "10.0.0.5" } }).settings.api.port).toBe(15432);
    expect(problemsOf({ version: "1.0.0", api: { port: 15432, publishAddress: "0.0.0.0" } }).join("\n")).toContain(
      "`utilitarian:database.operatorPort` is 15432, which api.port also publishes on 0.0.0.0",
    );
  });
});

describe("values that may be secrets are never shown", () => {
  test("a password inside dockerHost is refused without echoing it", () => {
    const problems = problemsOf({ version: "1.0.0", dockerHost: "tcp://admin:Sup3r-Secr3t@docker.example.net:2376" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("`utilitarian:dockerHost` must not hold a password");
    expect(problems[0]).not.toContain("Sup3r-Secr3t");
  });

  test.each([
    ["no host", "amqp://user:Rabbit-Secr3t@/utilitarian"],
    ["a space in the host", "amqp://user:Rabbit-Secr3t@mq .example.net:5672/utilitarian"],
    ["a port out of range", "amqps://user:Rabbit-Secr3t@mq.example.net:99999/utilitarian"],
  ])("an external RabbitMQ URL with %s is refused without echoing it", (_what, rabbitmqUrl) => {
    const problems = problemsOf(
      { version: "1.0.0", rabbitmq: { mode: "external" } },
      { ...SECRET_VALUES, rabbitmqUrl },
    );
    expect(problems.join("\n")).toContain(
      "`utilitarian:rabbitmqUrl` must be amqp[s]://user:password@host[:port]/vhost with a valid host name or address and port",
    );
    expect(problems.join("\n")).not.toContain("Rabbit-Secr3t");
  });

  test("a secret environment value with a NUL is refused without echoing it; line breaks (PEM keys) are kept", () => {
    const apiSecretEnv = JSON.stringify({
      JWT_SIGNING_KEY: "jwt-Secr3t\u0000tail",
      TLS_KEY: "-----BEGIN KEY-----\nabc\n-----END KEY-----",
    });
    const problems = problemsOf({ version: "1.0.0" }, { ...SECRET_VALUES, apiSecretEnv });
    expect(problems).toEqual([
      "`utilitarian:apiSecretEnv.JWT_SIGNING_KEY` holds a NUL character, which no environment variable can carry; set it again with `pulumi config set --secret --path 'utilitarian:apiSecretEnv.JWT_SIGNING_KEY' ...`",
    ]);
    const pem = JSON.stringify({ TLS_KEY: "-----BEGIN KEY-----\nabc\n-----END KEY-----" });
    expect(loaded({}, { ...SECRET_VALUES, apiSecretEnv: pem }).secrets.apiSecretEnv).toEqual({
      TLS_KEY: "-----BEGIN KEY-----\nabc\n-----END KEY-----",
    });
  });

  test("plain environment: a bad value and a secret-looking name are refused without echoing the value", () => {
    const problems = problemsOf({
      version: "1.0.0",
      api: { env: { EMAIL_HOST_PASSWORD: "Mail-Secr3t", CORS_WHITELIST: "https://a.example.net\nMail-Secr3t" } },
    });
    expect(problems.join("\n")).toContain("`utilitarian:api.env.EMAIL_HOST_PASSWORD` looks like a secret");
    expect(problems.join("\n")).toContain(
      "`utilitarian:api.env.CORS_WHITELIST` must be one line of text without control characters; it holds a line break at character 22",
    );
    expect(problems.join("\n")).not.toContain("Mail-Secr3t");
  });
});

describe("names derived from the stack", () => {
  const load = (stack: string, values: Record<string, unknown> = {}) =>
    loadConfig(rawConfig({ ...EDGE_VERSIONS, version: "1.0.0", ...values }), secretKeysOf(), { stack });

  test("without utilitarian:prefix, a stack name that makes no valid host name is refused with a prefix to set", () => {
    expect(() => load("Prod_EU.1")).toThrow(
      "`utilitarian:prefix` is not set, so names would start with 'utilitarian-Prod_EU.1' (from the stack name), which is not a valid name: " +
        "lower case letters, digits and - (names become container and host names), at most 41 characters. Set it with `pulumi config set utilitarian:prefix utilitarian-prod-eu-1`.",
    );
    expect(() => load("a-stack-name-that-is-much-too-long-for-names")).toThrow(
      "Set it with `pulumi config set utilitarian:prefix utilitarian-a-stack-name-that-is-much-too`.",
    );
  });

  test("a valid stack name, or an explicit prefix, is accepted", () => {
    expect(load("dev").settings.prefix).toBeUndefined();
    expect(load("Prod_EU", { prefix: "utilitarian-prod-eu" }).settings.prefix).toBe("utilitarian-prod-eu");
  });
});

describe("restoreFrom names a verified backup in backup.dir, checked before anything registers", () => {
  // A project directory with backups/ in it, as scripts/backup.sh leaves it after three upgrades.
  let project: string;
  let backups: string;
  const names = { first: "", older: "", newer: "" };
  beforeEach(() => {
    project = tempBackupDir("restore-project");
    backups = path.join(project, "backups");
    names.first = writeBackup(backups, { stamp: "20250101T090000Z", from: "none", to: "1.0.0" });
    names.older = writeBackup(backups, { stamp: "20250102T090000Z", from: "1.0.0", to: "1.1.0" });
    names.newer = writeBackup(backups, { stamp: "20250301T090000Z", from: "1.0.0", to: "1.2.0" });
  });
  afterEach(() => fs.rmSync(project, { recursive: true, force: true }));
  const check = (restoreFrom: string, version = "1.0.0", backupDir = "backups") =>
    restoreFromProblems({ restoreFrom, backupDir, version, projectDir: project });
  const problem = (restoreFrom: string, version = "1.0.0", backupDir = "backups") => {
    const problems = check(restoreFrom, version, backupDir);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^`utilitarian:restoreFrom` is refused: /);
    return problems[0];
  };
  const load = (restoreFrom: string, backupDir = "backups") =>
    loadConfig(
      rawConfig({ ...EDGE_VERSIONS, version: "1.0.0", restoreFrom, backup: { dir: backupDir } }),
      secretKeysOf(),
      { projectDir: project },
    );

  test("latest resolves as restore.sh does: the newest backup taken while the target version ran", () => {
    expect(latestFor(backups, "1.0.0")).toBe(names.newer);
    expect(latestFor(backups, "none")).toBe(names.first);
    expect(check("latest")).toEqual([]);
    expect(verifiedBackups(backups).map((b) => [b.name, b.from, b.to])).toEqual([
      [names.newer, "1.0.0", "1.2.0"],
      [names.older, "1.0.0", "1.1.0"],
      [names.first, "none", "1.0.0"],
    ]);
  });

  test("a path relative to the project directory, or absolute, is accepted as given: no absolute path is put into the settings", () => {
    expect(check(`backups/${names.older}`)).toEqual([]);
    expect(check(path.join(backups, names.older))).toEqual([]);
    expect(check(`./backups/../backups/${names.older}`)).toEqual([]);
    expect(load(`backups/${names.older}`).settings.restoreFrom).toBe(`backups/${names.older}`);
    expect(load("latest", "./backups").settings.backup.dir).toBe("./backups");
  });

  test("a bare file name is relative to the project directory too; the refusal names the path to set", () => {
    expect(problem(names.older)).toContain(
      `${names.older} does not exist (relative paths start at the project directory; that file is backups/${names.older})`,
    );
  });

  test("the refusal lists the newest verified backups as the values to set, and the fix that works", () => {
    for (let day = 10; day < 16; day++)
      writeBackup(backups, { stamp: `202504${day}T090000Z`, from: "1.2.0", to: "1.3.0" });
    const message = problem("backups/utilitarian-20250101T000000Z-1.0.0-to-1.1.0.dump");
    expect(message).toContain("backups/utilitarian-20250101T000000Z-1.0.0-to-1.1.0.dump does not exist.");
    expect(message).toContain(
      "Verified backups in backups, newest first: backups/utilitarian-20250415T090000Z-1.2.0-to-1.3.0.dump (taken while 1.2.0 ran, before the upgrade to 1.3.0); ",
    );
    expect(message.match(/backups\/utilitarian-[^ ]+\.dump \(taken/g)).toHaveLength(5);
    expect(message).toContain("; and 4 older.");
    expect(message).toContain(
      `Set it with \`pulumi config set utilitarian:restoreFrom latest\` (backups/${names.newer}), or remove it (\`pulumi config rm utilitarian:restoreFrom\`) if no rollback is under way.`,
    );
  });

  test("a file outside backup.dir is refused, also when reached through a symlink or ..", () => {
    const elsewhere = path.join(project, "elsewhere");
    const copy = writeBackup(elsewhere, { stamp: "20250102T090000Z", from: "1.0.0", to: "1.1.0" });
    expect(problem(`elsewhere/${copy}`)).toContain(
      `elsewhere/${copy} is not inside backup.dir backups; only the verified backups there can be restored.`,
    );
    expect(problem(`backups/../elsewhere/${copy}`)).toContain("is not inside backup.dir backups");
    fs.symlinkSync(path.join(elsewhere, copy), path.join(backups, "utilitarian-20250401T090000Z-1.0.0-to-1.3.0.dump"));
    expect(problem("backups/utilitarian-20250401T090000Z-1.0.0-to-1.3.0.dump")).toContain(
      "is not inside backup.dir backups",
    );
    // restore.sh's find -type f skips symlinks, so latest skips it too.
    expect(latestFor(backups, "1.0.0")).toBe(names.newer);
  });

  test.each([
    [
      "its checksum file is missing",
      (file: string) => fs.rmSync(`${file}.sha256`),
      "its checksum file NAME.sha256 is missing",
    ],
    ["its manifest is missing", (file: string) => fs.rmSync(`${file}.json`), "its manifest NAME.json is missing"],
    ["the file was cut short", (file: string) => fs.truncateSync(file, 10), "it has 10 bytes but its manifest says"],
    ["the file grew", (file: string) => fs.appendFileSync(file, "more"), "it has 73 bytes but its manifest says 69"],
    [
      "the manifest is not JSON",
      (file: string) => fs.writeFileSync(`${file}.json`, "{ truncated"),
      "its manifest NAME.json is not JSON",
    ],
    [
      "the manifest describes another file",
      (file: string) => {
        const manifest = JSON.parse(fs.readFileSync(`${file}.json`, "utf8"));
        fs.writeFileSync(
          `${file}.json`,
          JSON.stringify({ ...manifest, file: "utilitarian-20240101T000000Z-1.0.0-to-1.1.0.dump" }),
        );
      },
      "its manifest NAME.json describes another file",
    ],
    [
      "the checksum file names another file",
      (file: string) => fs.writeFileSync(`${file}.sha256`, `${"a".repeat(64)}  other.dump\n`),
      "its checksum file NAME.sha256 does not hold",
    ],
    [
      "checksum and manifest disagree",
      (file: string) => fs.writeFileSync(`${file}.sha256`, `${"a".repeat(64)}  ${path.basename(file)}\n`),
      "its manifest and its checksum file disagree on the sha256",
    ],
  ])("a named backup is refused when %s", (_what, damage, expected) => {
    damage(path.join(backups, names.older));
    const message = problem(`backups/${names.older}`);
    expect(message).toContain(
      `backups/${names.older} is not a verified backup: ${expected.replace("NAME", names.older)}`,
    );
    expect(message).not.toContain(`(backups/${names.older}`);
  });

  test("a verified backup taken while another version ran is refused: its schema is not the target's", () => {
    const other = writeBackup(backups, { stamp: "20250401T090000Z", from: "1.1.0", to: "1.2.0" });
    expect(problem(`backups/${other}`)).toContain(
      `backups/${other} was taken while 1.1.0 ran, but \`utilitarian:version\` is 1.0.0: 1.0.0's code would meet 1.1.0's schema.`,
    );
  });

  test("latest is refused when no backup of the target version exists, or when the newest one is not verified", () => {
    expect(problem("latest", "0.9.0")).toContain(
      "latest means the newest backup taken while 0.9.0 ran (utilitarian-*-0.9.0-to-*.dump), and backup.dir backups holds none.",
    );
    expect(problem("latest", "0.9.0")).toContain(
      "None was taken while 0.9.0 ran: set `utilitarian:version` to the version a backup was taken under",
    );
    fs.rmSync(path.join(backups, `${names.newer}.json`));
    const message = problem("latest");
    expect(message).toContain(
      `latest is ${names.newer} (the newest utilitarian-*-1.0.0-to-*.dump), which is not a verified backup: its manifest ${names.newer}.json is missing.`,
    );
    // restore.sh would take that newest file; the fix names the older verified one instead.
    expect(message).toContain(
      `Set it with \`pulumi config set utilitarian:restoreFrom backups/${names.older}\`, the newest verified backup taken while 1.0.0 ran`,
    );
  });

  test("backup.dir missing, or a file, is refused", () => {
    expect(problem("latest", "1.0.0", "no-such-dir")).toContain(
      "backup.dir no-such-dir is not a directory here, so it holds no backup to restore. Point backup.dir at the directory that holds the backups",
    );
    expect(problem("latest", "1.0.0", `backups/${names.older}`)).toContain("is not a directory here");
  });

  test("the loader runs the check with backup.dir and reports it with the other problems", () => {
    try {
      loadConfig(
        rawConfig({
          ...EDGE_VERSIONS,
          version: "1.0.0",
          api: { port: 0 },
          restoreFrom: "latest",
          backup: { dir: "empty" },
        }),
        secretKeysOf(),
        { projectDir: project },
      );
      throw new Error("accepted");
    } catch (e) {
      // Schema problems come first and alone: the file system is read only for a valid config.
      expect((e as ConfigError).problems).toEqual([expect.stringContaining("`utilitarian:api.port`")]);
    }
    fs.mkdirSync(path.join(project, "empty"));
    expect(() => load("latest", "empty")).toThrow(
      "`utilitarian:restoreFrom` is refused: latest means the newest backup taken while 1.0.0 ran (utilitarian-*-1.0.0-to-*.dump), and backup.dir empty holds none. backup.dir empty holds no verified backup.",
    );
  });
});
