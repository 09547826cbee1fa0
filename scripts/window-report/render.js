// @ts-check
/**
 * The report rendered: Markdown for a change log, an SVG timeline a person reads at a glance.
 */
"use strict";

const { iso, ms, rank } = require("./records");
/**
 * @typedef {import("./records").Failure} Failure
 * @typedef {import("./records").Outage} Outage
 * @typedef {import("./records").Queue} Queue
 * @typedef {import("./records").Report} Report
 * @typedef {import("./records").Stage} Stage
 */

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

module.exports = { renderMarkdown, renderSvg };
