/**
 * Docker's own record of a test's containers: `docker events` for the containers of one stack
 * (by its io.utilitarian.stack label), each with its arrival in milliseconds. The tests read
 * order from it beside the engine's event log: a container's die and start, a `docker exec` of
 * manage.py.
 */
import { spawn, type ChildProcess } from "child_process";

/** Records the Docker engine's container events (start, die, exec) while a run goes on. */
export class EventLog {
  private child?: ChildProcess;
  private buffer = "";
  readonly events: { time: number; action: string; name: string; service?: string }[] = [];

  async start(prefix: string): Promise<void> {
    this.child = spawn("docker", [
      "events",
      "--filter",
      "type=container",
      "--filter",
      `label=io.utilitarian.stack=${prefix}`,
      "--format",
      "{{json .}}",
    ]);
    this.child.stdout!.on("data", (d) => {
      this.buffer += d;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        try {
          const e = JSON.parse(line);
          this.events.push({
            time: Math.floor(e.timeNano / 1e6),
            action: e.Action ?? e.status,
            name: e.Actor?.Attributes?.name,
            service: e.Actor?.Attributes?.["io.utilitarian.service"],
          });
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
