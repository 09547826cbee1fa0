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
const { FORMAT_VERSION, FILES } = require("./window-report/records");
const { assemble } = require("./window-report/assemble");
const { renderMarkdown, renderSvg } = require("./window-report/render");
/** @typedef {import("./window-report/records").Report} Report The report, for those who import this module. */

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
