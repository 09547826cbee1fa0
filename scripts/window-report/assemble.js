// @ts-check
/**
 * The report assembled from a window's records: the stages (the steps' journal, the engine's
 * operations from Docker's events), the API's outage as Docker and the proxy saw it, the queue.
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const {
  FORMAT_VERSION,
  LOG_TAIL_LINES,
  FILES,
  iso,
  ms,
  rank,
  secondsBetween,
  readLines,
  readJsonLines,
  dockerEvents,
  isApi,
  isFollower,
  STOPPING,
  LIFECYCLE,
} = require("./records");
/**
 * @typedef {import("./records").Attempt} Attempt
 * @typedef {import("./records").DockerEvent} DockerEvent
 * @typedef {import("./records").Failure} Failure
 * @typedef {import("./records").Interval} Interval
 * @typedef {import("./records").Outage} Outage
 * @typedef {import("./records").Queue} Queue
 * @typedef {import("./records").Report} Report
 * @typedef {import("./records").Stage} Stage
 */

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

module.exports = { assemble };
