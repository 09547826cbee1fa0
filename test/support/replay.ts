/**
 * The engine model against the real engine: the component's registrations (recorded under mocks)
 * replayed by test/fixtures/programs/replay through `toolchain/pulumi up`, the engine's event log
 * read back as steps, and the model (engine.ts) asked to follow that order.
 */
import * as fs from "fs";
import * as path from "path";
import { Deployment } from "./engine-deployment";
import {
  plain,
  providerName,
  SECRET_SIG,
  type Declared,
  type ReadyWork,
  type StateEntry,
  type Step,
  type StepOp,
} from "./engine-types";
import { CONTAINER, factsOf } from "./provider-facts";
import { PROJECT_DIR, type Workspace } from "./real-engine";
import { endsAtOnce } from "./real-stack";

/**
 * How long the replay's creates and deletes take, by type: a command runs a script, a container
 * starts or stops, an image is pulled. Without it every step ends within milliseconds, before the next registration
 * arrives, and independent steps would never overlap, so a missing edge could go unseen.
 */
const STEP_TIME_MS: Record<string, number> = {
  "command:local:Command": 800,
  [CONTAINER]: 200,
  "docker:index/remoteImage:RemoteImage": 300,
};

/** Copies the replay program into the workspace (its index.ts reads registrations.json there). */
export function installReplay(ws: Workspace): void {
  const source = path.join(PROJECT_DIR, "test/fixtures/programs/replay");
  for (const file of ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts"])
    fs.copyFileSync(path.join(source, file), path.join(ws.dir, file));
}

/** A resource held back: how long its steps take (the real engine's analogue of the model's `{ last }` schedule). */
const HELD_BACK_MS = 2500;

/**
 * What the next run registers: the model's registrations, as the replay program reads them.
 * `slow` names resources whose creates and deletes take HELD_BACK_MS, so that work the graph does
 * not order after them runs first.
 */
export function writeRegistrations(ws: Workspace, declared: Declared[], slow: string[] = []): void {
  const registrations = declared.map((r) => ({
    ...r,
    provider: providerName(r.provider),
    custom: r.custom !== false,
    // A dynamic resource's own provider text: the replay gives each resource its own.
    inputs: Object.fromEntries(Object.entries(plain(r.inputs)).filter(([key]) => key !== "__provider")),
    secretInputs: Object.entries(r.inputs)
      .filter(([, v]) => v && typeof v === "object" && SECRET_SIG in v)
      .map(([k]) => k),
    facts: { ...factsOf(r.type), delayMs: slow.includes(r.name) ? HELD_BACK_MS : (STEP_TIME_MS[r.type] ?? 0) },
  }));
  fs.writeFileSync(path.join(ws.dir, "registrations.json"), JSON.stringify(registrations));
}

/** One step as both sides name it: the model's op and the resource's name. */
export interface StepName {
  op: StepOp;
  name: string;
}

/** A step of the real run: when the engine started it and when it finished (positions in the event log). */
export interface TimedStep extends StepName {
  start: number;
  end: number;
}

/**
 * The steps of a run as the model names them, in the order the engine started them (its
 * resourcePreEvents), each with the position of its end (resOutputsEvent; a component's at once,
 * as `endsAtOnce` says): OpCreateReplacement is
 * the model's "replace", the logical OpReplace (no provider call) is left out, and so are the
 * stack and the engine's default providers, which the model does not register.
 */
export function engineRun(eventLog: string): TimedStep[] {
  const ops: Record<string, StepOp | undefined> = {
    same: "same",
    create: "create",
    update: "update",
    delete: "delete",
    "create-replacement": "replace",
    "delete-replaced": "delete-replaced",
    "remove-pending-replace": "remove-pending-replace",
  };
  const steps: TimedStep[] = [];
  const open = new Map<string, TimedStep>();
  fs.readFileSync(eventLog, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .forEach((line, position) => {
      const event = JSON.parse(line);
      const pre = event.resourcePreEvent?.metadata;
      const post = event.resOutputsEvent?.metadata;
      const metadata = pre ?? post;
      if (!metadata) return;
      const type: string = metadata.type;
      if (
        type === "pulumi:pulumi:Stack" ||
        type.startsWith("pulumi:providers:pulumi-nodejs") ||
        metadata.op === "replace"
      )
        return;
      const op = ops[metadata.op];
      if (!op)
        throw new Error(`replay: the engine's step ${metadata.op} of ${metadata.urn} has no counterpart in the model`);
      const name = (metadata.urn as string).split("::").pop()!;
      const key = `${op} ${name}`;
      if (pre) {
        const step = { op, name, start: position, end: endsAtOnce(metadata) ? position : Number.POSITIVE_INFINITY };
        steps.push(step);
        if (step.end === Number.POSITIVE_INFINITY) open.set(key, step);
      } else {
        const step = open.get(key);
        if (step) step.end = position;
        open.delete(key);
      }
    });
  return steps;
}

/** The steps in the order the engine started them. */
export function engineSteps(eventLog: string): StepName[] {
  return engineRun(eventLog).map(({ op, name }) => ({ op, name }));
}

/**
 * Orders of the steps that the real run is consistent with: B is surely after A only when B
 * started after A ended; steps that overlapped may be taken either way. For every step, the
 * order that takes it as early as that allows and the one that takes it as late: the runbook's
 * checks must hold in all of them, not only in the order the log happened to show.
 */
export function consistentOrders(run: TimedStep[]): StepName[][] {
  const surelyBefore = (a: TimedStep, b: TimedStep) => a.end < b.start;
  const order = (prefer: (s: TimedStep) => number): StepName[] => {
    const left = [...run];
    const out: StepName[] = [];
    while (left.length > 0) {
      const free = left.filter((b) => !left.some((a) => a !== b && surelyBefore(a, b)));
      free.sort((a, b) => prefer(a) - prefer(b) || a.start - b.start);
      const [next] = free;
      left.splice(left.indexOf(next), 1);
      out.push({ op: next.op, name: next.name });
    }
    return out;
  };
  const orders = [order(() => 0)];
  for (const step of run) {
    orders.push(order((s) => (s === step ? -1 : 0)));
    orders.push(order((s) => (s === step ? 1 : 0)));
  }
  return orders;
}

export interface Followed {
  /** The model's steps, in the order it took them. */
  steps: StepName[];
  /** The same, whole (as the runbook's checks read them). */
  modelSteps: Step[];
  /** Each point where the engine started a step the model did not have ready then. */
  departures: string[];
}

/**
 * Runs the model from `state` to `next`, choosing among its ready work the one whose next step
 * the engine started next. Where it has no such work ready, that is a departure (the engine did
 * something the model does not allow then), and it goes on with its earliest work.
 */
export function followEngine(state: Map<string, StateEntry>, next: Declared[], engine: StepName[]): Followed {
  const departures: string[] = [];
  let position = 0;
  const choose = (ready: ReadyWork[]): number => {
    const wanted = engine[position];
    // A registration not stepped yet belongs to the resource it registers; a chain to its next step's resource.
    const index = wanted
      ? ready.findIndex((w) =>
          w.next ? w.next.op === wanted.op && w.next.name === wanted.name : w.name === wanted.name,
        )
      : -1;
    if (index >= 0) return index;
    // A registration yields no step when it is taken, only its chain (whose first step may be another
    // resource's delete ahead of a delete-before-replace): take one, and look again at what is ready.
    const unstepped = ready.findIndex((w) => !w.next);
    if (unstepped >= 0) return unstepped;
    if (wanted)
      departures.push(
        `step ${position + 1}: the engine started ${wanted.op} ${wanted.name}; the model had ready ${ready.map((w) => (w.next ? `${w.next.op} ${w.next.name}` : `register ${w.name}`)).join(", ")}`,
      );
    return 0;
  };
  // The engine deletes its toReplace list from the end, so the resource it deleted first comes last.
  const deletedAt = (name: string) =>
    engine.findIndex((s, i) => i >= position && s.op === "delete-replaced" && s.name === name);
  const mapOrder = (names: string[]) => [...names].sort((a, b) => deletedAt(b) - deletedAt(a));
  const run = new Deployment(state, next, { schedule: { choose, mapOrder } });
  const steps: StepName[] = [];
  const modelSteps: Step[] = [];
  for (let step: Step | undefined = run.next(); step; step = run.next()) {
    steps.push({ op: step.op, name: step.name });
    modelSteps.push(step);
    if (engine[position] && engine[position].op === step.op && engine[position].name === step.name) position++;
    run.complete(step);
  }
  return { steps, modelSteps, departures };
}
