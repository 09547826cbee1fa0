/**
 * Backup and restore benchmark (docs/benchmarks.md, "Backup and restore").
 *
 *   npm run bench:backup -- --readings 20000000 [--rounds 3] [--jobs 2] [--skip fc6,zstd,peaks] [--json out.json]
 *
 * Starts a throwaway PostgreSQL 15 cluster with the server's own durability defaults (as the
 * official image runs it), generates the database deterministically (generate.sql), then, in
 * each round, times every dump candidate and then every restore candidate, one at a time, in an
 * order that changes from round to round (rotated by the round number, reversed every other
 * round). The baseline, the plain `pg_dump -f x.sql` (dumps) or the plain `psql -f x.sql`
 * (restores), runs before the first candidate and again after each one; each candidate's time is
 * divided by the mean of the two baseline runs around it, so that load from other work on the
 * machine mostly cancels out. Each run's CPU seconds are counted too, the programs' and the
 * server's (cpu.ts), and set against all the cores for the baseline's time: above 1, a candidate
 * cannot be as fast as the baseline on this machine whatever it overlaps. Medians over the
 * rounds are reported. An untimed last pass
 * (`peaks`) measures the server disk each of the project's scripts needs at its peak, against
 * the script's own estimate. `--skip` takes candidate keys: fc6 fc1 fd1 zstd backup backup-none
 * backup-full previous pg_restore pg_restore-j restore peaks.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { startPostgres, type PgCluster } from "../../test/support/postgres";
import { cpuMeter, type CpuMeter } from "./cpu";

/** The repository root: the compiled file runs from a cache directory, so look for scripts/backup.sh. */
function repoRoot(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "scripts", "backup.sh")) && existsSync(join(dir, "bench", "backup", "generate.sql")))
      return dir;
  }
  throw new Error(`cannot find the repository (scripts/backup.sh) above ${__dirname}`);
}
const ROOT = repoRoot();
const DB = "utilitarian";

interface Options {
  readings: number;
  meters: number;
  rounds: number;
  jobs: number;
  skip: Set<string>;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const int = (name: string, fallback: number, min: number): number => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}; got '${raw}'`);
    return n;
  };
  for (const arg of argv) {
    if (arg.startsWith("--") && !["--readings", "--meters", "--rounds", "--jobs", "--skip", "--json"].includes(arg)) {
      throw new Error(`unknown option ${arg}; see the header of bench/backup/run.ts`);
    }
  }
  const readings = int("readings", 200_000, 1000);
  const known = [
    "fc6",
    "fc1",
    "fd1",
    "zstd",
    "backup",
    "backup-none",
    "backup-full",
    "previous",
    "pg_restore",
    "pg_restore-j",
    "restore",
    "peaks",
  ];
  const skip = (value("skip") ?? "").split(",").filter((s) => s !== "");
  for (const key of skip) if (!known.includes(key)) throw new Error(`--skip ${key}: not one of ${known.join(", ")}`);
  return {
    readings,
    meters: int("meters", Math.max(100, Math.round(readings / 1000)), 1),
    rounds: int("rounds", 3, 1),
    jobs: int("jobs", 2, 1),
    skip: new Set(skip),
    json: value("json"),
  };
}

interface Run {
  seconds: number;
  stdout: string;
  stderr: string;
}

/** Run a program to completion; throw with its stderr when it fails. */
function run(command: string, args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c.length < 1e6 ? c : ""));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) resolve({ seconds, stdout, stderr });
      else reject(new Error(`${command} ${args.join(" ")} failed (exit ${code}):\n${stderr.slice(-3000)}`));
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

function bytesOf(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, f) => sum + bytesOf(join(path, f)), 0);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** A timed candidate: `command` is what docs/benchmarks.md shows; `go` does it. */
interface Candidate {
  key: string;
  command: string;
  /** Runs it; `output` is the file or directory it wrote (for its size; deleted unless `keep`). */
  go(round: Round): Promise<{ run: Run; output?: string }>;
  keep?: boolean;
}

interface Round {
  dir: string;
  /** Outputs the restores read: the plain SQL dump, the -Z1 archive, the default backup's dump. */
  sql: string;
  custom: string;
  backupFile: string;
}

interface Measurement {
  seconds: number;
  /** CPU seconds of the programs the candidate ran and of the server (bench/backup/cpu.ts). */
  cpuClient: number;
  cpuServer: number;
  ratio: number;
  walBytes: number;
  bytes?: number;
  dumpSeconds?: number;
  verifySeconds?: number;
}

interface Peak {
  command: string;
  peak: number;
  estimate: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), "utilitarian-bench-backup-"));
  let pg: PgCluster | undefined;
  let cpu: CpuMeter | undefined;
  const cleanUp = async () => {
    cpu?.stop();
    await pg?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  };
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.on(signal, () => void cleanUp().then(() => process.exit(code)));
  }
  try {
    const loadStart = loadavg();
    pg = await startPostgres({ durable: true });
    const cluster = pg;
    const env = (db = DB) => cluster.env(db);
    const psql = (sql: string, db = DB) => cluster.psql(sql, db);
    const zstd = await run("bash", ["-c", "command -v zstd"], {}).then(
      () => true,
      () => false,
    );
    const pgVersion = await psql("show server_version", "postgres");

    say(`PostgreSQL ${pgVersion}; generating ${options.readings} readings for ${options.meters} meters`);
    await psql(`create database ${DB}`, "postgres");
    const generated = await run(
      "psql",
      [
        "-X",
        "-q",
        "-v",
        `meters=${options.meters}`,
        "-v",
        `readings=${options.readings}`,
        "-f",
        join(ROOT, "bench/backup/generate.sql"),
      ],
      env(),
    );
    const dbBytes = Number(await psql("select pg_database_size(current_database())"));
    const [tableBytes, indexBytes, largestIndex] = (
      await psql(
        `select sum(pg_table_size(c.oid)) filter (where relkind = 'r'), sum(pg_relation_size(c.oid)) filter (where relkind = 'i'),
              max(pg_relation_size(c.oid)) filter (where relkind = 'i')
         from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'`,
      )
    )
      .split("|")
      .map(Number);
    const db = { pgVersion, dbBytes, tableBytes, indexBytes, largestIndex };
    say(
      `database: ${mb(dbBytes)} (tables ${mb(tableBytes)}, indexes ${mb(indexBytes)}, largest index ${mb(largestIndex)}), generated in ${generated.seconds.toFixed(1)} s`,
    );

    /** backup.sh into a fresh directory (a second backup in the same second would wait for the next one). */
    const backupSh = async (round: Round, extra: Record<string, string> = {}) => {
      const dir = mkdtempSync(join(round.dir, "backups-"));
      const result = await run(join(ROOT, "scripts/backup.sh"), [], {
        ...env(),
        BACKUP_DIR: dir,
        BACKUP_FROM_VERSION: "1.0.0",
        BACKUP_TO_VERSION: "1.1.0",
        ...extra,
      });
      return { run: result, output: dir };
    };
    const restoreSh = (file: string, db: string) =>
      run(join(ROOT, "scripts/restore.sh"), [], {
        ...env(db),
        RESTORE_FILE: file,
        RESTORE_DB_OWNER: cluster.user,
        RESTORE_JOBS: J,
      });
    const dumpIn = (dir: string) => join(dir, readdirSync(dir).find((f) => f.endsWith(".dump")) ?? "no-dump-here.dump");
    const J = String(options.jobs);
    const timed = async (command: string, args: string[], output: string, dbEnv = env()) => ({
      run: await run(command, args, dbEnv),
      output,
    });

    const allDumps: Candidate[] = [
      { key: "plain", command: "pg_dump -f x.sql", keep: true, go: (r) => timed("pg_dump", ["-f", r.sql], r.sql) },
      {
        key: "fc6",
        command: "pg_dump -Fc -f x.dump (zlib 6, pg_dump's default)",
        go: (r) => timed("pg_dump", ["-Fc", "-f", join(r.dir, "z6.dump")], join(r.dir, "z6.dump")),
      },
      {
        key: "fc1",
        command: "pg_dump -Fc -Z1 -f x.dump",
        keep: true,
        go: (r) => timed("pg_dump", ["-Fc", "-Z1", "-f", r.custom], r.custom),
      },
      {
        key: "fd1",
        command: `pg_dump -Fd -j${J} -Z1 -f x.dir`,
        go: (r) => timed("pg_dump", ["-Fd", `-j${J}`, "-Z1", "-f", join(r.dir, "x.dir")], join(r.dir, "x.dir")),
      },
      ...(zstd
        ? [
            {
              key: "zstd",
              command: "pg_dump -Fc -Z0 | zstd -3 -T2",
              go: (r: Round) =>
                timed(
                  "bash",
                  [
                    "-c",
                    `set -o pipefail; pg_dump -Fc -Z0 | zstd -q -3 -T2 -o ${JSON.stringify(join(r.dir, "x.dump.zst"))}`,
                  ],
                  join(r.dir, "x.dump.zst"),
                ),
            },
          ]
        : []),
      {
        key: "backup",
        command:
          "scripts/backup.sh (default: -Z1; every table read back and counted, table of contents, sha256 and schema-only test restore, all while it is written)",
        keep: true,
        go: async (r) => {
          const result = await backupSh(r);
          r.backupFile = dumpIn(result.output);
          return result;
        },
      },
      {
        key: "backup-none",
        command: "scripts/backup.sh with BACKUP_TEST_RESTORE=false",
        go: (r) => backupSh(r, { BACKUP_TEST_RESTORE: "false" }),
      },
      {
        key: "backup-full",
        command: `scripts/backup.sh with BACKUP_TEST_RESTORE=true (full test restore, -j${J})`,
        go: (r) => backupSh(r, { BACKUP_TEST_RESTORE: "true", RESTORE_JOBS: J }),
      },
      // Close to what backup.sh did before: zlib 6 and a full, serial test restore (the read-back
      // alongside the dump is new, and cheap next to the restore).
      {
        key: "previous",
        command:
          "scripts/backup.sh with BACKUP_COMPRESS_LEVEL=6 BACKUP_TEST_RESTORE=true RESTORE_JOBS=1 (the previous default)",
        go: (r) => backupSh(r, { BACKUP_COMPRESS_LEVEL: "6", BACKUP_TEST_RESTORE: "true", RESTORE_JOBS: "1" }),
      },
    ];
    const dumps = allDumps.filter((c) => !options.skip.has(c.key));

    /** A restore into a fresh, empty database (created and dropped untimed). */
    const intoFresh = async (target: string, go: () => Promise<Run>) => {
      await psql(`create database ${target}`, "postgres");
      try {
        return { run: await go() };
      } finally {
        await psql(`drop database ${target}`, "postgres");
      }
    };
    const allRestores: Candidate[] = [
      {
        key: "psql",
        command: "psql -f x.sql (into an empty database)",
        go: (r) =>
          intoFresh("r_psql", () =>
            run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null", "-f", r.sql], env("r_psql")),
          ),
      },
      {
        key: "pg_restore",
        command: "pg_restore -d db x.dump (the -Z1 archive)",
        go: (r) => intoFresh("r_pgr", () => run("pg_restore", ["--exit-on-error", "-d", "r_pgr", r.custom], env())),
      },
      {
        key: "pg_restore-j",
        command: `pg_restore -j${J} -d db x.dump`,
        go: (r) =>
          intoFresh("r_pgrj", () => run("pg_restore", ["--exit-on-error", `-j${J}`, "-d", "r_pgrj", r.custom], env())),
      },
      {
        key: "restore",
        command: `scripts/restore.sh (checksum, -j${J} restore, row counts, rename) of backup.sh's dump`,
        go: async (r) => {
          try {
            return { run: await restoreSh(r.backupFile, "r_script") };
          } finally {
            await psql("drop database if exists r_script", "postgres");
          }
        },
      },
    ];
    // restore.sh restores the default backup's dump: without that candidate it has nothing to read.
    const restores = allRestores.filter(
      (c) => !options.skip.has(c.key) && (c.key !== "restore" || !options.skip.has("backup")),
    );

    const results = new Map<string, Measurement[]>();
    const walNow = () => psql("select pg_current_wal_insert_lsn()");
    const walSince = async (lsn: string) =>
      Number(await psql(`select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '${lsn}')`));

    const meter = (cpu = cpuMeter(cluster.dataDir));
    const measure = async (candidate: Candidate, round: Round) => {
      const lsn = await walNow();
      const cpuSince = meter.start();
      const { run: result, output } = await candidate.go(round);
      const cpuSeconds = cpuSince();
      const walBytes = await walSince(lsn);
      const split = /\(dump with read-back ([\d.]+)s, then ([\d.]+)s\)/.exec(result.stdout);
      const bytes =
        output === undefined
          ? undefined
          : candidate.key.startsWith("backup") || candidate.key === "previous"
            ? bytesOf(dumpIn(output))
            : bytesOf(output);
      if (output !== undefined && !candidate.keep) rmSync(output, { recursive: true, force: true });
      return {
        seconds: result.seconds,
        cpuClient: cpuSeconds.client,
        cpuServer: cpuSeconds.server,
        ratio: NaN,
        walBytes,
        bytes,
        dumpSeconds: split ? Number(split[1]) : undefined,
        verifySeconds: split ? Number(split[2]) : undefined,
      };
    };
    const record = (key: string, m: Measurement) => (results.get(key) ?? results.set(key, []).get(key))?.push(m);

    for (let roundNo = 0; roundNo < options.rounds; roundNo++) {
      const dir = mkdtempSync(join(work, `round-${roundNo + 1}-`));
      const round: Round = { dir, sql: join(dir, "x.sql"), custom: join(dir, "x.dump"), backupFile: "" };
      for (const [phase, list, baselineKey] of [
        ["dumps", dumps, "plain"],
        ["restores", restores, "psql"],
      ] as const) {
        // A phase with nothing but its baseline compares nothing: skip it (the 20 M run's restores take minutes).
        if (list.every((c) => c.key === baselineKey)) continue;
        if (phase === "restores") {
          // What the restores read, made untimed when its candidate was skipped.
          if (!existsSync(round.custom)) await run("pg_dump", ["-Fc", "-Z1", "-f", round.custom], env());
          if (round.backupFile === "" && restores.some((c) => c.key === "restore"))
            round.backupFile = dumpIn((await backupSh(round)).output);
        }
        // The baseline runs before the first candidate and after each one: every candidate is
        // divided by the mean of the two baseline runs around it, so that load from other work
        // on the machine, which changes from minute to minute, cancels out as far as it can.
        const baseline = list.find((c) => c.key === baselineKey);
        if (!baseline) throw new Error(`the baseline ${baselineKey} cannot be skipped`);
        const rest = list.filter((c) => c !== baseline);
        const rotated = rest.map((_, i) => rest[(i + roundNo) % rest.length]);
        const order = roundNo % 2 ? rotated.reverse() : rotated;
        let before = await measure(baseline, round);
        before.ratio = 1;
        record(baseline.key, before);
        for (const candidate of order) {
          const m = await measure(candidate, round);
          const after = await measure(baseline, round);
          after.ratio = 1;
          m.ratio = m.seconds / ((before.seconds + after.seconds) / 2);
          record(candidate.key, m);
          record(baseline.key, after);
          say(
            `round ${roundNo + 1} ${phase}: ${candidate.key} ${m.seconds.toFixed(2)} s, ${m.ratio.toFixed(2)}x, CPU ${cpuText(m)} (${baseline.key} ${before.seconds.toFixed(2)} s, CPU ${cpuText(before)} before; ${after.seconds.toFixed(2)} s, CPU ${cpuText(after)} after)`,
          );
          before = after;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }

    // Untimed: the server's extra disk at the peak (sampled every 200 ms) against the scripts' estimates.
    const peaks: Peak[] = [];
    if (!options.skip.has("peaks")) {
      say("measuring the server disk at the peak (untimed)");
      const peakRound: Round = { dir: mkdtempSync(join(work, "peak-")), sql: "", custom: "", backupFile: "" };
      const du = async () => Number((await run("du", ["-sb", cluster.dataDir], {})).stdout.split("\t")[0]);
      const measurePeak = async (command: string, go: () => Promise<Run>) => {
        const base = await du();
        let peak = base;
        let running = true;
        const sampler = (async () => {
          while (running) {
            peak = Math.max(peak, await du().catch(() => peak));
            await new Promise((r) => setTimeout(r, 200));
          }
        })();
        const result = await go().finally(() => (running = false));
        await sampler;
        const estimate = Number(/needs about (\d+) MB there/.exec(result.stderr)?.[1] ?? NaN) * 1048576;
        peaks.push({ command, peak: peak - base, estimate });
        say(`peak: ${command}: ${mb(peak - base)} (estimate ${mb(estimate)})`);
      };
      let defaultBackup = "";
      await measurePeak("scripts/backup.sh (default)", async () => {
        const result = await backupSh(peakRound);
        defaultBackup = dumpIn(result.output);
        return result.run;
      });
      for (const jobs of [...new Set([1, options.jobs])]) {
        await measurePeak(
          `scripts/backup.sh with BACKUP_TEST_RESTORE=true RESTORE_JOBS=${jobs}`,
          async () => (await backupSh(peakRound, { BACKUP_TEST_RESTORE: "true", RESTORE_JOBS: String(jobs) })).run,
        );
      }
      // restore.sh replacing the live database; the replaced one is kept (renamed, no copy), then dropped here.
      await measurePeak(`scripts/restore.sh RESTORE_JOBS=${J}, replacing the database`, () =>
        restoreSh(defaultBackup, DB),
      );
      for (const kept of (
        await psql(`select datname from pg_database where datname like '${DB}_before_restore_%'`, "postgres")
      )
        .split("\n")
        .filter(Boolean)) {
        await psql(`drop database "${kept}"`, "postgres");
      }
    }

    const load = `load average ${loadStart.map((l) => l.toFixed(1)).join(" ")} at the start, ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} at the end, ${cpus().length} cores`;
    const report = renderReport(options, db, load, dumps, restores, results, peaks);
    process.stdout.write(`\n${report}\n`);
    if (options.json) {
      writeFileSync(
        options.json,
        `${JSON.stringify({ options: { ...options, skip: [...options.skip] }, db, results: Object.fromEntries(results), peaks }, null, 2)}\n`,
      );
    }
  } finally {
    await cleanUp();
  }
}

function renderReport(
  options: Options,
  db: { pgVersion: string; dbBytes: number; tableBytes: number; indexBytes: number; largestIndex: number },
  load: string,
  dumps: Candidate[],
  restores: Candidate[],
  results: Map<string, Measurement[]>,
  peaks: Peak[],
): string {
  const cores = cpus().length;
  const lines: string[] = [];
  const of = (key: string, pick: (m: Measurement) => number | undefined) =>
    median((results.get(key) ?? []).map(pick).filter((x): x is number => x !== undefined));
  /** The median ratio, then the range over the rounds when there are several. */
  const ratio = (key: string): string => {
    const all = (results.get(key) ?? []).map((m) => m.ratio);
    const range =
      all.length > 1 && key !== "plain" && key !== "psql"
        ? ` (${Math.min(...all).toFixed(2)}–${Math.max(...all).toFixed(2)})`
        : "";
    return `${of(key, (m) => m.ratio).toFixed(2)}${range}`;
  };
  lines.push(
    `${options.readings} readings, ${options.meters} meters; database ${mb(db.dbBytes)} (tables ${mb(db.tableBytes)}, ` +
      `indexes ${mb(db.indexBytes)}, largest index ${mb(db.largestIndex)}); PostgreSQL ${db.pgVersion}; medians of ${options.rounds} round(s); ${load}`,
  );
  lines.push("");
  const plainBytes = of("plain", (m) => m.bytes);
  /** Median CPU seconds, programs + server; and against all cores for the baseline's median time. */
  const cpu = (key: string) => of(key, (m) => m.cpuClient + m.cpuServer);
  const cpuColumns = (key: string, baselineKey: string) =>
    `${of(key, (m) => m.cpuClient).toFixed(2)} + ${of(key, (m) => m.cpuServer).toFixed(2)} s | ` +
    `${(cpu(key) / (cores * of(baselineKey, (m) => m.seconds))).toFixed(2)}`;
  lines.push(
    "| backup | median time | ratio to plain `pg_dump` (the runs just before and after) | CPU (programs + server) | CPU ÷ (cores × plain's time) | size | size ratio | WAL on the server | backup.sh's own split |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|");
  for (const c of dumps) {
    const bytes = of(c.key, (m) => m.bytes);
    const dump = of(c.key, (m) => m.dumpSeconds);
    const split = Number.isNaN(dump)
      ? ""
      : `dump with read-back ${dump.toFixed(2)} s, then ${of(c.key, (m) => m.verifySeconds).toFixed(2)} s`;
    lines.push(
      `| \`${c.command}\` | ${of(c.key, (m) => m.seconds).toFixed(2)} s | ${ratio(c.key)} | ${cpuColumns(c.key, "plain")} | ` +
        `${mb(bytes)} | ${Number.isNaN(bytes) ? "" : (bytes / plainBytes).toFixed(2)} | ${mb(of(c.key, (m) => m.walBytes))} | ${split} |`,
    );
  }
  if (results.has("psql")) {
    lines.push("");
    lines.push(
      "| restore | median time | ratio to `psql -f x.sql` (the runs just before and after) | CPU (programs + server) | CPU ÷ (cores × psql's time) | WAL on the server |",
    );
    lines.push("|---|---|---|---|---|---|");
    for (const c of restores) {
      lines.push(
        `| \`${c.command}\` | ${of(c.key, (m) => m.seconds).toFixed(2)} s | ${ratio(c.key)} | ${cpuColumns(c.key, "psql")} | ${mb(of(c.key, (m) => m.walBytes))} |`,
      );
    }
  }
  if (peaks.length === 0) return lines.join("\n");
  lines.push("");
  lines.push(
    "| server disk at the peak (one untimed run each) | extra disk | × database size | the script's estimate | × database size |",
  );
  lines.push("|---|---|---|---|---|");
  for (const p of peaks) {
    lines.push(
      `| \`${p.command}\` | ${mb(p.peak)} | ${(p.peak / db.dbBytes).toFixed(2)} | ${mb(p.estimate)} | ${Number.isNaN(p.estimate) ? "" : (p.estimate / db.dbBytes).toFixed(2)} |`,
    );
  }
  return lines.join("\n");
}

function cpuText(m: Measurement): string {
  return `${m.cpuClient.toFixed(2)}+${m.cpuServer.toFixed(2)} s`;
}

function mb(bytes: number): string {
  return Number.isNaN(bytes) ? "" : `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 1 : 0)} MB`;
}

function say(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
