import type { ProviderFacts } from "../support/provider-facts";

/** A resource's properties as plain JSON (secrets arrive unwrapped: the plugin does not accept them). */
export type Props = Record<string, any>;

/** The engine's sentinel for a value a preview does not know yet (sdk/go/common/resource/plugin/rpc.go). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface Context {
  /** The provider resource's configuration (Configure's args). */
  config(): Props;
  /** A line in the engine's output, attached to the resource (Engine.Log). */
  log(urn: string, message: string): Promise<void>;
}

/** What the plugin does for one resource type; Diff comes from `facts` (diff.ts). */
export interface ResourceType {
  facts: ProviderFacts;
  check?(inputs: Props): { property: string; reason: string }[];
  create(urn: string, inputs: Props, signal: AbortSignal): Promise<{ id: string; outs?: Props }>;
  /** Undefined: the resource is gone. Missing: the state is kept as it is. */
  read?(id: string, props: Props, inputs: Props): Promise<{ props: Props; inputs: Props } | undefined>;
  update?(urn: string, id: string, olds: Props, news: Props, signal: AbortSignal): Promise<Props>;
  delete?(urn: string, id: string, props: Props, signal: AbortSignal): Promise<void>;
}

/**
 * A create that failed after the resource came to exist: the engine records it with
 * initialisation errors and the run fails (provider-facts.ts (c)).
 */
export class InitError extends Error {
  constructor(
    readonly id: string,
    readonly props: Props,
    message: string,
  ) {
    super(message);
  }
}

/** Properties the component sets that this stand-in does not carry out: refused, never ignored. */
export function unsupported(inputs: Props, supported: readonly string[]): { property: string; reason: string }[] {
  return Object.keys(inputs)
    .filter((k) => !supported.includes(k) && !k.startsWith("__"))
    .map((property) => ({
      property,
      reason: `the stand-in provider does not implement ${property}; add it to test/provider before the component uses it`,
    }));
}
