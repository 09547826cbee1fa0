import { spawn } from "child_process";
import { factsOf } from "../support/provider-facts";
import { unsupported, type Context, type Props, type ResourceType } from "./types";

/**
 * command:local:Command as pulumi-command v1.2.1 runs it (provider/pkg/provider/local/commandOutputs.go):
 * `interpreter + [text]` in the plugin's working directory (the program's), with the provider's
 * environment, the declared one over it, and on an update the last stdout and stderr in
 * PULUMI_COMMAND_STDOUT/STDERR; each line of output logged to the engine as it comes; stdout and
 * stderr recorded as outputs. A non-zero exit fails the step. Cancel (the engine's first ^C) kills
 * the process it started with SIGKILL and waits until every process that inherited its pipes
 * has closed them (Go's cmd.Wait reads to EOF): test/support/interrupt.ts has the sources.
 */
export function commandResources(ctx: Context): Record<string, ResourceType> {
  async function run(urn: string, text: string, c: Props, previous: Props | undefined, signal: AbortSignal): Promise<Props> {
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
    child.stdout.on("data", lines((s) => (stdout += s)));
    child.stderr.on("data", lines((s) => (stderr += s)));
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
      check: (inputs) => unsupported(inputs, ["create", "update", "delete", "interpreter", "environment", "triggers", "addPreviousOutputInEnv", "dir"]),
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
