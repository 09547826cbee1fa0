/**
 * A stack of this project under the real Pulumi engine: `toolchain/pulumi` (the CLI and language
 * host built from Go modules) runs index.ts from the project directory, as an operator's
 * `pulumi up` does, with a local file backend and a Pulumi home of the test's own. The docker,
 * postgresql and command plugins in that home are the stand-ins of test/provider (the real ones
 * cannot be built here: README "The engine toolchain"); the engine, the language host and the
 * dynamic-provider host are the real ones.
 *
 * The stack's config goes into a file of the test's own (`--config-file`), so the checkout's
 * stacks/ directory keeps no test stack (the file `stack init` writes there is moved out at once).
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { exec, type ExecResult } from "./exec";
import { PROJECT_DIR, PULUMI } from "./real-engine";
import { CONTAINER } from "./provider-facts";

/** One step of a real run, as the engine's event log tells it. */
export interface EngineStep {
  /** The engine's op: same, create, update, delete, create-replacement, delete-replaced, replace, refresh, read, ... */
  op: string;
  /** The resource's name (the last part of its URN). */
  name: string;
  type: string;
  /** When the engine began it and ended it (ms since the epoch; the event's own timestamp, in seconds, is too coarse). */
  startedAt: number;
  endedAt: number;
  /** Position of its begin and end events in the log (Infinity: never ended). */
  start: number;
  end: number;
  /** The step failed (its resOpFailedEvent, or a diagnostic of severity error naming its URN while it ran). */
  failed: boolean;
}

export interface RealRun extends ExecResult {
  steps: EngineStep[];
  /** Every line the engine logged for a resource (the command provider's output), by resource name. */
  logs: Map<string, string[]>;
  eventLog: string;
  startedAt: number;
  endedAt: number;
}

export class RealStack {
  readonly dir: string;
  readonly home: string;
  readonly backend: string;
  readonly configFile: string;
  private runs = 0;

  /** `stack`: the Pulumi stack's name; `secrets`: the stack's secret keys (without `utilitarian:`) and their values. */
  constructor(
    readonly stack: string,
    private readonly secrets: Record<string, string>,
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `utilitarian-real-${stack}-`));
    this.home = path.join(this.dir, "home");
    this.backend = path.join(this.dir, "state");
    this.configFile = path.join(this.dir, `Pulumi.${stack}.yaml`);
    fs.mkdirSync(this.home);
    fs.mkdirSync(this.backend);
  }

  get env(): NodeJS.ProcessEnv {
    // PULUMI_DEBUG_COMMANDS shows the hidden --event-log flag (pkg/cmd/pulumi/operations/up.go).
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PULUMI_HOME: this.home,
      PULUMI_BACKEND_URL: `file://${this.backend}`,
      PULUMI_CONFIG_PASSPHRASE: "",
      PULUMI_DEBUG_COMMANDS: "true",
    };
    for (const key of Object.keys(env)) if (key.startsWith("VITEST") || key === "NODE_OPTIONS") delete env[key];
    return env;
  }

  /** The plugins, the stack and its secrets; the first `configure` writes the plain config. */
  async init(): Promise<void> {
    const installed = await exec("bash", [path.join(PROJECT_DIR, "toolchain/standin-providers.sh"), this.home], {
      env: this.env,
    });
    if (installed.code !== 0) throw new Error(`standin-providers.sh: ${installed.stderr}`);
    const init = await exec(PULUMI, ["stack", "init", this.stack, "--non-interactive"], {
      cwd: PROJECT_DIR,
      env: this.env,
    });
    if (init.code !== 0) throw new Error(`pulumi stack init ${this.stack}: ${init.stderr}`);
    // `stack init` writes the passphrase's salt into stacks/Pulumi.<stack>.yaml (it takes no
    // --config-file): moved to the test's own file at once, so the checkout keeps no test stack.
    fs.renameSync(path.join(PROJECT_DIR, "stacks", `Pulumi.${this.stack}.yaml`), this.configFile);
    for (const [key, value] of Object.entries(this.secrets)) {
      // From stdin, never on a command line.
      const set = await exec(PULUMI, ["config", "set", "--secret", ...this.target(["config"]), `utilitarian:${key}`], {
        cwd: PROJECT_DIR,
        env: this.env,
        input: value,
      });
      if (set.code !== 0) throw new Error(`pulumi config set --secret ${key}: ${set.stderr}`);
    }
  }

  /** Replaces the plain config with `values` (keys without the `utilitarian:` namespace); secrets and the salt stay. */
  configure(values: Record<string, unknown>): void {
    const file = (yaml.load(fs.readFileSync(this.configFile, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    const config = Object.fromEntries(Object.entries(file.config ?? {}).filter(([, v]) => isSecret(v)));
    for (const [k, v] of Object.entries(values)) if (v !== undefined) config[`utilitarian:${k}`] = v;
    fs.writeFileSync(this.configFile, yaml.dump({ ...file, config }));
  }

  /** `pulumi ARGS --stack S --config-file F` from the project directory (or `cwd`); never throws on a non-zero exit. */
  run(
    args: string[],
    options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ): Promise<ExecResult> {
    return exec(PULUMI, [...args, ...this.target(args), "--non-interactive"], {
      cwd: options.cwd ?? PROJECT_DIR,
      env: { ...this.env, ...options.env },
      timeoutMs: options.timeoutMs ?? 10 * 60_000,
    });
  }

  async ok(args: string[]): Promise<ExecResult> {
    const result = await this.run(args);
    if (result.code !== 0)
      throw new Error(`pulumi ${args.join(" ")} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
    return result;
  }

  /** `pulumi up --yes` (or `preview`) with an event log; the steps read back from it. */
  async up(
    extra: string[] = [],
    options: { preview?: boolean; timeoutMs?: number; during?: (run: LiveRun) => Promise<void> } = {},
  ): Promise<RealRun> {
    const live = this.start(
      [options.preview ? "preview" : "up", ...(options.preview ? [] : ["--yes", "--skip-preview"]), ...extra],
      options.timeoutMs,
    );
    try {
      await options.during?.(live);
    } catch (e) {
      // A fault that could not be injected: the run must not go on unobserved after the test.
      try {
        process.kill(live.pid, "SIGKILL");
      } catch {
        // it had ended already
      }
      await live.done;
      throw e;
    }
    return live.done;
  }

  /**
   * A run in the background: its process (the `pulumi` binary itself: toolchain/pulumi execs
   * it), a wait for a step to begin, and its result.
   */
  start(args: string[], timeoutMs = 10 * 60_000): LiveRun {
    const eventLog = path.join(this.dir, `events-${++this.runs}.jsonl`);
    const startedAt = Date.now();
    const stamps = stampLines(eventLog);
    const child = spawn(PULUMI, [...args, "--event-log", eventLog, ...this.target(args), "--non-interactive"], {
      cwd: PROJECT_DIR,
      env: this.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const done = new Promise<RealRun>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        const endedAt = Date.now();
        resolve({
          code: code ?? (signal ? 128 : 1),
          stdout,
          stderr,
          ...readEventLog(eventLog, stamps.stop()),
          eventLog,
          startedAt,
          endedAt,
        });
      });
    });
    return {
      pid: child.pid!,
      done,
      output: () => stdout + stderr,
      began: async (name, within = 5 * 60_000) => {
        const deadline = Date.now() + within;
        while (Date.now() < deadline) {
          if (readEventLog(eventLog).steps.some((s) => s.name === name && s.op !== "same")) return;
          if (child.exitCode !== null) throw new Error(`pulumi ended before ${name} began:\n${stdout}${stderr}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`${name} did not begin within ${within} ms`);
      },
    };
  }

  /**
   * The stack's state (`pulumi stack export`). With `showSecrets` the secrets are decrypted
   * (`--show-secrets`, as `{ plaintext }` wrappers: see `revealed`): only for a test that must run
   * a step's script by hand, never printed.
   */
  async export(
    options: { showSecrets?: boolean } = {},
  ): Promise<{ resources: StateResource[]; pending_operations?: { type: string; resource: StateResource }[] }> {
    const out = await this.ok(["stack", "export", ...(options.showSecrets ? ["--show-secrets"] : [])]);
    return JSON.parse(out.stdout).deployment;
  }

  /** The stack's outputs (secrets shown: only for assertions, never printed). */
  async outputs(): Promise<Record<string, unknown>> {
    return JSON.parse((await this.ok(["stack", "output", "--json", "--show-secrets"])).stdout);
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The stack, and its config file for the commands that read config (`stack export` and `stack output` take no --config-file). */
  private target(args: string[] = []): string[] {
    const readsConfig = !["stack", "cancel"].includes(args[0]);
    return ["--stack", this.stack, ...(readsConfig ? ["--config-file", this.configFile] : [])];
  }
}

export interface LiveRun {
  pid: number;
  done: Promise<RealRun>;
  /** What pulumi printed so far. */
  output(): string;
  /** Resolves once the engine began a step (not `same`) of the resource `name`. */
  began(name: string, within?: number): Promise<void>;
}

export interface StateResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  initErrors?: string[];
  delete?: boolean;
  pendingReplacement?: boolean;
  protect?: boolean;
}

export const nameOf = (urn: string) => urn.split("::").pop()!;

/**
 * A value of a state exported with --show-secrets, secrets unwrapped: the engine writes a secret
 * as an object with the secret signature key and `plaintext`, the value's JSON (apitype.SecretV1,
 * sdk/go/common/apitype/core.go).
 */
export function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (typeof value !== "object" || value === null) return value;
  const object = value as Record<string, unknown>;
  if (SECRET_SIGNATURE in object && typeof object.plaintext === "string") return revealed(JSON.parse(object.plaintext));
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, revealed(v)]));
}
const SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d";

/** Names of the containers the state holds as live (not pending deletion). */
export function liveContainers(state: { resources: StateResource[] }): string[] {
  return state.resources
    .filter((r) => r.type === CONTAINER && !r.delete && !r.pendingReplacement)
    .map((r) => nameOf(r.urn))
    .sort();
}

/**
 * A component's step has no provider call and is done at once; its outputs event comes only when
 * the program registers its outputs, which may be after its children's steps began.
 */
export function endsAtOnce(metadata: {
  type: string;
  new?: { provider?: string };
  old?: { provider?: string };
}): boolean {
  const state = metadata.new ?? metadata.old;
  return state?.provider === "" && !metadata.type.startsWith("pulumi:providers:");
}

/**
 * The engine's event log (`--event-log`, one JSON event a line): each step's resourcePreEvent
 * begins it and its resOutputsEvent (or resOpFailedEvent) ends it; diagnostics with a URN are the
 * resource's log lines. The stack itself and the engine's default providers are left out.
 */
export function readEventLog(
  file: string,
  stamps: number[] = [],
): { steps: EngineStep[]; logs: Map<string, string[]> } {
  const steps: EngineStep[] = [];
  const logs = new Map<string, string[]>();
  const open = new Map<string, EngineStep>();
  if (!fs.existsSync(file)) return { steps, logs };
  const lines = fs.readFileSync(file, "utf8").split("\n");
  lines.forEach((line, position) => {
    if (!line.trim()) return;
    let event;
    try {
      event = JSON.parse(line);
    } catch (e) {
      if (position === lines.length - 1) return; // the line the engine is writing now
      throw e;
    }
    const pre = event.resourcePreEvent?.metadata;
    const post = event.resOutputsEvent?.metadata ?? event.resOpFailedEvent?.metadata;
    const diag = event.diagnosticEvent;
    if (diag?.urn) {
      const name = nameOf(diag.urn);
      if (!logs.has(name)) logs.set(name, []);
      logs.get(name)!.push(String(diag.message).replace(/\n$/, ""));
      if (diag.severity === "error")
        for (const s of steps) if (s.name === name && s.end === Number.POSITIVE_INFINITY) s.failed = true;
    }
    const metadata = pre ?? post;
    if (!metadata || metadata.type === "pulumi:pulumi:Stack") return;
    const name = nameOf(metadata.urn);
    const key = `${metadata.op} ${metadata.urn}`;
    const time = stamps[position] ?? (typeof event.timestamp === "number" ? event.timestamp * 1000 : Number.NaN);
    if (pre) {
      const step: EngineStep = {
        op: metadata.op,
        name,
        type: metadata.type,
        startedAt: time,
        endedAt: Number.POSITIVE_INFINITY,
        start: position,
        end: Number.POSITIVE_INFINITY,
        failed: false,
      };
      steps.push(step);
      if (endsAtOnce(metadata)) {
        step.end = position;
        step.endedAt = time;
      } else {
        open.set(key, step);
      }
    } else {
      const step = open.get(key);
      if (step) {
        step.end = position;
        step.endedAt = time;
        if (event.resOpFailedEvent) step.failed = true;
      }
      open.delete(key);
    }
  });
  return { steps, logs };
}

/** The steps that changed something (every op but `same`), as "op name". */
export function changes(run: { steps: EngineStep[] }): string[] {
  return run.steps
    .filter((s) => s.op !== "same" && !s.type.startsWith("pulumi:providers:"))
    .map((s) => `${s.op} ${s.name}`);
}

/**
 * When each line of a growing file appeared, polled every 20 ms: the engine writes each event as
 * it happens, and the events' own timestamps are whole seconds.
 */
function stampLines(file: string): { stop: () => number[] } {
  const stamps: number[] = [];
  let offset = 0;
  const chunk = Buffer.alloc(1 << 16);
  const poll = () => {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch {
      return;
    }
    try {
      let read: number;
      while ((read = fs.readSync(fd, chunk, 0, chunk.length, offset)) > 0) {
        const now = Date.now();
        for (let i = 0; i < read; i++) if (chunk[i] === 10) stamps.push(now);
        offset += read;
      }
    } finally {
      fs.closeSync(fd);
    }
  };
  const timer = setInterval(poll, 20);
  return {
    stop: () => {
      clearInterval(timer);
      poll();
      return stamps;
    },
  };
}

function isSecret(v: unknown): boolean {
  return typeof v === "object" && v !== null && "secure" in v;
}

/**
 * Where the engine's state (`pulumi stack export`) and the stack's containers disagree: a
 * container the state holds as live that does not exist or runs another version than its
 * inputs' label, one pending deletion that still exists, one of the stack the state does not
 * know. Empty when the state is true.
 */
export async function stateDisagreements(
  state: { resources: StateResource[] },
  live: Map<string, { version: string }>,
): Promise<string[]> {
  const problems: string[] = [];
  const known = new Set<string>();
  for (const r of state.resources) {
    if (r.type !== CONTAINER) continue;
    const inputs = (r.inputs ?? {}) as { name: string; labels?: { label: string; value: string }[] };
    const version = inputs.labels?.find((l) => l.label === "io.utilitarian.version")?.value;
    known.add(inputs.name);
    const container = live.get(inputs.name);
    if (r.delete || r.pendingReplacement) {
      if (container && !state.resources.some((o) => o !== r && o.urn === r.urn && !o.delete))
        problems.push(`${inputs.name} is pending deletion in the state but exists`);
    } else if (!container) {
      problems.push(`${inputs.name} is in the state but does not exist`);
    } else if (version !== undefined && container.version !== version) {
      problems.push(`${inputs.name} runs ${container.version}, the state says ${version}`);
    }
  }
  for (const name of live.keys()) if (!known.has(name)) problems.push(`${name} exists but is not in the state`);
  return problems;
}
