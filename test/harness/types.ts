import type { Declared } from "../support/engine";

/**
 * One RegisterResource request as the test engine received it from the program. A superset of
 * the engine model's `Declared`, so the model consumes it directly.
 *
 * `inputs` are deserialized with the SDK's own `deserializeProperties`: a secret stays wrapped as
 * `{ [SECRET_SIG]: "1b47061264138c4ac30d75fd1eb44270", value }` (nested secrets are lifted to
 * their top-level property, as the SDK does), an unknown value (preview) is the string `UNKNOWN`.
 */
export interface HarnessRegistration extends Declared {
  urn: string;
  /** Name of the parent resource: the stack's name for its children (as in the engine); undefined for the stack. */
  parent?: string;
  /** True for custom resources (provider-managed), false for components and the stack. */
  custom: boolean;
  /** Provider reference `urn::id` as the program sent it; undefined when the default provider is used. */
  provider?: string;
  protect: boolean;
  retainOnDelete: boolean;
  /** The `deleteBeforeReplace` option; undefined when the program did not set it (the engine's goal keeps that difference). */
  deleteBeforeReplace?: boolean;
  ignoreChanges: string[];
  /** Names of the resources whose replacement replaces this one (`replaceWith`). */
  replaceWith: string[];
  /** Name of the resource this one is deleted with (`deletedWith`). */
  deletedWith?: string;
  additionalSecretOutputs: string[];
  /** The `replacementTrigger` option's value as sent (wire form). */
  replacementTrigger?: unknown;
}

/** What the engine holds for one resource between runs. */
export interface ResourceState {
  /** The provider's ID; dynamic resources need it for Diff and Update. Defaults to `<name>-id`. */
  id?: string;
  inputs: Record<string, any>;
  outputs: Record<string, any>;
}

/** What the engine hook answers for a custom resource that is neither dynamic nor absent. */
export interface HookAnswer {
  /** "" means unknown (a create during preview). */
  id: string;
  /** Output properties; `UNKNOWN` for values a preview cannot know; secrets wrapped as in inputs. */
  outputs: Record<string, any>;
}

/**
 * Stands in for the bridged providers (docker, command, postgresql) and explicit provider
 * resources, which cannot run here. May hold its answer back (a gate) or return unknowns.
 */
export interface EngineHook {
  register?(registration: HarnessRegistration): Promise<HookAnswer>;
}

export interface RunOptions {
  /** Directory holding Pulumi.yaml. */
  programDir: string;
  stack: string;
  /** Config as the CLI passes it in RunRequest.config: `namespace:key` -> string (structured values as JSON). */
  config: Record<string, string>;
  /** Full keys (`namespace:key`) whose values are secrets. */
  secretKeys?: string[];
  /** true: `pulumi preview` (--dry-run); false: `pulumi up`. */
  preview: boolean;
  engine?: EngineHook;
  /** The state left by an earlier run, by resource name; absent means a first run. */
  priorState?: Map<string, ResourceState>;
  /** What the engine answers to SupportsFeature, over its defaults: an older engine says `{ replaceWith: false }`. */
  features?: Record<string, boolean>;
  /** Kills the program and fails the run after this long. Defaults to 120 s. */
  timeoutMs?: number;
}

export interface Diagnostic {
  /** The engine's severities: "info", "info#err" (a plugin's stderr), "warning", "error". */
  severity: string;
  message: string;
  urn?: string;
}

/** One call the test engine made to the real dynamic provider host. */
export interface DynamicCall {
  /** Resource name ("default" for the default provider of package pulumi-nodejs). */
  name: string;
  /** RPC method: Handshake, GetPluginInfo, CheckConfig, DiffConfig, Configure, Check, Diff, Create, Update. */
  method: string;
  /** A short summary of the answer: check failures, diff result, or the error. */
  result?: string;
}

export interface ProgramRun {
  registrations: HarnessRegistration[];
  /** Stack outputs (registerResourceOutputs on the root stack), deserialized like inputs. */
  outputs: Record<string, any>;
  /** Engine.Log messages of severity info and above, plugin stderr lines, and the engine's own errors. */
  diagnostics: Diagnostic[];
  exitCode: number;
  stdout: string;
  stderr: string;
  dynamicCalls: DynamicCall[];
  /** The state the engine holds after the run. A preview writes nothing: it is the prior state. */
  state: Map<string, ResourceState>;
  /** True when the program exited 0 and the engine reported no error (what `pulumi up` reports as success). */
  succeeded: boolean;
  /** Wall time of the whole run, program start to exit, in ms. */
  wallMs: number;
}
