/**
 * How a refusal names a setting and words its fix: the one thing the two entry points of the
 * validator (config/validate.ts) do differently. The stack program reads stack config
 * (`utilitarian:api.env.DATABASE_URL`, fixed with `pulumi config ...`); a library program passes
 * args (`api.env.DATABASE_URL`, fixed in its own code). Every rule words its refusal once, with
 * the paths of the settings it names, and the entry point's Naming turns those into words.
 *
 * A path is written as the args write it: `workers[0].count`, and a secret under `secrets.`
 * (`secrets.apiSecretEnv.JWT_SIGNING_KEY`), which stack config keeps as a key of its own.
 */
export interface Naming {
  /** The setting at `path`, in backticks. */
  name(path: string): string;
  /** The fix that sets `path` to `value`, in backticks. */
  set(path: string, value: string): string;
  /** The fix that takes `path` out. */
  remove(path: string): string;
  /** The end of a refused value's message, offering `example` as a value that fixes it. */
  suggest(path: string, example: string): string;
  /** What a key that is no setting is told, after its name. */
  unknown: string;
}

/** The stack config's namespace: every key is `utilitarian:<path>`. */
export const NAMESPACE = "utilitarian";

const SECRETS = "secrets.";
const isSecret = (path: string) => path.startsWith(SECRETS);
const configKey = (path: string) => `${NAMESPACE}:${isSecret(path) ? path.slice(SECRETS.length) : path}`;

/**
 * A key as `pulumi config` takes it: a nested one with `--path`, quoted for the shell (brackets);
 * a top-level one bare, as typed (`pulumi config set utilitarian:prefix ...`).
 */
const keyArgument = (path: string) => {
  const key = configKey(path);
  return /[.[]/.test(key.slice(NAMESPACE.length + 1)) ? `--path '${key}'` : key;
};

/** A word as typed in a shell: quoted when it holds anything a shell would interpret. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export const STACK_CONFIG: Naming = {
  name: (path) => `\`${configKey(path)}\``,
  // A secret must be set with --secret, or the loader refuses it as stored in plain text.
  set: (path, value) => `\`pulumi config set ${isSecret(path) ? "--secret " : ""}${keyArgument(path)} ${value}\``,
  remove: (path) => `\`pulumi config rm ${keyArgument(path)}\``,
  suggest: (path, example) =>
    `. Set it with \`pulumi config set --path ${shellWord(configKey(path))} ${shellWord(example)}\`.`,
  unknown: "is not a known setting; check its spelling against the README's configuration reference",
};

export const LIBRARY_ARGS: Naming = {
  name: (path) => `\`${path}\``,
  set: (path, value) => `\`${path}: ${value}\``,
  remove: (path) => `leave \`${path}\` out`,
  suggest: (path, example) => `; for example \`${path}: ${example}\``,
  unknown: "is not a known arg; check its spelling against UtilitarianDeploymentArgs",
};
