import { spawn } from "child_process";
import { factsOf } from "../support/provider-facts";
import { unsupported, type Context, type Props, type ResourceType } from "./types";

/**
 * command:local:Command as pulumi-command v1.2.1 runs it (provider/pkg/provider/local/commandOutputs.go):
 * `interpreter + [text]` in the plugin's working directory (the program's), with the provider's
 * environment, the declared one over it, and on an update the last stdout and stderr in
 * PULUMI_COMMAND_STDOUT/STDERR; each line of output logged to the engine as it comes; stdout and
 * stderr recorded as outputs. A non-zero exit fails the step.
 *
 * Cancel, as pulumi-command v1.2.1 on pulumi-go-provider v1.3.0 does it (line numbers of those
 * tags): the engine's first ^C sends every provider the Cancel RPC (pulumi/pulumi v3.250.0
 * pkg/resource/deploy/deployment_executor.go:142, pkg/host/host.go:608). The command provider is
 * an `infer` provider, which go-provider wraps in middleware/cancel (infer/provider.go:177):
 * Cancel cancels the context of every request in flight (middleware/cancel/cancel.go:57).
 * pulumi-command runs the step with `exec.CommandContext(ctx, interpreter..., command)`
 * (provider/pkg/provider/local/commandOutputs.go:59) and no `Cancel` of its own, so Go kills the
 * process it started with SIGKILL; nothing else is signalled. Its stdout and stderr are
 * io.Writers, read through pipes, and with no WaitDelay `cmd.Wait` reads to EOF: the provider
 * answers only once every process that inherited them has ended, then the step fails. What the
 * script had started (a `docker exec`'s process in the container) goes on. test/engine/faults
 * shows the engine's side of it on the real CLI.
 */
export function commandResources(ctx: Context): Record<string, ResourceType> {
  async function run(
    urn: string,
    text: string,
    c: Props,
    previous: Props | undefined,
    signal: AbortSignal,
  ): Promise<Props> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...(c.environment ?? {}) };
    if (previous && c.addPreviousOutputInEnv !== false) {
      env.PULUMI_COMMAND_STDOUT = previous.stdout ?? "";
      env.PULUMI_COMMAND_STDERR = previous.stderr ?? "";
    }
    const [file, ...args] = (c.interpreter as string[] | undefined) ?? ["/bin/sh", "-c"];
    const child = spawn(file, [...args, text], { env, cwd: c.dir ?? process.cwd(), stdio: ["ignore", "pipe", "pipe"] });
    const kill = () => child.kill("SIGKILL");
    signal.addEventListener("abort", kill);
    let stdout = "";
    let stderr = "";
    const logs: Promise<void>[] = [];
    const lines = (onText: (s: string) => void) => {
      let partial = "";
      return (d: Buffer) => {
        onText(d.toString());
        partial += d.toString();
        const parts = partial.split("\n");
        partial = parts.pop()!;
        for (const line of parts) logs.push(ctx.log(urn, line));
      };
    };
    child.stdout.on(
      "data",
      lines((s) => (stdout += s)),
    );
    child.stderr.on(
      "data",
      lines((s) => (stderr += s)),
    );
    const [code, killedBy] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (exitCode, sig) => resolve([exitCode, sig]));
    });
    signal.removeEventListener("abort", kill);
    await Promise.all(logs);
    if (killedBy) throw new Error(`signal: killed: running ${JSON.stringify(text)}:\n${stdout}${stderr}`);
    if (code !== 0) throw new Error(`exit status ${code}: running ${JSON.stringify(text)}:\n${stdout}${stderr}`);
    return { stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") };
  }

  return {
    "command:local:Command": {
      facts: factsOf("command:local:Command"),
      check: (inputs) =>
        unsupported(inputs, [
          "create",
          "update",
          "delete",
          "interpreter",
          "environment",
          "triggers",
          "addPreviousOutputInEnv",
          "dir",
        ]),
      async create(urn, c, signal) {
        const outs = c.create ? await run(urn, c.create, c, undefined, signal) : { stdout: "", stderr: "" };
        return { id: `${urn.split("::").pop()}${Math.random().toString(36).slice(2, 10)}`, outs };
      },
      async update(urn, _id, olds, news, signal) {
        const text = news.update ?? news.create;
        return text ? run(urn, text, news, olds, signal) : { stdout: olds.stdout ?? "", stderr: olds.stderr ?? "" };
      },
      async delete(urn, _id, props, signal) {
        if (props.delete) await run(urn, props.delete, props, props, signal);
      },
    },
  };
}
