import { describe, expect, test } from "vitest";
import { ArgsError, validateArgs } from "../../components/args";
import { ConfigError, loadConfig } from "../../config/load";
import { LIBRARY_ARGS, STACK_CONFIG, type Naming } from "../../config/naming";
import { RESERVED_ENV, SECRET_KEYS } from "../../config/schema";
import { BAD_CONFIGS } from "./support/bad-configs";
import { EDGE_VERSIONS, rawConfig, secretKeysOf, SECRET_VALUES } from "./support/fixtures";

/**
 * The one validator (config/validate.ts) from both entry points: every bad input goes through
 * the stack program's loadConfig and through the library's validateArgs, and both must refuse it
 * with the same words, the stack config naming `utilitarian:<key>` with a `pulumi config` fix,
 * the library naming the arg path with a fix in args. No secret value appears in either.
 */

type Secrets = Record<string, unknown>;

/** The refusals of loadConfig for these settings and secrets (`apiSecretEnv` as Pulumi gives it: JSON). */
function stackRefusals(values: Record<string, unknown>, secrets: Secrets, stack?: string): string[] {
  const raw = Object.fromEntries(
    Object.entries(secrets).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]),
  );
  try {
    loadConfig(rawConfig(values, raw), secretKeysOf(raw), { stack });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("the stack configuration was accepted");
}

/** The refusals of validateArgs for the same settings and secrets, as a library program passes them. */
function libraryRefusals(values: Record<string, unknown>, secrets: Secrets, name = "u"): string[] {
  try {
    validateArgs(name, { ...values, secrets } as never);
  } catch (e) {
    if (e instanceof ArgsError) return e.problems;
    throw e;
  }
  throw new Error("the args were accepted");
}

/**
 * What both must say alike: a refusal without the settings it names, the fixes it gives and its
 * words for an unknown key, which are the Naming's (config/naming.ts) and differ by design.
 */
const words = (refusal: string, naming: Naming) =>
  refusal
    .replace(naming.unknown, "‹unknown›")
    .replace(/`[^`]*`/g, "‹›")
    .replace(/leave ‹› out/g, "‹›")
    .replace(/(\. Set it with ‹›\.|; for example ‹›)$/, " ‹fix›");

/** The arg path of a stack config key: a secret key lives under `secrets`. */
const argPath = (configKey: string) => {
  const key = configKey.replace(/^utilitarian:/, "");
  return key.split(/[.[]/)[0] in SECRET_KEYS ? `secrets.${key}` : key;
};

const SECRET_TEXTS = [...Object.values(SECRET_VALUES), "hunter2", "s3cr3t-in-the-url", "jwt-signing-value"];

/** Runs one bad input through both entry points and checks the refusals against each other. */
function refusedAlike(values: Record<string, unknown>, secrets: Secrets = SECRET_VALUES) {
  const stack = stackRefusals(values, secrets);
  const library = libraryRefusals(values, secrets);
  expect(library.map((r) => words(r, LIBRARY_ARGS))).toEqual(stack.map((r) => words(r, STACK_CONFIG)));
  stack.forEach((refusal, i) => {
    expect(refusal, "names its config key first").toMatch(/^`utilitarian:[^`]+`/);
    const key = /^`(utilitarian:[^`]+)`/.exec(refusal)?.[1];
    expect(library[i].startsWith(`\`${argPath(key!)}\``), `names ${argPath(key!)}: ${library[i]}`).toBe(true);
  });
  // The library's fix is in args, not in the CLI it may not use.
  for (const refusal of library) expect(refusal).not.toMatch(/pulumi config|`utilitarian:/);
  for (const refusal of [...stack, ...library])
    for (const secret of SECRET_TEXTS) expect(refusal).not.toContain(secret);
  return { stack, library };
}

const base = { version: "1.0.0", ...EDGE_VERSIONS };
/** The test secrets without `key`: a rule about a missing secret. */
const without = (key: string): Secrets => Object.fromEntries(Object.entries(SECRET_VALUES).filter(([k]) => k !== key));

describe("every malformed setting: the same refusal from stack config and from args", () => {
  test.each(BAD_CONFIGS)("%s", (_label, values, expected) => {
    const { stack } = refusedAlike({ ...base, ...values });
    expect(stack.join("\n")).toContain(expected);
  });
});

/** The validator's rules on secrets, each with every secret given and the key its refusal names. */
const SECRET_RULES: [label: string, values: Record<string, unknown>, secrets: Secrets, key: string][] = [
  ["a secret always required", {}, without("databasePassword"), "databasePassword"],
  ["a secret the edge services require", {}, without("edgeAuthToken"), "edgeAuthToken"],
  [
    "the registry's password with a registry",
    { registry: { server: "quay.io", username: "robot" } },
    SECRET_VALUES,
    "registryPassword",
  ],
  ["the broker's URL with an external RabbitMQ", { rabbitmq: { mode: "external" } }, SECRET_VALUES, "rabbitmqUrl"],
  ["a SECRET_KEY too short", {}, { ...SECRET_VALUES, secretKey: "short" }, "secretKey"],
  [
    "a broker URL without its scheme",
    { rabbitmq: { mode: "external" } },
    { ...SECRET_VALUES, rabbitmqUrl: "http://u:s3cr3t-in-the-url@broker/v" },
    "rabbitmqUrl",
  ],
  [
    "a broker URL with a bad host",
    { rabbitmq: { mode: "external" } },
    { ...SECRET_VALUES, rabbitmqUrl: "amqp://u:s3cr3t-in-the-url@bad_host:5672/v" },
    "rabbitmqUrl",
  ],
  [
    "secret env with a lower-case name",
    {},
    { ...SECRET_VALUES, apiSecretEnv: { jwt: "jwt-signing-value" } },
    "apiSecretEnv",
  ],
  [
    "secret env with a NUL",
    {},
    { ...SECRET_VALUES, apiSecretEnv: { JWT_SIGNING_KEY: "jwt-signing-value\u0000" } },
    "apiSecretEnv.JWT_SIGNING_KEY",
  ],
  [
    "secret env also in api.env",
    { api: { env: { SENTRY_DSN: "https://sentry" } } },
    { ...SECRET_VALUES, apiSecretEnv: { SENTRY_DSN: "jwt-signing-value" } },
    "apiSecretEnv.SENTRY_DSN",
  ],
];

/** `key` as the start of a RegExp: the setting named first, in backticks. */
const namedFirst = (key: string) => new RegExp(`^\`${key.replace(/[.[\]]/g, "\\$&")}\``);

describe("every rule on secrets: the same refusal from stack config and from args", () => {
  test.each(SECRET_RULES)("%s", (_label, values, secrets, key) => {
    const { stack, library } = refusedAlike({ ...base, ...values }, secrets);
    expect(stack).toHaveLength(1);
    expect(stack[0]).toMatch(namedFirst(`utilitarian:${key}`));
    expect(library[0]).toMatch(namedFirst(`secrets.${key}`));
  });
});

/** Every env name the deployment sets, in every block that could carry it. */
const RESERVED = Object.entries(RESERVED_ENV).flatMap(([holder, names]) =>
  Object.keys(names).map((name) => [holder, name] as const),
);

describe("env the deployment sets itself: refused on both paths, never silently overwritten", () => {
  test.each(RESERVED)("%s.env.%s", (holder, name) => {
    const block = holder === "api" ? {} : { version: "1.0.0" };
    const { stack, library } = refusedAlike({ ...base, [holder]: { ...block, env: { [name]: "x" } } });
    expect(stack).toHaveLength(1);
    expect(stack[0]).toMatch(namedFirst(`utilitarian:${holder}.env.${name}`));
    expect(library[0]).toMatch(namedFirst(`${holder}.env.${name}`));
    expect(library[0]).toContain("is set by the deployment itself");
    expect(stack[0]).toContain(`remove it (\`pulumi config rm --path 'utilitarian:${holder}.env.${name}'\`)`);
    expect(library[0]).toContain(`remove it (leave \`${holder}.env.${name}\` out)`);
  });

  test.each(Object.keys(RESERVED_ENV.api))("apiSecretEnv.%s", (name) => {
    const { stack, library } = refusedAlike(base, { ...SECRET_VALUES, apiSecretEnv: { [name]: "jwt-signing-value" } });
    expect(stack).toEqual([expect.stringMatching(`^\`utilitarian:apiSecretEnv.${name}\` is set by the deployment`)]);
    expect(library).toEqual([expect.stringMatching(`^\`secrets.apiSecretEnv.${name}\` is set by the deployment`)]);
  });

  test("DATABASE_URL in api.env: both name where it comes from and how to take it out", () => {
    const { stack, library } = refusedAlike({ ...base, api: { env: { DATABASE_URL: "postgres://x" } } });
    expect(stack).toEqual([
      "`utilitarian:api.env.DATABASE_URL` is set by the deployment itself (from the database settings and the secret `utilitarian:databasePassword`); remove it (`pulumi config rm --path 'utilitarian:api.env.DATABASE_URL'`)",
    ]);
    expect(library).toEqual([
      "`api.env.DATABASE_URL` is set by the deployment itself (from the database settings and the secret `secrets.databasePassword`); remove it (leave `api.env.DATABASE_URL` out)",
    ]);
  });
});

describe("rules one entry point has alone", () => {
  test("a prefix derived from an invalid name: the stack's name or the component's, each with a valid one", () => {
    expect(stackRefusals(base, SECRET_VALUES, "My_App")).toEqual([
      expect.stringMatching(
        /^`utilitarian:prefix` is not set, so names would start with 'utilitarian-My_App' \(from the stack name\), .* Set it with `pulumi config set utilitarian:prefix utilitarian-my-app`\.$/,
      ),
    ]);
    expect(libraryRefusals(base, SECRET_VALUES, "My_App")).toEqual([
      expect.stringMatching(
        /^`prefix` is not set, so names would start with 'My_App' \(from the component's name\), .* Set it with `prefix: my-app`\.$/,
      ),
    ]);
  });

  test("a secret stored in plain text is stack config's alone: the component marks a library's secret itself", () => {
    const raw = rawConfig(base, SECRET_VALUES);
    const stored = secretKeysOf(SECRET_VALUES);
    stored.delete("utilitarian:databasePassword");
    expect(() => loadConfig(raw, stored)).toThrow(
      "`utilitarian:databasePassword` is stored in plain text; set it again with `pulumi config set --secret utilitarian:databasePassword ...`",
    );
  });

  test("an unknown secret: the library's `secrets` knows it is one; stack config sees an unknown setting", () => {
    expect(libraryRefusals(base, { ...SECRET_VALUES, secretkey: "x" })).toEqual([
      expect.stringMatching(/^`secrets.secretkey` is not a known secret; the secrets are secretKey, /),
    ]);
    expect(stackRefusals(base, { ...SECRET_VALUES, secretkey: "x" })).toEqual([
      expect.stringMatching(/^`utilitarian:secretkey` is not a known setting/),
    ]);
  });
});
