import { nestedReplaces, providerReplaces, type ProviderFacts } from "../support/provider-facts";
import type { Props } from "./types";

/**
 * Diff as the real providers answer it, over the inputs the engine recorded and the new ones:
 * - changed: the top-level properties whose values differ (an unknown value differs from any);
 * - replaces: those the provider's schema forces a replacement for (provider-facts.ts replaceKeys:
 *   Terraform ForceNew through the bridge, a go-provider `replaceOnChanges` tag);
 * - deleteBeforeReplace: the bridge sets it only when it reported replace keys itself and the
 *   resource's schema asks for it (pulumi-terraform-bridge provider.go Diff), which is
 *   `deleteBeforeReplace: "whenReplacing"` in the facts; go-provider never sets it. A nested ForceNew
 *   attribute (facts.nestedReplacePaths) that changed replaces, named by its top-level property.
 * The engine adds what `replaceOnChanges` asks for from `changed` (step_generator.go applyReplaceOnChanges).
 */
export function diffInputs(
  facts: ProviderFacts,
  olds: Props,
  news: Props,
): { changed: string[]; replaces: string[]; deleteBeforeReplace: boolean } {
  const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].filter((k) => !k.startsWith("__")).sort();
  const changed = keys.filter((k) => canonical(olds[k]) !== canonical(news[k]));
  const nested = nestedReplaces(facts, olds, news, (a, b) => canonical(a) === canonical(b));
  const replaces = changed.filter((k) => providerReplaces(facts, k) || nested.includes(k));
  return {
    changed,
    replaces,
    deleteBeforeReplace: replaces.length > 0 && facts.deleteBeforeReplace === "whenReplacing",
  };
}

/** JSON with sorted object keys; absent, null and empty collections alike (Terraform reads them as unset). */
function canonical(v: unknown): string {
  const norm = (x: unknown): unknown => {
    if (x === null || x === undefined) return undefined;
    if (Array.isArray(x)) return x.length ? x.map(norm) : undefined;
    if (typeof x === "object") {
      const entries = Object.entries(x as Props)
        .map(([k, y]) => [k, norm(y)] as const)
        .filter(([, y]) => y !== undefined)
        .sort(([a], [b]) => a.localeCompare(b));
      return entries.length ? Object.fromEntries(entries) : undefined;
    }
    return x;
  };
  return JSON.stringify(norm(v)) ?? "";
}
