import { restoreFromProblems } from "./backups";
import { settingsSchema, SECRET_KEYS, type SecretKey, type Secrets, type Settings } from "./schema";
import { ipVersion, isHostName, NAME_PATTERN } from "./values";

export const NAMESPACE = "utilitarian";

/** Names of containers, network and volumes start with this unless `utilitarian:prefix` is set. */
export const defaultPrefix = (stack: string) => `${NAMESPACE}-${stack}`;

/** Thrown with every problem of a stack configuration, one per line, each naming its key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `The stack configuration has ${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was changed:\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

/** What the loader needs besides the config: where the program runs. */
export interface LoadContext {
  /**
   * Directory relative paths start at (backup.dir, restoreFrom): the project directory, which is
   * the working directory `pulumi` runs the program in. Defaults to `process.cwd()`.
   */
  projectDir?: string;
  /** The stack's name: without `utilitarian:prefix`, names derive from it and must be valid. */
  stack?: string;
}

export interface LoadedConfig {
  settings: Settings;
  /** Plain values of the secret keys; the caller wraps them with `pulumi.secret` at once. */
  secrets: Secrets;
}

const secretKeyNames = Object.keys(SECRET_KEYS) as SecretKey[];

/**
 * Validates a stack's raw configuration (`pulumi.runtime.allConfig()`: every value a string,
 * structured values as JSON) and returns typed settings and secrets, or throws a ConfigError
 * listing every problem at once. `storedAsSecret` is the set of full keys Pulumi holds encrypted.
 * No Pulumi runtime needed, so it is tested with plain equality. It reads the file system only
 * for `restoreFrom`: the named backup must be a verified one in backup.dir (config/backups.ts).
 */
export function loadConfig(
  raw: Record<string, string>,
  storedAsSecret: ReadonlySet<string>,
  context: LoadContext = {},
): LoadedConfig {
  const problems: string[] = [];
  const plain: Record<string, unknown> = {};
  const secretValues: Record<string, string> = {};

  for (const [fullKey, value] of Object.entries(raw)) {
    if (!fullKey.startsWith(`${NAMESPACE}:`)) continue;
    const key = fullKey.slice(NAMESPACE.length + 1);
    if ((secretKeyNames as string[]).includes(key)) {
      if (!storedAsSecret.has(fullKey)) {
        // Never echo the value: it is a secret stored in the clear.
        problems.push(
          `\`${fullKey}\` is stored in plain text; set it again with \`pulumi config set --secret ${fullKey} ...\``,
        );
      }
      secretValues[key] = value;
      continue;
    }
    plain[key] = parseValue(value);
  }

  const parsed = settingsSchema.safeParse(plain);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(describeIssue(issue));
    throw new ConfigError(problems);
  }
  const settings = parsed.data;

  for (const key of secretKeyNames) {
    const spec = SECRET_KEYS[key];
    const value = secretValues[key];
    if (spec.when(settings) && (value === undefined || value === "")) {
      problems.push(
        `\`${NAMESPACE}:${key}\` is required (${spec.what}); set it with \`pulumi config set --secret ${NAMESPACE}:${key} ...\``,
      );
    }
  }
  if (secretValues.secretKey !== undefined && secretValues.secretKey.length < 32) {
    problems.push(
      `\`${NAMESPACE}:secretKey\` is too short (${secretValues.secretKey.length} characters); use at least 32 random characters, e.g. \`openssl rand -base64 48\``,
    );
  }
  const secrets: Record<string, unknown> = {};
  for (const key of secretKeyNames) {
    if (key !== "apiSecretEnv" && secretValues[key] !== undefined) secrets[key] = secretValues[key];
  }
  if (secretValues.apiSecretEnv !== undefined) {
    const env = parseValue(secretValues.apiSecretEnv);
    const valid =
      typeof env === "object" &&
      env !== null &&
      !Array.isArray(env) &&
      Object.entries(env).every(([k, v]) => /^[A-Z_][A-Z0-9_]*$/.test(k) && typeof v === "string");
    if (valid) secrets.apiSecretEnv = env as Record<string, string>;
    else
      problems.push(
        `\`${NAMESPACE}:apiSecretEnv\` must be a map of UPPER_CASE names to strings; set entries with \`pulumi config set --secret --path '${NAMESPACE}:apiSecretEnv.NAME' ...\``,
      );
    for (const [name, value] of valid ? Object.entries(env as Record<string, string>) : []) {
      // No process environment can carry a NUL; line breaks are fine (PEM keys). Never shown.
      if (value.includes("\u0000"))
        problems.push(
          `\`${NAMESPACE}:apiSecretEnv.${name}\` holds a NUL character, which no environment variable can carry; set it again with \`pulumi config set --secret --path '${NAMESPACE}:apiSecretEnv.${name}' ...\``,
        );
    }
  }
  problems.push(...crossChecks(settings, secrets as Secrets));
  if (settings.prefix === undefined && context.stack !== undefined)
    problems.push(...derivedPrefixProblems(context.stack));
  if (settings.restoreFrom !== undefined) {
    problems.push(
      ...restoreFromProblems({
        restoreFrom: settings.restoreFrom,
        backupDir: settings.backup.dir,
        version: settings.version,
        projectDir: context.projectDir ?? process.cwd(),
      }),
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  // Every required secret was checked above.
  return { settings, secrets: secrets as Secrets };
}

/** Rules that need both settings and secrets. */
function crossChecks(settings: Settings, secrets: Secrets): string[] {
  const problems: string[] = [];
  const reserved = ["DATABASE_URL", "SECRET_KEY", "AMQP_CONNECTION_STRING", "ALLOWED_HOSTS"];
  for (const name of Object.keys(settings.api.env)) {
    if (reserved.includes(name)) {
      problems.push(
        `\`${NAMESPACE}:api.env.${name}\` is set by the deployment itself; remove it and use the dedicated setting instead`,
      );
    }
  }
  for (const name of Object.keys(secrets.apiSecretEnv ?? {})) {
    if (name in settings.api.env) {
      problems.push(`\`${NAMESPACE}:apiSecretEnv.${name}\` is also set in api.env; keep only one of them`);
    }
  }
  if (secrets.rabbitmqUrl !== undefined) {
    // A secret: the message says what is wrong, never the value.
    const fix = `set it again with \`pulumi config set --secret ${NAMESPACE}:rabbitmqUrl 'amqp://user:password@host:5672/vhost'\` (percent-encode @ : / in the password)`;
    if (!/^amqps?:\/\//.test(secrets.rabbitmqUrl)) {
      problems.push(`\`${NAMESPACE}:rabbitmqUrl\` must start with amqp:// or amqps://; ${fix}`);
    } else if (!amqpHostProblemFree(secrets.rabbitmqUrl)) {
      problems.push(
        `\`${NAMESPACE}:rabbitmqUrl\` must be amqp[s]://user:password@host[:port]/vhost with a valid host name or address and port; ${fix}`,
      );
    }
  }
  return problems;
}

function amqpHostProblemFree(url: string): boolean {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[|\]$/g, "");
    return host !== "" && (isHostName(host) || ipVersion(host) !== 0) && /^\d*$/.test(parsed.port);
  } catch {
    return false;
  }
}

/** The default prefix comes from the stack's name, which Pulumi allows to hold _ . and capitals. */
function derivedPrefixProblems(stack: string): string[] {
  const derived = defaultPrefix(stack);
  if (NAME_PATTERN.test(derived)) return [];
  const suggestion = derived
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .slice(0, 41)
    .replace(/-+$/, "");
  return [
    `\`${NAMESPACE}:prefix\` is not set, so names would start with '${derived}' (from the stack name), which is not a valid name: ` +
      `lower case letters, digits and - (names become container and host names), at most 41 characters. ` +
      `Set it with \`pulumi config set ${NAMESPACE}:prefix ${suggestion}\`.`,
  ];
}

function parseValue(value: string): unknown {
  const trimmed = value.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return value;
    }
  }
  return value;
}

/** A zod issue, as the loader (and the component's arg check) reports it. */
export interface Issue {
  path: PropertyKey[];
  message: string;
  code: string;
  keys?: string[];
  /** Zod puts the reason of a bad record key one level down. */
  issues?: { message: string }[];
  /** Set by config/values.ts: a value that fixes the setting, for the "Set it with" hint. */
  params?: { example?: string };
}

function describeIssue(issue: Issue): string {
  const path = issue.path.map(String);
  const key = `${NAMESPACE}:${path.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "")}`;
  if (issue.code === "unrecognized_keys" && issue.keys) {
    return issue.keys
      .map(
        (k) =>
          `\`${path.length ? `${key}.` : `${NAMESPACE}:`}${k}\` is not a known setting; check its spelling against the README's configuration reference`,
      )
      .join("\n  - ");
  }
  if (path.length === 1 && path[0] === "version" && issue.code === "invalid_type") {
    return `\`${key}\` is required: the Utilitarian release to run, like 1.2.0; set it with \`pulumi config set ${NAMESPACE}:version 1.2.0\``;
  }
  if (issue.code === "invalid_key" && issue.issues?.[0]) return `\`${key}\` ${issue.issues[0].message}`;
  const message =
    issue.code === "invalid_type" && !/must/.test(issue.message)
      ? `has the wrong type (${issue.message})`
      : issue.message;
  const example = issue.params?.example;
  if (example === undefined || /pulumi config/.test(message)) return `\`${key}\` ${message}`;
  return `\`${key}\` ${message}. Set it with \`pulumi config set --path ${shellWord(key)} ${shellWord(example)}\`.`;
}

/** A word as typed in a shell: quoted when it holds anything a shell would interpret. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
