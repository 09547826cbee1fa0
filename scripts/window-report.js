// @ts-check
/**
 * The report of a maintenance window (issue 18): assembled from the raw files the step scripts
 * and the recorder wrote into the window's directory while it ran, never from the plan, and
 * rendered as JSON, Markdown and an SVG timeline. Plain CommonJS for node 20 without
 * dependencies: the step scripts run it, and they cannot compile TypeScript.
 *
 *   node scripts/window-report.js write <windowDir>            writes report.json, .md, .svg
 *   node scripts/window-report.js print [<dir>] [--json]       the newest window's report
 *   node scripts/window-report.js report [<dir>]               print, ask the broker whether what
 *                                                              queued has drained, rewrite the files
 *
 * <dir> is a backup directory (its windows/ are searched), a windows/ directory or one window's
 * directory; by default ./backups. docs/window-report.md describes the files and the report.
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const childProcess = require("node:child_process");

const FORMAT_VERSION = 1;
/** The upgrade's stages in order (components/kinds.ts STAGES). */
const LOG_TAIL_LINES = 40;
const FILES = {
  journal: "journal.jsonl",
  events: "docker-events.jsonl",
  proxy: "proxy.log",
  queue: "queue.tsv",
  queueChecks: "queue-checks.tsv",
};

/**
 * @typedef {{ from: string, to: string | null, seconds: number | null }} Interval
 * @typedef {{ attempt: number, started_at: string, ended_at: string | null, status: "ok" | "failed" | "running",
 *   reason: string | null, log_file: string | null }} Attempt
 * @typedef {{ key: string, title: string, started_at: string | null, ended_at: string | null,
 *   seconds: number | null, status: "ok" | "failed" | "running", source: string, detail: string | null,
 *   attempts?: Attempt[] }} Stage
 * @typedef {{ intervals: Interval[], total_seconds: number, source: string, detail: string }} Outage
 * @typedef {{ name: string, peak: number, peak_at: string, at_end: number }} QueueFigures
 * @typedef {{ peak: { messages: number, at: string }, per_queue: QueueFigures[],
 *   at_end: { messages: number, at: string }, drained_at: string | null, drained_source: string | null,
 *   samples: number }} Queue
 * @typedef {{ stage: string, reason: string, log_file: string | null, log_tail: string[] }} Failure
 * @typedef {{
 *   format_version: number, window: string, stack: string | null, from: string | null, to: string | null,
 *   status: "completed" | "failed" | "incomplete", status_detail: string,
 *   started_at: string | null, ended_at: string | null, seconds: number | null,
 *   order: string[], stages: Stage[], not_reached: { key: string, title: string }[],
 *   outage: { docker: Outage | null, proxy: Outage | null },
 *   backup: { file: string | null, bytes: number | null, sha256: string | null } | null,
 *   restore: { file: string | null } | null,
 *   migrations: { applied: number, migrations: string[] } | null,
 *   queue: Queue | null, failed: Failure | null, notes: string[], sources: string[] }} Report
 * @typedef {{ at: number, type: string, action: string, id: string, attrs: Record<string, string> }} DockerEvent
 */

// ---------------------------------------------------------------------------------------------
// Reading

/** @param {number} ms */
function iso(ms) {
  return new Date(ms).toISOString();
}

/** @param {string | null | undefined} s */
function ms(s) {
  if (!s) return NaN;
  return Date.parse(s);
}

/**
 * Where a stage key stands in the planned order; a key the plan did not list comes last.
 * @param {string[]} order
 * @param {string} key
 */
function rank(order, key) {
  const i = order.indexOf(key);
  return i < 0 ? order.length : i;
}

/** @param {number} a @param {number} b */
function secondsBetween(a, b) {
  return Math.round(b - a) / 1000;
}

/** @param {string} file */
function readLines(file) {
  if (!fs.existsSync(file)) return null;
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
}

/**
 * One JSON object per line; a line that does not parse (a line cut by a kill) is skipped.
 * @param {string} file
 * @returns {Record<string, any>[] | null}
 */
function readJsonLines(file) {
  const lines = readLines(file);
  if (!lines) return null;
  /** @type {Record<string, any>[]} */
  const out = [];
  for (const line of lines) {
    try {
      const v = JSON.parse(line);
      if (v && typeof v === "object") out.push(v);
    } catch {
      // a partial last line
    }
  }
  return out;
}

/**
 * This stack's container events and every image pull, in time order.
 * @param {Record<string, any>[]} raw
 * @param {string | null} stack
 * @returns {DockerEvent[]}
 */
function dockerEvents(raw, stack) {
  /** @type {DockerEvent[]} */
  const out = [];
  for (const e of raw) {
    const attrs = (e.Actor && e.Actor.Attributes) || {};
    const type = e.Type || "";
    const action = e.Action || e.status || "";
    const at = typeof e.timeNano === "number" ? Math.floor(e.timeNano / 1e6) : Number(e.time) * 1000;
    if (!Number.isFinite(at)) continue;
    if (type === "container" && (stack === null || attrs["io.utilitarian.stack"] === stack))
      out.push({ at, type, action, id: (e.Actor && e.Actor.ID) || e.id || "", attrs });
    else if (type === "image" && action === "pull")
      out.push({ at, type, action, id: (e.Actor && e.Actor.ID) || e.id || "", attrs });
  }
  return out.sort((a, b) => a.at - b.at);
}

/** @param {DockerEvent} e */
const isApi = (e) => e.attrs["io.utilitarian.role"] === "api";
/** @param {DockerEvent} e */
const isFollower = (e) => e.attrs["io.utilitarian.follows-api"] !== undefined;
const STOPPING = ["kill", "die", "stop", "destroy"];
/** A container's own life, not a `docker exec` in it. */
const LIFECYCLE = /^(create|start|restart|kill|die|stop|destroy|health_status: \w+)$/;

// ---------------------------------------------------------------------------------------------
// Assembling

/**
 * The report of the window in `windowDir`, from its raw files.
 * @param {string} windowDir
 * @returns {Report}
 */
function assemble(windowDir) {
  const dir = path.resolve(windowDir);
  /** @type {string[]} */
  const notes = [];
  /** @type {string[]} */
  const sources = [];
  const journal = readJsonLines(path.join(dir, FILES.journal));
  if (!journal) throw new Error(`${path.join(dir, FILES.journal)} does not exist: not a window directory`);
  sources.push(FILES.journal);
  const open = journal.find((j) => j.event === "open") || {};
  if (!open.event) notes.push("the journal has no `open` line: versions, stack and stage titles are unknown");
  /** @type {Map<string, string>} */
  const titles = new Map();
  for (const s of Array.isArray(open.stages) ? open.stages : []) if (s && s.key) titles.set(s.key, String(s.title));
  const title = (/** @type {string} */ key) => titles.get(key) || key;
  // The stages' order is the plan's (components/kinds.ts, STAGES), as the open line lists them.
  const order = [...titles.keys()];
  const stack = typeof open.stack === "string" ? open.stack : null;
  const openedAt = ms(open.at);
  const close = journal.find((j) => j.event === "close");
  const lastJournalAt = Math.max(...journal.map((j) => ms(j.at)).filter(Number.isFinite));

  // Step stages: the journal's start/end/fail lines, per attempt.
  /** @type {Map<string, Attempt[]>} */
  const attemptsOf = new Map();
  /** @type {Map<string, Record<string, any>>} */
  const factsOf = new Map();
  /** @type {Record<string, any> | null} */
  let lastStepEvent = null;
  for (const j of journal) {
    if (!["start", "end", "fail"].includes(j.event) || typeof j.step !== "string") continue;
    lastStepEvent = j;
    const list = attemptsOf.get(j.step) || [];
    attemptsOf.set(j.step, list);
    if (j.event === "start") {
      list.push({
        attempt: Number(j.attempt) || list.length + 1,
        started_at: iso(ms(j.at)),
        ended_at: null,
        status: "running",
        reason: null,
        log_file: j.log || null,
      });
      continue;
    }
    const current = list[list.length - 1];
    if (!current || current.status !== "running") {
      notes.push(`the journal has \`${j.event}\` of ${j.step} at ${j.at} without its start`);
      continue;
    }
    current.ended_at = iso(ms(j.at));
    if (j.event === "end") {
      current.status = "ok";
      factsOf.set(j.step, j.facts || {});
    } else {
      current.status = "failed";
      current.reason = typeof j.reason === "string" ? j.reason : "";
      if (j.log) current.log_file = j.log;
    }
  }
  /** @type {Stage[]} */
  const stages = [];
  for (const [key, list] of attemptsOf) {
    const last = list[list.length - 1];
    stages.push({
      key,
      title: title(key),
      started_at: last.started_at,
      ended_at: last.ended_at,
      seconds: last.ended_at ? secondsBetween(ms(last.started_at), ms(last.ended_at)) : null,
      status: last.status,
      source: `journal, ${last.log_file || "no log"}`,
      detail: list.length > 1 ? `attempt ${last.attempt}; ${list.length - 1} earlier attempt(s) listed` : null,
      ...(list.length > 1 ? { attempts: list } : {}),
    });
  }
  /** @param {string} key */
  const stepOk = (key) => {
    const list = attemptsOf.get(key);
    const last = list && list[list.length - 1];
    return last && last.status === "ok" ? last : undefined;
  };

  // Engine stages: Docker's events.
  const rawEvents = readJsonLines(path.join(dir, FILES.events));
  const events = rawEvents ? dockerEvents(rawEvents, stack) : [];
  // The records end at the close, or, in a window that did not close, at the later of the
  // journal's last line and Docker's last record of the stack's containers (a run that stopped in
  // an engine operation went on after its last step).
  const lastContainerEvent = events.filter((e) => e.type === "container" && LIFECYCLE.test(e.action)).pop();
  const endAt = close ? ms(close.at) : Math.max(lastJournalAt, lastContainerEvent ? lastContainerEvent.at : -Infinity);
  /** @type {Outage | null} */
  let dockerOutage = null;
  if (rawEvents) {
    sources.push(FILES.events);
    if (stack === null) notes.push("no stack named in the journal: Docker events of every stack were read");
    const stepStarted = (/** @type {string} */ key) => attemptsOf.has(key);
    // Containers name their image by ID; the open line may give each image's reference and ID.
    /** @type {Map<string, string>} */
    const refs = new Map();
    for (const i of Array.isArray(open.images) ? open.images : [])
      if (i && typeof i.id === "string" && typeof i.ref === "string") refs.set(i.id, i.ref);
    const imageRef = (/** @type {string} */ image) => refs.get(image) || image;
    stages.push(...engineStages(events, { stepOk, stepStarted, title, imageRef, openedAt, closed: !!close, notes }));
    dockerOutage = dockerApiOutage(events, openedAt, endAt);
  } else {
    notes.push(
      "no docker-events.jsonl: the engine's stages (pull, stop, start-api, start) and the API's outage are unknown",
    );
  }
  stages.sort((a, b) => rank(order, a.key) - rank(order, b.key) || ms(a.started_at) - ms(b.started_at));

  // The proxy's view of the API.
  const proxyLines = readLines(path.join(dir, FILES.proxy));
  /** @type {Outage | null} */
  let proxyOutage = null;
  if (proxyLines) {
    sources.push(FILES.proxy);
    proxyOutage = proxyApiOutage(proxyLines, openedAt, endAt);
  }

  // The broker's queues.
  const queueLines = readLines(path.join(dir, FILES.queue));
  /** @type {Queue | null} */
  let queue = null;
  if (queueLines) {
    sources.push(FILES.queue);
    const checks = readLines(path.join(dir, FILES.queueChecks));
    if (checks) sources.push(FILES.queueChecks);
    queue = queueFigures(queueLines, checks || []);
  }

  // Outcome.
  /** @type {Failure | null} */
  let failed = null;
  /** @type {Report["status"]} */
  let status;
  let statusDetail;
  if (close) {
    status = "completed";
    statusDetail = "the window closed after its last step";
  } else if (lastStepEvent && lastStepEvent.event === "fail") {
    status = "failed";
    const list = attemptsOf.get(lastStepEvent.step) || [];
    const last = list[list.length - 1];
    const logFile = (last && last.log_file) || lastStepEvent.log || null;
    failed = {
      stage: lastStepEvent.step,
      reason: String(lastStepEvent.reason || ""),
      log_file: logFile,
      log_tail: logFile ? logTail(path.join(dir, logFile)) : [],
    };
    if (logFile && !fs.existsSync(path.join(dir, logFile))) notes.push(`the failed step's log ${logFile} is missing`);
    if (logFile) sources.push(logFile);
    statusDetail = `the step ${lastStepEvent.step} failed: ${failed.reason}`;
  } else {
    status = "incomplete";
    if (lastStepEvent && lastStepEvent.event === "start")
      statusDetail = `the run stopped while ${lastStepEvent.step} ran: its start is the journal's last line (killed, or still running)`;
    else if (lastStepEvent)
      statusDetail = `the run stopped after ${lastStepEvent.step} ended, outside the step scripts (in an engine operation: a container's stop, create or start, or pulumi itself); the step scripts recorded no failure`;
    else statusDetail = "no step started: the run stopped before the first step, in an engine operation";
    if (lastContainerEvent && lastStepEvent?.event !== "start")
      statusDetail += `; Docker's last record of the stack: ${lastContainerEvent.action} of ${
        lastContainerEvent.attrs.name || lastContainerEvent.id.slice(0, 12)
      } at ${iso(lastContainerEvent.at)}`;
  }

  const planned = Array.isArray(open.stages) ? open.stages.map((/** @type {any} */ s) => String(s.key)) : [];
  const seen = new Set(stages.map((s) => s.key));
  // A pull not seen happened before the records or not at all (a note says which): not "not reached".
  const notReached = planned.filter((k) => !seen.has(k) && k !== "pull").map((k) => ({ key: k, title: title(k) }));

  const backupFacts = stepOk("backup") ? factsOf.get("backup") : undefined;
  const restoreFacts = stepOk("restore") ? factsOf.get("restore") : undefined;
  const migrateFacts = stepOk("migrate") ? factsOf.get("migrate") : undefined;
  const startedAt = Number.isFinite(openedAt) ? openedAt : NaN;
  const endedAt = Number.isFinite(endAt) ? endAt : NaN;

  return {
    format_version: FORMAT_VERSION,
    window: path.basename(dir),
    stack,
    from: open.from ?? null,
    to: open.to ?? null,
    status,
    status_detail: statusDetail,
    started_at: Number.isFinite(startedAt) ? iso(startedAt) : null,
    ended_at: Number.isFinite(endedAt) ? iso(endedAt) : null,
    seconds: Number.isFinite(startedAt) && Number.isFinite(endedAt) ? secondsBetween(startedAt, endedAt) : null,
    stages,
    order,
    not_reached: notReached,
    outage: { docker: dockerOutage, proxy: proxyOutage },
    backup: backupFacts
      ? {
          file: backupFacts.file ?? null,
          bytes: typeof backupFacts.bytes === "number" ? backupFacts.bytes : null,
          sha256: backupFacts.sha256 ?? null,
        }
      : null,
    restore: restoreFacts ? { file: restoreFacts.file ?? null } : null,
    migrations: migrateFacts
      ? {
          applied: Number(migrateFacts.applied) || 0,
          migrations: Array.isArray(migrateFacts.migrations) ? migrateFacts.migrations.map(String) : [],
        }
      : null,
    queue,
    failed,
    notes,
    sources,
  };
}

/**
 * @param {DockerEvent[]} events
 * @param {{ stepOk: (key: string) => Attempt | undefined, stepStarted: (key: string) => boolean,
 *   title: (key: string) => string, imageRef: (image: string) => string, openedAt: number, closed: boolean,
 *   notes: string[] }} ctx
 * @returns {Stage[]}
 */
function engineStages(events, { stepOk, stepStarted, title, imageRef, openedAt, closed, notes }) {
  /** @type {Stage[]} */
  const out = [];
  const source = "docker-events.jsonl";
  /**
   * @param {string} key @param {number} start @param {number} end @param {string} detail
   * @param {boolean} finished
   */
  const stage = (key, start, end, detail, finished) => {
    out.push({
      key,
      title: title(key),
      started_at: Number.isFinite(start) ? iso(start) : null,
      ended_at: finished && Number.isFinite(end) ? iso(end) : null,
      seconds: finished && Number.isFinite(start) && Number.isFinite(end) ? secondsBetween(start, end) : null,
      status: finished ? "ok" : "running",
      source,
      detail,
    });
  };
  // What the backup (or a restore) did to the writers is part of that step: the stop begins after it.
  const before = [stepOk("backup"), stepOk("restore")].filter((a) => a && a.ended_at).map((a) => ms(a && a.ended_at));
  const stopAfter = before.length ? Math.max(...before) : openedAt;

  // stop: the followers', then the API's kill/die/stop/destroy, up to the old API's destroy.
  const stopping = events.filter(
    (e) => e.type === "container" && e.at > stopAfter && STOPPING.includes(e.action) && (isApi(e) || isFollower(e)),
  );
  const apiDestroy = stopping.find((e) => isApi(e) && e.action === "destroy");
  /** @type {number} */
  let stopEnd = NaN;
  if (stopping.length) {
    const until = apiDestroy ? apiDestroy.at : Infinity;
    const inStop = stopping.filter((e) => e.at <= until);
    stopEnd = apiDestroy ? apiDestroy.at : inStop[inStop.length - 1].at;
    const names = [...new Set(inStop.map((e) => e.attrs.name).filter(Boolean))];
    stage(
      "stop",
      inStop[0].at,
      stopEnd,
      `${names.length} container(s): ${names.join(", ")}${apiDestroy ? "" : "; the old API's destroy not seen"}`,
      !!apiDestroy,
    );
  }

  // start-api: the new API container's create to its start. Docker's health check (every 15 s for
  // the API) says healthy much later, often after migrate: the detail gives when, not the stage.
  const apiCreate = events.find(
    (e) =>
      e.type === "container" && isApi(e) && e.action === "create" && e.at >= (apiDestroy ? apiDestroy.at : stopAfter),
  );
  /** @type {Set<string>} */
  const newImages = new Set();
  if (apiCreate) {
    if (apiCreate.attrs.image) newImages.add(imageRef(apiCreate.attrs.image));
    const mine = events.filter((e) => e.id === apiCreate.id && e.at >= apiCreate.at);
    const started = mine.find((e) => e.action === "start");
    const health = started && mine.find((e) => e.action.startsWith("health_status") && e.at >= started.at);
    stage(
      "start-api",
      apiCreate.at,
      started ? started.at : NaN,
      `${apiCreate.attrs.name || apiCreate.id.slice(0, 12)} (${apiCreate.attrs.image ? imageRef(apiCreate.attrs.image) : "image unknown"}): ${
        !started
          ? "created, no start seen"
          : health
            ? `create to start; Docker's health check first said ${health.action.slice("health_status: ".length)} at ${iso(health.at)}`
            : "create to start; no health status from Docker in the records"
      }`,
      !!started,
    );
  }

  // start: the followers' creates and starts after static (or migrate) ended, to their last start.
  const after = ["static", "migrate"].map(stepOk).find((a) => a && a.ended_at);
  if (after && after.ended_at) {
    const from = ms(after.ended_at);
    const followers = events.filter(
      (e) => e.type === "container" && isFollower(e) && e.at > from && (e.action === "create" || e.action === "start"),
    );
    for (const e of followers) if (e.action === "create" && e.attrs.image) newImages.add(imageRef(e.attrs.image));
    const starts = followers.filter((e) => e.action === "start");
    if (followers.length) {
      const names = [...new Set(starts.map((e) => e.attrs.name).filter(Boolean))];
      // Its last start is its end once a later record shows the engine went on (verify began, the window closed).
      const finished = !!starts.length && (closed || stepStarted("verify"));
      stage(
        "start",
        followers[0].at,
        starts.length ? starts[starts.length - 1].at : NaN,
        `${names.length} container(s) started: ${names.join(", ")}`,
        finished,
      );
    }
  }
  // Followers declared anew while only the API starts have their create there; their image counts too.
  for (const e of events)
    if (
      e.type === "container" &&
      e.action === "create" &&
      e.at > stopAfter &&
      (isApi(e) || isFollower(e)) &&
      e.attrs.image
    )
      newImages.add(imageRef(e.attrs.image));

  // pull: the pulls of the images the new containers run and the old ones did not, before the
  // window opened. A pull event names no stack: an image this stack ran already (an edge service
  // whose version stayed) may have been pulled by another.
  for (const e of events)
    if (e.type === "container" && e.at <= stopAfter && e.attrs.image && e.action !== "create")
      newImages.delete(imageRef(e.attrs.image));
  const pulls = events.filter(
    (e) =>
      e.type === "image" &&
      e.action === "pull" &&
      newImages.has(e.id) &&
      (!Number.isFinite(openedAt) || e.at <= openedAt),
  );
  if (pulls.length) {
    const last = pulls[pulls.length - 1];
    out.push({
      key: "pull",
      title: title("pull"),
      started_at: null,
      ended_at: iso(last.at),
      seconds: null,
      status: "ok",
      source,
      detail: `${[...new Set(pulls.map((p) => p.id))].join(", ")}: Docker records when a pull ended, not when it began`,
    });
  } else if ([...newImages].some((i) => i.startsWith("sha256:"))) {
    notes.push(
      `the new containers name their images by ID (${[...newImages].join(", ")}), as the Docker provider creates them, and the journal's open line maps no reference to them (\`images\`): their pulls, named by reference, cannot be found`,
    );
  } else if (newImages.size) {
    notes.push(
      `no pull of ${[...newImages].join(", ")} in Docker's events before the window opened: the images were there already, or the pull happened before the events were recorded`,
    );
  }
  return out;
}

/**
 * Intervals in which no API container of the stack ran, clipped to the window: from a kill (the
 * stop's signal) or die to the next start, and from `health_status: unhealthy` to `healthy`.
 * A start counts, not Docker's `healthy`: the API's health check runs every 15 s, so `healthy`
 * comes up to 15 s after the API answers (the proxy, checking every 250 ms, sees when it does).
 * @param {DockerEvent[]} events @param {number} openedAt @param {number} endAt
 * @returns {Outage}
 */
function dockerApiOutage(events, openedAt, endAt) {
  const api = events.filter((e) => e.type === "container" && isApi(e));
  const detail =
    "no API container of the stack running: from its kill (or die) to the next start, and from a health_status unhealthy to the next healthy";
  if (!api.length) return { intervals: [], total_seconds: 0, source: "docker-events.jsonl", detail };
  /** @type {Map<string, boolean>} */
  const up = new Map();
  // A container first seen stopping or reporting its health ran before the records began.
  for (const e of api) if (!up.has(e.id)) up.set(e.id, !["create", "start"].includes(e.action));
  /** @type {{ from: number, to: number }[]} */
  const raw = [];
  let downSince = [...up.values()].some(Boolean) ? NaN : -Infinity;
  for (const e of api) {
    const was = [...up.values()].some(Boolean);
    if (["kill", "die", "stop", "destroy", "health_status: unhealthy"].includes(e.action)) up.set(e.id, false);
    else if (e.action === "start" || e.action === "health_status: healthy") up.set(e.id, true);
    const now = [...up.values()].some(Boolean);
    if (was && !now) downSince = e.at;
    else if (!was && now) {
      raw.push({ from: downSince, to: e.at });
      downSince = NaN;
    }
  }
  if (!Number.isNaN(downSince)) raw.push({ from: downSince, to: Infinity });
  return {
    ...clip(raw, openedAt, endAt),
    source: "docker-events.jsonl",
    detail,
  };
}

/**
 * @param {{ from: number, to: number }[]} raw @param {number} openedAt @param {number} endAt
 * @returns {{ intervals: Interval[], total_seconds: number }}
 */
function clip(raw, openedAt, endAt) {
  const lo = Number.isFinite(openedAt) ? openedAt : -Infinity;
  const hi = Number.isFinite(endAt) ? endAt : Infinity;
  /** @type {Interval[]} */
  const intervals = [];
  let total = 0;
  for (const r of raw) {
    const from = Math.max(r.from, lo);
    if (r.to <= lo || from > hi || !Number.isFinite(from)) continue;
    // An interval still open when the records end stays open: its end is unknown.
    const to = r.to === Infinity ? null : r.to;
    const seconds = to === null ? null : secondsBetween(from, to);
    if (seconds !== null) total += seconds;
    intervals.push({ from: iso(from), to: to === null ? null : iso(to), seconds });
  }
  return { intervals, total_seconds: Math.round(total * 1000) / 1000 };
}

/**
 * HAProxy's state changes of the API's servers (`Server <backend>/<server> is DOWN` or `was DOWN
 * and now enters maintenance`, then `is UP, reason: ...`). `is UP/READY (resolves again)` only
 * says the name resolves again: the next health check decides, so it does not end an outage.
 * The proxy answers 503 while any backend has no server: the backends' outages are joined.
 * @param {string[]} lines @param {number} openedAt @param {number} endAt
 * @returns {Outage}
 */
function proxyApiOutage(lines, openedAt, endAt) {
  /** @type {Map<string, boolean>} server -> down */
  const down = new Map();
  /** @type {{ from: number, to: number }[]} */
  const raw = [];
  let since = NaN;
  for (const line of lines) {
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z)\s+(.*)$/.exec(line);
    if (!m) continue;
    const at = ms(m[1]);
    const text = m[2];
    const s =
      /^Server (\S+\/\S+) (is DOWN\b|was DOWN and now enters maintenance|is going DOWN for maintenance|is UP(?:,|$))/.exec(
        text,
      );
    if (!s || !Number.isFinite(at)) continue;
    const was = [...down.values()].some(Boolean);
    down.set(s[1], !s[2].startsWith("is UP"));
    const now = [...down.values()].some(Boolean);
    if (!was && now) since = at;
    else if (was && !now) {
      raw.push({ from: since, to: at });
      since = NaN;
    }
  }
  if (!Number.isNaN(since)) raw.push({ from: since, to: Infinity });
  return {
    ...clip(raw, openedAt, endAt),
    source: "proxy.log",
    detail: `HAProxy's health checks: from a server's DOWN to every server UP again (${[...down.keys()].join(", ") || "no server state seen"})`,
  };
}

/** The log's last lines, blank ones kept (a traceback has them). @param {string} file */
function logTail(file) {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines.slice(-LOG_TAIL_LINES);
}

/**
 * `<ISO>\t<queue>\t<messages>` samples; several lines share a sample's time.
 * @param {string[]} lines
 * @returns {Map<string, Map<string, number>>} time -> queue -> messages, in file order
 */
function samples(lines) {
  /** @type {Map<string, Map<string, number>>} */
  const out = new Map();
  for (const line of lines) {
    const [at, name, messages] = line.split("\t");
    const n = Number(messages);
    if (!name || !Number.isFinite(n) || !Number.isFinite(ms(at))) continue;
    const sample = out.get(at) || new Map();
    out.set(at, sample);
    sample.set(name, n);
  }
  return out;
}

/**
 * @param {string[]} lines the window's samples @param {string[]} checks later checks (`npm run report`)
 * @returns {Queue | null}
 */
function queueFigures(lines, checks) {
  const all = [...samples(lines)].sort((a, b) => ms(a[0]) - ms(b[0]));
  if (!all.length) return null;
  /** @type {Map<string, { peak: number, peak_at: string }>} */
  const perQueue = new Map();
  let peak = { messages: -1, at: "" };
  for (const [at, sample] of all) {
    let total = 0;
    for (const [name, n] of sample) {
      total += n;
      const q = perQueue.get(name);
      if (!q || n > q.peak) perQueue.set(name, { peak: n, peak_at: iso(ms(at)) });
    }
    if (total > peak.messages) peak = { messages: total, at: iso(ms(at)) };
  }
  const [endAt, endSample] = all[all.length - 1];
  const endTotal = [...endSample.values()].reduce((a, b) => a + b, 0);
  /** @type {string | null} */
  let drainedAt = null;
  /** @type {string | null} */
  let drainedSource = null;
  if (endTotal === 0) {
    // The first empty sample after the last one with messages.
    const totals = all.map(([at, s]) => ({ at, total: [...s.values()].reduce((a, b) => a + b, 0) }));
    let i = totals.length - 1;
    while (i > 0 && totals[i - 1].total === 0) i--;
    drainedAt = iso(ms(totals[i].at));
    drainedSource = "queue.tsv";
  } else {
    const later = [...samples(checks)].sort((a, b) => ms(a[0]) - ms(b[0]));
    // Written only by checks after the window's report, so every line is later than its samples.
    const empty = later.find(([, s]) => [...s.values()].every((n) => n === 0));
    if (empty) {
      drainedAt = iso(ms(empty[0]));
      drainedSource = "queue-checks.tsv";
    }
  }
  return {
    peak,
    per_queue: [...perQueue]
      .map(([name, q]) => ({ name, peak: q.peak, peak_at: q.peak_at, at_end: endSample.get(name) ?? 0 }))
      .sort((a, b) => b.peak - a.peak || a.name.localeCompare(b.name)),
    at_end: { messages: endTotal, at: iso(ms(endAt)) },
    drained_at: drainedAt,
    drained_source: drainedSource,
    samples: all.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** `18:15:00.123` of an ISO time, or `?`. @param {string | null | undefined} s */
function clock(s) {
  return s ? s.slice(11, 23) : "?";
}

/** @param {string} s */
function capital(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** @param {number | null | undefined} seconds */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "?";
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${(seconds - m * 60).toFixed(0)} s`;
}

/** @param {number} bytes */
function humanBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(0)} kB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

/** Text for Markdown outside code: HTML, table pipes and line breaks neutralised. @param {unknown} v */
function mdText(v) {
  return String(v)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\|/g, "\\|")
    .replace(/[\r\n]+/g, " ");
}

/** Inline code that survives any backticks inside. @param {unknown} v */
function mdCode(v) {
  const text = String(v).replace(/[\r\n]+/g, " ");
  const longest = Math.max(0, ...(text.match(/`+/g) || []).map((r) => r.length));
  const fence = "`".repeat(longest + 1);
  return `${fence}${longest ? " " : ""}${text.replace(/\|/g, "\\|")}${longest ? " " : ""}${fence}`;
}

/** @param {Outage} o */
function outageLine(o) {
  if (!o.intervals.length) return "none";
  const parts = o.intervals.map((i) =>
    i.to
      ? `${clock(i.from)}–${clock(i.to)} (${duration(i.seconds)})`
      : `from ${clock(i.from)}, not over when the records end`,
  );
  const open = o.intervals.some((i) => !i.to);
  const total = open
    ? o.intervals.length > 1
      ? `${duration(o.total_seconds)} in the closed ones and one still open`
      : "still open"
    : `${duration(o.total_seconds)} in all`;
  return `${o.intervals.length} interval(s), ${total}: ${parts.join(", ")}`;
}

/**
 * The stages seen and those not reached, in the upgrade's order.
 * @param {Report} r
 * @returns {(Stage | { key: string, title: string })[]}
 */
function rows(r) {
  return [...r.stages, ...r.not_reached].sort((a, b) => rank(r.order, a.key) - rank(r.order, b.key));
}

/**
 * The report as Markdown, for a change log.
 * @param {Report} r
 */
function renderMarkdown(r) {
  const L = [];
  L.push(`# Maintenance window ${mdText(r.from ?? "?")} → ${mdText(r.to ?? "?")}: ${r.status}`);
  L.push("");
  L.push(
    `Window ${mdCode(r.window)}${r.stack ? `, stack ${mdCode(r.stack)}` : ""}: ${r.started_at ? r.started_at.slice(0, 10) : "?"} ` +
      `${clock(r.started_at)} to ${clock(r.ended_at)} UTC (${duration(r.seconds)}). ${mdText(capital(r.status_detail))}.`,
  );
  L.push("");
  L.push("| Stage | Start (UTC) | End (UTC) | Duration | Status | Source |");
  L.push("|---|---|---|---|---|---|");
  for (const s of rows(r)) {
    if (!("status" in s)) {
      L.push(`| ${mdText(s.title)} | — | — | — | not reached | |`);
      continue;
    }
    L.push(
      `| ${mdText(s.title)} | ${s.started_at ? clock(s.started_at) : "—"} | ${s.ended_at ? clock(s.ended_at) : "—"} | ` +
        `${s.seconds === null ? "—" : duration(s.seconds)} | ${s.status} | ${mdText(s.source)} |`,
    );
  }
  const details = r.stages.filter((s) => s.detail);
  if (details.length) {
    L.push("");
    for (const s of details) L.push(`- ${mdText(s.title)}: ${mdText(s.detail)}`);
  }
  const retried = r.stages.filter((s) => s.attempts);
  for (const s of retried) {
    for (const a of s.attempts || [])
      L.push(
        `- ${mdText(s.title)}, attempt ${a.attempt}: ${clock(a.started_at)}–${clock(a.ended_at)}, ${a.status}` +
          `${a.reason ? `: ${mdText(a.reason)}` : ""}${a.log_file ? ` (${mdCode(a.log_file)})` : ""}`,
      );
  }
  L.push("", "## The API's outage", "");
  L.push(`- Docker: ${r.outage.docker ? outageLine(r.outage.docker) : "unknown (no Docker events)"}`);
  L.push(`- Maintenance proxy: ${r.outage.proxy ? outageLine(r.outage.proxy) : "no proxy log (the proxy is off)"}`);
  L.push("", "## Backup", "");
  if (r.backup) {
    L.push(`- File: ${mdCode(r.backup.file ?? "?")}`);
    L.push(`- Size: ${r.backup.bytes === null ? "?" : `${humanBytes(r.backup.bytes)} (${r.backup.bytes} bytes)`}`);
    L.push(`- SHA-256: ${mdCode(r.backup.sha256 ?? "?")}`);
  } else L.push("No backup finished in this window.");
  if (r.restore) L.push("", `Restored from ${mdCode(r.restore.file ?? "?")}.`);
  L.push("", "## Migrations", "");
  if (!r.migrations) L.push("Migrate did not finish in this window.");
  else if (!r.migrations.applied) L.push("None applied.");
  else {
    L.push(`${r.migrations.applied} applied:`, "");
    for (const m of r.migrations.migrations) L.push(`- ${mdCode(m)}`);
  }
  L.push("", "## Readings queued in RabbitMQ", "");
  if (!r.queue) L.push("Not sampled (no managed broker).");
  else {
    const q = r.queue;
    L.push(`- Peak: ${q.peak.messages} message(s) at ${clock(q.peak.at)}`);
    L.push(`- When the run ended (${clock(q.at_end.at)}): ${q.at_end.messages} waiting`);
    L.push(
      `- Drained: ${
        q.drained_at
          ? `drained by ${q.drained_at.slice(0, 10)} ${clock(q.drained_at)} (${q.drained_source === "queue.tsv" ? "the window's samples" : "a later check, `npm run report`"})`
          : "not yet known (`npm run report` asks the broker)"
      }`,
    );
    L.push("", "| Queue | Peak | At | When the run ended |", "|---|---|---|---|");
    for (const p of q.per_queue) L.push(`| ${mdText(p.name)} | ${p.peak} | ${clock(p.peak_at)} | ${p.at_end} |`);
  }
  if (r.failed) {
    const f = r.failed;
    L.push("", "## Failure", "");
    L.push(`Stage ${mdCode(f.stage)} failed: ${mdText(f.reason)}`);
    L.push("");
    L.push(`Last ${f.log_tail.length} line(s) of ${f.log_file ? mdCode(f.log_file) : "its log"}:`);
    const body = f.log_tail.join("\n");
    const longest = Math.max(2, ...(body.match(/`+/g) || []).map((x) => x.length));
    const fence = "`".repeat(longest + 1);
    L.push("", `${fence}text`, body, fence);
  }
  if (r.notes.length) {
    L.push("", "## Notes", "");
    for (const n of r.notes) L.push(`- ${mdText(n)}`);
  }
  L.push("", `Sources: ${r.sources.map(mdCode).join(", ")}.`, "");
  return L.join("\n");
}

/** @param {unknown} v */
function xml(v) {
  return String(v)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const SVG = { width: 960, labelWidth: 350, right: 40, top: 56, row: 30, bar: 16, axis: 40, legend: 44 };
const COLORS = { ok: "#3b6fb6", failed: "#c62828", running: "#9e9e9e", outage: "#f2a900", proxy: "#7b1fa2" };

/**
 * The window as an SVG timeline: a bar per stage (failed in red), the API's outage shaded across
 * the chart, a time axis in UTC and a legend. Self-contained: no scripts, fonts or links.
 * @param {Report} r
 */
function renderSvg(r) {
  const { width, labelWidth, right, top, row, bar, axis, legend } = SVG;
  const chartLeft = labelWidth;
  const chartWidth = width - labelWidth - right;
  const rowCount = r.stages.length + r.not_reached.length || 1;
  const chartBottom = top + rowCount * row;
  const height = chartBottom + axis + legend;
  /** @type {number[]} */
  const times = [];
  for (const t of [r.started_at, r.ended_at]) if (t) times.push(ms(t));
  for (const s of r.stages) {
    if (s.started_at) times.push(ms(s.started_at));
    if (s.ended_at && s.started_at) times.push(ms(s.ended_at));
  }
  const t0 = times.length ? Math.min(...times) : 0;
  const t1 = Math.max(t0 + 1000, ...times);
  /** @param {number} t */
  const x = (t) => chartLeft + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * chartWidth;
  const f = (/** @type {number} */ n) => n.toFixed(1);
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<title>${xml(`Maintenance window ${r.from ?? "?"} to ${r.to ?? "?"}: ${r.status}`)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="12" y="24" font-size="16" font-weight="bold">${xml(`Maintenance window ${r.from ?? "?"} → ${r.to ?? "?"}: ${r.status}`)}</text>`,
  );
  out.push(
    `<text x="12" y="42" fill="#555555">${xml(`${r.window}, ${r.started_at ? r.started_at.slice(0, 10) : "?"} ${clock(r.started_at)}–${clock(r.ended_at)} UTC`)}</text>`,
  );
  // The outage, shaded across every row; the proxy's 503s as a band under the rows.
  const end = r.ended_at ? ms(r.ended_at) : t1;
  for (const i of r.outage.docker ? r.outage.docker.intervals : []) {
    const a = x(ms(i.from));
    const b = x(i.to ? ms(i.to) : end);
    out.push(
      `<rect class="outage" x="${f(a)}" y="${top - 4}" width="${f(Math.max(b - a, 1))}" height="${rowCount * row + 4}" fill="${COLORS.outage}" fill-opacity="0.25"><title>${xml(`API down (Docker): ${clock(i.from)}–${clock(i.to)} (${duration(i.seconds)})`)}</title></rect>`,
    );
  }
  for (const i of r.outage.proxy ? r.outage.proxy.intervals : []) {
    const a = x(ms(i.from));
    const b = x(i.to ? ms(i.to) : end);
    out.push(
      `<rect class="proxy-outage" x="${f(a)}" y="${chartBottom + 1}" width="${f(Math.max(b - a, 1))}" height="5" fill="${COLORS.proxy}"><title>${xml(`the proxy answered 503: ${clock(i.from)}–${clock(i.to)} (${duration(i.seconds)})`)}</title></rect>`,
    );
  }
  // Rows, in the upgrade's order.
  rows(r).forEach((s, n) => {
    const y = top + n * row;
    if (n % 2 === 1)
      out.push(`<rect x="0" y="${y}" width="${width}" height="${row}" fill="#000000" fill-opacity="0.03"/>`);
    if (!("status" in s)) {
      out.push(`<text class="stage-label" x="12" y="${y + row / 2 + 4}" fill="#777777">${xml(s.title)}</text>`);
      out.push(`<text x="${chartLeft + 4}" y="${y + row / 2 + 4}" fill="#777777" font-size="11">not reached</text>`);
      return;
    }
    out.push(`<text class="stage-label" x="12" y="${y + row / 2 + 4}">${xml(s.title)}</text>`);
    const color = COLORS[s.status];
    const tip = `${s.title}: ${clock(s.started_at)}–${clock(s.ended_at)} (${duration(s.seconds)}), ${s.status}`;
    if (s.started_at) {
      const a = x(ms(s.started_at));
      const b = s.ended_at ? x(ms(s.ended_at)) : x(end);
      out.push(
        `<rect class="stage stage-${s.status}" x="${f(a)}" y="${y + (row - bar) / 2}" width="${f(Math.max(b - a, 2))}" height="${bar}" fill="${color}"${s.ended_at ? "" : ' fill-opacity="0.5"'}><title>${xml(tip)}</title></rect>`,
      );
      // Its duration right of the bar, or left of it where the bar reaches the chart's end.
      const after = b + 4 + 44 <= width;
      out.push(
        `<text x="${f(after ? b + 4 : a - 4)}" y="${y + row / 2 + 4}"${after ? "" : ' text-anchor="end"'} fill="#333333" font-size="11">${xml(duration(s.seconds))}</text>`,
      );
    } else if (s.ended_at) {
      // Only its end is known (a pull before the window): a mark there, or at the left edge with its time.
      const at = ms(s.ended_at);
      const b = x(at);
      out.push(
        `<rect class="stage stage-${s.status}" x="${f(b - 2)}" y="${y + (row - bar) / 2}" width="4" height="${bar}" fill="${color}"><title>${xml(tip)}</title></rect>`,
      );
      out.push(
        `<text x="${f(b + 6)}" y="${y + row / 2 + 4}" fill="#333333" font-size="11">${xml(at < t0 ? `ended ${clock(s.ended_at)}, before the axis` : `ended ${clock(s.ended_at)}`)}</text>`,
      );
    }
  });
  // Axis.
  const span = (t1 - t0) / 1000;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const step = (steps.find((s) => span / s <= 8) || 7200) * 1000;
  out.push(
    `<line x1="${chartLeft}" y1="${chartBottom + 8}" x2="${chartLeft + chartWidth}" y2="${chartBottom + 8}" stroke="#333333"/>`,
  );
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const tx = f(x(t));
    out.push(
      `<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${chartBottom + 12}" stroke="#cccccc" stroke-width="0.5"/>`,
    );
    out.push(
      `<text class="tick" x="${tx}" y="${chartBottom + 26}" text-anchor="middle" font-size="11">${iso(t).slice(11, step < 60000 ? 19 : 16)}</text>`,
    );
  }
  out.push(`<text x="12" y="${chartBottom + 26}" font-size="11" fill="#555555">time (UTC)</text>`);
  // Legend.
  const ly = chartBottom + axis + 16;
  const items = [
    ["ok", COLORS.ok, "1"],
    ["failed", COLORS.failed, "1"],
    ["running / end not recorded", COLORS.running, "0.5"],
    ["API down (Docker)", COLORS.outage, "0.25"],
    ...(r.outage.proxy ? [["proxy answered 503", COLORS.proxy, "1"]] : []),
  ];
  let lx = 12;
  for (const [label, color, opacity] of items) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="12" fill="${color}" fill-opacity="${opacity}"/>`);
    out.push(`<text class="legend" x="${lx + 20}" y="${ly}">${xml(label)}</text>`);
    lx += 40 + label.length * 7;
  }
  out.push("</svg>", "");
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Files and the command line

/**
 * Writes report.json, report.md and report.svg into the window's directory.
 * @param {string} windowDir
 * @returns {{ report: Report, files: string[] }}
 */
function writeReport(windowDir) {
  const report = assemble(windowDir);
  const files = [
    [path.join(windowDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`],
    [path.join(windowDir, "report.md"), renderMarkdown(report)],
    [path.join(windowDir, "report.svg"), renderSvg(report)],
  ];
  for (const [file, text] of files) {
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
  }
  return { report, files: files.map(([file]) => file) };
}

/**
 * The newest window's directory under `dir`: a window itself, a `windows/` directory, or a backup
 * directory holding one. Window names begin with their UTC stamp, so the last name is the newest.
 * @param {string} dir
 */
function newestWindow(dir) {
  if (fs.existsSync(path.join(dir, FILES.journal))) return dir;
  const parent = fs.existsSync(path.join(dir, "windows")) ? path.join(dir, "windows") : dir;
  const names = fs.existsSync(parent)
    ? fs
        .readdirSync(parent)
        .filter((n) => fs.existsSync(path.join(parent, n, FILES.journal)))
        .sort()
    : [];
  if (!names.length) throw new Error(`no maintenance window under ${dir} (looked for windows/*/${FILES.journal})`);
  return path.join(parent, names[names.length - 1]);
}

/**
 * The stack's RabbitMQ container, by its labels, or undefined.
 * @param {string} stack
 * @param {(args: string[]) => string} docker
 */
function brokerContainer(stack, docker) {
  const out = docker([
    "ps",
    "--filter",
    `label=io.utilitarian.stack=${stack}`,
    "--filter",
    "label=io.utilitarian.role=rabbitmq",
    "--format",
    "{{.Names}}",
  ]);
  return out.split("\n").filter(Boolean)[0];
}

/**
 * When readings still waited as the run ended and no drain is known yet: asks the broker now and
 * appends what it says to queue-checks.tsv. Returns a line saying what it did.
 * @param {string} windowDir @param {Report} report
 * @param {(args: string[]) => string} [docker]
 */
function checkDrained(windowDir, report, docker = defaultDocker) {
  if (!report.queue || report.queue.at_end.messages === 0 || report.queue.drained_at) return null;
  if (!report.stack) return "cannot ask the broker: the journal names no stack";
  const container = brokerContainer(report.stack, docker);
  if (!container) return `cannot ask the broker: no running RabbitMQ container of stack ${report.stack}`;
  const listed = docker(["exec", container, "rabbitmqctl", "-q", "list_queues", "name", "messages"]);
  const at = new Date().toISOString();
  const lines = listed
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 2 && /^\d+$/.test(p[1]) && p[0] !== "name")
    .map(([name, n]) => `${at}\t${name}\t${n}`);
  if (!lines.length) return `the broker listed no queues (${container})`;
  fs.appendFileSync(path.join(windowDir, FILES.queueChecks), `${lines.join("\n")}\n`);
  return `asked ${container} at ${at}`;
}

/** @param {string[]} args */
function defaultDocker(args) {
  return childProcess.execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** @param {string[]} argv */
function main(argv) {
  const [command, ...rest] = argv;
  const json = rest.includes("--json");
  const dirArg = rest.find((a) => !a.startsWith("--"));
  if (command === "write") {
    if (!dirArg) throw new Error("usage: window-report.js write <windowDir>");
    for (const file of writeReport(dirArg).files) process.stdout.write(`${file}\n`);
  } else if (command === "print") {
    const report = assemble(newestWindow(dirArg || "backups"));
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderMarkdown(report));
  } else if (command === "report") {
    const windowDir = newestWindow(dirArg || "backups");
    let report = assemble(windowDir);
    let said = null;
    try {
      said = checkDrained(windowDir, report);
    } catch (e) {
      said = `could not ask the broker: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
    }
    report = writeReport(windowDir).report;
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderMarkdown(report));
    if (said) process.stderr.write(`window-report: ${said}\n`);
  } else {
    throw new Error(
      "usage: window-report.js write <windowDir> | print [<backupDir|windowDir>] [--json] | report [<backupDir|windowDir>] [--json]",
    );
  }
}

module.exports = { assemble, renderMarkdown, renderSvg, writeReport, newestWindow, checkDrained, FORMAT_VERSION };

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`window-report: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
