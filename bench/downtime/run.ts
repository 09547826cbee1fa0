/**
 * Downtime benchmark: the 1.0.0 -> 1.1.0 upgrade of the stand-in stack, two ways, on fresh
 * stacks, several rounds in alternating order (run.sh prepares the registry and starts this).
 *
 * - `project`: the project's `pulumi up` under the real engine (test/support/real-stack.ts:
 *   toolchain/pulumi with the stand-in provider plugins), with the app image pulled from the
 *   registry by its RemoteImage step;
 * - `literal`: the vendor's runbook taken literally (runbook-literal.sh), plain docker commands
 *   on containers with the same settings (runconfig.ts reads them from the install).
 *
 * Each run: remove the stack and the local copy of 1.1.0; install 1.0.0 by `pulumi up`; write
 * some readings; then upgrade while a probe asks the API's /_health/ every 100 ms and Docker's
 * events are recorded. Figures per run: API downtime (the probe's longest gap), each follower's
 * downtime (its stop to its next start), the window (first step's start to the last step's end),
 * and the floor: the new API's boot (its start to its first 200) plus the migration. Ratios are
 * taken within a round (the machine's load then is the same for both), medians over rounds.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EventLog } from "../../test/support/docker-events";
import { docker, exec, sleep } from "../../test/support/exec";
import { RealStack } from "../../test/support/real-stack";
import {
  PORTS,
  postReading,
  prepareStack,
  removeStack,
  SECRETS,
  standinConfig,
  tempDir,
} from "../../test/support/standin-stack";
import { SECRET_VALUES } from "../../test/unit/support/fixtures";
import {
  downtimeOf,
  duration,
  eventAfter,
  firstOkAfter,
  longestOutage,
  median,
  parseSteps,
  span,
  type ContainerEvent,
  type Span,
} from "./metrics";
import { probe } from "./probe";
import { writeRunConfig } from "./runconfig";

function required(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set: start the benchmark with npm run bench:downtime (bench/downtime/run.sh)`);
  return value;
}
const REGISTRY = required("DOWNTIME_REGISTRY");
const ROUNDS = Number(required("DOWNTIME_ROUNDS"));
const PAYLOAD_MB = Number(required("DOWNTIME_PAYLOAD_MB"));
const JSON_OUT = required("DOWNTIME_JSON");
const PREFIX = required("DOWNTIME_PREFIX");
const APP = `${REGISTRY}/utilitarian-standin/utilitarian`;
const FROM = "1.0.0";
const TO = "1.1.0";
/**
 * `project-writers-running` (opt-in, `--ways`): the project's `up` with `backup.stopWriters`
 * off, to show what stopping the writers for the backup costs the followers.
 */
const ALL_WAYS = ["project", "literal", "project-writers-running"] as const;
type Way = (typeof ALL_WAYS)[number];
const WAYS = required("DOWNTIME_WAYS")
  .split(",")
  .map((w) => {
    if (!(ALL_WAYS as readonly string[]).includes(w))
      throw new Error(`--ways: unknown way '${w}'; the ways are ${ALL_WAYS.join(", ")}`);
    return w as Way;
  });
if (!WAYS.includes("project") || !WAYS.includes("literal"))
  throw new Error("--ways must include project and literal: the ratios compare them");

const events = new EventLog();

interface Run {
  way: Way;
  round: number;
  apiDowntimeMs: number;
  followerDowntimeMs: Record<string, number>;
  maxFollowerDowntimeMs: number;
  windowMs: number;
  /** The first step's start to the last container's start: when everything runs again. */
  windowToLastStartMs: number;
  floorMs: number;
  /** The new API's start to its first 200. */
  apiBootMs: number;
  migrateMs: number;
  pullMs: number;
  pulledBytes: number;
  backupMs: number;
  /** Where the API's downtime went: its stop, from its stop to the new one's start, the new one's boot. */
  apiDowntimeParts: { stopMs: number; stoppedToNewStartMs: number; bootMs: number };
  /** The API's outage start to the migration's end: when the new API serves its own schema. */
  apiUntilMigratedMs: number;
  /** Steps and container events, in seconds since the upgrade started. */
  timeline: { steps: string[]; events: string[] };
}

function config(way: Way, version: string, backups: string): Record<string, unknown> {
  return standinConfig(version, backups, {
    prefix: PREFIX,
    // Without the maintenance proxy (on by default): the probe and the literal runbook reach the
    // API's own published port, as when these figures were first taken; `npm run bench:proxy`
    // measures the window through the proxy.
    proxy: { enabled: false },
    ...(way === "project-writers-running" ? { backup: { dir: backups, keep: 5, stopWriters: false } } : {}),
    images: {
      api: APP,
      processor: `${REGISTRY}/utilitarian-standin/dlms-processor`,
      poster: `${REGISTRY}/utilitarian-standin/poster`,
      udpServer: `${REGISTRY}/utilitarian-standin/dlms-udp-server`,
    },
  });
}

/** The registry's manifest layers of the app image at `version`: digest and compressed size. */
async function manifestLayers(version: string): Promise<{ digest: string; size: number }[]> {
  const response = await fetch(`http://${REGISTRY}/v2/utilitarian-standin/utilitarian/manifests/${version}`, {
    headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
  });
  if (!response.ok) throw new Error(`registry manifest of ${version}: HTTP ${response.status}`);
  return (await response.json()).layers;
}

/** The uncompressed layer IDs (diff IDs) of every local image: what a pull finds present. */
async function localLayers(): Promise<Set<string>> {
  const ids = (await docker(["images", "-q", "--no-trunc"])).split("\n").filter(Boolean);
  const out = await docker([
    "image",
    "inspect",
    "--format",
    "{{range .RootFS.Layers}}{{println .}}{{end}}",
    ...new Set(ids),
  ]);
  return new Set(out.split("\n").filter(Boolean));
}

/**
 * Bytes the upgrade downloaded: the registry's compressed size of each layer of the new version
 * that no local image held before the upgrade (the manifest's layers are in the order of the
 * image's diff IDs). Read from Docker, not from a pull's output: the provider's pull prints none.
 */
async function pulledBytes(presentBefore: Set<string>): Promise<number> {
  const layers = await manifestLayers(TO);
  const diffIds = (
    await docker(["image", "inspect", "--format", "{{range .RootFS.Layers}}{{println .}}{{end}}", `${APP}:${TO}`])
  )
    .split("\n")
    .filter(Boolean);
  if (diffIds.length !== layers.length)
    throw new Error(
      `${APP}:${TO} has ${diffIds.length} layers locally and ${layers.length} in the registry's manifest`,
    );
  return layers.filter((_, i) => !presentBefore.has(diffIds[i])).reduce((sum, l) => sum + l.size, 0);
}

/** Removes the local copy of the version being upgraded to: the upgrade's pull must download it. */
async function forgetTargetImage(): Promise<void> {
  await docker(["rmi", `${APP}:${TO}`], { allowFailure: true });
  const left = await exec("docker", ["image", "inspect", `${APP}:${TO}`]);
  if (left.code === 0) throw new Error(`${APP}:${TO} is still present after docker rmi`);
}

async function followers(): Promise<string[]> {
  const out = await docker([
    "ps",
    "-a",
    "--filter",
    `label=io.utilitarian.stack=${PREFIX}`,
    "--format",
    '{{.Names}} {{.Label "io.utilitarian.role"}}',
  ]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))
    .filter(([, role]) => ["beat", "worker", "processor", "poster"].includes(role))
    .map(([n]) => n)
    .sort();
}

/** A fresh stack at 1.0.0, installed by the project's `pulumi up`, with a few readings for the migration to transform. */
async function install(way: Way, backups: string, stack: RealStack): Promise<void> {
  await removeStack(PREFIX);
  await forgetTargetImage();
  await stack.init();
  stack.configure(config(way, FROM, backups));
  const installed = await stack.up();
  if (installed.code !== 0) throw new Error(`${way}: the install failed:\n${installed.stdout}\n${installed.stderr}`);
  for (let i = 0; i < 50; i++) {
    const status = await postReading(`bench-${i}`, i + 0.25);
    if (status !== 201) throw new Error(`posting a reading after the install: HTTP ${status}`);
  }
  // Let the just-started services finish booting: the upgrade starts on a quiet machine.
  await sleep(5000);
}

interface Upgrade {
  steps: Span[];
  pull: Span;
}

/** The upgrade by `pulumi up`: its steps from the engine's event log, in the order the engine began them. */
async function upgradeByProject(way: Way, stack: RealStack, backups: string): Promise<Upgrade> {
  stack.configure(config(way, TO, backups));
  const run = await stack.up();
  if (run.code !== 0) throw new Error(`${way}: the upgrade failed:\n${run.stdout}\n${run.stderr}`);
  const work = run.steps.filter(
    (s) => s.op !== "same" && !s.type.startsWith("pulumi:providers:") && Number.isFinite(s.endedAt),
  );
  const steps = work
    .map((s) => ({ name: `${s.op} ${s.name}`, start: s.startedAt, end: s.endedAt }))
    .sort((a, b) => a.start - b.start);
  const pull = work.find((s) => s.type === "docker:index/remoteImage:RemoteImage");
  if (!pull) throw new Error(`${way}: the upgrade replaced no image`);
  return { steps, pull: { name: `${pull.op} ${pull.name}`, start: pull.startedAt, end: pull.endedAt } };
}

async function upgradeLiterally(workDir: string): Promise<Upgrade> {
  const names = await followers();
  const appFollowers = names.filter((n) => /-(beat|worker-.*)$/.test(n));
  const dependents = names.filter((n) => !appFollowers.includes(n));
  const runConfig = path.join(workDir, "run-config");
  await writeRunConfig([`${PREFIX}-api`, ...appFollowers], runConfig, TO);
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    API: `${PREFIX}-api`,
    DEPENDENTS: dependents.join(" "),
    APP_FOLLOWERS: appFollowers.join(" "),
    NEW_IMAGE: `${APP}:${TO}`,
    RUN_CONFIG: runConfig,
    API_HEALTH_URL: `http://127.0.0.1:${PORTS.api}/_health/`,
    BACKUP_FILE: path.join(workDir, "backup.sql"),
    PGHOST: "127.0.0.1",
    PGPORT: String(PORTS.postgres),
    PGUSER: "postgres",
    PGPASSWORD: SECRET_VALUES.databaseAdminPassword,
    PGDATABASE: "utilitarian",
  };
  const result = await exec("bash", [path.join(__dirname, "runbook-literal.sh")], { env });
  if (result.code !== 0)
    throw new Error(`runbook-literal.sh failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
  const steps = parseSteps(result.stdout);
  const pull = span(steps, "pull");
  return { steps, pull };
}

async function runOnce(way: Way, round: number): Promise<Run> {
  const workDir = tempDir(`downtime-${way}`);
  const backups = path.join(workDir, "backups");
  fs.mkdirSync(backups);
  const stack = new RealStack(`downtime-${way}-${round}`, SECRETS);
  try {
    await install(way, backups, stack);
    const presentBefore = await localLayers();
    const followerNames = await followers();
    const health = probe(`http://127.0.0.1:${PORTS.api}/_health/`, 100);
    await sleep(1000);
    const t0 = Date.now();
    const upgrade = way === "literal" ? await upgradeLiterally(workDir) : await upgradeByProject(way, stack, backups);
    await sleep(1000);
    const samples = (await health.stop()).filter((s) => s.t >= t0);
    const seen: ContainerEvent[] = events.events.filter((e) => e.time >= t0);
    const steps = upgrade.steps;
    const stepNamed = (project: string, literal: string) => span(steps, way === "literal" ? literal : project);

    const outage = longestOutage(samples);
    if (!outage) throw new Error(`${way}: the probe never saw the API down: did the upgrade replace it?`);
    const api = `${PREFIX}-api`;
    const oldStop = eventAfter(seen, api, ["kill", "die"], t0)!;
    const oldDie = eventAfter(seen, api, ["die"], t0)!;
    const newStart = eventAfter(seen, api, ["start"], oldDie.time)!;
    const firstOk = firstOkAfter(samples, newStart.time)!;
    const migrate = stepNamed(`create-replacement ${PREFIX}-migrate`, "migrate");
    const followerDowntimeMs: Record<string, number> = {};
    for (const name of followerNames) {
      const down = downtimeOf(seen, name, t0);
      if (!down?.ms) throw new Error(`${way}: follower ${name} was not stopped and started again`);
      followerDowntimeMs[name] = down.ms;
    }
    const since = (t: number) => ((t - t0) / 1000).toFixed(2);
    return {
      way,
      round,
      apiDowntimeMs: outage.ms,
      followerDowntimeMs,
      maxFollowerDowntimeMs: Math.max(...Object.values(followerDowntimeMs)),
      windowMs: steps.at(-1)!.end - steps[0].start,
      windowToLastStartMs: Math.max(...seen.filter((e) => e.action === "start").map((e) => e.time)) - steps[0].start,
      floorMs: firstOk - newStart.time + duration(migrate),
      apiBootMs: firstOk - newStart.time,
      migrateMs: duration(migrate),
      pullMs: duration(upgrade.pull),
      pulledBytes: await pulledBytes(presentBefore),
      backupMs: duration(stepNamed(`create-replacement ${PREFIX}-backup`, "backup")),
      apiDowntimeParts: {
        stopMs: oldDie.time - oldStop.time,
        stoppedToNewStartMs: newStart.time - oldDie.time,
        bootMs: firstOk - newStart.time,
      },
      apiUntilMigratedMs: Math.max(migrate.end, outage.end) - outage.start,
      timeline: {
        steps: steps.map((s) => `${since(s.start)}-${since(s.end)}s ${s.name}`),
        events: [
          `${since(outage.start)}s probe: API down`,
          `${since(outage.end)}s probe: API up`,
          ...seen
            .filter((e) => ["kill", "die", "start", "destroy"].includes(e.action))
            .map((e) => `${since(e.time)}s ${e.action} ${e.name}`),
        ].sort((a, b) => parseFloat(a) - parseFloat(b)),
      },
    };
  } finally {
    await removeStack(PREFIX);
    stack.remove();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

const s = (ms: number) => Number((ms / 1000).toFixed(2));
const r2 = (x: number) => Number(x.toFixed(2));

function summarise(runs: Run[]) {
  const of = (way: Way) => runs.filter((r) => r.way === way);
  const medianOf = (way: Way, figure: (r: Run) => number) => s(median(of(way).map(figure)));
  const medians = (way: Way) => ({
    apiDowntime: medianOf(way, (r) => r.apiDowntimeMs),
    maxFollowerDowntime: medianOf(way, (r) => r.maxFollowerDowntimeMs),
    window: medianOf(way, (r) => r.windowMs),
    windowToLastStart: medianOf(way, (r) => r.windowToLastStartMs),
    floor: medianOf(way, (r) => r.floorMs),
    apiBoot: medianOf(way, (r) => r.apiBootMs),
    migrate: medianOf(way, (r) => r.migrateMs),
    pull: medianOf(way, (r) => r.pullMs),
    backup: medianOf(way, (r) => r.backupMs),
    apiUntilMigrated: medianOf(way, (r) => r.apiUntilMigratedMs),
    apiStop: medianOf(way, (r) => r.apiDowntimeParts.stopMs),
    apiStoppedToNewStart: medianOf(way, (r) => r.apiDowntimeParts.stoppedToNewStartMs),
  });
  // Each project way against the literal runbook of the same round, and against its own floor.
  const ratiosOf = (way: Way) => {
    const perRound = [...new Set(runs.map((r) => r.round))].map((round) => {
      const p = runs.find((r) => r.round === round && r.way === way)!;
      const l = runs.find((r) => r.round === round && r.way === "literal")!;
      return {
        round,
        apiToLiteral: p.apiDowntimeMs / l.apiDowntimeMs,
        apiToFloor: p.apiDowntimeMs / p.floorMs,
        untilMigratedToFloor: p.apiUntilMigratedMs / p.floorMs,
        untilMigratedToLiteral: p.apiUntilMigratedMs / l.apiUntilMigratedMs,
        followersToLiteral: p.maxFollowerDowntimeMs / l.maxFollowerDowntimeMs,
        windowToLiteral: p.windowMs / l.windowMs,
        windowToLastStartToLiteral: p.windowToLastStartMs / l.windowToLastStartMs,
        literalApiToLiteralFloor: l.apiDowntimeMs / l.floorMs,
      };
    });
    const keys = Object.keys(perRound[0]).filter((k) => k !== "round") as (keyof (typeof perRound)[number])[];
    return {
      medians: Object.fromEntries(keys.map((k) => [k, r2(median(perRound.map((x) => x[k])))])),
      perRound: perRound.map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, r2(v)]))),
    };
  };
  return {
    medians: Object.fromEntries(WAYS.map((w) => [w, medians(w)])),
    ratios: Object.fromEntries(WAYS.filter((w) => w !== "literal").map((w) => [w, ratiosOf(w)])),
  };
}

async function imageFacts() {
  const local = JSON.parse(await docker(["image", "inspect", `${APP}:${FROM}`]))[0];
  const layers = await manifestLayers(TO);
  const base = new Set((await manifestLayers(FROM)).map((l) => l.digest));
  return {
    payloadMb: PAYLOAD_MB,
    appImageBytes: local.Size as number,
    appImageCompressedBytes: layers.reduce((sum, l) => sum + l.size, 0),
    layersNewIn110Bytes: layers.filter((l) => !base.has(l.digest)).reduce((sum, l) => sum + l.size, 0),
  };
}

beforeAll(async () => {
  await prepareStack(PREFIX);
  await events.start(PREFIX);
});

afterAll(async () => {
  events.stop();
  await removeStack(PREFIX);
});

test(`downtime of the ${FROM} -> ${TO} upgrade: the project's up against the runbook taken literally`, async () => {
  const runs: Run[] = [];
  const images = await imageFacts();
  console.log(
    `app image: ${(images.appImageBytes / 1e6).toFixed(0)} MB unpacked, ${(images.appImageCompressedBytes / 1e6).toFixed(0)} MB compressed; ${TO}'s own layers ${(images.layersNewIn110Bytes / 1e6).toFixed(0)} MB`,
  );
  for (let round = 1; round <= ROUNDS; round++) {
    // The order rotates from round to round: a drift in the machine's load favours no way.
    const order = WAYS.map((_, i) => WAYS[(i + round - 1) % WAYS.length]);
    for (const way of order) {
      const run = await runOnce(way, round);
      runs.push(run);
      console.log(
        `round ${round} ${way}: API down ${s(run.apiDowntimeMs)} s (stop ${s(run.apiDowntimeParts.stopMs)}, to new start ${s(run.apiDowntimeParts.stoppedToNewStartMs)}, boot ${s(run.apiBootMs)}), ` +
          `followers down up to ${s(run.maxFollowerDowntimeMs)} s, window ${s(run.windowMs)} s (all running at ${s(run.windowToLastStartMs)}), floor ${s(run.floorMs)} s (migrate ${s(run.migrateMs)}), ` +
          `pull ${s(run.pullMs)} s (${(run.pulledBytes / 1e6).toFixed(0)} MB), backup ${s(run.backupMs)} s`,
      );
    }
  }
  const summary = summarise(runs);
  const report = {
    command: `npm run bench:downtime -- --rounds ${ROUNDS} --payload-mb ${PAYLOAD_MB} --ways ${WAYS.join(",")}`,
    images,
    summary,
    runs,
  };
  fs.writeFileSync(JSON_OUT, JSON.stringify(report, null, 2));
  console.log(JSON.stringify({ images, ...summary }, null, 2));
  for (const run of runs.filter((r) => r.round === 1))
    console.log(`timeline, round 1, ${run.way}:\n  ${[...run.timeline.steps, ...run.timeline.events].join("\n  ")}`);

  // Each upgrade really downloaded the new version's own layer, and really took the API down.
  for (const run of runs) {
    if (PAYLOAD_MB > 0)
      expect(run.pulledBytes, `${run.way} round ${run.round}`).toBeGreaterThan(PAYLOAD_MB * 1024 * 1024 * 0.95);
    expect(run.apiDowntimeMs, `${run.way} round ${run.round}`).toBeGreaterThan(0);
  }
});
