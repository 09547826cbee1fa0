import { restoreFromProblems } from "./backups";
import { describeIssue } from "./issues";
import type { Naming } from "./naming";
import {
  ENV_NAME,
  RESERVED_ENV,
  reservedEnvRefusal,
  SECRET_KEYS,
  settingsSchema,
  type SecretKey,
  type Settings,
} from "./schema";
import { ipVersion, isHostName, NAME_PATTERN } from "./values";

/**
 * The one validator of a deployment's settings and secrets, for both entry points: the stack
 * program (config/load.ts, from stack config) and the component (components/args.ts, from a
 * library program's args). Each entry point only reads its own input into plain values and
 * passes its Naming (config/naming.ts); every rule is here or in the schema, so both refuse the
 * same things with the same words, named their own way.
 */

/**
 * A secret the library gets as an Output or a promise: its value is known only when its
 * resource is created, so only its presence is checked now.
 */
export const KNOWN_LATER = Symbol("known later");

export interface DeploymentInput {
  /** Every setting as given, in plain values (stack config's text already parsed). */
  settings: Record<string, unknown>;
  /** Every secret as given (`KNOWN_LATER` for one not known yet); `apiSecretEnv` as a map. */
  secrets: Record<string, unknown>;
  /** Secrets Pulumi holds unencrypted: stack config only, as the component marks the library's secret. */
  storedInPlainText?: readonly string[];
}

export interface ValidationContext {
  /** Where relative paths (backup.dir, restoreFrom) start: the program's directory. */
  projectDir: string;
  /** The prefix names get without `prefix`, and what it comes from ("the stack name"). */
  derivedPrefix?: { value: string; from: string };
}

/** The valid settings, or nothing when the schema refused them; `problems` lists every refusal. */
export interface Validation {
  settings?: Settings;
  problems: string[];
}

const SECRET_KEY_MIN_LENGTH = 32;

export function validateDeployment(input: DeploymentInput, n: Naming, context: ValidationContext): Validation {
  const problems = (input.storedInPlainText ?? []).map(
    (key) =>
      // Never echo the value: it is a secret stored in the clear.
      `${n.name(`secrets.${key}`)} is stored in plain text; set it again with ${n.set(`secrets.${key}`, "...")}`,
  );
  const parsed = settingsSchema.safeParse(input.settings);
  // The rules below read valid settings; the schema's problems come alone.
  if (!parsed.success) return { problems: [...problems, ...parsed.error.issues.flatMap((i) => describeIssue(i, n))] };
  const settings = parsed.data;
  problems.push(
    ...secretProblems(settings, input.secrets, n),
    ...derivedPrefixProblems(settings, context, n),
    ...(settings.restoreFrom === undefined
      ? []
      : restoreFromProblems({
          restoreFrom: settings.restoreFrom,
          backupDir: settings.backup.dir,
          version: settings.version,
          projectDir: context.projectDir,
          naming: n,
        })),
  );
  return { settings, problems };
}

/** Secrets known, present when the settings need them, and well-formed where their value is known. */
function secretProblems(settings: Settings, secrets: Record<string, unknown>, n: Naming): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(secrets)) {
    if (!(key in SECRET_KEYS))
      problems.push(
        `${n.name(`secrets.${key}`)} is not a known secret; the secrets are ${Object.keys(SECRET_KEYS).join(", ")}`,
      );
  }
  for (const key of Object.keys(SECRET_KEYS) as SecretKey[]) {
    const spec = SECRET_KEYS[key];
    if (spec.when(settings) && (secrets[key] === undefined || secrets[key] === "")) {
      const when = spec.required === "always" ? "" : ` ${spec.required}`;
      problems.push(
        `${n.name(`secrets.${key}`)} is required${when} (${spec.what}); set it with ${n.set(`secrets.${key}`, "...")}`,
      );
    }
  }
  const { secretKey, rabbitmqUrl, apiSecretEnv } = secrets;
  if (typeof secretKey === "string" && secretKey.length < SECRET_KEY_MIN_LENGTH) {
    problems.push(
      `${n.name("secrets.secretKey")} is too short (${secretKey.length} characters); use at least ${SECRET_KEY_MIN_LENGTH} random characters, e.g. \`openssl rand -base64 48\``,
    );
  }
  if (typeof rabbitmqUrl === "string") problems.push(...rabbitmqUrlProblems(rabbitmqUrl, n));
  if (apiSecretEnv !== undefined) problems.push(...apiSecretEnvProblems(apiSecretEnv, settings, n));
  return problems;
}

/** A secret: the message says what is wrong, never the value. */
function rabbitmqUrlProblems(url: string, n: Naming): string[] {
  const fix = `set it again with ${n.set("secrets.rabbitmqUrl", "'amqp://user:password@host:5672/vhost'")} (percent-encode @ : / in the password)`;
  if (!/^amqps?:\/\//.test(url))
    return [`${n.name("secrets.rabbitmqUrl")} must start with amqp:// or amqps://; ${fix}`];
  if (!amqpHostIsValid(url))
    return [
      `${n.name("secrets.rabbitmqUrl")} must be amqp[s]://user:password@host[:port]/vhost with a valid host name or address and port; ${fix}`,
    ];
  return [];
}

function amqpHostIsValid(url: string): boolean {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[|\]$/g, "");
    return host !== "" && (isHostName(host) || ipVersion(host) !== 0) && /^\d*$/.test(parsed.port);
  } catch {
    return false;
  }
}

/** The API's secret environment follows the rules of its plain one (`api.env`), values never shown. */
function apiSecretEnvProblems(env: unknown, settings: Settings, n: Naming): string[] {
  const path = "secrets.apiSecretEnv";
  const entries =
    typeof env === "object" && env !== null && !Array.isArray(env) ? Object.entries(env as object) : undefined;
  if (!entries?.every(([name, value]) => ENV_NAME.test(name) && (typeof value === "string" || value === KNOWN_LATER)))
    return [
      `${n.name(path)} must be a map of UPPER_CASE names to strings; set entries with ${n.set(`${path}.NAME`, "...")}`,
    ];
  const problems: string[] = [];
  for (const [name, value] of entries) {
    const entry = `${path}.${name}`;
    // No process environment can carry a NUL; line breaks are fine (PEM keys).
    if (typeof value === "string" && value.includes("\u0000"))
      problems.push(
        `${n.name(entry)} holds a NUL character, which no environment variable can carry; set it again with ${n.set(entry, "...")}`,
      );
    if (name in settings.api.env) problems.push(`${n.name(entry)} is also set in api.env; keep only one of them`);
    const reserved = RESERVED_ENV.api[name];
    if (reserved) problems.push(`${n.name(entry)} ${reservedEnvRefusal(entry, reserved)(n)}`);
  }
  return problems;
}

/** Names start with the prefix; without `prefix` it comes from a name the user may not have chosen for this. */
function derivedPrefixProblems(settings: Settings, context: ValidationContext, n: Naming): string[] {
  const derived = context.derivedPrefix;
  if (settings.prefix !== undefined || derived === undefined || NAME_PATTERN.test(derived.value)) return [];
  const suggestion = derived.value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .slice(0, 41)
    .replace(/-+$/, "");
  return [
    `${n.name("prefix")} is not set, so names would start with '${derived.value}' (from ${derived.from}), which is not a valid name: ` +
      `lower case letters, digits and - (names become container and host names), at most 41 characters. ` +
      `Set it with ${n.set("prefix", suggestion)}.`,
  ];
}
