/**
 * `pulumi up` interrupted by SIGINT or SIGTERM while a command step runs, as pulumi/pulumi v3.250.0 and
 * the command provider (pulumi/pulumi-command v1.2.1 on pulumi-go-provider v1.3.0, built with
 * pulumi/pkg v3.224.0) handle it. The rehearsal (rehearsal.ts) uses this for its `interrupt` option.
 * Line numbers are of those tags.
 *
 * First signal (SIGINT or SIGTERM alike): pkg/backend/cancellation_scope.go prints "^C received;
 * cancelling. If you would like to terminate immediately, press ^C again." and calls
 * `cancelSource.Cancel()` (:101). pkg/resource/deploy/deployment_executor.go Execute then calls
 * `Host.SignalCancellation()` (:142), which sends every provider the Cancel RPC (pkg/host/host.go:608),
 * leaves its loop (:321), no step starts any more (step_executor.go:400, executeChain checks
 * `se.ctx.Done()` before each step), and it waits for the steps in flight (`WaitForCompletion`, :348).
 * A step that failed makes the run "failed" (:423), else it is "canceled" (:435).
 * The command provider is an `infer` provider, which go-provider wraps in middleware/cancel
 * (infer/provider.go:177 `return cancel.Wrap(provider)`): Cancel cancels the context of every request
 * in flight (middleware/cancel/cancel.go:57). pulumi-command runs the step with
 * `exec.CommandContext(ctx, interpreter..., command)` (provider/pkg/provider/local/commandOutputs.go:59)
 * and no `Cancel` of its own, so Go kills the process it started with SIGKILL (os.Process.Kill):
 * `/bin/bash -c "bash 'scripts/x.sh'"`, which exec'd the script's bash. Nothing else is signalled.
 * The command's stdout and stderr are io.Writers, not files, so Go reads them through pipes, and with
 * no WaitDelay `cmd.Wait` reads to EOF: the provider answers only once every process that inherited
 * them has ended. What the script had started goes on, and the step with it; then the step fails,
 * "signal: killed: running ...".
 *
 * Second signal: cancellation_scope.go prints "^C received; terminating" and calls
 * `cancelSource.Terminate()` (:113). engine/deployment.go returns at once (:445,
 * `case <-cancelCtx.Cancel.Terminated()`), and engine/update.go OnResourceStepPost no longer writes the
 * snapshot (:1185, "We explicitly want to leave the checkpoint in an inconsistent state"): the step in
 * flight stays the pending operation backend/snapshot.go wrote when it began (doCreate, :428). Such a
 * pending CREATE is carried into every later snapshot (Snap, :759) until `pulumi refresh` clears it
 * (interactively, or `--clear-pending-creates`, cmd/pulumi/operations/refresh.go:477); a later
 * `pulumi up` only warns (deployment_executor.go:185). Closing the plugin context (engine/deployment.go
 * :243) kills the provider: resource/plugin/plugin.go:648 `cmdutil.InterruptChildren(pid)`, SIGINT to
 * the plugin's process group (plugins start in a group of their own, `RegisterProcessGroup`, :598),
 * then SIGKILL to the group only if the plugin is still alive 5 s later (:651). Of what a step script
 * left running, a command it started with `&` ignores that SIGINT (bash starts it so), a subshell of
 * it does not, and a `setsid` child is in a group of its own and never gets it. pulumi-command's main
 * (`Run(context.Background(), ...)`) and pkg v3.224.0 resource/provider MainContext install no SIGINT
 * handler, so the provider exits at once: the group is not killed, and what is left of the step loses
 * the reader of its pipes (its next line of output gets SIGPIPE). (Providers built on pkg v3.228.0 or
 * later catch SIGINT to stop gracefully, sdk/go/pulumi/provider/main.go:113, which waits for the
 * request in flight: with those, the group would be SIGKILLed 5 s later. Not modelled.)
 *
 * The plugins' own process group also means a ^C in the terminal reaches only the `pulumi` process,
 * never the step scripts: they see only what is described above.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import type { Step } from "./engine";
import { sleep } from "./exec";

export type Signal = "SIGINT" | "SIGTERM";

export interface Interrupt {
  /** The step during which `pulumi up` gets the signals: a command step (create, replace or update). */
  atStep: (step: Step) => boolean;
  /**
   * Polled every 50 ms with the processes of the step's command while it runs; the first signal arrives
   * when it answers true. Default: at once.
   */
  when?: (group: GroupMember[]) => Promise<boolean>;
  /** The signals `pulumi up` gets, in order: the first cancels, a second terminates. */
  signals: [Signal] | [Signal, Signal];
  /** Milliseconds between the two signals. Defaults to 500. */
  gapMs?: number;
}

/** How the interrupted run ended, in the engine's terms. */
export type InterruptOutcome =
  /** Cancelled, and the step in flight failed (it was killed): `update failed`. */
  | "failed"
  /** Cancelled, and the step in flight finished: `update canceled`. */
  | "canceled"
  /** Terminated at the second signal: the engine stopped waiting for the step. */
  | "terminated";

/** An operation the snapshot records as begun and never ended (snapshot.go markOperationPending). */
export interface PendingOperation {
  name: string;
  type: "creating" | "updating" | "deleting";
}

/** `pulumi up` ended by the signals. */
export class Interrupted extends Error {
  constructor(readonly outcome: InterruptOutcome, readonly step: Step, readonly printed: string[], readonly stepError?: string) {
    super(`${printed.join("\n")}\nupdate ${outcome === "terminated" ? "terminated" : outcome} at ${step.op} ${step.name}${stepError ? `:\n${stepError}` : ""}`);
  }
}

/** Thrown into the engine model when the run terminates: the step's outcome is never recorded. */
export class Terminated extends Error {}

/** A process of the step's process group, read from /proc. */
export interface GroupMember {
  pid: number;
  state: string;
  args: string;
}

/** The live (not zombie) processes of process group `pgid`. */
export function groupMembers(pgid: number): GroupMember[] {
  const members: GroupMember[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) !== pgid || state === "Z") continue;
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      members.push({ pid: Number(entry), state, args });
    } catch {
      // the process ended while we looked
    }
  }
  return members;
}

function opOf(step: Step): PendingOperation["type"] {
  if (step.op === "update") return "updating";
  if (step.op === "create" || step.op === "replace") return "creating";
  return "deleting";
}

const CANCEL_MESSAGE: Record<Signal, string> = {
  SIGINT: "^C received; cancelling. If you would like to terminate immediately, press ^C again.",
  SIGTERM: "SIGTERM received; cancelling. If you would like to terminate immediately, send SIGTERM again.",
};

/** One run's interruption: the signals' effect on the engine and on the command in flight. */
export class InterruptedRun {
  cancelled = false;
  terminated = false;
  /** What `pulumi up` printed about the signals. */
  readonly printed: string[] = [];
  /** The step the signals arrived during. */
  step?: Step;
  /**
   * The process group of the step's command: the orphans the interrupt left, until they end. Its number
   * is the PID of the process the provider started (`/bin/bash -c`, which exec'd the script), the one
   * the first signal kills.
   */
  pgid?: number;
  /** Processes of the group right after the first signal (what kept the step in flight). */
  afterFirstSignal: GroupMember[] = [];

  constructor(readonly interrupt: Interrupt) {
    if (interrupt.signals.length < 1) throw new Error("interrupt: give at least one signal");
  }

  /**
   * Whether `step` is the one to interrupt: the first step that runs a command (a Command's create,
   * replace or update) and that `atStep` picks. Only these are modelled: the command provider's Cancel.
   */
  matches(step: Step): boolean {
    if (this.step || this.cancelled) return false;
    if (step.type !== "command:local:Command" || !["create", "replace", "update"].includes(step.op)) return false;
    if (!this.interrupt.atStep(step)) return false;
    this.step = step;
    return true;
  }

  /** Snapshot operations this run leaves pending: the step in flight when it terminated. */
  get pending(): PendingOperation[] {
    return this.terminated && this.step ? [{ name: this.step.name, type: opOf(this.step) }] : [];
  }

  /** The error `up` throws: how the run ended. */
  error(failed: { step: Step; error: Error } | undefined): Interrupted {
    const outcome: InterruptOutcome = this.terminated ? "terminated" : failed ? "failed" : "canceled";
    return new Interrupted(outcome, failed?.step ?? this.step!, this.printed, failed && !this.terminated ? failed.error.message : undefined);
  }

  /** Resolves when no process of the step's group is left (polled every 200 ms, at most `timeoutMs`). */
  async processesEnded(timeoutMs = 120_000): Promise<void> {
    if (this.pgid === undefined) return;
    const deadline = Date.now() + timeoutMs;
    while (groupMembers(this.pgid).length > 0) {
      if (Date.now() > deadline) {
        throw new Error(`processes of the interrupted step still run after ${timeoutMs} ms: ${JSON.stringify(groupMembers(this.pgid))}`);
      }
      await sleep(200);
    }
  }

  /**
   * The command provider's run of the step (`interpreter + [text]`, declared environment over its own),
   * with the signals delivered as the engine and the plugin host deliver them.
   */
  async runCommand(text: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ stdout: string; stderr: string }> {
    const [first, second] = this.interrupt.signals;
    // Its own process group stands for the provider's (plugins start with Setpgid; the command inherits it).
    const child = spawn("/bin/bash", ["-c", text], { env, cwd, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.pgid = child.pid;
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    let closed = false;
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.on("error", reject);
      // "close": the process exited AND every holder of its pipes closed them (Go's cmd.Wait without WaitDelay).
      child.on("close", (code, signal) => {
        closed = true;
        resolve({ code, signal });
      });
    });
    const when = this.interrupt.when ?? (async () => true);
    while (!closed && !(await when(groupMembers(child.pid!)).catch(() => false))) await sleep(50);

    this.cancelled = true;
    this.printed.push(CANCEL_MESSAGE[first], "Note that terminating immediately may lead to orphaned resources and other inconsistencies.");
    // go-provider's cancel middleware cancels the request's context; exec.CommandContext kills the process it started.
    if (!closed && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await sleep(100);
    this.afterFirstSignal = groupMembers(child.pid!);

    if (second) {
      await Promise.race([ended, sleep(this.interrupt.gapMs ?? 500)]);
      if (!closed) {
        this.terminated = true;
        this.printed.push(`${second === "SIGINT" ? "^C" : "SIGTERM"} received; terminating`);
        // The plugin host's kill: SIGINT to the plugin's process group; the provider exits on it, so its
        // pipes lose their reader and the group is not killed.
        try {
          process.kill(-child.pid!, "SIGINT");
        } catch {
          // nothing left in the group
        }
        child.stdout.destroy();
        child.stderr.destroy();
        throw new Terminated(`terminated while ${text} ran`);
      }
    }
    const { code, signal } = await ended;
    if (signal) throw new Error(`signal: ${signal === "SIGKILL" ? "killed" : signal}: running ${JSON.stringify(text)}:\n${stdout}${stderr}`);
    if (code !== 0) throw new Error(`exit ${code}\n${stdout}${stderr}`);
    return { stdout, stderr };
  }
}
