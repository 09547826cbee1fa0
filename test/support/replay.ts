/**
 * The engine model against the real engine: the component's registrations (recorded under mocks)
 * replayed by test/fixtures/programs/replay through `toolchain/pulumi up`, the engine's event log
 * read back as steps, and the model (engine.ts) asked to follow that order.
 */
import * as fs from "fs";
import * as path from "path";
import { Deployment } from "./engine-deployment";
import { plain, providerName, SECRET_SIG, type Declared, type ReadyWork, type StateEntry, type Step, type StepOp } from "./engine-types";
import { factsOf } from "./provider-facts";
import { PROJECT_DIR, type Workspace } from "./real-engine";

/** Copies the replay program into the workspace (its index.ts reads registrations.json there). */
export function installReplay(ws: Workspace): void {
  const source = path.join(PROJECT_DIR, "test/fixtures/programs/replay");
  for (const file of ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts"]) fs.copyFileSync(path.join(source, file), path.join(ws.dir, file));
}

/** What the next run registers: the model's registrations, as the replay program reads them. */
export function writeRegistrations(ws: Workspace, declared: Declared[]): void {
  const registrations = declared.map((r) => ({
    ...r,
    provider: providerName(r.provider),
    custom: r.custom !== false,
    // A dynamic resource's own provider text: the replay gives each resource its own.
    inputs: Object.fromEntries(Object.entries(plain(r.inputs)).filter(([key]) => key !== "__provider")),
    secretInputs: Object.entries(r.inputs).filter(([, v]) => v && typeof v === "object" && SECRET_SIG in v).map(([k]) => k),
    facts: factsOf(r.type),
  }));
  fs.writeFileSync(path.join(ws.dir, "registrations.json"), JSON.stringify(registrations));
}

/** One step as both sides name it: the model's op and the resource's name. */
export interface StepName {
  op: StepOp;
  name: string;
}

/**
 * The steps of a run in the order the engine started them (its resourcePreEvents), as the model
 * names them: OpCreateReplacement is the model's "replace", the logical OpReplace (no provider
 * call) is left out, and so are the stack and the engine's default providers, which the model
 * does not register.
 */
export function engineSteps(eventLog: string): StepName[] {
  const ops: Record<string, StepOp | undefined> = {
    same: "same", create: "create", update: "update", delete: "delete", "create-replacement": "replace",
    "delete-replaced": "delete-replaced", "remove-pending-replace": "remove-pending-replace",
  };
  const steps: StepName[] = [];
  for (const line of fs.readFileSync(eventLog, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const event = JSON.parse(line);
    const metadata = event.resourcePreEvent?.metadata;
    if (!metadata) continue;
    const type: string = metadata.type;
    if (type === "pulumi:pulumi:Stack" || type.startsWith("pulumi:providers:pulumi-nodejs") || metadata.op === "replace") continue;
    const op = ops[metadata.op];
    if (!op) throw new Error(`replay: the engine's step ${metadata.op} of ${metadata.urn} has no counterpart in the model`);
    steps.push({ op, name: (metadata.urn as string).split("::").pop()! });
  }
  return steps;
}

export interface Followed {
  /** The model's steps, in the order it took them. */
  steps: StepName[];
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
    const index = wanted ? ready.findIndex((w) => (w.next ? w.next.op === wanted.op && w.next.name === wanted.name : w.name === wanted.name)) : -1;
    if (index >= 0) return index;
    // A registration yields no step when it is taken, only its chain (whose first step may be another
    // resource's delete ahead of a delete-before-replace): take one, and look again at what is ready.
    const unstepped = ready.findIndex((w) => !w.next);
    if (unstepped >= 0) return unstepped;
    if (wanted) departures.push(`step ${position + 1}: the engine started ${wanted.op} ${wanted.name}; the model had ready ${ready.map((w) => (w.next ? `${w.next.op} ${w.next.name}` : `register ${w.name}`)).join(", ")}`);
    return 0;
  };
  // The engine deletes its toReplace list from the end, so the resource it deleted first comes last.
  const deletedAt = (name: string) => engine.findIndex((s, i) => i >= position && s.op === "delete-replaced" && s.name === name);
  const mapOrder = (names: string[]) => [...names].sort((a, b) => deletedAt(b) - deletedAt(a));
  const run = new Deployment(state, next, { schedule: { choose, mapOrder } });
  const steps: StepName[] = [];
  for (let step: Step | undefined = run.next(); step; step = run.next()) {
    steps.push({ op: step.op, name: step.name });
    if (engine[position] && engine[position].op === step.op && engine[position].name === step.name) position++;
    run.complete(step);
  }
  return { steps, departures };
}
