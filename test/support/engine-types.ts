/** The engine model's vocabulary (see engine.ts): registrations, state entries, steps, schedules. */
import type { ProviderFacts } from "./provider-facts";

/** One registration, as the engine received it. */
export interface Declared {
  type: string;
  name: string;
  inputs: Record<string, any>;
  /** Input property -> names of the resources its value came from. */
  propertyDependencies: Record<string, string[]>;
  /** Names of the resources this one waited for (dependsOn and property dependencies). */
  dependencies: string[];
  replaceOnChanges: string[];
  /** Position in the program's registration order; breaks ties between work that is ready at once. */
  seq: number;
  /** Name of the parent resource; it must have registered first. */
  parent?: string;
  /** The provider: its name, or the SDK's reference `urn::id`. It must have registered first. */
  provider?: string;
  /** False for component resources (no provider; never replaced as a dependent). Defaults to true. */
  custom?: boolean;
  protect?: boolean;
  /** The resource option; undefined when not set (then the provider decides). */
  deleteBeforeReplace?: boolean;
  retainOnDelete?: boolean;
  /** Names of the resources whose replacement also replaces this one. */
  replaceWith?: string[];
  /** The `replacementTrigger` option's value; a different value than last run's replaces the resource. */
  replacementTrigger?: unknown;
}

/** One resource in the engine's state. */
export interface StateEntry extends Declared {
  /** Deleted ahead of a delete-before-replace whose create has not happened yet. */
  pendingReplacement?: boolean;
  /** The last create (or update) succeeded only part way: the provider's reasons. */
  initErrors?: string[];
  /**
   * An old copy waiting for its deletion (a create-before-delete replacement whose delete did not run).
   * Such copies are kept under their own key (`name (pending delete)`) beside the live entry.
   */
  delete?: boolean;
}

export type StepOp = "create" | "update" | "replace" | "delete" | "delete-replaced" | "remove-pending-replace" | "same";

/**
 * A step as the engine issues it. "create"/"replace" make the new physical resource (the engine's
 * OpCreate/OpCreateReplacement; its logical OpReplace is left out), "delete"/"delete-replaced" remove
 * an old one, "remove-pending-replace" only drops a resource already deleted by an earlier run from
 * the state (no provider call).
 */
export interface Step {
  op: StepOp;
  name: string;
  type: string;
  /** For replace/update: the input properties that differ. */
  changed?: string[];
  /** For a dependent deleted ahead of a delete-before-replace: whose replacement. */
  because?: string;
  /** For replace: why ("provider", "replaceWith", "#initerror" or input properties). */
  replaceKeys?: string[];
  /** For replace and its deletions: delete-before-replace (true) or create-before-delete (false). */
  deleteBeforeReplace?: boolean;
  /** For an update planned because the last create failed part way: the errors it retries. */
  initErrors?: string[];
  /**
   * Set on a create-before-delete replacement of a container whose fixed name the old container still
   * holds: Docker refuses the create ("Conflict. The container name ... is already in use").
   */
  fixedNameConflict?: string;
  /** Set on deleting what an earlier run already deleted (pending replacement): the provider gets an ID that is gone. */
  alreadyDeleted?: boolean;
  /** The state entry the step deletes, updates or replaces. */
  old?: StateEntry;
  /** The registration the step creates, updates or replaces to. */
  new?: Declared;
}

/**
 * Which ready work goes next: "earliest" takes work in the order it became ready (ties: program
 * order), "reversed" the most recently ready first, `{ seed }` a seeded random pick, and `{ last }`
 * the earliest work of any other resource before that of the named ones (an adversary for mutation
 * tests: it holds those resources back as long as the graph allows).
 */
export type Schedule =
  | "earliest"
  | "reversed"
  | { seed: number }
  | { last: string[] }
  | {
      choose: (ready: ReadyWork[]) => number;
      /**
       * The order in which the engine finds the resources that say `replaceWith` of a resource it
       * replaces delete-before-replace: it ranges over a Go map (step_generator.go
       * findResourcesReplacedWith, `sg.deployment.olds`), so the order is unspecified. Given them in
       * dependency order, returns them in the order to take; the other schedules keep dependency order.
       */
      mapOrder?: (names: string[]) => string[];
    };

/**
 * Ready work as a `choose` schedule sees it: the resource, and for a chain of steps already
 * generated, the step that would go next (a registration not yet stepped has none). The real
 * engine's comparison (test/engine/replay.test.ts) follows a recorded run with it.
 */
export interface ReadyWork {
  name: string;
  next?: { op: StepOp; name: string };
}

/**
 * Thrown by an executor when the provider created the resource but could not finish it (container
 * start, health wait): the engine records it with init errors. On other steps it is a plain failure.
 */
export class PartialCreate extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PartialCreate";
  }
}

/** Carries a step out; throwing fails it. */
export type Executor = (step: Step) => Promise<void>;

export interface RunOptions {
  schedule?: Schedule;
  /** Called for every step on which the engine calls a provider (see `callsProvider`). */
  execute?: Executor;
  /**
   * `pulumi up --refresh`: each live custom entry is read first (undefined: it no longer exists). Entries
   * pending replacement are not read (step.go RefreshStep.Apply skips them).
   */
  refresh?: (entry: StateEntry) => StateEntry | undefined;
  /** Provider answers for types not in provider-facts.ts (the lifecycle tests' test providers). */
  providers?: Record<string, ProviderFacts>;
}

export interface RunResult {
  steps: Step[];
  /** The new snapshot (a copy). */
  state: Map<string, StateEntry>;
  failed?: { step: Step; error: Error };
}

/** The key Pulumi marks a secret value with when it serialises inputs. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Inputs with Pulumi's secret wrappers removed, for comparison and for carrying them out. */
export function plain(value: any): any {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    if (SECRET_SIG in value) return plain(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** Name of a provider given as a name or as the SDK's reference `urn:pulumi:stack::project::type::name::id`. */
export function providerName(ref: string | undefined): string | undefined {
  if (!ref) return undefined;
  const parts = ref.split("::");
  return parts.length >= 5 ? parts[3] : ref;
}
