import { NAMESPACE, STACK_CONFIG } from "./naming";
import { SECRET_KEYS, type Secrets, type Settings } from "./schema";
import { validateDeployment } from "./validate";

export { NAMESPACE };

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

/**
 * Reads a stack's raw configuration (`pulumi.runtime.allConfig()`: every value a string,
 * structured values as JSON) and validates it with the component's rules (config/validate.ts),
 * each problem named by its config key. Returns typed settings and secrets, or throws a
 * ConfigError listing every problem at once. `storedAsSecret` is the set of full keys Pulumi
 * holds encrypted. No Pulumi runtime needed, so it is tested with plain equality. It reads the
 * file system only for `restoreFrom`: the named backup must be a verified one in backup.dir.
 */
export function loadConfig(
  raw: Record<string, string>,
  storedAsSecret: ReadonlySet<string>,
  context: LoadContext = {},
): LoadedConfig {
  const settings: Record<string, unknown> = {};
  const secrets: Record<string, unknown> = {};
  const storedInPlainText: string[] = [];
  for (const [fullKey, value] of Object.entries(raw)) {
    if (!fullKey.startsWith(`${NAMESPACE}:`)) continue;
    const key = fullKey.slice(NAMESPACE.length + 1);
    if (key in SECRET_KEYS) {
      if (!storedAsSecret.has(fullKey)) storedInPlainText.push(key);
      // A map, set one entry at a time with --path: Pulumi gives it as JSON.
      secrets[key] = key === "apiSecretEnv" ? parseValue(value) : value;
    } else settings[key] = parseValue(value);
  }
  const validation = validateDeployment({ settings, secrets, storedInPlainText }, STACK_CONFIG, {
    projectDir: context.projectDir ?? process.cwd(),
    derivedPrefix:
      context.stack === undefined ? undefined : { value: defaultPrefix(context.stack), from: "the stack name" },
  });
  if (!validation.settings || validation.problems.length > 0) throw new ConfigError(validation.problems);
  // Every secret the settings need was checked to be there.
  return { settings: validation.settings, secrets: secrets as Secrets };
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
