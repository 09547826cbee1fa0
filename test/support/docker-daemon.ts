/**
 * Restarting the local Docker daemon, as an operator's `systemctl restart docker` (or a package
 * upgrade) would, for the fault test that restarts it in the middle of an upgrade.
 *
 * The daemon is stopped with SIGTERM and started again with the same command line and output.
 * Two daemon settings decide what a restart does to a running deployment, and the test needs both
 * (test/fixtures/docker-engine.sh, run by test/run-all.sh, starts dockerd with them):
 * - `--live-restore`: containers keep running while the daemon is down. Without it, stopping the
 *   daemon stops every container, the UDP server's too, and readings sent meanwhile are lost.
 * - `--userland-proxy=false`: published ports are served by iptables alone. The userland proxy
 *   (`docker-proxy`, which carries traffic to 127.0.0.1) dies with the daemon even under
 *   live-restore, so the test's readings, sent to 127.0.0.1, would be lost while it is down.
 *   Meters on the network reach the container through iptables either way; measured here, 800
 *   UDP messages from one socket across a restart: 200 lost through the proxy, none without it.
 * Even so, a starting daemon flushes its NAT chain before it restores the port mappings of the
 * containers that ran on: datagrams of new flows (other meters) that arrive in that moment are
 * not forwarded (`npm run bench:daemon-restart`: 116 to 143 of 5,000 sent at 500/s, each from a
 * new socket). So the fault stack's UDP server runs in the host's network (`udpServer.network:
 * host`), where no NAT sits in front of its socket; its AMQP connection to RabbitMQ's published
 * loopback port is what still needs the flags.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { exec, sleep, waitFor } from "./exec";
import { SWARM_RUN_DIR } from "./swarm";

export interface DockerDaemon {
  pid: number;
  argv: string[];
  /** Where the daemon's stdout and stderr go (a file), or undefined. */
  logFile?: string;
}

/** A process's command line, or undefined once it is gone. */
function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

/**
 * The running dockerd: exactly one process of that name, whose command line this process can read.
 * The daemons of a test swarm (test/fixtures/swarm.sh: their exec-root and socket are below
 * SWARM_RUN_DIR) are not it, and one left running by a killed test must not hide it.
 */
export async function dockerDaemon(): Promise<DockerDaemon> {
  const found = await exec("pgrep", ["-x", "dockerd"]);
  const daemons: { pid: number; argv: string[] }[] = [];
  for (const pid of found.stdout.split("\n").filter(Boolean).map(Number)) {
    const argv = commandLine(pid);
    if (argv && !argv.some((arg) => arg.includes(SWARM_RUN_DIR))) daemons.push({ pid, argv });
  }
  if (daemons.length !== 1) {
    throw new Error(
      `expected one local dockerd process (test swarms' daemons aside), found ${daemons.length}; this test restarts the daemon and needs it on this machine (test/fixtures/docker-engine.sh starts one)`,
    );
  }
  const { pid, argv } = daemons[0];
  let logFile: string | undefined;
  try {
    const target = readlinkSync(`/proc/${pid}/fd/1`);
    if (target.startsWith("/") && existsSync(target)) logFile = target;
  } catch {
    logFile = undefined;
  }
  return { pid, argv, logFile };
}

/** Why a restart of this daemon would lose the test's readings, or undefined when it would not. */
export async function restartWouldLoseReadings(daemon: DockerDaemon): Promise<string | undefined> {
  const liveRestore = (await exec("docker", ["info", "--format", "{{.LiveRestoreEnabled}}"])).stdout.trim();
  const config = existsSync("/etc/docker/daemon.json") ? readFileSync("/etc/docker/daemon.json", "utf8") : "";
  const noProxy = daemon.argv.includes("--userland-proxy=false") || /"userland-proxy"\s*:\s*false/.test(config);
  const missing = [
    ...(liveRestore === "true" ? [] : ["--live-restore"]),
    ...(noProxy ? [] : ["--userland-proxy=false"]),
  ];
  if (missing.length === 0) return undefined;
  return (
    `the Docker daemon runs without ${missing.join(" and ")}: a restart would stop the containers or the proxy that carries ` +
    `the UDP server's connection to RabbitMQ (see test/support/docker-daemon.ts). Start dockerd with --live-restore --userland-proxy=false (test/fixtures/docker-engine.sh, run by npm test, does so when it can).`
  );
}

export interface DaemonRestart {
  /** When SIGTERM was sent and when the restarted daemon first answered (ms since the epoch). */
  stoppedAt: number;
  answeredAt: number;
  downMs: number;
  /** How long the daemon took to exit after SIGTERM. */
  stopMs: number;
}

/** Stops the daemon (SIGTERM) and starts it again as it was; resolves once it answers. */
export async function restartDockerDaemon(daemon: DockerDaemon): Promise<DaemonRestart> {
  const started = Date.now();
  process.kill(daemon.pid, "SIGTERM");
  const gone = await waitFor(async () => !existsSync(`/proc/${daemon.pid}`), 60_000, 100);
  if (!gone) throw new Error(`dockerd (pid ${daemon.pid}) did not stop within 60 s of SIGTERM`);
  const stopMs = Date.now() - started;
  const out = daemon.logFile ? openSync(daemon.logFile, "a") : "ignore";
  const child = spawn(daemon.argv[0], daemon.argv.slice(1), { detached: true, stdio: ["ignore", out, out] });
  child.unref();
  if (typeof out === "number") closeSync(out);
  const answers = await waitFor(
    async () => (await exec("docker", ["version", "--format", "{{.Server.Version}}"])).code === 0,
    60_000,
    200,
  );
  if (!answers)
    throw new Error(
      `dockerd did not answer within 60 s of its restart${daemon.logFile ? `; see ${daemon.logFile}` : ""}`,
    );
  const answeredAt = Date.now();
  // Let the daemon restore its containers' state before anything asks it about them.
  await sleep(1000);
  return { stoppedAt: started, answeredAt, downMs: answeredAt - started, stopMs };
}
