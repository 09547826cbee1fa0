import * as fs from "fs";
import { isDeepStrictEqual } from "util";
import { z } from "zod";
import { SECRET_KEYS, settingsSchema } from "./schema";

/**
 * The README's configuration reference, generated from the zod schema so that it cannot drift
 * from what is validated: the descriptions live in the schema's metadata (`.meta({ description,
 * whenUnset })`), the defaults are the schema's own. Pure: schema in, Markdown out. Run as a
 * script (`npm run docs`), it rewrites the README's section between the markers.
 */

export const START_MARKER = "<!-- config-reference:start -->";
export const END_MARKER = "<!-- config-reference:end -->";
const NAMESPACE = "utilitarian";

/** One key as the README lists it: `database.host`, `workers[].name`. */
export interface ReferenceRow {
  key: string;
  /** The default as the schema has it, or what an unset key means. */
  default: string;
  description: string | undefined;
}

/** What the README says of a secret key (`SECRET_KEYS` in config/schema.ts). */
export interface SecretReference {
  required: string;
  description: string;
  /** The command that sets it, when more than `pulumi config set --secret utilitarian:<key>`. */
  how?: string;
}

type Schema = z.core.$ZodType;
type Def = {
  type: string;
  innerType?: Schema;
  in?: Schema;
  out?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  defaultValue?: unknown;
};

/** A key's schema without its wrappers (optional, default, preprocess, transform), and what they said. */
interface Unwrapped {
  core: Schema;
  optional: boolean;
  default?: { value: unknown };
  description?: string;
  whenUnset?: string;
}

const defOf = (schema: Schema) => schema._zod.def as unknown as Def;

function unwrap(schema: Schema): Unwrapped {
  const found: Unwrapped = { core: schema, optional: false };
  for (let current: Schema | undefined = schema; current;) {
    // Outer metadata wins: `.meta()` on the key itself, over any on a shared inner schema.
    const meta = z.globalRegistry.get(current);
    if (found.description === undefined && typeof meta?.description === "string") found.description = meta.description;
    if (found.whenUnset === undefined && typeof meta?.whenUnset === "string") found.whenUnset = meta.whenUnset;
    found.core = current;
    const def = defOf(current);
    if (def.type === "optional") found.optional = true;
    if ((def.type === "default" || def.type === "prefault") && !found.default)
      found.default = { value: def.defaultValue };
    if (["optional", "default", "prefault", "nullable", "readonly", "catch", "nonoptional"].includes(def.type))
      current = def.innerType;
    // A preprocess is a pipe from a transform into the real schema; a transform, the reverse.
    else if (def.type === "pipe") current = defOf(def.in!).type === "transform" ? def.out : def.in;
    else current = undefined;
  }
  return found;
}

/** The keys of an object schema, or of the objects of an array schema, with their key prefix. */
function childrenOf(core: Schema, key: string): [string, Schema][] {
  const def = defOf(core);
  if (def.type === "object")
    return Object.entries(def.shape!).map(([name, child]) => [key ? `${key}.${name}` : name, child]);
  if (def.type === "array") {
    const element = unwrap(def.element!).core;
    if (defOf(element).type === "object") return childrenOf(element, `${key}[]`);
  }
  return [];
}

/** Every key of the schema, parents before their keys, in the schema's order. */
export function referenceRows(schema: Schema): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const visit = (key: string, child: Schema) => {
    const found = unwrap(child);
    rows.push({ key, default: defaultText(found), description: found.description });
    for (const [childKey, grandchild] of childrenOf(found.core, key)) visit(childKey, grandchild);
  };
  for (const [key, child] of childrenOf(unwrap(schema).core, "")) visit(key, child);
  return rows;
}

function defaultText(key: Unwrapped): string {
  if (key.default) {
    // An object whose default is just its keys' defaults: those rows show them.
    const fromKeys = defOf(key.core).type === "object" ? z.safeParse(key.core, {}) : undefined;
    if (fromKeys?.success && isDeepStrictEqual(fromKeys.data, key.default.value)) return "its keys' defaults";
    return `\`${valueText(key.default.value)}\``;
  }
  if (key.whenUnset !== undefined) return key.whenUnset;
  return key.optional ? "unset" : "required";
}

/** A value as it is written in a stack file or after `pulumi config set --path` (JSON is YAML). */
function valueText(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(", ")}]`;
  return jsonText(value);
}
function jsonText(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(jsonText).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${jsonText(v)}`)
      .join(", ")}}`;
  }
  return JSON.stringify(value);
}

const SENTENCE_BREAK = /[.!?]\s+[A-Z]/;
const withoutCode = (text: string) => text.replace(/`[^`]*`/g, "`x`");

/**
 * What is wrong with the descriptions: each key needs one sentence that ends with what is
 * allowed, after a colon ("Port of ...: a whole number from 1 to 65535.").
 */
export function descriptionProblems(schema: Schema): string[] {
  return referenceRows(schema).flatMap(({ key, description }) => {
    const problem = describedProblem(description);
    return problem ? [`\`${NAMESPACE}:${key}\` ${problem}`] : [];
  });
}

export function describedProblem(description: string | undefined): string | undefined {
  if (description === undefined || description.trim() === "")
    return 'has no description: add `.meta({ description: "...: what is allowed." })` to it in config/schema.ts';
  const prose = withoutCode(description);
  if (!prose.endsWith(".")) return "has a description that does not end with a full stop";
  if (SENTENCE_BREAK.test(prose)) return "has a description of more than one sentence";
  if (!prose.includes(": ")) return "has a description without ': what is allowed' at its end";
  return undefined;
}

const cell = (text: string) => text.replace(/\r?\n/g, " ").replace(/\|/g, "\\|");

/** The Markdown between the README's markers: the keys' table and the secrets' table. */
export function referenceMarkdown(schema: Schema, secrets: Readonly<Record<string, SecretReference>>): string {
  const keys = referenceRows(schema).map(
    ({ key, default: byDefault, description }) => `| \`${key}\` | ${cell(byDefault)} | ${cell(description ?? "")} |`,
  );
  const secretRows = Object.entries(secrets).map(
    ([key, secret]) =>
      `| \`${key}\` | ${cell(secret.required)} | ${cell(secret.description)} | \`${cell(secret.how ?? `pulumi config set --secret ${NAMESPACE}:${key}`)}\` |`,
  );
  return [
    "<!-- Generated from config/schema.ts by `npm run docs`: edit the descriptions there, not here. -->",
    "",
    "| key | default | meaning: allowed values |",
    "|---|---|---|",
    ...keys,
    "",
    "Secrets, each set with `pulumi config set --secret` (a plain-text value is refused); without a",
    "value on its command line `pulumi config set` prompts for it, which keeps it out of the shell's history:",
    "",
    "| key | required | meaning: allowed values | set with |",
    "|---|---|---|---|",
    ...secretRows,
    "",
  ].join("\n");
}

function markerPositions(readme: string): { start: number; end: number } {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  const once = (marker: string) => readme.indexOf(marker) === readme.lastIndexOf(marker);
  if (start < 0 || end < start || !once(START_MARKER) || !once(END_MARKER)) {
    throw new Error(
      `README.md must hold ${START_MARKER} and then ${END_MARKER}, once each, around the configuration reference`,
    );
  }
  return { start: start + START_MARKER.length, end };
}

/** The text between the markers, without the line breaks that follow and precede them. */
export function referenceSection(readme: string): string {
  const { start, end } = markerPositions(readme);
  return readme.slice(start, end).replace(/^\n/, "");
}

/** The README with the section between the markers replaced; everything else kept as it is. */
export function withReferenceSection(readme: string, markdown: string): string {
  const { start, end } = markerPositions(readme);
  return `${readme.slice(0, start)}\n${markdown}${readme.slice(end)}`;
}

/** `node dist/config/reference.js README.md`: rewrites the README's section in place. */
function main(readmePath: string | undefined): number {
  if (!readmePath) {
    process.stderr.write("usage: node dist/config/reference.js <README.md>\n");
    return 2;
  }
  const problems = descriptionProblems(settingsSchema);
  if (problems.length > 0) {
    process.stderr.write(`config/schema.ts: fix these descriptions first:\n  - ${problems.join("\n  - ")}\n`);
    return 1;
  }
  // Read just before writing: others may be editing other sections of the README.
  const before = fs.readFileSync(readmePath, "utf8");
  const after = withReferenceSection(before, referenceMarkdown(settingsSchema, SECRET_KEYS));
  if (after !== before) fs.writeFileSync(readmePath, after);
  process.stdout.write(
    after === before
      ? `${readmePath}: configuration reference already up to date\n`
      : `${readmePath}: configuration reference rewritten\n`,
  );
  return 0;
}

if (typeof require !== "undefined" && typeof module !== "undefined" && require.main === module) {
  process.exitCode = main(process.argv[2]);
}
