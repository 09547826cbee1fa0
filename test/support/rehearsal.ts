import { spawn, type ChildProcess } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { configFromValues, runProgram, type ProgramRun, type ResourceState } from "../harness";
import { PartialCreate, plain, runUp, type Declared, type Schedule, type StateEntry, type Step } from "./engine";
import { docker, exec, waitFor } from "./exec";
import { listenersOn } from "./ports";
import { CONTAINER, dockerContainerUpdate, readDockerContainer } from "./provider-facts";
import { InterruptedRun, type Interrupt, type PendingOperation } from "./interrupt";

/**
 * The rehearsal: a `pulumi preview` + `pulumi up` of the real program against the real Docker
 * engine. The program runs under the SDK's own runtime (test/harness: cmd/run, and the real
 * dynamic provider host for the schema guard); the engine model (engine.ts) turns its
 * registrations into steps in an order the dependency graph allows; each step is carried out as
 * the provider would: containers created and started (or stopped and removed) with the declared
 * inputs, commands run with their declared environment (and, on update, the last stdout in
 * PULUMI_COMMAND_STDOUT), the postgresql resources' SQL. A failing step stops the run, as
 * `pulumi up` does, and the state keeps what finished (a container created but not started is
 * kept with initialisation errors), so the next run resumes.
 *
 * It is not the Pulumi engine and not the bridged providers: it is the program's declared steps
 * carried out in the engine's order, by the rules the model ports from the engine's own tests.
 */

export interface StepRecord {
  step: Step;
  startedAt: number;
  endedAt: number;
  ok: boolean;
  /** Output of a command step, or the error of any step. */
  output: string;
}

export class StepFailed extends Error {
  constructor(readonly record: StepRecord) {
    super(`${record.step.op} ${record.step.name} failed:\n${record.output}`);
  }
}

/** The StepFailed of a run that must fail; the run succeeding or failing otherwise is an error. */
export async function stepFailure(run: Promise<unknown>): Promise<StepFailed> {
  try {
    await run;
  } catch (e) {
    if (e instanceof StepFailed) return e;
    throw e;
  }
  throw new Error("the run succeeded but should have failed");
}

/** The preview failed (the schema guard's check, or the config loader): nothing ran. */
export class PreviewRefused extends Error {}

const ROOT = path.resolve(__dirname, "../..");
const IMAGE = "docker:index/remoteImage:RemoteImage";

export interface UpOptions {
  /** `pulumi up --refresh`: the live containers are read first. */
  refresh?: boolean;
  schedule?: Schedule;
  /** Called before each step is carried out (fault injection: kill a process, fill a disk, ...). */
  beforeStep?: (step: Step) => Promise<void>;
  /** `pulumi up` gets SIGINT/SIGTERM during a command step (interrupt.ts); `up` then throws `Interrupted`. */
  interrupt?: Interrupt;
}

/**
 * A second `pulumi up` while one runs: the diy backend's lock (pkg/backend/diy/lock.go, v3.250.0), taken
 * by `Update` before the preview, refuses it at once with this message (the Pulumi Cloud backend answers
 * 409, backenderr.ConflictingUpdateError). The lock is removed when the holder ends, even after a
 * second ^C; only a killed `pulumi` leaves it, and `pulumi cancel` deletes it.
 */
export class StackLocked extends Error {
  constructor(holder: { pid: number; since: Date }) {
    super("the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with " +
      `\`pulumi cancel\`.\n  .pulumi/locks/organization/utilitarian/<stack>/<id>.json: created by ${os.userInfo().username}@${os.hostname()} ` +
      `(pid ${holder.pid}) at ${holder.since.toISOString()}`);
  }
}

export class Rehearsal {
  /** The engine's snapshot: the last successful declaration of each resource. */
  state = new Map<string, StateEntry>();
  /** What the program saw of each resource last time (inputs and outputs): the dynamic host's olds. */
  private readonly prior = new Map<string, ResourceState>();
  /** The real stdout each Command recorded, as the command provider keeps it in its state. */
  readonly stdout = new Map<string, string>();
  readonly records: StepRecord[] = [];
  /** The last program run (registrations, outputs, diagnostics). */
  lastRun?: ProgramRun;
  private declared: Declared[] = [];
  /** The snapshot's pending operations: steps a terminated run began and never ended (interrupt.ts). */
  pendingOperations: PendingOperation[] = [];
  /** The last run's interruption, if it had one: its signals and the processes it left. */
  lastInterrupt?: InterruptedRun;
  private lock?: { pid: number; since: Date };

  constructor(private readonly secrets: Record<string, string>, private readonly stack = "rehearsal") {}

  /** `pulumi up` of the program with these config values: preview (refusals), then the steps. */
  async up(values: Record<string, unknown>, options: UpOptions = {}): Promise<StepRecord[]> {
    return this.locked(() => this.upLocked(values, options));
  }

  /**
   * `pulumi refresh [--clear-pending-creates]`: the containers read as they are (a stopped one records
   * mustRun false); pending CREATEs dropped when asked (pkg/cmd/pulumi/operations/refresh.go, without
   * which only the interactive prompt clears them).
   */
  async refreshOnly(options: { clearPendingCreates?: boolean } = {}): Promise<void> {
    return this.locked(async () => {
      const live = await this.liveContainers();
      for (const [key, e] of [...this.state]) {
        if (e.type !== CONTAINER || e.delete || e.pendingReplacement) continue;
        const read = readDockerContainer(e, live.get(String(plain(e.inputs).name)) ?? { exists: false, running: false });
        if (read) this.state.set(key, read);
        else this.state.delete(key);
      }
      if (options.clearPendingCreates) this.pendingOperations = this.pendingOperations.filter((op) => op.type !== "creating");
    });
  }

  private async locked<T>(run: () => Promise<T>): Promise<T> {
    if (this.lock) throw new StackLocked(this.lock);
    this.lock = { pid: process.pid, since: new Date() };
    try {
      return await run();
    } finally {
      this.lock = undefined;
    }
  }

  private async upLocked(values: Record<string, unknown>, options: UpOptions): Promise<StepRecord[]> {
    const { config, secretKeys } = configFromValues(values, this.secrets);
    const run = await runProgram({ programDir: ROOT, stack: this.stack, config, secretKeys, preview: false, priorState: this.prior });
    this.lastRun = run;
    if (!run.succeeded) {
      const errors = run.diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
      throw new PreviewRefused(errors.length > 0 ? errors.join("\n") : `the program failed (exit ${run.exitCode}): ${run.stderr.slice(-2000)}`);
    }
    this.declared = run.registrations;
    const live = options.refresh ? await this.liveContainers() : undefined;
    const records: StepRecord[] = [];
    const interruption = options.interrupt && new InterruptedRun(options.interrupt);
    this.lastInterrupt = interruption;
    const result = await runUp(this.state, run.registrations, {
      cancelled: () => interruption?.cancelled ?? false,
      schedule: options.schedule,
      refresh: live && ((entry) => (entry.type === CONTAINER ? readDockerContainer(entry, live.get(String(plain(entry.inputs).name)) ?? { exists: false, running: false }) : entry)),
      execute: async (step) => {
        await options.beforeStep?.(step);
        const startedAt = Date.now();
        let output = "";
        try {
          output = await this.carryOut(step, interruption?.matches(step) ? interruption : undefined);
        } catch (e) {
          const record = { step, startedAt, endedAt: Date.now(), ok: false, output: (e as Error).message };
          records.push(record);
          this.records.push(record);
          throw e;
        }
        const record = { step, startedAt, endedAt: Date.now(), ok: true, output };
        records.push(record);
        this.records.push(record);
      },
    });
    this.state = result.state;
    for (const step of result.steps) {
      if (step === result.failed?.step) continue;
      if (step.op === "delete") this.prior.delete(step.name);
      else if (step.op !== "delete-replaced" && step.op !== "remove-pending-replace" && run.state.has(step.name)) this.prior.set(step.name, run.state.get(step.name)!);
    }
    // snapshot.go Snap: the operations this run began and never ended stay pending, and so do the base
    // snapshot's pending CREATEs (until `pulumi refresh` clears them); its other pending operations go.
    this.pendingOperations = [...(interruption?.pending ?? []), ...this.pendingOperations.filter((op) => op.type === "creating")];
    if (interruption?.cancelled) throw interruption.error(result.failed);
    if (result.failed) throw new StepFailed(records.find((r) => r.step === result.failed!.step) ?? {
      step: result.failed.step, startedAt: Date.now(), endedAt: Date.now(), ok: false, output: result.failed.error.message,
    });
    return records;
  }

  /** The stack output `lastBackup` as the component derives it from the backup step's recorded stdout. */
  lastBackup(prefix: string): string {
    return /^BACKUP_FILE=(.*)$/m.exec(this.stdout.get(`${prefix}-backup`) ?? "")?.[1] ?? "";
  }

  private async liveContainers(): Promise<Map<string, { exists: boolean; running: boolean }>> {
    const out = await docker(["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    return new Map(out.split("\n").filter(Boolean).map((line) => {
      const [name, state] = line.split(" ");
      return [name, { exists: true, running: state === "running" }];
    }));
  }

  private async carryOut(step: Step, interruption?: InterruptedRun): Promise<string> {
    const resource = (step.op === "delete" || step.op === "delete-replaced" ? step.old : step.new) ?? step.old!;
    const inputs = plain(resource.inputs);
    switch (resource.type) {
      case IMAGE:
        if (step.op === "create" || step.op === "replace") {
          // As the provider's RemoteImage (kreuzwerker resource_docker_image_funcs.go, findImage):
          // pull only when the tag is not present. The locally built stand-ins are present, so
          // the tests never pull; a registry's images (the downtime benchmark, bench/downtime)
          // are pulled here, at the step's real cost.
          const present = await exec("docker", ["image", "inspect", "--format", "{{.Id}}", inputs.name]);
          if (present.code !== 0) return docker(["pull", inputs.name]);
        }
        return ""; // keepLocally: an old image stays
      case "docker:index/network:Network":
        if (step.op === "create") await docker(["network", "create", "--driver", inputs.driver ?? "bridge", inputs.name]);
        if (step.op === "delete") await docker(["network", "rm", inputs.name]);
        return "";
      case "docker:index/volume:Volume":
        if (step.op === "create") await docker(["volume", "create", inputs.name]);
        return ""; // protected and retainOnDelete: never removed
      case CONTAINER:
        if (step.op === "delete" || step.op === "delete-replaced") return step.alreadyDeleted ? "" : this.removeContainer(inputs);
        if (step.op === "create" || step.op === "replace") return this.runContainer(inputs);
        return this.updateContainer(plain(step.old!.inputs), inputs, step.changed ?? []);
      case "command:local:Command": {
        const text = step.op === "update" ? inputs.update : step.op === "create" || step.op === "replace" ? inputs.create : inputs.delete;
        if (step.op === "delete" || step.op === "delete-replaced") {
          if (text) await this.runCommand(text, inputs.environment ?? {}, this.stdout.get(step.name));
          return "";
        }
        const output = text ? await this.runCommand(text, inputs.environment ?? {}, step.op === "update" ? this.stdout.get(step.name) : undefined, interruption) : { stdout: "", stderr: "" };
        // The provider's `stdout` output: what the last create or update printed (an update's replaces it).
        this.stdout.set(step.name, output.stdout.replace(/\n$/, ""));
        return `${output.stdout}${output.stderr}`;
      }
      case "postgresql:index/role:Role":
      case "postgresql:index/database:Database":
        if (step.op === "create") return this.runSql(resource, inputs);
        if (step.op === "update") return "";
        throw new Error(`${resource.type} ${step.op} is protected`);
      default:
        return ""; // component, providers, schema guard: no effect outside the state
    }
  }

  /** resourceDockerContainerUpdate: starts the container only when must_run turns true (after a refresh read it stopped). */
  private async updateContainer(oldInputs: any, newInputs: any, changed: string[]): Promise<string> {
    const update = dockerContainerUpdate(oldInputs, newInputs, changed);
    if (update.starts) {
      await docker(["start", newInputs.name]);
      await this.checkStarted(newInputs);
      return `started ${newInputs.name}`;
    }
    return "";
  }

  private imageName(imageId: string): string {
    for (const r of this.declared) {
      if (r.type !== "docker:index/remoteImage:RemoteImage") continue;
      const name = String(plain(r.inputs).name);
      if (`sha256:${crypto.createHash("sha256").update(name).digest("hex")}` === imageId) return name;
    }
    throw new Error(`no image declared for ${imageId}`);
  }

  private async runContainer(c: any): Promise<string> {
    const envFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "rehearsal-env-")), "env");
    // An env file keeps secret values out of the process list.
    fs.writeFileSync(envFile, (c.envs ?? []).map((e: string) => `${e}\n`).join(""), { mode: 0o600 });
    const args = ["create", "--name", c.name, "--env-file", envFile, "--restart", c.restart ?? "no"];
    for (const l of c.labels ?? []) args.push("--label", `${l.label}=${l.value}`);
    if (c.networkMode) args.push("--network", c.networkMode);
    for (const n of c.networksAdvanced ?? []) {
      args.push("--network", n.name);
      for (const a of n.aliases ?? []) args.push("--network-alias", a);
    }
    for (const p of c.ports ?? []) args.push("-p", `${p.ip ? `${p.ip}:` : ""}${p.external ?? ""}:${p.internal}/${p.protocol ?? "tcp"}`);
    for (const v of c.volumes ?? []) args.push("-v", `${v.volumeName ?? v.hostPath}:${v.containerPath}`);
    if (c.hostname) args.push("--hostname", c.hostname);
    if (c.stopTimeout !== undefined) args.push("--stop-timeout", String(c.stopTimeout));
    if (c.logDriver) args.push("--log-driver", c.logDriver);
    for (const [k, v] of Object.entries(c.logOpts ?? {})) args.push("--log-opt", `${k}=${v}`);
    const hc = c.healthcheck;
    if (hc) {
      const [kind, ...cmd] = hc.tests as string[];
      args.push("--health-cmd", kind === "CMD" ? cmd.map(shellQuote).join(" ") : cmd.join(" "));
      if (hc.interval) args.push("--health-interval", hc.interval);
      if (hc.timeout) args.push("--health-timeout", hc.timeout);
      if (hc.retries !== undefined) args.push("--health-retries", String(hc.retries));
      if (hc.startPeriod) args.push("--health-start-period", hc.startPeriod);
    }
    args.push(this.imageName(c.image), ...(c.command ?? []));
    try {
      await docker(args);
    } finally {
      fs.rmSync(path.dirname(envFile), { recursive: true, force: true });
    }
    // From here on the container exists: the provider has set its ID, so a failure is a partial
    // create (the engine keeps it with initialisation errors; provider-facts.ts (c)).
    try {
      await docker(["start", c.name]);
      await this.checkStarted(c);
    } catch (e) {
      let message = (e as Error).message;
      if (/address already in use/.test(message)) {
        const holders = (c.ports ?? []).map((p: any) => `port ${p.external}: ${listenersOn(p.external)}`).join("\n");
        message = `${message}\nwho holds the published ports now:\n${holders}`;
      }
      throw new PartialCreate(`Unable to start container: ${message}`);
    }
    return "";
  }

  /** The provider's wait after a start: health when `wait` is set, else still running right after. */
  private async checkStarted(c: any): Promise<void> {
    if (c.wait) {
      const healthy = await waitFor(async () => (await docker(["inspect", "-f", "{{.State.Health.Status}}", c.name])) === "healthy", (c.waitTimeout ?? 60) * 1000, 500);
      if (!healthy) throw new Error(`container ${c.name} did not become healthy within ${c.waitTimeout ?? 60}s`);
    } else if (c.mustRun !== false) {
      const running = await docker(["inspect", "-f", "{{.State.Running}}", c.name]);
      if (running !== "true") throw new Error(`container ${c.name} exited right after its start`);
    }
  }

  private async removeContainer(c: any): Promise<string> {
    // As the provider: stop with the grace period, then remove.
    await docker(["stop", "-t", String(c.destroyGraceSeconds ?? 0), c.name], { allowFailure: true });
    await docker(["rm", "-f", c.name], { allowFailure: true });
    return "";
  }

  /**
   * As the command provider runs it: `interpreter + [text]` in the project directory, the declared
   * environment over the provider's own, and the last stdout in PULUMI_COMMAND_STDOUT when there is one.
   */
  private async runCommand(text: string, environment: Record<string, string>, previousStdout?: string, interruption?: InterruptedRun): Promise<{ stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...environment };
    if (previousStdout) env.PULUMI_COMMAND_STDOUT = previousStdout;
    if (interruption) return interruption.runCommand(text, env, ROOT);
    const result = await exec("/bin/bash", ["-c", text], { env, cwd: ROOT });
    if (result.code !== 0) throw new Error(`exit ${result.code}\n${result.stdout}${result.stderr}`);
    return result;
  }

  /** The postgresql provider's effect, as its administrator. */
  private async runSql(resource: Declared, inputs: any): Promise<string> {
    const provider = plain(this.declared.find((r) => r.type === "pulumi:providers:postgresql")!.inputs);
    const sql = resource.type.endsWith("role:Role")
      ? `\\getenv pw ROLE_PASSWORD\nCREATE ROLE ${inputs.name} LOGIN PASSWORD :'pw' NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION;\n`
      : `CREATE DATABASE ${inputs.name} OWNER ${inputs.owner} ENCODING '${inputs.encoding}' TEMPLATE ${inputs.template};\n`;
    const env = { ...process.env, PGHOST: provider.host, PGPORT: String(provider.port), PGUSER: provider.username, PGPASSWORD: provider.password, PGDATABASE: provider.database, ROLE_PASSWORD: inputs.password ?? "" };
    const result = await exec("psql", ["-v", "ON_ERROR_STOP=1", "-q"], { env, input: sql });
    if (result.code !== 0) throw new Error(result.stderr);
    return "";
  }
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Records the Docker engine's container events (start, die, exec) while a rehearsal runs. */
export class EventLog {
  private child?: ChildProcess;
  private buffer = "";
  readonly events: { time: number; action: string; name: string; service?: string }[] = [];

  async start(prefix: string): Promise<void> {
    this.child = spawn("docker", ["events", "--filter", "type=container", "--filter", `label=io.utilitarian.stack=${prefix}`, "--format", "{{json .}}"]);
    this.child.stdout!.on("data", (d) => {
      this.buffer += d;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        try {
          const e = JSON.parse(line);
          this.events.push({ time: Math.floor(e.timeNano / 1e6), action: e.Action ?? e.status, name: e.Actor?.Attributes?.name, service: e.Actor?.Attributes?.["io.utilitarian.service"] });
        } catch {
          // partial line: ignored
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
  }

  stop(): void {
    this.child?.kill();
  }
}
