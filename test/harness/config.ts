import { NAMESPACE } from "../../config/load";

/**
 * Turns the nested test values of test/unit/support/fixtures.ts (`loaded()`, `rawConfig()`) into
 * the flat config the CLI hands the language host in RunRequest.config: `utilitarian:key` ->
 * string. A string stays as it is; anything else is what the CLI makes of a structured stack
 * setting: Go's `json.Marshal` of the decoded YAML value (keys sorted, no spaces, `<`, `>`, `&`
 * escaped). No defaults are added: pass the version and edge versions as `loaded()` does.
 */
export function configFromValues(
  values: Record<string, unknown>,
  secrets: Record<string, string>,
): { config: Record<string, string>; secretKeys: string[] } {
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined) config[`${NAMESPACE}:${key}`] = typeof value === "string" ? value : goJson(value);
  }
  for (const [key, value] of Object.entries(secrets)) config[`${NAMESPACE}:${key}`] = value;
  return {
    config,
    secretKeys: Object.keys(secrets)
      .map((key) => `${NAMESPACE}:${key}`)
      .sort(),
  };
}

/** `encoding/json.Marshal` of a decoded value: map keys sorted, HTML-sensitive characters escaped. */
export function goJson(value: unknown): string {
  return JSON.stringify(sortMapKeys(value)).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function sortMapKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortMapKeys);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortMapKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
