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
 * - Server: the postmaster's own CPU, its live children's, and that of the backends it has
 *   reaped (/proc/<pid>/stat; the postmaster reaps each backend as soon as it exits). The server
 *   was started before this process joined its group, so none of it is counted twice.
 * The kernel's own threads (the page cache's writeback) are counted on neither side.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux architecture node runs on). */
const TICKS_PER_SECOND = 100;

interface Times {
  own: number;
  children: number;
  parent: number;
}

/** utime+stime, cutime+cstime and the parent's pid of one process; undefined when it is gone. */
function times(pid: number): Times | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const n = (field: number) => Number(fields[field - 3]);
  return { own: n(14) + n(15), children: n(16) + n(17), parent: n(4) };
}

/** The server's CPU seconds so far: the postmaster's own and reaped children's, and its live children's. */
function serverSeconds(postmaster: number): number {
  const main = times(postmaster);
  if (!main) throw new Error(`the PostgreSQL server (postmaster ${postmaster}) is not running`);
  let ticks = main.own + main.children;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const child = times(Number(entry));
    if (child?.parent === postmaster) ticks += child.own + child.children;
  }
  return ticks / TICKS_PER_SECOND;
}

/** A control group of this process's own, for the CPU of everything it starts. */
interface Group {
  seconds(): number;
  /** Moves this process back to where it was and removes the group. */
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

/** Joins a new group in the first hierarchy that allows it; the reasons when none does. */
function joinGroup(): Group {
  const reasons: string[] = [];
  for (const { root, usage, seconds } of HIERARCHIES) {
    if (
      !existsSync(join(root, "cgroup.procs")) ||
      !existsSync(join(root, usage === "cpu.stat" ? "cgroup.controllers" : usage))
    ) {
      reasons.push(`${root}: not a hierarchy that counts CPU`);
      continue;
    }
    const dir = join(root, `utilitarian-bench-backup-${process.pid}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "cgroup.procs"), String(process.pid));
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
        writeFileSync(join(root, "cgroup.procs"), String(process.pid));
        rmdirSync(dir);
      },
    };
  }
  throw new Error(
    `cannot count the programs' CPU: no control group could be joined (${reasons.join("; ")}); ` +
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

/** A meter for the programs this process starts from now on and for the cluster in `dataDir`. */
export function cpuMeter(dataDir: string): CpuMeter {
  // The postmaster's pid is the first line of postmaster.pid in the data directory.
  const postmaster = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  if (!Number.isInteger(postmaster) || postmaster <= 0) throw new Error(`no postmaster pid in ${dataDir}`);
  const group = joinGroup();
  return {
    start() {
      const client0 = group.seconds();
      const server0 = serverSeconds(postmaster);
      return () => ({ client: group.seconds() - client0, server: serverSeconds(postmaster) - server0 });
    },
    stop: () => group.leave(),
  };
}
