import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as ts from "typescript";
import { describe, expect, test } from "vitest";
import { ArgsError, UtilitarianDeployment, type UtilitarianDeploymentArgs } from "../../lib";
import { validateArgs } from "../../components/args";
import { settingsSchema } from "../../config/schema";
import { plain } from "../support/engine";
import { BACKUPS } from "./support/backups";
import { EDGE_VERSIONS, loaded, SECRET_VALUES } from "./support/fixtures";
import { promiseOf, RecordingMocks } from "./support/mocks";
import { deploy } from "./support/program";

/**
 * The component as another team's program uses it: args in the style of pulumi-eks/awsx
 * (optional, with the schema's defaults), validated with every problem named by its arg, env
 * values that may be Inputs, and the caller's providers honoured.
 */

const MINIMAL: UtilitarianDeploymentArgs = { version: "1.0.0", ...EDGE_VERSIONS, secrets: { ...SECRET_VALUES } };

/** Builds the component under a fresh recording mock; `setup` may declare resources first (providers). */
async function build<T>(make: () => T): Promise<{ mocks: RecordingMocks; made: T }> {
  const mocks = new RecordingMocks();
  await pulumi.runtime.setMocks(mocks, "utilitarian", "dev", false);
  const made = make();
  await mocks.idle();
  return { mocks, made };
}

/** The ArgsError a construction throws, with nothing registered. */
async function refused(args: unknown, name = "u"): Promise<string[]> {
  const { mocks, made } = await build(() => {
    try {
      new UtilitarianDeployment(name, args as UtilitarianDeploymentArgs);
      return undefined;
    } catch (e) {
      return e;
    }
  });
  expect(made).toBeInstanceOf(ArgsError);
  expect(mocks.registrations).toEqual([]);
  return (made as ArgsError).problems;
}

const DOCKER_TYPES = /^docker:/;
const reference = async (p: pulumi.ProviderResource) => `${await promiseOf(p.urn)}::${await promiseOf(p.id)}`;

describe("minimal args: the schema's defaults", () => {
  test("a version, the edge versions and the secrets build what the stack program builds from the same settings", async () => {
    const { mocks } = await build(() => new UtilitarianDeployment("u", MINIMAL));
    const fromConfig = await deploy({}, { prefix: "u" });
    const declared = (m: RecordingMocks) =>
      m.registrations
        .map((r) => [r.type, r.name, plain(r.inputs)])
        .sort((a, b) => String(a[1]).localeCompare(String(b[1])));
    expect(declared(mocks)).toEqual(declared(fromConfig.mocks));
    // The defaults, as the README documents them: one worker, managed PostgreSQL and RabbitMQ, the maintenance proxy, the prefix from the name.
    expect(
      mocks
        .ofType("docker:index/container:Container")
        .map((c) => c.inputs.name)
        .sort(),
    ).toEqual([
      "u-api",
      "u-beat",
      "u-poster",
      "u-postgres",
      "u-processor",
      "u-proxy",
      "u-rabbitmq",
      "u-udp-server",
      "u-worker-default-1",
    ]);
    // The API reached through the maintenance proxy (on by default) on 127.0.0.1:8000; the API publishes nothing.
    expect(mocks.get("u-proxy").inputs.ports).toEqual([{ internal: 8080, external: 8000, ip: "127.0.0.1" }]);
    expect(mocks.get("u-api").inputs.ports).toBeUndefined();
  });

  test("the prefix defaults to the component's name; `prefix` sets it", async () => {
    const { mocks } = await build(() => new UtilitarianDeployment("acme", { ...MINIMAL, prefix: "acme-prod" }));
    expect(mocks.get("acme-api").inputs.name).toBe("acme-prod-api");
    expect(mocks.get("acme-network").inputs.name).toBe("acme-prod-net");
  });

  test("the stack program's loaded settings passed back through the args come out unchanged", () => {
    for (const values of [
      {},
      {
        workers: [{ name: "amr", queues: ["utilitarian.tasks.amr"], count: 2 }],
        api: { env: { UTILITARIAN_LOGLEVEL: "debug" } },
      },
      { restoreFrom: "latest" },
    ]) {
      const { settings, secrets } = loaded(values);
      expect(validateArgs("u", { ...settings, secrets, prefix: "u" }).planSettings).toEqual({
        ...settings,
        prefix: "u",
      });
    }
  });

  test("every arg has TSDoc: one sentence on what it does, then its default (or that it is required), as the schema has it", () => {
    const file = path.resolve(__dirname, "../../components/args.ts");
    const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
    const args = source.statements.find(
      (s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === "UtilitarianDeploymentArgs",
    )!;
    const docs = Object.fromEntries(
      args.members.map((m) => [
        (m.name as ts.Identifier).text,
        ts
          .getJSDocCommentsAndTags(m)
          .map((d) => ts.getTextOfJSDocComment((d as ts.JSDoc).comment) ?? "")
          .join(" ")
          .replace(/\s+/g, " "),
      ]),
    );
    expect(Object.keys(docs).sort()).toEqual([...Object.keys(settingsSchema.shape), "secrets"].sort());
    for (const [key, doc] of Object.entries(docs))
      expect(doc, key).toMatch(/^[A-Z`].+\. (Defaults to .+|Required[:.].*)\.?$/);
    // Each value a "Defaults to" sentence quotes is a default the schema really gives that key.
    const defaults = settingsSchema.parse({ version: "1.0.0", ...EDGE_VERSIONS }) as Record<string, unknown>;
    const leaves = (v: unknown): string[] =>
      v !== null && typeof v === "object" ? Object.values(v).flatMap(leaves) : [String(v)];
    for (const [key, doc] of Object.entries(docs)) {
      const quoted = [...(/Defaults to (.*)$/.exec(doc)?.[1] ?? "").matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      expect(
        quoted.filter((q) => !leaves(defaults[key]).includes(q)),
        key,
      ).toEqual([]);
    }
    expect(docs.api).toContain("`8000`");
  });
});

describe("bad args: every problem at once, named by its arg, with the fix, before anything registers", () => {
  test("values the schema refuses name their arg path, in args terms", async () => {
    const problems = await refused({
      ...MINIMAL,
      version: "latest",
      api: { port: 70000 },
      workers: [{ name: "amr", count: 0 }],
      stopGraceSeconds: { beat: -1 },
    });
    expect(problems).toEqual(
      [
        "`version` must be a release tag like 1.2.0 (set `version` to the version to run)",
        "`api.port` must be a port, a whole number from 1 to 65535; got 70000; for example `api.port: 8000`",
        "`workers[0].count` must be at least 1",
        "`stopGraceSeconds.beat` must be at least 0",
      ].map((p) => expect.stringContaining(p)),
    );
  });

  test("an unknown arg and an unknown secret are named; a missing one is required", async () => {
    expect(await refused({ ...MINIMAL, wokers: [] })).toEqual([expect.stringMatching(/^`wokers` is not a known arg/)]);
    expect(await refused({ ...MINIMAL, version: undefined })).toEqual([
      "`version` is required: the Utilitarian release to run, like 1.2.0; set it with `version: 1.2.0`",
    ]);
    const { edgeAuthToken: _, ...withoutToken } = SECRET_VALUES;
    expect(await refused({ ...MINIMAL, secrets: { ...withoutToken, secretkey: "x".repeat(40) } })).toEqual([
      expect.stringMatching(/^`secrets.secretkey` is not a known secret; the secrets are secretKey, /),
      expect.stringMatching(
        /^`secrets.edgeAuthToken` is required while the processor or the poster is enabled .*; set it with `secrets.edgeAuthToken: ...`$/,
      ),
    ]);
  });

  test("fixes the schema words for stack config are given as args", async () => {
    const problems = await refused({
      ...MINIMAL,
      processor: {},
      api: { env: { API_TOKEN: "t" } },
      udpServer: { ...EDGE_VERSIONS.udpServer, env: { AMQP_CONNECTION_STRING: "amqp://x" } },
    });
    expect(problems).toEqual([
      expect.stringContaining(
        "`processor.version` is required while processor is enabled: the release of this edge service, like 1.0.0; set it with `processor.version: 1.0.0` or disable it with `processor.enabled: false`",
      ),
      expect.stringContaining("`api.env.API_TOKEN` looks like a secret"),
      expect.stringContaining(
        "`udpServer.env.AMQP_CONNECTION_STRING` is set by the deployment itself (from the broker); remove it (leave `udpServer.env.AMQP_CONNECTION_STRING` out)",
      ),
    ]);
    expect(problems[1]).toContain("move it: leave `api.env.API_TOKEN` out, then `secrets.apiSecretEnv.API_TOKEN: ...`");
    for (const p of problems) expect(p).not.toMatch(/pulumi config|utilitarian:/);
  });

  test("a component name that is not a valid prefix is refused when no prefix is given", async () => {
    expect(await refused(MINIMAL, "My_App")).toEqual([
      expect.stringMatching(
        /^`prefix` is not set, so names would start with 'My_App' \(from the component's name\), which is not a valid name: .* Set it with `prefix: my-app`\.$/,
      ),
    ]);
  });

  test("restoreFrom must name a verified backup, checked before anything registers", async () => {
    const [problem, ...rest] = await refused({
      ...MINIMAL,
      version: "2.0.0",
      restoreFrom: "latest",
      backup: { dir: BACKUPS.dir },
    });
    expect(rest).toEqual([]);
    expect(problem).toMatch(/^`restoreFrom` is refused: latest means the newest backup taken while 2.0.0 ran/);
    expect(problem).toContain("set `version` to the version a backup was taken under");
    expect(problem).not.toMatch(/pulumi config|utilitarian:/);
    const { mocks } = await build(
      () =>
        new UtilitarianDeployment("u", {
          ...MINIMAL,
          version: "1.1.0",
          restoreFrom: "latest",
          backup: { dir: BACKUPS.dir },
        }),
    );
    expect(mocks.find("u-restore")).toBeTruthy();
  });
});

describe("Inputs: values needed only when a container is created", () => {
  test("api and edge env values may be Outputs or promises: they reach the containers, secrets stay secret", async () => {
    const { mocks } = await build(
      () =>
        new UtilitarianDeployment("u", {
          ...MINIMAL,
          api: {
            env: {
              CORS_WHITELIST: pulumi.output("https://a.example"),
              DATA_RETENTION_DAYS: 90,
              SENTRY_DSN: pulumi.secret("https://k@sentry.example/1"),
            },
          },
          poster: { ...EDGE_VERSIONS.poster, env: { POSTER_PREFETCH_COUNT: Promise.resolve("50") } },
        }),
    );
    const envs = (name: string) => plain(mocks.get(name).inputs.envs) as string[];
    expect(envs("u-api")).toEqual(
      expect.arrayContaining([
        "CORS_WHITELIST=https://a.example",
        "DATA_RETENTION_DAYS=90",
        "SENTRY_DSN=https://k@sentry.example/1",
      ]),
    );
    expect(envs("u-worker-default-1")).toContain("CORS_WHITELIST=https://a.example");
    expect(envs("u-poster")).toContain("POSTER_PREFETCH_COUNT=50");
    expect(JSON.stringify(mocks.get("u-api").inputs.envs)).toContain("1b47061264138c4ac30d75fd1eb44270");
  });

  test("an Input env value's name is still checked", async () => {
    expect(
      await refused({ ...MINIMAL, api: { env: { SECRET_KEY: pulumi.output("x"), DB_PASSWORD: pulumi.secret("p") } } }),
    ).toEqual([
      expect.stringMatching(/^`api.env.DB_PASSWORD` looks like a secret/),
      expect.stringMatching(/^`api.env.SECRET_KEY` is set by the deployment itself/),
    ]);
  });
});

describe("opts.providers: the caller's providers are used, none created", () => {
  const dockerResources = (m: RecordingMocks) => m.registrations.filter((r) => DOCKER_TYPES.test(r.type));

  test.each([
    ["opts.providers as a map", (p: docker.Provider) => ({ providers: { docker: p } })],
    ["opts.providers as a list", (p: docker.Provider) => ({ providers: [p] })],
    ["opts.provider", (p: docker.Provider) => ({ provider: p })],
  ])("a docker provider in %s: every docker resource references it", async (_label, opts) => {
    const { mocks, made: caller } = await build(() => {
      const p = new docker.Provider("caller-docker", { host: "ssh://deploy@docker.example" });
      new UtilitarianDeployment("u", { ...MINIMAL, dockerHost: "ssh://deploy@docker.example" }, opts(p));
      return p;
    });
    const ref = await reference(caller);
    const { mocks: own } = await build(() => new UtilitarianDeployment("u", MINIMAL));
    expect(
      dockerResources(mocks)
        .map((r) => r.name)
        .sort(),
    ).toEqual(
      dockerResources(own)
        .map((r) => r.name)
        .sort(),
    );
    expect(
      dockerResources(mocks)
        .filter((r) => r.provider !== ref)
        .map((r) => r.name),
    ).toEqual([]);
    expect(mocks.registrations.filter((r) => r.type === "pulumi:providers:docker").map((r) => r.name)).toEqual([
      "caller-docker",
    ]);
    // The step scripts reach the same engine through DOCKER_HOST.
    expect(plain(mocks.get("u-migrate").inputs.environment).DOCKER_HOST).toBe("ssh://deploy@docker.example");
  });

  test("inherited from a parent component, as the SDK passes providers down", async () => {
    const { mocks, made: caller } = await build(() => {
      const p = new docker.Provider("caller-docker", {});
      const platform = new pulumi.ComponentResource("acme:index:Platform", "platform", {}, { providers: [p] });
      new UtilitarianDeployment("u", MINIMAL, { parent: platform });
      return p;
    });
    const ref = await reference(caller);
    expect(
      dockerResources(mocks)
        .filter((r) => r.provider !== ref)
        .map((r) => r.name),
    ).toEqual([]);
    expect(mocks.find("u-docker")).toBeUndefined();
  });

  test("a postgresql provider: the role and database use it; the docker provider is still the component's own", async () => {
    const { mocks, made: caller } = await build(() => {
      const p = new postgresql.Provider("caller-postgresql", { host: "127.0.0.1", port: 15432 });
      new UtilitarianDeployment("u", MINIMAL, { providers: [p] });
      return p;
    });
    const ref = await reference(caller);
    expect(mocks.ofType("postgresql:index/role:Role").map((r) => r.provider)).toEqual([ref]);
    expect(mocks.ofType("postgresql:index/database:Database").map((r) => r.provider)).toEqual([ref]);
    expect(
      mocks.registrations
        .filter((r) => r.type.startsWith("pulumi:providers:"))
        .map((r) => r.name)
        .sort(),
    ).toEqual(["caller-postgresql", "u-docker"]);
    expect(mocks.get("u-api").provider).toMatch(/pulumi:providers:docker::u-docker::/);
  });

  test("without providers the component creates its own, and every docker resource uses it", async () => {
    const { mocks } = await build(() => new UtilitarianDeployment("u", MINIMAL));
    expect(
      mocks.registrations
        .filter((r) => r.type.startsWith("pulumi:providers:"))
        .map((r) => r.name)
        .sort(),
    ).toEqual(["u-docker", "u-postgresql"]);
    expect(
      dockerResources(mocks)
        .filter((r) => !/pulumi:providers:docker::u-docker::/.test(r.provider ?? ""))
        .map((r) => r.name),
    ).toEqual([]);
  });

  test("registry credentials cannot go to a provider the component did not create", async () => {
    const { made } = await build(() => {
      try {
        new UtilitarianDeployment(
          "u",
          { ...MINIMAL, registry: { username: "pull" }, secrets: { ...SECRET_VALUES, registryPassword: "r" } },
          { providers: [new docker.Provider("caller-docker", {})] },
        );
        return undefined;
      } catch (e) {
        return e;
      }
    });
    expect((made as ArgsError).problems).toEqual([
      expect.stringMatching(/^`registry` is set, but the docker provider comes from `opts.providers`/),
    ]);
  });
});
