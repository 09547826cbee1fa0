/**
 * `npm run plan -- --stack <name> [--from <version>] [--markdown]`: prints the maintenance a
 * `pulumi up` of that stack will carry out, without the Pulumi CLI. The stack's config is read
 * from `stacks/Pulumi.<name>.yaml` and validated by the same loader as the program; secret values
 * are not needed (placeholders stand in for them) and are never read or printed.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { ConfigError, defaultPrefix, loadConfig, NAMESPACE } from "../config/load";
import { SECRET_KEYS, type Settings } from "../config/schema";
import { maintenanceStages, renderMaintenance } from "../components/maintenance";
import { packageRoot } from "../components/paths";
import { planDeployment } from "../components/plan";
import { checkVersionChange } from "../components/schemaGuard";

const PROJECT_DIR = packageRoot();
/**
 * The verified backup's throughput in database megabytes per second, measured on the 2-core test
 * machine: backup.sh took 25.6 s for a 2,959 MB database (docs/benchmarks.md). A real server's
 * disk and cores change it; it is a guide for the window, not a promise.
 */
const DUMP_MB_PER_SECOND = 110;

interface Options { stack: string; from?: string; markdown: boolean; stacksDir: string }

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

/** The stack file's config as the CLI passes it to the program: strings, structured values as JSON. */
function stackConfig(stacksDir: string, stack: string): { raw: Record<string, string>; secretsInFile: Set<string> } {
  const file = path.join(stacksDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) throw new UsageError(`no stack file ${file}; stack files there: ${fs.readdirSync(stacksDir).join(", ")}`);
  const doc = (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const raw: Record<string, string> = {};
  const secretsInFile = new Set<string>();
  for (const [key, value] of Object.entries(doc.config ?? {})) {
    if (value && typeof value === "object" && "secure" in value) secretsInFile.add(key);
    else raw[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return { raw, secretsInFile };
}

/** The settings, validated with every problem reported at once; secrets replaced by placeholders. */
function settingsOf(stacksDir: string, stack: string): { settings: Settings; missingSecrets: string[] } {
  const { raw, secretsInFile } = stackConfig(stacksDir, stack);
  const placeholder = "x".repeat(48);
  const secretKeys = new Set<string>();
  for (const key of Object.keys(SECRET_KEYS)) {
    const full = `${NAMESPACE}:${key}`;
    if (key === "apiSecretEnv") continue;
    raw[full] = key === "rabbitmqUrl" ? "amqp://placeholder:placeholder@rabbitmq.invalid:5672//" : placeholder;
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
  const host = db.operatorHost ?? (db.mode === "managed" ? "127.0.0.1" : db.host!);
  const port = db.operatorPort ?? (db.mode === "managed" ? 15432 : db.port);
  try {
    // The password comes from the operator's environment or ~/.pgpass, never from the stack.
    const bytes = Number(execFileSync("psql", ["-X", "-A", "-t", "-c", "select pg_database_size(current_database())"], {
      env: { ...process.env, PGHOST: host, PGPORT: String(port), PGUSER: db.adminUser, PGDATABASE: db.name, PGCONNECT_TIMEOUT: "3" },
      stdio: ["ignore", "pipe", "ignore"], timeout: 5000,
    }).toString().trim());
    const mb = bytes / 1048576;
    return `database ${db.name} is ${mb.toFixed(0)} MB on disk now; the verified backup takes about ${Math.max(1, Math.round(mb / DUMP_MB_PER_SECOND))} s at ${DUMP_MB_PER_SECOND} MB/s (docs/benchmarks.md) and writes about a tenth of that size (320 MB for 2,959 MB there)`;
  } catch {
    return `size not estimated: the database at ${host}:${port} did not answer from here (set PGPASSWORD or ~/.pgpass to let this command read its size)`;
  }
}

/** The version the stack runs now, from a local backend's state (./.pulumi) when there is one. */
function deployedVersion(stack: string): string | undefined {
  const file = path.join(PROJECT_DIR, ".pulumi", ".pulumi", "stacks", "utilitarian", `${stack}.json`);
  if (!fs.existsSync(file)) return undefined;
  const state = JSON.parse(fs.readFileSync(file, "utf8"));
  const guard = (state.checkpoint?.latest?.resources ?? []).find((r: { type: string; urn: string }) => r.urn.endsWith("-schema-guard"));
  return guard?.outputs?.version;
}

function main(): number {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
    const { settings, missingSecrets } = settingsOf(options.stacksDir, options.stack);
    const plan = planDeployment(settings);
    const prefix = settings.prefix ?? defaultPrefix(options.stack);
    const from = options.from ?? deployedVersion(options.stack) ?? "<the running version>";
    if (options.from ?? deployedVersion(options.stack)) {
      // The schema guard's own rule: what `pulumi preview` would refuse is refused here too.
      const refusals = checkVersionChange({ version: from }, { version: settings.version, restoreFrom: settings.restoreFrom });
      if (refusals.length > 0) {
        process.stderr.write(`${refusals.map((r) => r.reason).join("\n")}\n`);
        return 1;
      }
      if (from === settings.version && settings.restoreFrom === undefined) {
        process.stdout.write(`No version change (${from}): \`pulumi up\` takes no backup and runs no migration; a changed setting replaces only the services it touches.\n`);
        return 0;
      }
    }
    const maintenance = maintenanceStages(plan, {
      from,
      containerName: (key) => `${prefix}-${key}`,
      backup: { dir: settings.backup.dir, stopWriters: settings.backup.stopWriters, testRestore: settings.backup.testRestore, estimate: backupEstimate(settings) },
      restoreFrom: settings.restoreFrom,
    });
    process.stdout.write(renderMaintenance(maintenance, options.markdown ? "markdown" : "text"));
    if (missingSecrets.length > 0) {
      process.stderr.write(`note: the stack file holds no value for ${missingSecrets.join(", ")}; \`pulumi up\` needs them (pulumi config set --secret ...)\n`);
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
