import * as runtimeState from "@pulumi/pulumi/runtime/state";

/** The part of the SDK's run-time store read here; the SDK keeps `getStore` out of its type declarations. */
interface FeatureStore {
  supportsReplaceWith?: boolean;
}

/**
 * Whether the engine running this program accepts the `replaceWith` option (3.208+). The SDK asks
 * the engine at start-up (runtime/settings.ts awaitFeatureSupport) and keeps the answer in its
 * store; on an engine without it the SDK refuses the option outright, so the component sets it
 * only where it is understood and relies on its ForceNew input edges elsewhere.
 */
export function engineSupportsReplaceWith(): boolean {
  const { getStore } = runtimeState as unknown as { getStore: () => FeatureStore };
  return getStore().supportsReplaceWith === true;
}
