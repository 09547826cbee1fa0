import { CONTAINER, type StateEntry, type Step } from "../../support/engine";

/**
 * The upgrade runbook (README "Upgrading", seed/upgrade-instructions.md) as checks on the steps of
 * one `pulumi up`, in the order the engine model carried them out. Each check returns undefined when
 * it holds, or what went wrong.
 */
export const FOLLOWERS = ["u-beat", "u-worker-default-1", "u-processor", "u-poster"];
const APP = ["u-api", ...FOLLOWERS];
export const UNTOUCHED = [
  "u-udp-server",
  "u-postgres",
  "u-rabbitmq",
  "u-network",
  "u-postgres-data",
  "u-rabbitmq-data",
  "u-role",
  "u-database",
];
/** Which pulled image each app container runs. */
const IMAGE_OF: Record<string, string> = {
  "u-api": "u-image-app",
  "u-beat": "u-image-app",
  "u-worker-default-1": "u-image-app",
  "u-processor": "u-image-processor",
  "u-poster": "u-image-poster",
};

/** What a run is expected to do. */
export interface Expectation {
  /** A restore is declared (a rollback). */
  rollback: boolean;
  /** migrate runs (its version trigger changed). Not after a failed upgrade rolled back: it never ran. */
  migrates: boolean;
}

export interface Invariant {
  name: string;
  check(steps: Step[], before: Map<string, StateEntry>, expected: Expectation): string | undefined;
}

const makes = (s: Step) => s.op === "create" || s.op === "replace";
const stops = (s: Step) =>
  (s.op === "delete" || s.op === "delete-replaced") && s.type === CONTAINER && !s.alreadyDeleted;
const ranAt = (steps: Step[], name: string) => steps.findIndex((s) => s.name === name && makes(s));

/** Which app containers run, and whether on this run's declaration, just before step `index`. */
function runningBefore(steps: Step[], index: number, before: Map<string, StateEntry>): Map<string, "old" | "new"> {
  const running = new Map<string, "old" | "new">();
  for (const e of before.values())
    if (e.type === CONTAINER && !e.pendingReplacement && !e.delete) running.set(e.name, "old");
  for (const s of steps.slice(0, index)) {
    if (s.type !== CONTAINER) continue;
    if (stops(s)) running.delete(s.name);
    if (makes(s)) running.set(s.name, "new");
  }
  return running;
}

export const INVARIANTS: Invariant[] = [
  {
    name: "new images pulled before the backup",
    check(steps) {
      const backup = ranAt(steps, "u-backup");
      const late = steps.filter((s, i) => s.type === "docker:index/remoteImage:RemoteImage" && makes(s) && i > backup);
      return backup < 0
        ? "the backup did not run"
        : late.length
          ? `${late.map((s) => s.name).join(", ")} pulled after the backup`
          : undefined;
    },
  },
  {
    name: "backup before the first stop of any container",
    check(steps) {
      const backup = ranAt(steps, "u-backup");
      const firstStop = steps.findIndex(stops);
      if (backup < 0) return "the backup did not run";
      return firstStop >= 0 && firstStop < backup ? `${steps[firstStop].name} stopped before the backup` : undefined;
    },
  },
  {
    name: "every follower stopped before the API",
    check(steps, before) {
      const apiStop = steps.findIndex((s) => s.name === "u-api" && stops(s));
      if (apiStop < 0) return "the API was not stopped";
      const still = [...runningBefore(steps, apiStop, before).keys()].filter((n) => FOLLOWERS.includes(n));
      return still.length ? `${still.join(", ")} still running when the API stopped` : undefined;
    },
  },
  {
    name: "while migrate runs, only the new API of the app services is up",
    check(steps, before, expected) {
      const migrate = ranAt(steps, "u-migrate");
      if (migrate < 0) return expected.migrates ? "migrate did not run" : undefined;
      if (!expected.migrates) return "migrate ran again";
      const app = [...runningBefore(steps, migrate, before)]
        .filter(([n]) => APP.includes(n))
        .map(([n, v]) => `${n}:${v}`);
      return app.join(" ") === "u-api:new" ? undefined : `running during migrate: ${app.join(", ") || "nothing"}`;
    },
  },
  {
    name: "static files after migrate",
    check(steps) {
      const [migrate, stat] = [ranAt(steps, "u-migrate"), ranAt(steps, "u-static")];
      return stat < 0 ? "static did not run" : stat < migrate ? "static ran before migrate" : undefined;
    },
  },
  {
    name: "followers started after static",
    check(steps) {
      const stat = ranAt(steps, "u-static");
      const early = FOLLOWERS.filter((f) => ranAt(steps, f) < stat);
      return early.length ? `${early.join(", ")} not started after static` : undefined;
    },
  },
  {
    name: "containers start from their pulled images",
    check(steps) {
      const early = Object.entries(IMAGE_OF).filter(
        ([c, image]) => ranAt(steps, image) >= 0 && ranAt(steps, c) < ranAt(steps, image),
      );
      return early.length ? early.map(([c, i]) => `${c} before ${i}`).join(", ") : undefined;
    },
  },
  {
    name: "verify last",
    check(steps) {
      const verify = ranAt(steps, "u-verify");
      const after = steps.filter((s, i) => i > verify && (makes(s) || s.op === "update"));
      return verify < 0
        ? "verify did not run"
        : after.length
          ? `${after.map((s) => `${s.op} ${s.name}`).join(", ")} after verify`
          : undefined;
    },
  },
  {
    name: "restore after the backup and before the older API starts",
    check(steps, _before, expected) {
      const [backup, restore, api] = [ranAt(steps, "u-backup"), ranAt(steps, "u-restore"), ranAt(steps, "u-api")];
      if (restore < 0) return expected.rollback ? "the restore did not run" : undefined;
      return restore < backup
        ? "restore before the backup"
        : api >= 0 && api < restore
          ? "the API started before the restore"
          : undefined;
    },
  },
  {
    name: "UDP server, PostgreSQL, RabbitMQ, network, volumes, role and database untouched",
    check(steps) {
      const touched = steps.filter((s) => UNTOUCHED.includes(s.name) && s.op !== "same");
      return touched.length ? touched.map((s) => `${s.op} ${s.name}`).join(", ") : undefined;
    },
  },
];
