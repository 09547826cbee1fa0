/**
 * Load on the stand-in stack: DLMS-like UDP pushes at a target rate, and RabbitMQ's queue depth
 * sampled while they flow. Both loops are bounded (a message count, a sample count) and stop by
 * themselves, so a failing test never leaves one running.
 */
import { spawn } from "child_process";
import * as dgram from "dgram";
import { exec, sleep } from "./exec";

/** Only loopback: a load test must never spray datagrams at another machine. */
const LOOPBACK = new Set(["127.0.0.1", "::1"]);

export interface LoadPlan {
  /** Meter ids are `${meterPrefix}${n}`, n from 0: unique, so every loss and duplicate shows. */
  meterPrefix: string;
  ratePerSecond: number;
  /** The loop ends after `ratePerSecond * maxSeconds` messages unless stopped earlier. */
  maxSeconds: number;
  port: number;
  host?: string;
}

export interface LoadRecord {
  meterPrefix: string;
  targetRate: number;
  /** Epoch ms of the first and last send. */
  startedAt: number;
  endedAt: number;
  sent: number;
  /** When each message n left (epoch ms): the record of what was sent and when. */
  sentAt: number[];
  /** sent / (time from the first send to the due time of the next one): the rate held. */
  achievedRate: number;
  /** Messages per whole second since the start (the last, partial second left out). */
  perSecond: number[];
  /** The longest a message left after its due time (the generator's own stalls). */
  maxLagMs: number;
  sendErrors: number;
}

/** The payload `sendUdp` sends: the shape the stand-in UDP server wraps and the processor decodes. */
export function meterPayload(meter: string, value: number, at = new Date()): Buffer {
  return Buffer.from(JSON.stringify({ meter, value, timestamp: at.toISOString() }));
}

/**
 * Sends message n at `start + n / rate`. The loop wakes every few milliseconds and sends whatever
 * is due, so a stall of the event loop is caught up at once and the overall rate holds; the lag
 * it caused is recorded. Ends after the plan's message count, or at `stop()`.
 */
export function startLoad(plan: LoadPlan): { stop: () => Promise<LoadRecord>; done: Promise<LoadRecord> } {
  const host = plan.host ?? "127.0.0.1";
  if (!LOOPBACK.has(host))
    throw new Error(`load generator: host ${host} is not loopback; only 127.0.0.1 or ::1 are allowed`);
  if (!(plan.ratePerSecond > 0) || !(plan.maxSeconds > 0))
    throw new Error("load generator: ratePerSecond and maxSeconds must be positive");
  const limit = Math.round(plan.ratePerSecond * plan.maxSeconds);
  const interval = 1000 / plan.ratePerSecond;
  const socket = dgram.createSocket(host === "::1" ? "udp6" : "udp4");
  const sentAt: number[] = [];
  let stopped = false;
  let maxLag = 0;
  let sendErrors = 0;
  const start = Date.now();

  const send = (n: number) =>
    new Promise<void>((resolve) => {
      socket.send(meterPayload(`${plan.meterPrefix}${n}`, n + 0.5), plan.port, host, (error) => {
        if (error) sendErrors++;
        resolve();
      });
    });

  const done = (async (): Promise<LoadRecord> => {
    try {
      while (!stopped && sentAt.length < limit) {
        const now = Date.now();
        while (sentAt.length < limit && start + sentAt.length * interval <= now) {
          const n = sentAt.length;
          maxLag = Math.max(maxLag, Date.now() - (start + n * interval));
          await send(n);
          sentAt.push(Date.now());
        }
        await sleep(Math.max(1, Math.min(20, start + sentAt.length * interval - Date.now())));
      }
    } finally {
      socket.close();
    }
    return summarise(plan, start, interval, sentAt, maxLag, sendErrors);
  })();

  return {
    done,
    stop: async () => {
      stopped = true;
      return done;
    },
  };
}

function summarise(
  plan: LoadPlan,
  start: number,
  interval: number,
  sentAt: number[],
  maxLagMs: number,
  sendErrors: number,
): LoadRecord {
  const sent = sentAt.length;
  const endedAt = sent ? sentAt[sent - 1] : start;
  const perSecond: number[] = new Array(Math.floor((endedAt - start) / 1000)).fill(0);
  for (const at of sentAt) {
    const second = Math.floor((at - start) / 1000);
    if (second < perSecond.length) perSecond[second]++;
  }
  // Measured up to where the next message would have been due, so n messages over n intervals.
  const spanMs = Math.max(endedAt, start + sent * interval) - start;
  return {
    meterPrefix: plan.meterPrefix,
    targetRate: plan.ratePerSecond,
    startedAt: start,
    endedAt,
    sent,
    sentAt,
    achievedRate: spanMs > 0 ? (sent * 1000) / spanMs : 0,
    perSecond,
    maxLagMs,
    sendErrors,
  };
}

export interface QueueDepth {
  messages: number;
  ready: number;
  unacked: number;
}

export interface QueueSample {
  /** Epoch ms when the answer came. */
  at: number;
  queues: Record<string, QueueDepth>;
}

/** Parses `rabbitmqctl -q list_queues --no-table-headers name messages messages_ready messages_unacknowledged`. */
export function parseListQueues(text: string): Record<string, QueueDepth> {
  const queues: Record<string, QueueDepth> = {};
  for (const line of text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)) {
    const fields = line.split(/\s+/);
    if (fields.length !== 4 || !fields.slice(1).every((f) => /^\d+$/.test(f)))
      throw new Error(`rabbitmqctl list_queues: unexpected line '${line}'`);
    const [name, messages, ready, unacked] = fields;
    queues[name] = { messages: Number(messages), ready: Number(ready), unacked: Number(unacked) };
  }
  return queues;
}

/** One reading of every queue's depth, from inside the RabbitMQ container (the image has no management API). */
export async function queueDepths(container: string): Promise<Record<string, QueueDepth>> {
  const result = await exec(
    "docker",
    [
      "exec",
      container,
      "rabbitmqctl",
      "-q",
      "list_queues",
      "--no-table-headers",
      "name",
      "messages",
      "messages_ready",
      "messages_unacknowledged",
    ],
    { timeoutMs: 20_000 },
  );
  if (result.code !== 0)
    throw new Error(`rabbitmqctl list_queues in ${container} failed (${result.code}): ${result.stderr.trim()}`);
  return parseListQueues(result.stdout);
}

/**
 * The Erlang loop the sampler runs on the RabbitMQ node: every `intervalMs`, the figures
 * `rabbitmqctl list_queues` shows (the same queue info items: that command streams them with
 * `rabbit_amqqueue:emit_info_all`, this loop takes them with `info_all`), one line
 * per queue (`messages ready unacked name`, the name last as it may hold spaces), then
 * `-- <epoch ms>`. It ends by itself after `maxSamples`, or when `stopFile` exists.
 */
export function samplerExpression(intervalMs: number, maxSamples: number, stopFile: string): string {
  return `Items = [name, messages, messages_ready, messages_unacknowledged],
Sample = fun() ->
  [io:format("~p ~p ~p ~s~n", [proplists:get_value(messages, I), proplists:get_value(messages_ready, I),
     proplists:get_value(messages_unacknowledged, I), element(4, proplists:get_value(name, I))])
   || I <- rabbit_amqqueue:info_all(<<"/">>, Items)],
  io:format("-- ~b~n", [erlang:system_time(millisecond)])
end,
Loop = fun L(0) -> ok;
           L(N) -> case filelib:is_file("${stopFile}") of
                     true -> ok;
                     false -> T0 = erlang:monotonic_time(millisecond), Sample(),
                              timer:sleep(max(0, ${intervalMs} - (erlang:monotonic_time(millisecond) - T0))), L(N - 1)
                   end
       end,
Loop(${maxSamples}).`;
}

/** Turns the sampler's output lines into samples; a queue whose figures are not numbers (a queue being recovered) is left out of that sample. */
export function parseSamplerOutput(lines: string[]): QueueSample[] {
  const samples: QueueSample[] = [];
  let queues: Record<string, QueueDepth> = {};
  for (const line of lines) {
    const end = /^-- (\d+)$/.exec(line);
    if (end) {
      samples.push({ at: Number(end[1]), queues });
      queues = {};
      continue;
    }
    const depth = /^(\d+) (\d+) (\d+) (.+)$/.exec(line);
    if (depth) queues[depth[4]] = { messages: Number(depth[1]), ready: Number(depth[2]), unacked: Number(depth[3]) };
  }
  return samples;
}

/**
 * Samples every queue's depth every `intervalMs`, at most `maxSamples` times, from ONE
 * `rabbitmqctl eval` loop streaming its lines. Not one `rabbitmqctl list_queues` per sample:
 * each starts an Erlang VM (about 1 s and a third of a core here), which on two shared cores
 * would slow down the very services whose queues are measured.
 */
export function sampleQueues(
  container: string,
  intervalMs: number,
  maxSamples: number,
): {
  stop: () => Promise<{ samples: QueueSample[]; exitCode: number; stderr: string }>;
  latest: () => QueueSample | undefined;
} {
  const stopFile = `/tmp/queue-sampler-${process.pid}-${Date.now()}.stop`;
  const child = spawn(
    "docker",
    ["exec", container, "rabbitmqctl", "eval", samplerExpression(intervalMs, maxSamples, stopFile)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const samples: QueueSample[] = [];
  let pending = "";
  let partial: string[] = [];
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      partial.push(line);
      if (line.startsWith("-- ")) {
        samples.push(...parseSamplerOutput(partial));
        partial = [];
      }
    }
  });
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  let stopping: Promise<{ samples: QueueSample[]; exitCode: number; stderr: string }> | undefined;
  const stop = async () => {
    // The loop runs on the RabbitMQ node, not in the docker client: it stops at the file.
    await exec("docker", ["exec", container, "touch", stopFile]);
    const exitCode = await Promise.race([exited, sleep(intervalMs + 15_000).then(() => -1)]);
    if (exitCode === -1) child.kill("SIGKILL");
    await exec("docker", ["exec", container, "rm", "-f", stopFile]);
    return { samples, exitCode, stderr };
  };
  return { latest: () => samples[samples.length - 1], stop: () => (stopping ??= stop()) };
}

/** The deepest each queue got over the samples, with when. */
export function peakDepths(samples: QueueSample[]): Record<string, { messages: number; at: number }> {
  const peaks: Record<string, { messages: number; at: number }> = {};
  for (const sample of samples) {
    for (const [name, depth] of Object.entries(sample.queues)) {
      if (!peaks[name] || depth.messages > peaks[name].messages)
        peaks[name] = { messages: depth.messages, at: sample.at };
    }
  }
  return peaks;
}

/**
 * The DLMS UDP server's in-memory backlog: datagrams received but not yet confirmed by RabbitMQ,
 * which no queue depth shows. The stand-in logs it after every publish (`published a DLMS
 * message (N buffered)`); read from `docker logs --timestamps` once the run is over.
 */
export async function udpServerBacklog(
  container: string,
): Promise<{ peak: number; peakAt: number; emptiedAt: number | undefined; lines: number }> {
  const result = await exec("docker", ["logs", "--timestamps", container], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`docker logs ${container} failed (${result.code}): ${result.stderr.trim()}`);
  let peak = 0;
  let peakAt = 0;
  let emptiedAt: number | undefined;
  let lines = 0;
  for (const line of (result.stdout + result.stderr).split("\n")) {
    const match = /^(\S+) .*published a DLMS message \((\d+) buffered\)/.exec(line);
    if (!match) continue;
    lines++;
    const at = Date.parse(match[1]);
    const buffered = Number(match[2]);
    if (buffered > peak) {
      peak = buffered;
      peakAt = at;
      emptiedAt = undefined;
    } else if (buffered === 0 && emptiedAt === undefined && peak > 0) {
      emptiedAt = at;
    }
  }
  return { peak, peakAt, emptiedAt, lines };
}

/** The kernel's UDP counters (`/proc/net/snmp`) in a container's network namespace. */
export async function udpCounters(container: string): Promise<Record<string, number>> {
  const result = await exec("docker", ["exec", container, "cat", "/proc/net/snmp"]);
  if (result.code !== 0)
    throw new Error(`reading /proc/net/snmp in ${container} failed (${result.code}): ${result.stderr.trim()}`);
  const [names, values] = result.stdout
    .split("\n")
    .filter((line) => line.startsWith("Udp: "))
    .map((line) => line.split(/\s+/).slice(1));
  if (!names || !values || names.length !== values.length)
    throw new Error(`no Udp counters in /proc/net/snmp of ${container}`);
  return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]));
}
