import { spawn, type ChildProcess } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { checkVersionChange } from "../../components/schemaGuard";
import { applyStep, planSteps, plain, type Declared, type Step } from "./engine";
import { docker, exec, waitFor } from "./exec";
import { listenersOn } from "./ports";

/**
 * The rehearsal: carries out, against the real Docker engine, what the program declared under
 * mocks, step by step in the order the engine model (engine.ts) gives: containers are created
 * with the declared inputs, commands run their declared scripts with the declared environment,
 * the postgresql resources run their SQL. A failing step stops the run, as `pulumi up` does, and
 * the state keeps what finished, so the next run resumes.
 *
 * It is not the Pulumi engine and not the providers: it is the program's declared steps carried
 * out in the engine's documented order.
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

export class PreviewRefused extends Error {}

const GUARD = "pulumi-nodejs:dynamic/utilitarian-schema-guard:Resource";

export class Rehearsal {
  /** What the engine's state would hold: the last successful declaration of each resource. */
  readonly state = new Map<string, Declared>();
  readonly records: StepRecord[] = [];
  private declared: Declared[] = [];

  /** `pulumi preview` then `pulumi up`: refuses like the schema guard's check, then steps. */
  async up(next: Declared[]): Promise<StepRecord[]> {
    const guard = next.find((r) => r.type === GUARD);
    const oldGuard = guard && this.state.get(guard.name);
    if (guard) {
      const failures = checkVersionChange(oldGuard ? plain(oldGuard.inputs) : undefined, plain(guard.inputs));
      if (failures.length > 0) throw new PreviewRefused(failures.map((f) => f.reason).join("\n"));
    }
    this.declared = next;
    const steps = planSteps([...this.state.values()], next);
    const records: StepRecord[] = [];
    for (const step of steps) {
      if (step.op === "same") continue;
      const startedAt = Date.now();
      let output = "";
      try {
        output = await this.carryOut(step);
      } catch (e) {
        const record = { step, startedAt, endedAt: Date.now(), ok: false, output: (e as Error).message };
        records.push(record);
        this.records.push(record);
        throw new StepFailed(record);
      }
      const record = { step, startedAt, endedAt: Date.now(), ok: true, output };
      records.push(record);
      this.records.push(record);
      applyStep(this.state, step, next);
    }
    return records;
  }

  private async carryOut(step: Step): Promise<string> {
    const resource = step.op === "delete" || step.op === "delete-replaced"
      ? this.state.get(step.name)!
      : this.declared.find((r) => r.name === step.name)!;
    const inputs = plain(resource.inputs);
    switch (resource.type) {
      case "docker:index/remoteImage:RemoteImage":
        if (step.op === "create" || step.op === "replace") {
          // Nothing can be pulled here: the stand-ins must be present, as a pull would make them.
          await docker(["image", "inspect", "--format", "{{.Id}}", inputs.name]);
        }
        return "";
      case "docker:index/network:Network":
        if (step.op === "create") await docker(["network", "create", "--driver", inputs.driver ?? "bridge", inputs.name]);
        if (step.op === "delete") await docker(["network", "rm", inputs.name]);
        return "";
      case "docker:index/volume:Volume":
        if (step.op === "create") await docker(["volume", "create", inputs.name]);
        return ""; // protected and retainOnDelete: never removed
      case "docker:index/container:Container":
        if (step.op === "delete" || step.op === "delete-replaced") return this.removeContainer(inputs);
        if (step.op === "create" || step.op === "replace") return this.runContainer(inputs);
        throw new Error(`a container cannot be updated in place here: ${step.changed?.join(", ")}`);
      case "command:local:Command": {
        const text = step.op === "update" ? inputs.update : step.op === "create" || step.op === "replace" ? inputs.create : inputs.delete;
        return text ? this.runCommand(text, inputs.environment ?? {}) : "";
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
      await docker(["start", c.name]);
    } catch (e) {
      if (!/address already in use/.test((e as Error).message)) throw e;
      const holders = (c.ports ?? []).map((p: any) => `port ${p.external}: ${listenersOn(p.external)}`).join("\n");
      throw new Error(`${(e as Error).message}\nwho holds the published ports now:\n${holders}`);
    } finally {
      fs.rmSync(path.dirname(envFile), { recursive: true, force: true });
    }
    if (c.wait) {
      const healthy = await waitFor(async () => (await docker(["inspect", "-f", "{{.State.Health.Status}}", c.name])) === "healthy", (c.waitTimeout ?? 60) * 1000, 500);
      if (!healthy) throw new Error(`container ${c.name} did not become healthy within ${c.waitTimeout ?? 60}s`);
    } else if (c.mustRun !== false) {
      const running = await docker(["inspect", "-f", "{{.State.Running}}", c.name]);
      if (running !== "true") throw new Error(`container ${c.name} exited right after its start`);
    }
    return "";
  }

  private async removeContainer(c: any): Promise<string> {
    // As the provider: stop with the grace period, then remove.
    await docker(["stop", "-t", String(c.destroyGraceSeconds ?? 0), c.name], { allowFailure: true });
    await docker(["rm", "-f", c.name], { allowFailure: true });
    return "";
  }

  private async runCommand(text: string, environment: Record<string, string>): Promise<string> {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...environment };
    const result = await exec("/bin/bash", ["-c", text], { env });
    const output = `${result.stdout}${result.stderr}`;
    if (result.code !== 0) throw new Error(`exit ${result.code}\n${output}`);
    return output;
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
