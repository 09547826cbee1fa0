/**
 * `npm run plan -- --stack <name> [--from <version>] [--markdown]`: prints the maintenance a
 * `pulumi up` of that stack will carry out, without the Pulumi CLI. The stack's config is read
 * from `stacks/Pulumi.<name>.yaml` and validated by the same loader as the program; secret values
 * are not needed (placeholders stand in for them) and are never read or printed. Without
 * `--from`, the running version is read from the stack's state when a file backend holds it.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import * as yaml from "js-yaml";
import { ConfigError, defaultPrefix, loadConfig, NAMESPACE } from "../config/load";
import { SECRET_KEYS, type Settings } from "../config/schema";
import { databaseEndpoints } from "../components/endpoints";
import { maintenanceStages, renderMaintenance } from "../components/maintenance";
import { packageRoot } from "../components/paths";
import { planDeployment, servicesOf } from "../components/plan";
import { renderPlacement } from "../components/swarm";
import { checkVersionChange } from "../components/schemaGuard";

const PROJECT_DIR = packageRoot();
/**
 * The verified backup's throughput in database megabytes per second, measured on the 2-core test
 * machine: backup.sh took 25.6 s for a 2,959 MB database (docs/benchmarks.md). A real server's
 * disk and cores change it; it is a guide for the window, not a promise.
 */
const DUMP_MB_PER_SECOND = 110;
/** Stands in for a secret's value, which this command never reads. */
const PLACEHOLDER = "x".repeat(48);

interface Options {
  stack: string;
  from?: string;
  markdown: boolean;
  stacksDir: string;
}

function parseArgs(argv: string[]): Options {
  const options: Partial<Options> = { markdown: false, stacksDir: path.join(PROJECT_DIR, "stacks") };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack") options.stack = argv[++i];
    else if (a === "--from") options.from = argv[++i];
    else if (a === "--markdown") options.markdown = true;
    else if (a === "--stacks-dir") options.stacksDir = path.resolve(argv[++i]);
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (!options.stack) throw new UsageError("--stack <name> is required (the stack file is stacks/Pulumi.<name>.yaml)");
  return options as Options;
}

class UsageError extends Error {}

/**
 * The stack file's config as the CLI passes it to the program: strings, structured values as
 * JSON, secure values replaced by placeholders; and the keys the engine holds as secrets.
 */
function stackConfig(stacksDir: string, stack: string): { raw: Record<string, string>; secretsInFile: Set<string> } {
  const file = path.join(stacksDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file))
    throw new UsageError(`no stack file ${file}; stack files there: ${fs.readdirSync(stacksDir).join(", ")}`);
  const doc = (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const raw: Record<string, string> = {};
  const secretsInFile = new Set<string>();
  for (const [key, stored] of Object.entries(doc.config ?? {})) {
    const { value, secure } = withPlaceholders(stored);
    if (secure) secretsInFile.add(key);
    raw[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return { raw, secretsInFile };
}

/**
 * A stored value with each `{secure: ...}` in it replaced by the placeholder, and whether all of
 * it is secure. `pulumi config set --secret --path 'key.NAME'` (scripts/dev-up.sh) stores a map
 * of secure entries, which the program gets decrypted as one secret key. The engine counts a map
 * with any secure entry as secret; here one plain entry makes it plain text, as it is in the file.
 */
function withPlaceholders(stored: unknown): { value: unknown; secure: boolean } {
  if (stored === null || typeof stored !== "object") return { value: stored, secure: false };
  if ("secure" in stored) return { value: PLACEHOLDER, secure: true };
  const entries = Object.entries(stored).map(([key, part]) => [key, withPlaceholders(part)] as const);
  const values = entries.map(([key, part]) => [key, part.value] as const);
  return {
    value: Array.isArray(stored) ? values.map(([, value]) => value) : Object.fromEntries(values),
    secure: entries.length > 0 && entries.every(([, part]) => part.secure),
  };
}

/** The settings, validated with every problem reported at once; secrets replaced by placeholders. */
function settingsOf(stacksDir: string, stack: string): { settings: Settings; missingSecrets: string[] } {
  const { raw, secretsInFile } = stackConfig(stacksDir, stack);
  const secretKeys = new Set(secretsInFile);
  for (const key of Object.keys(SECRET_KEYS)) {
    const full = `${NAMESPACE}:${key}`;
    // Optional, its names plain in the file: the loader checks the map as stored (values placeholders).
    if (key === "apiSecretEnv") continue;
    raw[full] = key === "rabbitmqUrl" ? "amqp://placeholder:placeholder@rabbitmq.invalid:5672//" : PLACEHOLDER;
    secretKeys.add(full);
  }
  const { settings } = loadConfig(raw, secretKeys, { projectDir: PROJECT_DIR, stack });
  const missingSecrets = Object.entries(SECRET_KEYS)
    .filter(([key, spec]) => spec.when(settings) && !secretsInFile.has(`${NAMESPACE}:${key}`))
    .map(([key]) => `${NAMESPACE}:${key}`);
  return { settings, missingSecrets };
}

/** The database's size and the dump's expected duration, when this machine reaches the database. */
function backupEstimate(settings: Settings): string | undefined {
  const db = settings.database;
  const { operatorHost: host, operatorPort: port } = databaseEndpoints(db);
  try {
    // The password comes from the operator's environment or ~/.pgpass, never from the stack.
    const bytes = Number(
      execFileSync("psql", ["-X", "-A", "-t", "-c", "select pg_database_size(current_database())"], {
        env: {
          ...process.env,
          PGHOST: host,
          PGPORT: String(port),
          PGUSER: db.adminUser,
          PGDATABASE: db.name,
          PGCONNECT_TIMEOUT: "3",
        },
        stdio: ["ignore", "pipe", "ignore"],
        timeout: 5000,
      })
        .toString()
        .trim(),
    );
    const mb = bytes / 1048576;
    return `database ${db.name} is ${mb.toFixed(0)} MB on disk now; the verified backup takes about ${Math.max(1, Math.round(mb / DUMP_MB_PER_SECOND))} s at ${DUMP_MB_PER_SECOND} MB/s (docs/benchmarks.md) and writes about a tenth of that size (320 MB for 2,959 MB there)`;
  } catch {
    return `size not estimated: the database at ${host}:${port} did not answer from here (set PGPASSWORD or ~/.pgpass to let this command read its size)`;
  }
}

/** The version the stack runs now: its schema guard's, from the state in a file backend. */
function deployedVersion(stack: string): string | undefined {
  const dir = backendDir();
  if (dir === undefined)
    return note(
      "the running version is read only from a file backend (PULUMI_BACKEND_URL names another); `--from <version>` names it",
    );
  const file = stateFile(dir, stack);
  const state = file === undefined ? undefined : readState(file);
  const guard = state?.checkpoint?.latest?.resources?.find((r) => r.urn.endsWith("-schema-guard"));
  return guard?.outputs?.version;
}

interface State {
  checkpoint?: { latest?: { resources?: { urn: string; outputs?: { version?: string } }[] } };
}

/** A state file's JSON, its compression recognised by content as the engine does (DetectCompression in sdk/go/common/encoding). */
function readState(file: string): State | undefined {
  const bytes = fs.readFileSync(file);
  const startsWith = (...magic: number[]) => magic.every((byte, i) => bytes[i] === byte);
  if (startsWith(0x28, 0xb5, 0x2f, 0xfd))
    return note(
      `${file} is zstd-compressed (PULUMI_DIY_BACKEND_ZSTD), which this command does not read; \`--from <version>\` names the running version`,
    );
  return JSON.parse((startsWith(0x1f, 0x8b, 8) ? zlib.gunzipSync(bytes) : bytes).toString("utf8"));
}

/**
 * The directory of the file backend the stack's state is in: PULUMI_BACKEND_URL's, else
 * ./.pulumi, where scripts/dev-up.sh keeps it. Undefined for any other backend, which only the
 * Pulumi CLI reads.
 */
function backendDir(): string | undefined {
  const url = process.env.PULUMI_BACKEND_URL;
  if (!url) return path.join(PROJECT_DIR, ".pulumi");
  if (!url.startsWith("file://")) return undefined;
  // As the engine takes it (massageBlobPath in pkg/backend/diy): not percent-decoded, the query
  // dropped, `~` the home directory, a relative path from the working directory.
  const dir = url.slice("file://".length).split("?")[0];
  return path.resolve(dir.startsWith("~") ? path.join(os.homedir(), dir.slice(1)) : dir);
}

/**
 * The stack's state file in a file backend's directory: `<stack>.json` under the project's name,
 * gzip- or zstd-compressed (`.gz`, `.zst`) when PULUMI_DIY_BACKEND_GZIP or _ZSTD was set at the
 * last write. Of several, the engine reads the newest, and on a tie the last of these
 * (stackPath in pkg/backend/diy/state.go).
 */
function stateFile(dir: string, stack: string): string | undefined {
  const project = (yaml.load(fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), "utf8")) as { name: string }).name;
  const plain = path.join(dir, ".pulumi", "stacks", project, `${stack}.json`);
  const modified = (file: string) => fs.statSync(file).mtimeMs;
  return [plain, `${plain}.gz`, `${plain}.zst`]
    .filter((file) => fs.existsSync(file))
    .sort((a, b) => modified(a) - modified(b))
    .pop();
}

/** A note beside the plan, on stderr; undefined, for a caller that has no value to return. */
function note(text: string): undefined {
  process.stderr.write(`note: ${text}\n`);
  return undefined;
}

function main(): number {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
    const { settings, missingSecrets } = settingsOf(options.stacksDir, options.stack);
    const plan = planDeployment(settings);
    const prefix = settings.prefix ?? defaultPrefix(options.stack);
    const running = options.from ?? deployedVersion(options.stack);
    const from = running ?? "<the running version>";
    if (running) {
      // The schema guard's own rule: what `pulumi preview` would refuse is refused here too.
      const refusals = checkVersionChange(
        { version: from },
        { version: settings.version, restoreFrom: settings.restoreFrom },
      );
      if (refusals.length > 0) {
        process.stderr.write(`${refusals.map((r) => r.reason).join("\n")}\n`);
        return 1;
      }
      if (from === settings.version && settings.restoreFrom === undefined) {
        process.stdout.write(
          `No version change (${from}): \`pulumi up\` takes no backup and runs no migration; a changed setting replaces only the services it touches.\n`,
        );
        return 0;
      }
    }
    const maintenance = maintenanceStages(plan, {
      from,
      containerName: (key) => `${prefix}-${key}`,
      backup: {
        dir: settings.backup.dir,
        stopWriters: settings.backup.stopWriters,
        testRestore: settings.backup.testRestore,
        estimate: backupEstimate(settings),
      },
      restoreFrom: settings.restoreFrom,
    });
    process.stdout.write(renderMaintenance(maintenance, options.markdown ? "markdown" : "text"));
    if (settings.target === "swarm")
      process.stdout.write(
        `\n${renderPlacement(servicesOf(plan), settings.swarm.labels, (key) => `${prefix}-${key}`, {
          postgres: settings.database.mode === "managed",
          rabbitmq: settings.rabbitmq.mode === "managed",
        })}`,
      );
    if (missingSecrets.length > 0) {
      process.stderr.write(
        `note: the stack file holds no value for ${missingSecrets.join(", ")}; \`pulumi up\` needs them (pulumi config set --secret ...)\n`,
      );
    }
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}

process.exitCode = main();
