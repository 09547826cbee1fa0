import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { expect } from "vitest";
import { restoreFromProblems } from "../../../config/backups";
import { backupName, checksumLine, MANIFEST_FORMAT_VERSION } from "../../../config/manifest";

/**
 * The shared table of backup directories on which the TypeScript (config/backups.ts, the
 * preview) and the scripts (lib.sh's backups_newest_first, restore.sh) must agree: which file
 * `latest` is for a version, and whether it is refused. test/unit/backup-manifest.test.ts runs
 * it against lib.sh with stand-in dumps; test/real/backup-manifest.test.ts against restore.sh
 * itself with a real dump and server.
 */

export interface FixtureBackup {
  /** Day of January 2025 the backup was taken (03:00 UTC): a larger day is newer. */
  day: number;
  from: string;
  to: string;
  /** A sidecar left out, as a run killed before writing it or a copy by hand leaves it. */
  without?: ".sha256" | ".json";
  /** Changed after verification: bytes appended to the dump, or another checksum in .sha256. */
  tampered?: "dump" | "checksum";
  /** The manifest with a field left out, or set to a value of another type. */
  manifest?: { drop: string } | { set: Record<string, unknown> };
  /** Not a verified file at all: a symlink to the previous entry, or a killed run's .partial. */
  kind?: "symlink" | "partial";
}

export interface ManifestCase {
  name: string;
  backups: FixtureBackup[];
  /** The version rolled back to: `latest` means the newest backup taken while it ran. */
  version: string;
  /** The backup `latest` resolves to (its day), or undefined when there is none. */
  latest: number | undefined;
  /** Whether the preview and restore.sh refuse it (or refuse because there is none). */
  refused: boolean;
  /** Why, as each side words it. */
  preview?: RegExp;
  script?: RegExp;
}

const ok = (day: number, from = "1.0.0", to = "1.1.0"): FixtureBackup => ({ day, from, to });

export const MANIFEST_CASES: ManifestCase[] = [
  {
    name: "newer and older backups of the version: the newest",
    backups: [ok(2), ok(4), ok(3)],
    version: "1.0.0",
    latest: 4,
    refused: false,
  },
  {
    name: "a newer backup taken while another version ran is not it",
    backups: [ok(2), ok(5, "1.1.0", "1.0.0"), ok(6, "2.1.0", "2.2.0")],
    version: "1.0.0",
    latest: 2,
    refused: false,
  },
  {
    name: "a newer dump without .sha256 (unverified) is skipped",
    backups: [ok(2), { ...ok(4), without: ".sha256" }],
    version: "1.0.0",
    latest: 2,
    refused: false,
  },
  {
    name: "a killed backup's .partial file and a symlink are not backups",
    backups: [ok(2), { ...ok(4), kind: "partial" }, { ...ok(5), kind: "symlink" }],
    version: "1.0.0",
    latest: 2,
    refused: false,
  },
  {
    name: "the newest has a tampered dump: refused, not an older one restored",
    backups: [ok(2), { ...ok(4), tampered: "dump" }],
    version: "1.0.0",
    latest: 4,
    refused: true,
    preview: /it has \d+ bytes but its manifest says \d+/,
    script: /sha256 mismatch/,
  },
  {
    name: "the newest has a tampered checksum file",
    backups: [ok(2), { ...ok(4), tampered: "checksum" }],
    version: "1.0.0",
    latest: 4,
    refused: true,
    preview: /its manifest and its checksum file disagree on the sha256/,
    script: /sha256 mismatch/,
  },
  {
    name: "the newest's manifest lacks a field",
    backups: [ok(2), { ...ok(4), manifest: { drop: "bytes" } }],
    version: "1.0.0",
    latest: 4,
    refused: true,
    preview: /is not one backup.sh writes \(bytes: /,
    script: /is not one backup.sh writes \(bytes is missing\)/,
  },
  {
    name: "the newest's manifest has a field of the wrong type",
    backups: [ok(2), { ...ok(4), manifest: { set: { tables: "4" } } }],
    version: "1.0.0",
    latest: 4,
    refused: true,
    preview: /is not one backup.sh writes \(tables: /,
    script: /is not one backup.sh writes \(tables is a string, not a number\)/,
  },
  {
    name: "the newest's manifest is of another format_version",
    backups: [ok(2), { ...ok(4), manifest: { set: { format_version: MANIFEST_FORMAT_VERSION + 1 } } }],
    version: "1.0.0",
    latest: 4,
    refused: true,
    preview: /is not one backup.sh writes \(format_version: /,
    script: /format_version is 2, not 1/,
  },
  {
    name: "only backups of other versions: none",
    backups: [ok(2), ok(3, "1.1.0", "1.2.0")],
    version: "9.9.9",
    latest: undefined,
    refused: true,
    preview: /holds none/,
    script: /no verified backup \(utilitarian-\*-9\.9\.9-to-\*\.dump with \.sha256\)/,
  },
];

export const fixtureName = (b: FixtureBackup) =>
  backupName(`202501${String(b.day).padStart(2, "0")}T030000Z`, b.from, b.to);

/** The file name `latest` must resolve to in case `c`, or undefined when there is none. */
export function latestName(c: ManifestCase): string | undefined {
  const latest = c.backups.find((b) => b.day === c.latest);
  return latest && fixtureName(latest);
}

/** The preview's answer for `latest` in `dir` (written from case `c`) is the case's. */
export function expectPreviewAgrees(c: ManifestCase, dir: string) {
  const problems = restoreFromProblems({ restoreFrom: "latest", backupDir: dir, version: c.version, projectDir: "/" });
  expect(problems.length > 0).toBe(c.refused);
  if (c.preview) expect(problems[0]).toMatch(c.preview);
}

/**
 * Writes `backups` into `dir` the way backup.sh does, with `dump` as every dump's bytes and
 * `manifest` (one backup.sh wrote, or a stand-in) as the model of every manifest, its file,
 * bytes, sha256, from and to set for each; then applies each entry's breakage.
 */
export function writeCase(dir: string, backups: FixtureBackup[], dump: Buffer, manifest: Record<string, unknown>) {
  fs.mkdirSync(dir, { recursive: true });
  let previous = "";
  for (const b of backups) {
    const name = fixtureName(b);
    const file = path.join(dir, name);
    if (b.kind === "partial") {
      fs.writeFileSync(path.join(dir, `.${name}.partial`), dump);
      fs.writeFileSync(path.join(dir, `.${name}.sha256.tmp`), "");
      continue;
    }
    if (b.kind === "symlink") {
      fs.symlinkSync(previous, file);
      fs.writeFileSync(`${file}.sha256`, fs.readFileSync(path.join(dir, `${previous}.sha256`)));
      fs.writeFileSync(`${file}.json`, fs.readFileSync(path.join(dir, `${previous}.json`)));
      continue;
    }
    previous = name;
    const sha = createHash("sha256").update(dump).digest("hex");
    fs.writeFileSync(file, b.tampered === "dump" ? Buffer.concat([dump, Buffer.from("tampered")]) : dump);
    const listed = b.tampered === "checksum" ? createHash("sha256").update("other").digest("hex") : sha;
    if (b.without !== ".sha256") fs.writeFileSync(`${file}.sha256`, checksumLine(listed, name));
    const m: Record<string, unknown> = {
      ...manifest,
      file: name,
      bytes: dump.length,
      sha256: sha,
      from: b.from,
      to: b.to,
    };
    if (b.manifest && "drop" in b.manifest) delete m[b.manifest.drop];
    if (b.manifest && "set" in b.manifest) Object.assign(m, b.manifest.set);
    if (b.without !== ".json") fs.writeFileSync(`${file}.json`, `${JSON.stringify(m, null, 2)}\n`);
  }
}

/** A manifest as backup.sh writes it, for tests that have no real one; the dump is `dump`. */
export function standInManifest(dump: Buffer): Record<string, unknown> {
  return {
    format_version: MANIFEST_FORMAT_VERSION,
    file: "",
    bytes: dump.length,
    sha256: "",
    from: "",
    to: "",
    created_at: "2025-01-02T03:00:00Z",
    database: "utilitarian",
    server_version: "15.8",
    pg_dump_version: "pg_dump (PostgreSQL) 15.8",
    test_restore: false,
    schema_restore: true,
    compress_level: 1,
    tables: 1,
    rows: 3,
    row_counts: { "public.meter": 3 },
  };
}
