/**
 * Run one of the step scripts in `scripts/` the way the Pulumi program does: a real bash
 * process, every input in the environment. Never throws on a non-zero exit.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
// The same directory the component runs its steps from.
import { SCRIPTS_DIR } from "../../components/steps";

export { SCRIPTS_DIR };

export interface ScriptResult {
  /** Exit status; 128 + signal number if the script was killed by a signal. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kill the script (SIGKILL) after this many milliseconds. Defaults to 120000. */
  timeoutMs?: number;
  /** Arguments (the wrapper scripts take the step script they run). */
  args?: string[];
  /** Called with the child once it runs (to signal it, for instance). */
  started?: (child: import("node:child_process").ChildProcess) => void;
}

/**
 * Run `scripts/<name>` with `env` merged over a minimal base (PATH, HOME). Entries whose value
 * is `undefined` are left out, so a test can drop a variable.
 */
export function runScript(
  name: string,
  env: Record<string, string | undefined>,
  options: RunOptions = {},
): Promise<ScriptResult> {
  const merged: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
  };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(join(SCRIPTS_DIR, name), options.args ?? [], {
      env: merged,
      stdio: ["ignore", "pipe", "pipe"],
    });
    options.started?.(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error); // the script could not be started at all (missing, not executable)
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const signalCodes: Record<string, number> = { SIGKILL: 137, SIGTERM: 143, SIGINT: 130 };
      resolvePromise({ code: code ?? (signal ? (signalCodes[signal] ?? 128) : 1), stdout, stderr });
    });
  });
}

/** The last non-empty line of `text` (e.g. a script's one-line failure reason on stderr). */
export function lastLine(text: string): string {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  return lines[lines.length - 1] ?? "";
}
