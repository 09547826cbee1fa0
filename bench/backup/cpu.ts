/**
 * CPU seconds a candidate costs, on both sides: the programs it runs and the PostgreSQL server.
 * Wall time on a shared two-core machine says how long a step took; CPU seconds say what it
 * needs, whatever else ran, and so whether a candidate can be as fast as the plain dump at all:
 * on N cores nothing finishes sooner than its CPU seconds / N.
 *
 * - Programs: this process moves itself into a control group of its own once the server runs,
 *   and every program it starts from then on is in that group with all its descendants. A
 *   group counts them all, also those nobody waits for (bash does not reap a process
 *   substitution, such as backup.sh's read-back, before it exits: the rusage of reaped children
 *   would miss it). cgroup v2's cpu.stat where it is mounted, else v1's cpuacct.
 * - Server: the postmaster moves into a group of its own, and every backend it forks from then on
 *   (each connection's, parallel workers) is counted there, also after it has exited. The server
 *   was started before this process joined its group, so none of it is counted twice. (Reading
 *   the postmaster's reaped children from /proc raced with a backend's exit: a dump's backend
 *   was now and then counted in neither window.)
 * The kernel's own threads (the page cache's writeback) are counted on neither side.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A control group of one process's own, for its CPU and that of everything it starts. */
interface Group {
  seconds(): number;
  /** Moves the process back to the hierarchy's root and removes the group. */
  leave(): void;
}

/** Each hierarchy that can count CPU: its root, and how a group's usage in seconds is read. */
const HIERARCHIES = [
  { root: "/sys/fs/cgroup", usage: "cpu.stat", seconds: usecFromCpuStat }, // cgroup v2 only
  { root: "/sys/fs/cgroup/unified", usage: "cpu.stat", seconds: usecFromCpuStat }, // v2 beside v1
  { root: "/sys/fs/cgroup/cpuacct", usage: "cpuacct.usage", seconds: (text: string) => Number(text) / 1e9 }, // v1
];

function usecFromCpuStat(text: string): number {
  const usec = /^usage_usec (\d+)$/m.exec(text);
  if (!usec) throw new Error("cpu.stat has no usage_usec line");
  return Number(usec[1]) / 1e6;
}

/** Moves `pid` into a new group `name` in the first hierarchy that allows it; the reasons when none does. */
function groupOf(pid: number, name: string): Group {
  const reasons: string[] = [];
  for (const { root, usage, seconds } of HIERARCHIES) {
    if (
      !existsSync(join(root, "cgroup.procs")) ||
      !existsSync(join(root, usage === "cpu.stat" ? "cgroup.controllers" : usage))
    ) {
      reasons.push(`${root}: not a hierarchy that counts CPU`);
      continue;
    }
    const dir = join(root, `utilitarian-bench-backup-${process.pid}-${name}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "cgroup.procs"), String(pid));
    } catch (error) {
      reasons.push(`${root}: ${error instanceof Error ? error.message : String(error)}`);
      try {
        rmdirSync(dir);
      } catch {
        // it was not created
      }
      continue;
    }
    return {
      seconds: () => seconds(readFileSync(join(dir, usage), "utf8")),
      leave() {
        // Whatever is still in the group (the server's last processes, when it was not stopped) goes back to the root.
        for (const member of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
          try {
            writeFileSync(join(root, "cgroup.procs"), member);
          } catch {
            // it has exited meanwhile
          }
        }
        rmdirSync(dir);
      },
    };
  }
  throw new Error(
    `cannot count CPU: no control group could be made for the ${name} (${reasons.join("; ")}); ` +
      "run the benchmark as root on Linux with cgroups mounted under /sys/fs/cgroup",
  );
}

export interface CpuSeconds {
  client: number;
  server: number;
}

export interface CpuMeter {
  /** Starts a measurement: the returned function gives the CPU seconds since. */
  start(): () => CpuSeconds;
  /** Leaves the control group (call once, at the end). */
  stop(): void;
}

/**
 * A meter for the cluster in `dataDir` and for the programs this process starts from now on. The
 * server's group holds the postmaster and the backends it forks from now on (a connection's
 * backend, parallel workers, autovacuum workers); its background processes started before
 * (checkpointer, WAL writer) stay outside.
 */
export function cpuMeter(dataDir: string): CpuMeter {
  // The postmaster's pid is the first line of postmaster.pid in the data directory.
  const postmaster = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  if (!Number.isInteger(postmaster) || postmaster <= 0) throw new Error(`no postmaster pid in ${dataDir}`);
  const server = groupOf(postmaster, "server");
  const client = groupOf(process.pid, "programs");
  return {
    start() {
      const client0 = client.seconds();
      const server0 = server.seconds();
      return () => ({ client: client.seconds() - client0, server: server.seconds() - server0 });
    },
    stop() {
      client.leave();
      server.leave();
    },
  };
}
