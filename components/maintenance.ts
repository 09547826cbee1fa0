/**
 * The maintenance an operator follows during the window, derived from the plan alone (no
 * Pulumi): what a `pulumi up` from one version to the plan's does, stage by stage, in the order
 * the plan's waits give the engine. `npm run plan` prints it; the stack exports it.
 */
import type { StageKey } from "./kinds";
import {
  appImagesOf,
  RUNBOOK,
  servicesOf,
  stepsOf,
  upgradeStages,
  type DeploymentPlan,
  type RunbookStep,
  type ServiceNode,
  type StepKey,
  type StepNode,
} from "./plan";

export interface Stage {
  key: StageKey;
  title: string;
  /** The runbook steps (upgrade-instructions.md) this stage carries out. */
  runbook: RunbookStep[];
  /** What the stage does, one line each. */
  actions: string[];
}

export interface Maintenance {
  from: string;
  to: string;
  stages: Stage[];
  /** Services no stage stops: they keep running through the window. */
  keepsRunning: string[];
}

export interface MaintenanceContext {
  /** The version running now. */
  from: string;
  /** Container name of a service key. */
  containerName: (key: string) => string;
  /** Where verified backups go, and what the backup of this database will cost when known. */
  backup: { dir: string; estimate?: string; stopWriters: boolean; testRestore: "schema" | boolean };
  /** Set for a rollback: the backup that is restored. */
  restoreFrom?: string;
}

const list = (names: string[]) => (names.length > 0 ? names.join(", ") : "none");

/** The plan's services as the stages speak of them. */
interface Cast {
  api: ServiceNode;
  /** Stopped before the API and started after static files. */
  followers: ServiceNode[];
  /** Followers the backup stops first. */
  writers: ServiceNode[];
  services: ServiceNode[];
  names: (services: ServiceNode[]) => string[];
  steps: Map<StepKey, StepNode>;
}

/** What each stage is called and does; which stages there are, in what order, and their runbook steps come from the plan. */
const STAGE_TEXT: Record<
  StageKey,
  (plan: DeploymentPlan, ctx: MaintenanceContext, cast: Cast) => Omit<Stage, "key" | "runbook">
> = {
  pull: (plan, _ctx, { steps }) => {
    const appImage = appImagesOf(plan).find((i) => i.image === "app");
    const nodes = steps.get("pull");
    return {
      title: "Pull the new images while everything runs",
      actions: [
        `pull ${appImage ? appImage.ref : `the ${plan.version} image`} (API, beat and workers); edge images only where their own version changed`,
        ...(nodes
          ? [
              `${nodes.script}: on the swarm, every node whose label places a task of an image pulls it by digest (through swarm.nodeHosts); a node without an entry there, or that cannot pull, stops the run here`,
            ]
          : []),
        "a failed pull stops nothing",
      ],
    };
  },
  backup: (plan, ctx, { writers, names, steps }) => ({
    title: "Verified backup, before anything stops",
    actions: [
      ...(ctx.backup.stopWriters && writers.length > 0
        ? [
            `stop the writers first, so what they would write waits in RabbitMQ: ${list(names(writers))} (the API keeps serving)`,
          ]
        : []),
      `${steps.get("backup")!.script}: pg_dump of the database into ${ctx.backup.dir}/utilitarian-<UTC>-${ctx.from}-to-${plan.version}.dump, verified as it is written (every table's data read back from the archive and counted against the database) and by a ${ctx.backup.testRestore === "schema" ? "schema-only" : ctx.backup.testRestore === true ? "full" : "no"} test restore; checksum and manifest beside it; its size and rate logged every 5 s`,
      ...(ctx.backup.estimate ? [ctx.backup.estimate] : []),
      "if it fails: the writers start again and nothing else has changed",
    ],
  }),
  restore: (plan, ctx, { api, followers, names, steps }) => ({
    title: "Restore the chosen backup (rollback)",
    actions: [
      `${steps.get("restore")!.script}: ${ctx.restoreFrom === "latest" ? `the newest verified backup taken while ${plan.version} ran` : ctx.restoreFrom}, checksum and archive verified, restored beside the live database, row counts compared, then swapped in (the old one is kept)`,
      `stops ${list(names([api, ...followers]))} before the swap`,
    ],
  }),
  stop: (_plan, ctx, { api, followers, names }) => ({
    title: "Stop the services that depend on the API, then the API",
    actions: [
      `stop ${list(names(followers.filter((s) => s.image !== "app")))} (they call the API)`,
      `stop ${list(names(followers.filter((s) => s.image === "app")))} (beat and workers share the API's code and database)`,
      `stop ${ctx.containerName(api.key)} last; each gets its grace period`,
    ],
  }),
  "start-api": (plan, ctx, { api }) => ({
    title: `Start only the API on ${plan.version}`,
    actions: [
      `create ${ctx.containerName(api.key)} from the new image (beat and workers are declared from the same image and version)`,
    ],
  }),
  migrate: (_plan, ctx, { api, steps }) => ({
    title: "Run migrations",
    actions: [
      `${steps.get("migrate")!.script}: python manage.py migrate --noinput in ${ctx.containerName(api.key)}, once per version; its output streams line by line`,
    ],
  }),
  static: (_plan, ctx, { api, steps }) => ({
    title: "Collect and compress static assets",
    actions: [
      `${steps.get("static")!.script}: collectstatic --no-input, then compress, in ${ctx.containerName(api.key)}; then restarts it, so no server process keeps the manifest it read before compress`,
    ],
  }),
  start: (plan, _ctx, { followers, names }) => ({
    title: `Start everything else on ${plan.version}`,
    actions: [`create ${list(names(followers))}; they drain what queued up in RabbitMQ`],
  }),
  verify: (_plan, _ctx, { services, names, steps }) => ({
    title: "Verify",
    actions: [
      `${steps.get("verify")!.script}: /_health/ answers 200, no unapplied migration, every container running: ${list(names(services))}`,
    ],
  }),
};

/** The stages of the change from `ctx.from` to the plan's version (a version bump or a rollback). */
export function maintenanceStages(plan: DeploymentPlan, ctx: MaintenanceContext): Maintenance {
  const services = servicesOf(plan);
  const api = services.find((s) => s.role === "api")!;
  const followers = services.filter((s) => s.waits.some((w) => w.on === api.key && w.via === "followsApi"));
  const independent = services.filter((s) => s !== api && !followers.includes(s));
  const cast: Cast = {
    api,
    followers,
    writers: followers.filter((s) => s.waits.some((w) => w.via === "stoppedForBackup")),
    services,
    names: (ss) => ss.map((s) => ctx.containerName(s.key)),
    steps: new Map(stepsOf(plan).map((s) => [s.step, s])),
  };
  const stages = upgradeStages(plan).map(({ key, runbook }): Stage => {
    const { title, actions } = STAGE_TEXT[key](plan, ctx, cast);
    return { key, title, runbook, actions };
  });
  const keepsRunning = [
    ...cast.names(independent),
    ...plan.nodes.filter((n) => n.kind === "postgres" || n.kind === "rabbitmq").map((n) => ctx.containerName(n.key)),
  ];
  return { from: ctx.from, to: plan.version, stages, keepsRunning };
}

/** The maintenance as text, or as Markdown for a change ticket. */
export function renderMaintenance(m: Maintenance, format: "text" | "markdown" = "text"): string {
  const md = format === "markdown";
  const out: string[] = [];
  out.push(
    md
      ? `# Maintenance: Utilitarian ${m.from} → ${m.to}`
      : `Maintenance: Utilitarian ${m.from} -> ${m.to} (one \`pulumi up\`)`,
    "",
  );
  m.stages.forEach((s, i) => {
    const runbook = s.runbook.length > 0 ? ` [runbook ${s.runbook.join(", ")}]` : "";
    out.push(md ? `## ${i + 1}. ${s.title}${runbook}` : `${i + 1}. ${s.title}${runbook}`);
    for (const a of s.actions) out.push(md ? `- ${a}` : `     - ${a}`);
    if (md) out.push("");
  });
  out.push(md ? "## Keeps running throughout" : "Keeps running throughout (meter data queues in RabbitMQ):");
  out.push(md ? `${m.keepsRunning.map((k) => `- ${k}`).join("\n")}` : `     ${list(m.keepsRunning)}`);
  out.push("", md ? "## Runbook steps" : "Runbook steps (upgrade-instructions.md) and where they happen:");
  for (const [n, text] of Object.entries(RUNBOOK)) {
    const where = m.stages
      .map((s, i) => (s.runbook.includes(Number(n) as RunbookStep) ? i + 1 : 0))
      .filter((i) => i > 0);
    out.push(
      md ? `- ${n}. ${text}: stage ${where.join(", ")}` : `     ${n.padStart(2)}. ${text}: stage ${where.join(", ")}`,
    );
  }
  return `${out.join("\n")}\n`;
}
