import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";

/**
 * Secrets on a swarm: every secret-valued setting of a service (the entries its environment
 * builder marks secret: components/environment.ts, database.ts, broker.ts) becomes a swarm secret,
 * mounted in its tasks as a file, and never an entry of the service spec's env. A small loader,
 * itself mounted the same way, exports each file as its variable and then runs the task's own
 * command (the image's entrypoint and command, or the plan's): the spec's command names only the
 * loader's path and the original command, never a value. The maintenance steps' `docker exec`
 * runs manage.py through the same loader (`swarmManage`).
 */

/** Where a task's secret files are: Docker mounts a service's secrets under /run/secrets. */
const SECRETS_DIR = "/run/secrets";
/** The loader's file name, and the prefix of each secret variable's file (`utilitarian-env.NAME`). */
export const LOADER_FILE = "utilitarian-load-env";
export const ENV_FILE_PREFIX = "utilitarian-env.";
export const LOADER_PATH = `${SECRETS_DIR}/${LOADER_FILE}`;

/**
 * The loader, run by `sh` (secret mounts are noexec): each `utilitarian-env.NAME` file becomes the
 * exported variable NAME, its content byte for byte (trailing newlines kept), then it execs its
 * arguments, which keep PID 1 (signals reach the application server as without it).
 */
export const LOADER_SCRIPT = [
  "# Exports each swarm secret mounted as " + `${SECRETS_DIR}/${ENV_FILE_PREFIX}NAME as NAME, then runs "$@".`,
  `for f in ${SECRETS_DIR}/${ENV_FILE_PREFIX}*; do`,
  '  [ -f "$f" ] || continue',
  '  v=$(cat "$f" && printf x) || exit 1',
  `  export "\${f#${SECRETS_DIR}/${ENV_FILE_PREFIX}}=\${v%x}"`,
  "done",
  'exec "$@"',
  "",
].join("\n");

/** The command that runs manage.py in a task through the loader (`MANAGE` of the steps). */
export const swarmManage = (manage = "python manage.py") => `sh ${LOADER_PATH} ${manage}`;

/** An image's own entrypoint and command, as `docker image inspect` shows them (null: none). */
export interface ImageCommand {
  entrypoint: string[] | null;
  cmd: string[] | null;
}

/** `docker image inspect --format` text whose output `parseImageCommand` reads. */
export const IMAGE_COMMAND_FORMAT = "[{{json .Config.Entrypoint}},{{json .Config.Cmd}}]";

/** The output of `docker image inspect --format IMAGE_COMMAND_FORMAT`. */
export function parseImageCommand(stdout: string): ImageCommand {
  const parsed: unknown = JSON.parse(stdout.trim());
  const list = (v: unknown, what: string): string[] | null => {
    if (v === null) return null;
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
    throw new Error(`docker image inspect: the image's ${what} is not a list of strings: ${stdout}`);
  };
  if (!Array.isArray(parsed) || parsed.length !== 2)
    throw new Error(`docker image inspect: expected [entrypoint, cmd], got ${stdout}`);
  return { entrypoint: list(parsed[0], "entrypoint"), cmd: list(parsed[1], "command") };
}

/**
 * A task's command through the loader: the service's `commands` (its entrypoint) is the loader,
 * its `args` the image's entrypoint followed by the plan's command or else the image's own, which
 * is what Docker would have run (an entrypoint given replaces the image's command as well).
 */
export function loaderCommand(image: ImageCommand, command?: string[]): { commands: string[]; args: string[] } {
  const args = [...(image.entrypoint ?? []), ...(command ?? image.cmd ?? [])];
  if (args.length === 0) throw new Error("the image has neither an entrypoint nor a command, and the plan gives none");
  return { commands: ["sh", LOADER_PATH], args };
}

/** A service's secret files: the loader, and one `utilitarian-env.NAME` per secret variable. */
export function secretFileName(envName: string): string {
  return `${ENV_FILE_PREFIX}${envName}`;
}

/**
 * A swarm secret's name: swarm secrets cannot change, so a new value needs a new secret, under a
 * new name (created before the services that mount it are replaced, the old one removed after
 * them). The suffix is derived from the value by scrypt, salted with the stack and the variable:
 * the same value keeps its name (no change on the next run), and the name, which `docker secret
 * ls` shows, gives nothing cheap to guess a weak password against. At most 64 characters.
 */
export function swarmSecretName(prefix: string, envName: string, value: string): string {
  const digest = crypto
    .scryptSync(value, `utilitarian-deploy/${prefix}/${envName}`, 8, { N: 1 << 14, r: 8, p: 1 })
    .toString("hex");
  return `${`${prefix}-${envName.toLowerCase()}`.slice(0, 46).replace(/[-_.]+$/, "")}-${digest}`;
}

export interface SwarmSecretsArgs {
  /** Prefix of every physical name, as the other resources' (`<prefix>-...`). */
  prefix: string;
  /** Logical name the secrets' resource names start with (`<name>-secret-...`). */
  name: string;
}

/**
 * The stack's swarm secrets, each made once: services that get the same value under the same
 * variable (the API, beat and workers; the edge services' broker URL) mount one secret.
 */
export class SwarmSecrets {
  private readonly byVariable = new Map<string, { value: pulumi.Input<string>; secret: docker.Secret }[]>();
  private loader?: docker.Secret;

  constructor(
    private readonly args: SwarmSecretsArgs,
    private readonly opts: pulumi.CustomResourceOptions,
  ) {}

  /** The secret mounts of a service with these secret variables: the loader's and one per variable. */
  mounts(
    secretEnv: Record<string, pulumi.Input<string>>,
    owner: string,
  ): docker.types.input.ServiceTaskSpecContainerSpecSecret[] {
    const mount = (secret: docker.Secret, fileName: string) => ({
      secretId: secret.id,
      secretName: secret.name,
      fileName,
    });
    return [
      mount(this.loaderSecret(), LOADER_FILE),
      ...Object.keys(secretEnv)
        .sort()
        .map((envName) => mount(this.secret(envName, secretEnv[envName], owner), secretFileName(envName))),
    ];
  }

  private loaderSecret(): docker.Secret {
    if (!this.loader) {
      const { prefix, name } = this.args;
      const digest = crypto.createHash("sha256").update(LOADER_SCRIPT).digest("hex").slice(0, 12);
      this.loader = new docker.Secret(
        `${name}-secret-loader`,
        {
          name: `${prefix}-load-env-${digest}`,
          data: Buffer.from(LOADER_SCRIPT).toString("base64"),
          labels: [{ label: "io.utilitarian.stack", value: prefix }],
        },
        this.opts,
      );
    }
    return this.loader;
  }

  private secret(envName: string, value: pulumi.Input<string>, owner: string): docker.Secret {
    const made = this.byVariable.get(envName) ?? [];
    const same = made.find((m) => m.value === value);
    if (same) return same.secret;
    const { prefix, name } = this.args;
    // A second value under the same variable (none on a swarm today) gets its owner in the name.
    const resourceName = `${name}-secret-${made.length === 0 ? "" : `${owner}-`}${envName.toLowerCase()}`;
    const plain = pulumi.secret(pulumi.output(value));
    const secret = new docker.Secret(
      resourceName,
      {
        // Not a secret itself (scrypt of the value), but derived from one: unmarked, so that the
        // service's spec, which names it, shows in previews.
        name: pulumi.unsecret(plain.apply((v) => swarmSecretName(prefix, envName, v))),
        data: plain.apply((v) => Buffer.from(v).toString("base64")),
        labels: [
          { label: "io.utilitarian.stack", value: prefix },
          { label: "io.utilitarian.variable", value: envName },
        ],
      },
      this.opts,
    );
    made.push({ value, secret });
    this.byVariable.set(envName, made);
    return secret;
  }
}
