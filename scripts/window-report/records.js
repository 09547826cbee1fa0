// @ts-check
/**
 * The maintenance window's records as window-report.js reads them: the files, the report's types,
 * and the readers of the journal, the logs and Docker's events (docs/window-report.md).
 */
"use strict";

const fs = require("node:fs");

const FORMAT_VERSION = 1;
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

module.exports = {
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
};
