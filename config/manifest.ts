import { z } from "zod";

/**
 * The one definition of a verified backup as scripts/backup.sh writes it and scripts/restore.sh
 * and config/backups.ts read it: the file name, the `<name>.sha256` checksum file, the
 * `<name>.json` manifest, and which backup `latest` means.
 *
 * The scripts cannot import this module. What they can read as data is generated from it into
 * scripts/manifest.sh (manifestShellFacts below; test/unit/backup-manifest.test.ts fails when
 * that file is stale); the rest (the name, the `latest` rule in lib.sh) is pinned by tests: the
 * manifest and names a real backup.sh run writes parse here, and the scripts' `latest` and
 * refusals agree with this module's on a shared table of fixture directories
 * (test/unit/support/manifest-cases.ts).
 */

/** Raised when a manifest changes incompatibly; restore.sh and the preview refuse any other. */
export const MANIFEST_FORMAT_VERSION = 1;

/** What backup.sh accepts as a version: it becomes part of the file name. */
export const VERSION_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._+-]*$";

/** `utilitarian-<YYYYmmddTHHMMSSZ>-<from>-to-<to>.dump`; the UTC time first, so names sort by age. */
export const BACKUP_NAME = /^utilitarian-(\d{8}T\d{6}Z)-.+-to-.+\.dump$/;

/** The file name backup.sh gives a backup started at `stamp` (UTC, like 20250301T021500Z). */
export const backupName = (stamp: string, from: string, to: string) => `utilitarian-${stamp}-${from}-to-${to}.dump`;

/**
 * The shell glob restore.sh and the preview look for: every backup, or (with `version`) those
 * taken while `version` ran, i.e. `utilitarian-*-<version>-to-*.dump`.
 */
export const backupGlob = (version?: string) => (version ? backupName("*", version, "*") : "utilitarian-*.dump");

/** The glob as a regular expression over a file name (`*` is any text, as find -name has it). */
export function globMatches(glob: string, name: string): boolean {
  const source = glob
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`).test(name);
}

/**
 * `<name>.sha256`: the sha256 (hex) of the whole dump file, as written, in sha256sum's format
 * with the name relative to the directory ("<hex>  <name>", `sha256sum -c` checks it).
 */
export const SHA256 = /^[0-9a-f]{64}$/;
export const checksumLine = (sha256: string, name: string) => `${sha256}  ${name}\n`;

/** The checksum and name on the first line of a `.sha256` file, if it has that form. */
export function parseChecksumLine(text: string): { sha256: string; name: string } | undefined {
  const [sha256, name] = text.split("\n")[0].split(/\s+\*?/);
  return SHA256.test(sha256 ?? "") && name ? { sha256, name } : undefined;
}

const count = z.number().int().nonnegative();

/** `<name>.json`, written by backup.sh after the dump was verified and before it is renamed into place. */
export const manifestSchema = z.object({
  format_version: z.literal(MANIFEST_FORMAT_VERSION),
  /** The dump's file name (no directory). */
  file: z.string().regex(BACKUP_NAME),
  /** The dump's size. */
  bytes: count,
  /** Same as in `<name>.sha256`. */
  sha256: z.string().regex(SHA256),
  /** The version that ran when the backup was taken ("none" before the first install). */
  from: z.string().regex(new RegExp(VERSION_PATTERN)),
  /** The version the run that took it deployed. */
  to: z.string().regex(new RegExp(VERSION_PATTERN)),
  created_at: z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
  database: z.string(),
  server_version: z.string(),
  pg_dump_version: z.string(),
  /** A full test restore ran. */
  test_restore: z.boolean(),
  /**
   * The schema-only test restore ran; and pg_dump's zlib level. Optional: backup.sh added them
   * without raising format_version, so older verified backups lack them.
   */
  schema_restore: z.boolean().optional(),
  compress_level: z.number().int().min(1).max(9).optional(),
  tables: count,
  rows: count,
  /** Exact rows per table (`format('%I.%I')`), compared by restore.sh after its restore. */
  row_counts: z.record(z.string(), count),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** `value` read as a manifest, or why it is not one (its first problem, naming the field). */
export function parseManifest(value: unknown): { manifest: Manifest } | { problem: string } {
  const result = manifestSchema.safeParse(value);
  if (result.success) return { manifest: result.data };
  const issue = result.error.issues[0];
  const field = issue.path.join(".");
  return { problem: field ? `${field}: ${issue.message}` : issue.message };
}

/** Why `value` is not a manifest, or undefined when it is one. */
export function manifestProblem(value: unknown): string | undefined {
  const parsed = parseManifest(value);
  return "problem" in parsed ? parsed.problem : undefined;
}

/** The JSON type (as PostgreSQL's json_typeof names it) each field must have, and whether it must be present. */
export function manifestFieldTypes(): { field: string; type: string; required: boolean }[] {
  return Object.entries(manifestSchema.shape).map(([field, schema]) => {
    const inner = schema instanceof z.ZodOptional ? schema.unwrap() : schema;
    const type =
      inner instanceof z.ZodString
        ? "string"
        : inner instanceof z.ZodBoolean
          ? "boolean"
          : inner instanceof z.ZodRecord
            ? "object"
            : "number"; // ZodNumber, and the ZodLiteral format_version
    return { field, type, required: !(schema instanceof z.ZodOptional) };
  });
}

/**
 * scripts/manifest.sh: the facts above that the scripts read as data. Text, so the test can
 * compare it with the file byte for byte.
 */
export function manifestShellFacts(): string {
  const fields = manifestFieldTypes();
  const quoted = (list: string[]) => list.map((f) => `  ${f}`).join("\n");
  return `# shellcheck shell=bash disable=SC2034 # read by the scripts that source this file
# GENERATED from config/manifest.ts (manifestShellFacts): do not edit. To regenerate:
#   UPDATE_MANIFEST_SH=1 npx vitest run test/unit/backup-manifest.test.ts
# The backup manifest's facts the step scripts read as data rather than repeat.

# format_version backup.sh writes and restore.sh accepts.
MANIFEST_FORMAT_VERSION=${MANIFEST_FORMAT_VERSION}
# Versions backup.sh accepts (they become part of the file name).
BACKUP_VERSION_RE='${VERSION_PATTERN}'
# "<field> <json type>" every manifest must have (json_typeof's names).
MANIFEST_REQUIRED_FIELDS=(
${quoted(fields.filter((f) => f.required).map((f) => `"${f.field} ${f.type}"`))}
)
# "<field> <json type>" a manifest may leave out, of that type when present.
MANIFEST_OPTIONAL_FIELDS=(
${quoted(fields.filter((f) => !f.required).map((f) => `"${f.field} ${f.type}"`))}
)
`;
}
