/**
 * scripts/window-report.js against two recorded windows (test/fixtures/window/): a completed
 * 1.0.0 -> 1.1.0 with the maintenance proxy and a managed broker, and a 1.1.0 -> 1.2.0 whose
 * migrate failed. The figures asserted are the fixtures' own times, worked out by hand.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import {
  assemble,
  checkDrained,
  newestWindow,
  renderMarkdown,
  renderSvg,
  writeReport,
} from "../../scripts/window-report.js";

const FIXTURES = path.join(__dirname, "..", "fixtures", "window");
const COMPLETED = path.join(FIXTURES, "completed", "windows", "20261207T181200Z-1.0.0-to-1.1.0");
const FAILED = path.join(FIXTURES, "failed", "windows", "20261207T184000Z-1.1.0-to-1.2.0");
const SCRIPT = path.join(__dirname, "..", "..", "scripts", "window-report.js");

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});
/** A copy of a fixture window under a fresh backups/windows/ directory. */
function copyWindow(src: string): string {
  const root = mkdtempSync(path.join(tmpdir(), "window-report-"));
  temps.push(root);
  const dest = path.join(root, "windows", path.basename(src));
  cpSync(src, dest, { recursive: true });
  return dest;
}
const day = (t: string) => `2026-12-07T${t}Z`;
const stage = (r: ReturnType<typeof assemble>, key: string) => {
  const s = r.stages.find((x) => x.key === key);
  if (!s) throw new Error(`no stage ${key} in ${r.stages.map((x) => x.key).join(", ")}`);
  return s;
};

/**
 * Well-formed XML, checked strictly enough for what renderSvg writes: every tag closed in order,
 * attributes quoted, no raw `<` or stray `&` in text or attribute values. Returns the elements.
 */
function parseXml(text: string): { name: string; attrs: Record<string, string>; text: string }[] {
  const elements: { name: string; attrs: Record<string, string>; text: string }[] = [];
  const stack: { name: string; attrs: Record<string, string>; text: string }[] = [];
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi;
  const checkText = (t: string) => {
    if (t.replace(entity, "").includes("&")) throw new Error(`stray & in ${JSON.stringify(t)}`);
    if (t.includes("<") || t.includes(">")) throw new Error(`raw < or > in ${JSON.stringify(t)}`);
  };
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    checkText(chunk);
    if (stack.length) stack[stack.length - 1].text += chunk;
    else if (chunk.trim()) throw new Error(`text outside the root: ${chunk}`);
    if (lt < 0) break;
    const gt = text.indexOf(">", lt);
    if (gt < 0) throw new Error("unterminated tag");
    const tag = text.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith("/")) {
      const open = stack.pop();
      if (!open || open.name !== tag.slice(1)) throw new Error(`</${tag.slice(1)}> closes <${open?.name}>`);
      continue;
    }
    const m = /^([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)$/.exec(tag);
    if (!m) throw new Error(`malformed tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of m[2].matchAll(/([\w:-]+)="([^"]*)"/g)) {
      checkText(a[2]);
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1]] = a[2];
    }
    const el = { name: m[1], attrs, text: "" };
    if (!stack.length && elements.length) throw new Error("a second root element");
    elements.push(el);
    if (!m[3]) stack.push(el);
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  return elements;
}
const unescape = (s: string) =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");

describe("a completed window (1.0.0 -> 1.1.0, proxy and broker)", () => {
  const r = assemble(COMPLETED);

  test("versions, status and the window's own times", () => {
    expect(r).toMatchObject({
      format_version: 1,
      window: "20261207T181200Z-1.0.0-to-1.1.0",
      stack: "wr",
      from: "1.0.0",
      to: "1.1.0",
      status: "completed",
      started_at: day("18:12:00.000"),
      ended_at: day("18:13:14.600"),
      seconds: 74.6,
      failed: null,
      not_reached: [],
    });
    expect(r.sources).toEqual(["journal.jsonl", "docker-events.jsonl", "proxy.log", "queue.tsv"]);
  });

  test("every stage in the upgrade's order, timed from the journal or Docker's events", () => {
    const rows = r.stages.map((s) => [s.key, s.started_at, s.ended_at, s.seconds, s.status, s.source]);
    expect(rows).toEqual([
      ["pull", null, day("18:10:31.882"), null, "ok", "docker-events.jsonl"],
      ["backup", day("18:12:00.210"), day("18:12:31.870"), 31.66, "ok", "journal, steps/backup-1.log"],
      ["stop", day("18:12:32.400"), day("18:12:34.420"), 2.02, "ok", "docker-events.jsonl"],
      ["start-api", day("18:12:34.900"), day("18:12:35.300"), 0.4, "ok", "docker-events.jsonl"],
      ["migrate", day("18:12:37.600"), day("18:12:49.125"), 11.525, "ok", "journal, steps/migrate-1.log"],
      ["static", day("18:12:49.300"), day("18:13:08.010"), 18.71, "ok", "journal, steps/static-1.log"],
      ["start", day("18:13:08.500"), day("18:13:10.720"), 2.22, "ok", "docker-events.jsonl"],
      ["verify", day("18:13:11.000"), day("18:13:14.480"), 3.48, "ok", "journal, steps/verify-1.log"],
    ]);
    expect(stage(r, "start-api").title).toBe("Start only the API on 1.1.0");
  });

  test("the writers the backup stopped belong to the backup; the stop ends at the old API's destroy", () => {
    // The backup stopped beat, worker, processor and poster at 18:12:00.640-18:12:02.3: not the stop's start.
    expect(stage(r, "stop").detail).toBe(
      "5 container(s): wr-beat, wr-worker-default-1, wr-dlms-processor, wr-poster, wr-api",
    );
    // Docker's health check (every 15 s) said healthy during static: not the stage's end.
    expect(stage(r, "start-api").detail).toBe(
      "wr-api (utilitarian-standin/utilitarian:1.1.0): create to start; Docker's health check first said healthy at 2026-12-07T18:12:50.310Z",
    );
    expect(stage(r, "start").detail).toBe(
      "4 container(s) started: wr-beat, wr-worker-default-1, wr-dlms-processor, wr-poster",
    );
  });

  test("the pull is the new API image's, not another image pulled earlier (poster:1.0.0 already ran)", () => {
    expect(stage(r, "pull").detail).toMatch(/^utilitarian-standin\/utilitarian:1\.1\.0: /);
  });

  test("Docker's view of the outage: the old API's kill to the new one's start, then the static step's restart; another stack's API ignored", () => {
    expect(r.outage.docker).toMatchObject({
      intervals: [
        { from: day("18:12:33.100"), to: day("18:12:35.300"), seconds: 2.2 },
        { from: day("18:13:05.200"), to: day("18:13:06.300"), seconds: 1.1 },
      ],
      total_seconds: 3.3,
    });
  });

  test("the proxy's view: DOWN to every backend UP; 'UP/READY (resolves again)' does not end it; the morning's outage left out", () => {
    expect(r.outage.proxy).toMatchObject({
      intervals: [
        { from: day("18:12:33.240"), to: day("18:12:37.210"), seconds: 3.97 },
        { from: day("18:13:05.250"), to: day("18:13:06.930"), seconds: 1.68 },
      ],
      total_seconds: 5.65,
    });
  });

  test("backup, migrations and the queue from the records", () => {
    expect(r.backup).toEqual({
      file: "/var/backups/utilitarian/utilitarian-20261207T181200Z-1.0.0-to-1.1.0.dump",
      bytes: 48213771,
      sha256: "9f2c4e0b7a51d3c86e1f04b29a7d5c3e8b60f1a2d4c79e35b18a06f2c4d9e713",
    });
    expect(r.migrations).toEqual({
      applied: 2,
      migrations: ["readings.0002_reading_quality", "readings.0003_meter_last_seen"],
    });
    expect(r.queue).toEqual({
      peak: { messages: 1433, at: day("18:13:10.400") },
      per_queue: [
        { name: "readings", peak: 1402, peak_at: day("18:13:10.400"), at_end: 611 },
        { name: "celery", peak: 24, peak_at: day("18:13:10.400"), at_end: 0 },
        // 7 first at 18:13:05.400, again at 18:13:10.400: the first time counts.
        { name: "poster", peak: 7, peak_at: day("18:13:05.400"), at_end: 3 },
      ],
      at_end: { messages: 614, at: day("18:13:14.650") },
      drained_at: null,
      drained_source: null,
      samples: 16,
    });
  });

  test("the Markdown: title, stage rows, outage, backup, queue", () => {
    const md = renderMarkdown(r);
    expect(md.split("\n")[0]).toBe("# Maintenance window 1.0.0 → 1.1.0: completed");
    expect(md).toContain("| Stage | Start (UTC) | End (UTC) | Duration | Status | Source |");
    expect(md).toContain(
      "| Verified backup, before anything stops | 18:12:00.210 | 18:12:31.870 | 31.7 s | ok | journal, steps/backup-1.log |",
    );
    expect(md).toContain(
      "| Stop the services that depend on the API, then the API | 18:12:32.400 | 18:12:34.420 | 2.0 s | ok | docker-events.jsonl |",
    );
    expect(md).toContain(
      "| Pull the new images while everything runs | — | 18:10:31.882 | — | ok | docker-events.jsonl |",
    );
    expect(md).toContain(
      "- Docker: 2 interval(s), 3.3 s in all: 18:12:33.100–18:12:35.300 (2.2 s), 18:13:05.200–18:13:06.300 (1.1 s)",
    );
    expect(md).toContain("- Size: 46.0 MB (48213771 bytes)");
    expect(md).toContain("- When the run ended (18:13:14.650): 614 waiting");
    expect(md).toContain("| readings | 1402 | 18:13:10.400 | 611 |");
    expect(md).not.toContain("## Failure");
  });

  test("the SVG: well-formed, a plain <text> per stage title, a bar per stage, both outages shaded", () => {
    const svg = renderSvg(r);
    const els = parseXml(svg);
    expect(els[0].name).toBe("svg");
    expect(els[0].attrs.width).toBe("960");
    const labels = els.filter((e) => e.name === "text" && e.attrs.class === "stage-label").map((e) => unescape(e.text));
    expect(labels).toEqual(r.stages.map((s) => s.title));
    const bars = els.filter((e) => e.name === "rect" && e.attrs.class?.startsWith("stage "));
    expect(bars.map((b) => b.attrs.class)).toEqual(Array(8).fill("stage stage-ok"));
    const outages = els.filter((e) => e.name === "rect" && e.attrs.class === "outage");
    expect(outages).toHaveLength(2);
    // The first outage lies between the stop's start and the new API's healthy: over their bars.
    const x = (e: (typeof els)[number]) => Number(e.attrs.x);
    const w = (e: (typeof els)[number]) => Number(e.attrs.width);
    const [stopBar, apiBar] = [bars[2], bars[3]];
    expect(x(outages[0])).toBeGreaterThan(x(stopBar));
    expect(x(outages[0]) + w(outages[0])).toBeCloseTo(x(apiBar) + w(apiBar), 0);
    expect(els.filter((e) => e.name === "rect" && e.attrs.class === "proxy-outage")).toHaveLength(2);
    expect(svg).not.toMatch(/<script|href=|@import/);
  });
});

describe("a failed window (1.1.0 -> 1.2.0, migrate failed)", () => {
  const r = assemble(FAILED);

  test("failed at migrate: its reason, its log's last 40 lines, what was not reached", () => {
    expect(r.status).toBe("failed");
    expect(r.status_detail).toBe("the step migrate failed: migrate failed; the log is above");
    const log = readFileSync(path.join(FAILED, "steps/migrate-1.log"), "utf8").split("\n").slice(0, -1);
    expect(log.length).toBeGreaterThan(40);
    expect(r.failed).toEqual({
      stage: "migrate",
      reason: "migrate failed; the log is above",
      log_file: "steps/migrate-1.log",
      log_tail: log.slice(-40),
    });
    expect(r.failed!.log_tail.at(-1)).toBe("2026-12-07T18:41:00Z migrate: migrate failed; the log is above");
    // The traceback's blank line is kept.
    expect(r.failed!.log_tail).toContain("");
    expect(stage(r, "migrate")).toMatchObject({
      started_at: day("18:40:46.700"),
      ended_at: day("18:41:00.310"),
      seconds: 13.61,
      status: "failed",
    });
    expect(r.not_reached.map((s) => s.key)).toEqual(["static", "start", "verify"]);
    expect(r.migrations).toBeNull();
    expect(r.ended_at).toBe(day("18:41:00.310"));
  });

  test("no proxy log: no proxy outage; Docker's: one interval, the old API's kill to the new one's start", () => {
    expect(r.outage.proxy).toBeNull();
    expect(r.outage.docker!.intervals).toEqual([{ from: day("18:40:41.500"), to: day("18:40:43.800"), seconds: 2.3 }]);
    expect(stage(r, "stop")).toMatchObject({ started_at: day("18:40:41.300"), ended_at: day("18:40:43.010") });
  });

  test("without the images' references in the open line, the pull (named by reference) cannot be matched to the containers' image IDs", () => {
    expect(r.stages.map((s) => s.key)).toEqual(["backup", "stop", "start-api", "migrate"]);
    expect(r.notes).toEqual([
      expect.stringMatching(
        /^the new containers name their images by ID \(sha256:8f46a6b3dbb6[0-9a-f]{52}\), as the Docker provider creates them/,
      ),
    ]);
    expect(stage(r, "start-api").detail).toMatch(/^wr-api \(sha256:8f46a6b3dbb6/);
  });

  test("the queue still full at the end, drain unknown", () => {
    expect(r.queue).toMatchObject({
      peak: { messages: 1087, at: day("18:41:00.520") },
      at_end: { messages: 1087, at: day("18:41:00.520") },
      drained_at: null,
    });
  });

  test("the Markdown names the failure and holds the log tail in a code block; the SVG bar is red", () => {
    const md = renderMarkdown(r);
    expect(md.split("\n")[0]).toBe("# Maintenance window 1.1.0 → 1.2.0: failed");
    expect(md).toContain(
      "| Run migrations | 18:40:46.700 | 18:41:00.310 | 13.6 s | failed | journal, steps/migrate-1.log |",
    );
    expect(md).toContain("| Verify | — | — | — | not reached | |");
    const failure = md.slice(md.indexOf("## Failure"));
    expect(failure).toContain("Stage `migrate` failed: migrate failed; the log is above");
    expect(failure).toContain("```text\n" + r.failed!.log_tail.join("\n") + "\n```");
    const els = parseXml(renderSvg(r));
    // No proxy log: no proxy band and no legend for it.
    expect(els.filter((e) => e.attrs.class === "legend").map((e) => e.text)).not.toContain("proxy answered 503");
    expect(els.filter((e) => e.attrs.class === "proxy-outage")).toEqual([]);
    const failed = els.filter((e) => e.name === "rect" && e.attrs.class === "stage stage-failed");
    expect(failed).toHaveLength(1);
    expect(failed[0].attrs.fill).toBe("#c62828");
    const labels = els.filter((e) => e.name === "text" && e.attrs.class === "stage-label").map((e) => e.text);
    expect(labels).toEqual([...r.stages.map((s) => s.title), ...r.not_reached.map((s) => s.title)]);
  });
});

describe("hostile text, re-runs and unfinished windows", () => {
  test("the stages come in the order the open line lists them (the plan's), not one of the script's own", () => {
    const dir = copyWindow(COMPLETED);
    const journal = path.join(dir, "journal.jsonl");
    const [first, ...rest] = readFileSync(journal, "utf8").trim().split("\n");
    const open = JSON.parse(first);
    const planned: string[] = open.stages.map((s: { key: string }) => s.key);
    expect(assemble(dir).order).toEqual(planned);
    // A plan that put verify first: the report follows it.
    open.stages = [
      open.stages.find((s: { key: string }) => s.key === "verify"),
      ...open.stages.filter((s: { key: string }) => s.key !== "verify"),
    ];
    writeFileSync(journal, [JSON.stringify(open), ...rest].join("\n") + "\n");
    const r = assemble(dir);
    expect(r.stages[0].key).toBe("verify");
    expect(
      renderMarkdown(r)
        .split("\n")
        .find((l) => l.startsWith("| ") && !l.startsWith("| Stage")),
    ).toContain(open.stages[0].title);
  });

  test("a reason and a title with markup are escaped in the Markdown and the SVG, kept as they are in the JSON", () => {
    const dir = copyWindow(FAILED);
    const journal = path.join(dir, "journal.jsonl");
    const hostile = 'migrate failed: <script>alert("x")</script> & | done';
    const text = readFileSync(journal, "utf8")
      .replace("migrate failed; the log is above", hostile.replace(/"/g, '\\"'))
      .replace('"title":"Run migrations"', '"title":"Run <b>migrations</b> & \\"more\\""');
    writeFileSync(journal, text);
    appendFileSync(path.join(dir, "steps/migrate-1.log"), "```\n</code><img src=x onerror=alert(1)>\n");
    const r = assemble(dir);
    expect(r.failed!.reason).toBe(hostile);
    const svg = renderSvg(r);
    parseXml(svg);
    expect(svg).not.toMatch(/<script|<b>|<img/);
    expect(svg).toContain("Run &lt;b&gt;migrations&lt;/b&gt; &amp; &quot;more&quot;");
    const md = renderMarkdown(r);
    const outsideCode = md.replace(/(`{3,})text\n[\s\S]*?\n\1/g, "");
    expect(outsideCode).not.toMatch(/<script|<b>|<img/);
    expect(outsideCode).toContain('&lt;script&gt;alert("x")&lt;/script&gt; &amp; \\| done');
    // The table row keeps six cells: the title's markup and the reason cannot break it.
    const row = md.split("\n").find((l) => l.startsWith("| Run &lt;b&gt;"))!;
    expect(row.split(/(?<!\\)\|/).length - 2).toBe(6);
    // The log's own ``` cannot close the code block early: the fence is longer.
    expect(md).toMatch(/\n````text\n[\s\S]*\n```\n<\/code><img src=x onerror=alert\(1\)>\n````\n/);
  });

  test("a re-run that resumes the window: the last attempt counts, the failed one is listed", () => {
    const dir = copyWindow(FAILED);
    appendFileSync(
      path.join(dir, "journal.jsonl"),
      [
        { at: day("18:55:10.000"), event: "start", step: "migrate", attempt: 2, log: "steps/migrate-2.log" },
        {
          at: day("18:55:21.500"),
          event: "end",
          step: "migrate",
          facts: { applied: 1, migrations: ["readings.0004_meter_serial_unique"] },
        },
      ]
        .map((l) => JSON.stringify(l))
        .join("\n") + "\n",
    );
    const r = assemble(dir);
    expect(r.status).toBe("incomplete");
    expect(r.status_detail).toMatch(/^the run stopped after migrate ended, outside the step scripts/);
    expect(r.failed).toBeNull();
    expect(stage(r, "migrate")).toMatchObject({ started_at: day("18:55:10.000"), seconds: 11.5, status: "ok" });
    expect(stage(r, "migrate").attempts!.map((a) => [a.attempt, a.status, a.reason])).toEqual([
      [1, "failed", "migrate failed; the log is above"],
      [2, "ok", null],
    ]);
    expect(r.migrations).toEqual({ applied: 1, migrations: ["readings.0004_meter_serial_unique"] });
    expect(renderMarkdown(r)).toContain(
      "- Run migrations, attempt 1: 18:40:46.700–18:41:00.310, failed: migrate failed; the log is above",
    );
  });

  test("a run that stopped in an engine operation: incomplete, Docker's last record of the stack named", () => {
    const dir = copyWindow(FAILED);
    const journal = path.join(dir, "journal.jsonl");
    writeFileSync(journal, readFileSync(journal, "utf8").split("\n").slice(0, 3).join("\n") + "\n");
    const r = assemble(dir);
    expect(r.status).toBe("incomplete");
    expect(r.status_detail).toMatch(/^the run stopped after backup ended, outside the step scripts/);
    expect(r.status_detail).toMatch(
      /; Docker's last record of the stack: health_status: healthy of wr-api at 2026-12-07T18:40:58\.810Z$/,
    );
    expect(r.failed).toBeNull();
    expect(r.stages.map((s) => s.key)).toEqual(["backup", "stop", "start-api"]);
    // The records end with Docker's, not the journal's last line (the backup's end at 18:40:40.950).
    expect(r.ended_at).toBe(day("18:40:58.810"));
    expect(r.outage.docker!.intervals).toEqual([{ from: day("18:40:41.500"), to: day("18:40:43.800"), seconds: 2.3 }]);
  });

  test("a new API that reports unhealthy: an outage from then on, still open when the records end", () => {
    const dir = copyWindow(FAILED);
    const events = path.join(dir, "docker-events.jsonl");
    writeFileSync(events, readFileSync(events, "utf8").replace(/health_status: healthy/g, "health_status: unhealthy"));
    const r = assemble(dir);
    expect(r.outage.docker!.intervals).toEqual([
      { from: day("18:40:41.500"), to: day("18:40:43.800"), seconds: 2.3 },
      { from: day("18:40:58.810"), to: null, seconds: null },
    ]);
    expect(stage(r, "start-api").detail).toContain("first said unhealthy at 2026-12-07T18:40:58.810Z");
    expect(renderMarkdown(r)).toContain(
      "- Docker: 2 interval(s), 2.3 s in the closed ones and one still open: 18:40:41.500–18:40:43.800 (2.3 s), from 18:40:58.810, not over when the records end",
    );
    parseXml(renderSvg(r));
  });

  test("a run that stopped while a step ran: incomplete, the step running", () => {
    const dir = copyWindow(FAILED);
    const journal = path.join(dir, "journal.jsonl");
    writeFileSync(journal, readFileSync(journal, "utf8").split("\n").slice(0, 4).join("\n") + "\n");
    const r = assemble(dir);
    expect(r.status).toBe("incomplete");
    expect(r.status_detail).toMatch(/^the run stopped while migrate ran/);
    expect(stage(r, "migrate")).toMatchObject({ ended_at: null, seconds: null, status: "running" });
    parseXml(renderSvg(r));
  });
});

describe("files, the command line and the drain check", () => {
  test("write puts report.json, .md and .svg into the window; print picks the newest window", () => {
    const newer = copyWindow(FAILED);
    const backups = path.dirname(path.dirname(newer));
    cpSync(COMPLETED, path.join(backups, "windows", path.basename(COMPLETED)), { recursive: true });
    expect(newestWindow(backups)).toBe(newer);
    const out = execFileSync("node", [SCRIPT, "write", newer], { encoding: "utf8" });
    expect(out.trim().split("\n")).toEqual(["report.json", "report.md", "report.svg"].map((f) => path.join(newer, f)));
    const json = JSON.parse(readFileSync(path.join(newer, "report.json"), "utf8"));
    expect(json).toEqual(JSON.parse(JSON.stringify(assemble(newer))));
    const older = path.join(backups, "windows", path.basename(COMPLETED));
    const { report, files } = writeReport(older);
    expect(readFileSync(files[1], "utf8")).toBe(renderMarkdown(report));
    expect(readFileSync(files[2], "utf8")).toBe(renderSvg(report));
    const printed = execFileSync("node", [SCRIPT, "print", backups], { encoding: "utf8" });
    expect(printed.split("\n")[0]).toBe("# Maintenance window 1.1.0 → 1.2.0: failed");
    const asJson = JSON.parse(execFileSync("node", [SCRIPT, "print", backups, "--json"], { encoding: "utf8" }));
    expect(asJson.window).toBe("20261207T184000Z-1.1.0-to-1.2.0");
  });

  test("print without a window says where it looked and exits 1", () => {
    const empty = mkdtempSync(path.join(tmpdir(), "window-report-"));
    temps.push(empty);
    expect(() => execFileSync("node", [SCRIPT, "print", empty], { encoding: "utf8", stdio: "pipe" })).toThrow(
      /no maintenance window under/,
    );
  });

  test("the drain check asks this stack's broker and records when every queue was empty", () => {
    const dir = copyWindow(COMPLETED);
    const calls: string[][] = [];
    let answer = "readings\t35\ncelery\t0\nposter\t0\n";
    const docker = (args: string[]) => {
      calls.push(args);
      return args[0] === "ps" ? "wr-rabbitmq\n" : answer;
    };
    expect(checkDrained(dir, assemble(dir), docker)).toMatch(/^asked wr-rabbitmq at /);
    expect(calls[0]).toEqual(
      expect.arrayContaining(["label=io.utilitarian.stack=wr", "label=io.utilitarian.role=rabbitmq"]),
    );
    expect(calls[1]).toEqual(["exec", "wr-rabbitmq", "rabbitmqctl", "-q", "list_queues", "name", "messages"]);
    expect(assemble(dir).queue!.drained_at).toBeNull();
    answer = "readings\t0\ncelery\t0\nposter\t0\n";
    const before = Date.now();
    checkDrained(dir, assemble(dir), docker);
    const r = assemble(dir);
    expect(Date.parse(r.queue!.drained_at!)).toBeGreaterThanOrEqual(before - 1000);
    expect(r.queue!.drained_source).toBe("queue-checks.tsv");
    // The window's own figures stay what they were.
    expect(r.queue!.at_end).toEqual({ messages: 614, at: day("18:13:14.650") });
    expect(renderMarkdown(r)).toContain(`- Drained: drained by ${r.queue!.drained_at!.slice(0, 10)} `);
    // Once drained, nothing more is asked.
    calls.length = 0;
    expect(checkDrained(dir, r, docker)).toBeNull();
    expect(calls).toEqual([]);
    expect(existsSync(path.join(dir, "queue-checks.tsv"))).toBe(true);
  });
});
