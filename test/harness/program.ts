import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { modelEngine } from "./defaultEngine";
import { defaultParallel, programLaunch, readProject, type Launch } from "./languageHost";
import { TestEngine } from "./testEngine";
import type { ProgramRun, ResourceState, RunOptions } from "./types";

/** pkg/backend/diy/state.go: the DIY (file) backend always names its organization "organization". */
const DIY_ORGANIZATION = "organization";

/**
 * Runs a Pulumi program the way `pulumi preview` (`preview: true`) or `pulumi up` runs it: the
 * SDK's own program entry (`@pulumi/pulumi/cmd/run`) started exactly as pulumi-language-nodejs
 * starts it, against a test engine served over gRPC, with dynamic resources stepped by the SDK's
 * real dynamic provider host and every other custom resource answered by `options.engine`
 * (default: the unit tests' provider model). Never throws for a failing program: the result says
 * what happened (exit code, diagnostics, registrations so far).
 */
export async function runProgram(options: RunOptions): Promise<ProgramRun> {
  const started = Date.now();
  const project = readProject(path.resolve(options.programDir));
  const priorState = options.priorState ?? new Map<string, ResourceState>();
  const engine = new TestEngine({
    project,
    stack: options.stack,
    preview: options.preview,
    config: options.config,
    priorState,
    hook: { register: options.engine?.register ?? modelEngine().register },
    features: options.features,
  });
  const { monitorAddress, engineAddress } = await engine.start();
  // The host creates this directory with two pipes for synchronous invokes; the SDK never opens them.
  const syncDir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-harness-sync-"));
  try {
    const launch = programLaunch({
      project,
      stack: options.stack,
      organization: DIY_ORGANIZATION,
      monitorAddress,
      engineAddress,
      syncDir,
      preview: options.preview,
      parallel: defaultParallel(),
      config: options.config,
      secretKeys: [...(options.secretKeys ?? [])].sort(),
    });
    const exit = await runChild(launch, options.timeoutMs ?? 120_000);
    if (exit.timedOut)
      engine.fail(`test harness: the program did not exit within ${options.timeoutMs ?? 120_000} ms and was killed`);
    await engine.stop();
    const succeeded = exit.code === 0 && !engine.failed && !engine.diagnostics.some((d) => d.severity === "error");
    return {
      registrations: engine.registrations,
      outputs: engine.outputs,
      diagnostics: engine.diagnostics,
      exitCode: exit.code,
      stdout: exit.stdout,
      stderr: exit.stderr,
      dynamicCalls: engine.dynamicCalls,
      state: options.preview ? new Map(priorState) : stateAfterUpdate(priorState, engine.completed, succeeded),
      succeeded,
      wallMs: Date.now() - started,
    };
  } finally {
    fs.rmSync(syncDir, { recursive: true, force: true });
  }
}

/**
 * The snapshot an `up` leaves: every step that finished is written; resources the program no
 * longer declares are deleted at the end of a successful run (the harness does not call their
 * providers' Delete) and kept when the run failed.
 */
function stateAfterUpdate(
  prior: Map<string, ResourceState>,
  completed: Map<string, ResourceState>,
  succeeded: boolean,
): Map<string, ResourceState> {
  const state = new Map(succeeded ? [] : prior);
  for (const [name, resource] of completed) state.set(name, resource);
  return state;
}

interface ChildExit {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** main.go execRuntime: the program's stdout and stderr are the CLI's; here they are kept. */
function runChild(launch: Launch, timeoutMs: number): Promise<ChildExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(launch.command, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, timedOut });
    });
  });
}
