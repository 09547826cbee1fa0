/**
 * The report of a maintenance window, under the real engine: the stand-in stack (with the
 * maintenance proxy and a managed broker) installed at 1.0.0, upgraded to 1.1.0 while meters send
 * readings and a client polls the API through the proxy, then upgraded to 1.2.0, whose migration
 * fails. Each report is checked against sources the report never reads: the engine's event log
 * (each step's begin and end), Docker's events as this test records them, the client's answers,
 * the backup on disk and the migrate step's output as the engine logged it.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chromiumDom, chromiumScreenshot, domText, renderProblems } from "../support/chromium";
import { EventLog } from "../support/docker-events";
import { exec, sleep } from "../support/exec";
import { poller } from "../support/proxy-client";
import { PROJECT_DIR } from "../support/real-engine";
import type { Report } from "../../scripts/window-report";
import { RealStack, type EngineStep, type RealRun } from "../support/real-stack";
import {
  PORTS,
  postReading,
  prepareStack,
  removeStack,
  SECRETS,
  standinConfig,
  tempDir,
  udpStream,
} from "../support/standin-stack";

const MINUTE = 60_000;
const PREFIX = "wr";
/** How far a report's time may lie outside the engine's step that contains it: the event log's stamps are taken as its lines arrive. */
const SLACK_MS = 1500;
const backups = tempDir("window-backups");
const windows = path.join(backups, "windows");
const stack = new RealStack("window", SECRETS);
const config = (version: string) =>
  standinConfig(version, backups, {
    prefix: PREFIX,
    proxy: { enabled: true, image: "utilitarian-standin/haproxy:2.6" },
  });

const ms = (iso: string | null | undefined) => (iso ? Date.parse(iso) : Number.NaN);
const windowDirs = () =>
  fs.existsSync(windows) ? fs.readdirSync(windows).filter((n) => fs.statSync(path.join(windows, n)).isDirectory()) : [];
const reportOf = (dir: string): Report => JSON.parse(fs.readFileSync(path.join(windows, dir, "report.json"), "utf8"));
/** The engine's step that ran a resource's create (a replaced step's delete comes earlier, at the stop). */
const engineStep = (run: RealRun, name: string, op?: string): EngineStep => {
  const runs = op ? [op] : ["create", "create-replacement", "update"];
  const step = run.steps.find((s) => s.name === name && runs.includes(s.op));
  if (!step)
    throw new Error(`no ${op ?? "change"} of ${name} in the event log: ${run.steps.map((s) => `${s.op} ${s.name}`)}`);
  return step;
};
const watchers = async (dir: string) =>
  (await exec("pgrep", ["-f", `window-watch.sh ${path.join(windows, dir)}`])).stdout.trim();

beforeAll(async () => {
  await prepareStack(PREFIX);
  await stack.init();
}, 5 * MINUTE);

afterAll(async () => {
  await removeStack(PREFIX);
  stack.remove();
}, 2 * MINUTE);

describe.sequential("the window's report under the real engine", () => {
  test(
    "a first install is no maintenance: no window, no report",
    async () => {
      stack.configure(config("1.0.0"));
      const run = await stack.up();
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(windowDirs()).toEqual([]);
      expect((await stack.outputs()).lastWindowReport).toBe("");
    },
    8 * MINUTE,
  );

  test(
    "1.0.0 -> 1.1.0: the report agrees with the engine's event log, Docker's events, the client and the backup",
    async () => {
      const docker = new EventLog();
      await docker.start(PREFIX);
      const meters = udpStream("window-meter-", 100);
      const pollStart = Date.now();
      const client = poller(`http://127.0.0.1:${PORTS.api}/_health/`, 100, { Accept: "application/json" });
      stack.configure(config("1.1.0"));
      const run = await stack.up();
      await sleep(1000);
      const answers = await client.stop();
      const sent = await meters.stop();
      docker.stop();
      expect(run.code, run.stdout + run.stderr).toBe(0);

      // The stack output names the report; JSON and SVG are beside it.
      const outputs = await stack.outputs();
      const [dir] = windowDirs();
      expect(windowDirs()).toEqual([dir]);
      expect(dir).toMatch(/^\d{8}T\d{6}Z-1\.0\.0-to-1\.1\.0$/);
      expect(outputs.lastWindowReport).toBe(path.join(windows, dir, "report.md"));
      const report = reportOf(dir);
      expect(report).toMatchObject({ from: "1.0.0", to: "1.1.0", status: "completed", failed: null });
      const stage = (key: string) => {
        const found = report.stages.find((s) => s.key === key);
        if (!found) throw new Error(`no stage ${key} in the report: ${report.stages.map((s) => s.key)}`);
        return found;
      };

      // The steps' stages lie inside the engine's steps that ran them.
      for (const key of ["backup", "migrate", "static", "verify"]) {
        const engine = engineStep(run, `${PREFIX}-${key}`);
        expect(stage(key).status, key).toBe("ok");
        expect(ms(stage(key).started_at), key).toBeGreaterThanOrEqual(engine.startedAt - SLACK_MS);
        expect(ms(stage(key).ended_at), key).toBeLessThanOrEqual(engine.endedAt + SLACK_MS);
        expect(ms(stage(key).ended_at), key).toBeGreaterThan(ms(stage(key).started_at));
      }
      // The engine's stages, from Docker's events: the API's stop ends the stop stage; its
      // replacement's create begins start-api; the followers' creates are the start stage.
      const apiDelete = run.steps.find((s) => s.name === `${PREFIX}-api` && s.op.startsWith("delete"))!;
      const apiCreate = engineStep(run, `${PREFIX}-api`, "create-replacement");
      expect(Math.abs(ms(stage("stop").ended_at) - apiDelete.endedAt)).toBeLessThan(SLACK_MS);
      expect(ms(stage("stop").started_at)).toBeGreaterThanOrEqual(ms(stage("backup").ended_at));
      expect(ms(stage("start-api").started_at)).toBeGreaterThanOrEqual(apiCreate.startedAt - SLACK_MS);
      expect(ms(stage("start-api").started_at)).toBeLessThanOrEqual(apiCreate.endedAt + SLACK_MS);
      const beat = engineStep(run, `${PREFIX}-beat`, "create-replacement");
      expect(ms(stage("start").started_at)).toBeGreaterThanOrEqual(ms(stage("static").ended_at) - SLACK_MS);
      expect(ms(stage("start").started_at)).toBeLessThanOrEqual(beat.endedAt + SLACK_MS);
      // Stages in the runbook's order.
      const order = ["backup", "stop", "start-api", "migrate", "static", "start", "verify"].map((k) =>
        ms(stage(k).started_at),
      );
      expect(order).toEqual([...order].sort((a, b) => a - b));

      // The outage as Docker saw it: from the old API's stop (its kill, the stop signal) to the new
      // one's start, as this test's own record of Docker's events has them (the static step's
      // restart is a second one).
      const api = docker.events.filter((e) => e.name === `${PREFIX}-api`);
      const firstDie = api.find(
        (e) => (e.action === "kill" || e.action === "die") && e.time >= ms(stage("backup").ended_at),
      )!;
      const dockerOutage = report.outage.docker!.intervals;
      expect(dockerOutage.length).toBeGreaterThanOrEqual(1);
      expect(Math.abs(ms(dockerOutage[0].from) - firstDie.time)).toBeLessThan(1000);
      const backUp = api.find(
        (e) => (e.action === "start" || e.action.startsWith("health_status")) && e.time > firstDie.time,
      )!;
      expect(ms(dockerOutage[0].to)).toBeGreaterThanOrEqual(backUp.time - 1000);
      // The proxy's view: every 503 the client got came while the proxy had the API down.
      const proxyOutage = report.outage.proxy!.intervals;
      expect(proxyOutage.length).toBeGreaterThanOrEqual(1);
      const unavailable = answers.filter((a) => a.status === 503).map((a) => pollStart + a.at);
      expect(unavailable.length).toBeGreaterThan(0);
      const inside = (t: number) => proxyOutage.some((i) => t >= ms(i.from) - SLACK_MS && t <= ms(i.to) + SLACK_MS);
      expect(unavailable.filter((t) => !inside(t))).toEqual([]);

      // The backup is the one on disk.
      const backup = report.backup!;
      expect(backup.file).toBe(outputs.lastBackup);
      expect(backup.bytes).toBe(fs.statSync(backup.file!).size);
      expect(backup.sha256).toBe(fs.readFileSync(`${backup.file}.sha256`, "utf8").split(/\s/)[0]);
      // The migrations are the ones migrate applied, as the engine logged its output.
      const applied = (run.logs.get(`${PREFIX}-migrate`) ?? []).flatMap(
        (l) => /Applying (\S+?)\.\.\. *OK/.exec(l)?.[1] ?? [],
      );
      expect(applied.length).toBeGreaterThan(0);
      expect(report.migrations!.migrations).toEqual([...new Set(applied)]);
      // Readings queued while the processor was stopped: some, never more than the meters sent.
      const queue = report.queue!;
      const pushed = queue.per_queue.find((q) => q.name === "utilitarian.dlms_push_messages")!;
      expect(pushed.peak).toBeGreaterThan(0);
      expect(pushed.peak).toBeLessThanOrEqual(sent);
      expect(queue.peak.messages).toBeGreaterThanOrEqual(pushed.peak);
      // Its last sample is taken as verify closes the window.
      expect(ms(queue.at_end.at)).toBeGreaterThanOrEqual(ms(stage("verify").ended_at));
      console.log(
        `window report: stages ${report.stages.map((s) => `${s.key} ${s.seconds}s`).join(", ")}; ` +
          `outage docker ${report.outage.docker!.total_seconds} s, proxy ${report.outage.proxy!.total_seconds} s; ` +
          `queue peak ${queue.peak.messages} (${pushed.peak} in dlms_push_messages of ${sent} sent), ${queue.at_end.messages} at the end`,
      );
      // The images the new version runs, paired with their IDs (the report finds pulls by them):
      // the API's is the one its new container runs.
      const open = JSON.parse(fs.readFileSync(path.join(windows, dir, "journal.jsonl"), "utf8").split("\n")[0]);
      const apiImage = (await exec("docker", ["inspect", "-f", "{{.Image}}", `${PREFIX}-api`])).stdout.trim();
      expect(open.images).toContainEqual({ ref: "utilitarian-standin/utilitarian:1.1.0", id: apiImage });
      // The recorder stopped with the window.
      expect(await watchers(dir)).toBe("");
      expect(fs.existsSync(path.join(windows, "open"))).toBe(false);

      // The SVG as a person sees it: rendered by Chromium, not blank, every stage's title on it.
      const svg = path.join(windows, dir, "report.svg");
      const size = /<svg[^>]*width="(\d+)"[^>]*height="(\d+)"/.exec(fs.readFileSync(svg, "utf8"))!;
      const [width, height] = [Number(size[1]), Number(size[2])];
      const png = await chromiumScreenshot({
        url: `file://${svg}`,
        width,
        height,
        outFile: svg.replace(/svg$/, "png"),
      });
      expect(renderProblems(png, { width, height })).toEqual([]);
      const text = domText(await chromiumDom(`file://${svg}`));
      for (const s of report.stages) expect(text).toContain(s.title);

      // `npm run report` prints the newest report.
      const printed = await exec("node", ["scripts/window-report.js", "print", backups], { cwd: PROJECT_DIR });
      expect(printed.code, printed.stderr).toBe(0);
      expect(printed.stdout).toContain("1.0.0");
      expect(printed.stdout).toContain("1.1.0");
      expect(printed.stdout).toContain(stage("migrate").title);
      // `npm run report` asks the broker, while readings still waited at the end, until they drained.
      let drained = queue;
      const asked = Date.now();
      while (!drained.drained_at && Date.now() - asked < 2 * MINUTE) {
        const checked = await exec("node", ["scripts/window-report.js", "report", backups, "--json"], {
          cwd: PROJECT_DIR,
        });
        expect(checked.code, checked.stderr).toBe(0);
        drained = (JSON.parse(checked.stdout) as Report).queue!;
        if (!drained.drained_at) await sleep(3000);
      }
      expect(drained.drained_at).not.toBeNull();
      expect(ms(drained.drained_at)).toBeGreaterThanOrEqual(ms(queue.peak.at));
      if (queue.at_end.messages > 0) {
        expect(drained.drained_source).toBe("queue-checks.tsv");
        expect(ms(drained.drained_at)).toBeGreaterThanOrEqual(asked - 1000);
        expect(reportOf(dir).queue!.drained_at).toBe(drained.drained_at);
      }
    },
    10 * MINUTE,
  );

  test(
    "1.1.0 -> 1.2.0, whose migration fails: the report names the failed stage with the step's log; the window stays open",
    async () => {
      // 1.2.0's migration refuses negative readings (test/fixtures/images/utilitarian).
      expect(await postReading("broken-meter", -5)).toBe(201);
      stack.configure(config("1.2.0"));
      const run = await stack.up();
      expect(run.code).not.toBe(0);
      // One new window, beside the completed one.
      const upgrades = windowDirs().filter((d) => d.endsWith("-1.1.0-to-1.2.0"));
      expect(upgrades).toHaveLength(1);
      expect(windowDirs()).toHaveLength(2);
      const dir = upgrades[0];
      const report = reportOf(dir);
      expect(report.status).toBe("failed");
      const failed = report.failed!;
      expect(failed.stage).toBe("migrate");
      const migrate = engineStep(run, `${PREFIX}-migrate`);
      expect(migrate.failed).toBe(true);
      // The step's last words, as the engine showed them, are in the report's log.
      const logged = (run.logs.get(`${PREFIX}-migrate`) ?? [])
        .flatMap((l) => l.split("\n"))
        .map((l) => l.replace(/^.*?migrate: /, ""));
      expect(failed.reason).toBe("migrate failed; the log is above");
      expect(logged).toContain(failed.reason);
      expect(failed.log_tail.join("\n")).toContain(failed.reason);
      // And the migration's own error (1.2.0 refuses negative readings), as the engine showed it.
      expect(logged.join("\n")).toMatch(/has a negative value/);
      expect(failed.log_tail.join("\n")).toMatch(/has a negative value/);
      expect(report.stages.find((s) => s.key === "migrate")?.status).toBe("failed");
      expect(fs.readFileSync(path.join(windows, dir, "report.md"), "utf8")).toMatch(/fail/i);
      // Open, for the re-run to resume; the recorder stopped with the failed step.
      expect(fs.readFileSync(path.join(windows, "open"), "utf8").trim()).toBe(dir);
      expect(await watchers(dir)).toBe("");
    },
    10 * MINUTE,
  );
});
