import { spawn, type ChildProcess } from "child_process";
import * as grpc from "@grpc/grpc-js";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import type { Launch } from "./languageHost";

/**
 * The SDK's real dynamic provider host (`@pulumi/pulumi/cmd/dynamic-provider`), started as the
 * engine starts the `pulumi-resource-pulumi-nodejs` plugin and called over gRPC with the SDK's
 * generated ResourceProvider client. Its stderr is kept: the engine shows a plugin's stderr.
 */
export class DynamicProviderHost {
  stderr = "";
  private client?: provrpc.ResourceProviderClient;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once("close", () => resolve()));
    child.stderr!.on("data", (d) => (this.stderr += d));
  }

  /** plugin.go: the plugin prints its port on the first line of stdout; the engine dials 127.0.0.1:<port>. */
  static async start(launch: Launch, timeoutMs = 30_000): Promise<DynamicProviderHost> {
    const child = spawn(launch.command, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const host = new DynamicProviderHost(child);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let stdout = "";
        const timer = setTimeout(
          () =>
            reject(
              new Error(`the dynamic provider host printed no port within ${timeoutMs} ms; stderr: ${host.stderr}`),
            ),
          timeoutMs,
        );
        child.stdout!.on("data", (d) => {
          stdout += d;
          const newline = stdout.indexOf("\n");
          if (newline < 0) return;
          clearTimeout(timer);
          const port = Number.parseInt(stdout.slice(0, newline).trim(), 10);
          if (Number.isInteger(port) && port > 0) resolve(port);
          else
            reject(
              new Error(
                `the dynamic provider host printed ${JSON.stringify(stdout.slice(0, newline))} instead of its port`,
              ),
            );
        });
        child.once("exit", (code) =>
          reject(
            new Error(`the dynamic provider host exited (${code}) before printing its port; stderr: ${host.stderr}`),
          ),
        );
        child.once("error", reject);
      });
      host.client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      return host;
    } catch (err) {
      await host.stop();
      throw err;
    }
  }

  /** Calls a unary RPC; rejects with the gRPC error (its `code` and `details`). */
  call<Req, Res>(method: string, request: Req): Promise<Res> {
    const client = this.client as unknown as Record<
      string,
      (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => void
    >;
    return new Promise((resolve, reject) =>
      client[method].call(this.client, request, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  /** Stops the host as the engine does at the end of a run (closes the connection, kills the process). */
  async stop(): Promise<void> {
    this.client?.close();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}
