import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface BackupSpec {
  /** UTC time as in the name, like 20250102T030405Z. */
  stamp: string;
  from: string;
  to: string;
  /** Leave out a sidecar, or make the manifest lie about the size. */
  without?: "sha256" | "json";
  manifestBytes?: number;
}

/**
 * Writes a backup with its sidecars in exactly the layout scripts/backup.sh writes (names,
 * "<sha256>  <name>" checksum line, manifest fields); the dump itself is a few stand-in bytes,
 * since the config check reads only sizes and sidecars. Returns the dump's file name.
 */
export function writeBackup(dir: string, spec: BackupSpec): string {
  fs.mkdirSync(dir, { recursive: true });
  const name = `utilitarian-${spec.stamp}-${spec.from}-to-${spec.to}.dump`;
  const content = Buffer.from(`PGDMP stand-in dump ${name}\n`);
  fs.writeFileSync(path.join(dir, name), content);
  const sha = createHash("sha256").update(content).digest("hex");
  if (spec.without !== "sha256") fs.writeFileSync(path.join(dir, `${name}.sha256`), `${sha}  ${name}\n`);
  if (spec.without !== "json") {
    const s = spec.stamp;
    const manifest = {
      format_version: 1,
      file: name,
      bytes: spec.manifestBytes ?? content.length,
      sha256: sha,
      from: spec.from,
      to: spec.to,
      created_at: `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`,
      database: "utilitarian",
      server_version: "15.8",
      pg_dump_version: "pg_dump (PostgreSQL) 15.8",
      test_restore: true,
      tables: 1,
      rows: 3,
      row_counts: { "public.readings_meterreading": 3 },
    };
    fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(manifest, null, 2)}\n`);
  }
  return name;
}

/** A fresh directory for one test; the caller removes it (`fs.rmSync(dir, { recursive: true })`). */
export function tempBackupDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `utilitarian-${label}-`));
}

const day = (d: number) => `202501${String(d).padStart(2, "0")}T030000Z`;
/** What the shared backup directory holds, by role. */
const FIXTURE: Record<string, { inside: boolean; spec: BackupSpec }> = {
  "verified 1.0.0": { inside: true, spec: { stamp: day(2), from: "1.0.0", to: "1.1.0" } },
  "verified 1.1.0": { inside: true, spec: { stamp: day(3), from: "1.1.0", to: "1.2.0" } },
  "verified 1.2.0": { inside: true, spec: { stamp: day(4), from: "1.2.0", to: "1.3.0" } },
  withoutManifest: { inside: true, spec: { stamp: day(5), from: "1.3.0", to: "1.4.0", without: "json" } },
  withoutChecksum: { inside: true, spec: { stamp: day(6), from: "1.4.0", to: "1.5.0", without: "sha256" } },
  truncated: { inside: true, spec: { stamp: day(7), from: "1.5.0", to: "1.6.0", manifestBytes: 10_000 } },
  outside: { inside: false, spec: { stamp: day(2), from: "1.0.0", to: "1.1.0" } },
};

/**
 * The shared directory, built once per machine and fixture content (its name carries a hash of
 * both), then only read: test files in other processes use it at the same time. Built in a
 * staging directory and renamed into place, so nobody sees it half written.
 */
function sharedBackupRoot(): string {
  const key = createHash("sha256")
    .update(JSON.stringify(FIXTURE) + writeBackup.toString())
    .digest("hex")
    .slice(0, 12);
  const root = path.join(os.tmpdir(), `utilitarian-unit-backups-${key}`);
  if (fs.existsSync(path.join(root, "complete"))) return root;
  const staging = fs.mkdtempSync(`${root}-staging-`);
  for (const { inside, spec } of Object.values(FIXTURE))
    writeBackup(path.join(staging, inside ? "backups" : "elsewhere"), spec);
  fs.writeFileSync(path.join(staging, "complete"), "");
  try {
    fs.renameSync(staging, root);
    return root;
  } catch {
    // Another process put it in place first.
    if (fs.existsSync(path.join(root, "complete"))) {
      fs.rmSync(staging, { recursive: true, force: true });
      return root;
    }
    return staging;
  }
}

/**
 * One backup directory shared by the config tests and the malformed configs: verified backups
 * taken while 1.0.0, 1.1.0 and 1.2.0 ran, and broken ones taken while 1.3.0 to 1.5.0 ran.
 */
export const BACKUPS = (() => {
  const root = sharedBackupRoot();
  const dir = path.join(root, "backups");
  const file = (role: string) => {
    const { inside, spec } = FIXTURE[role];
    return path.join(
      root,
      inside ? "backups" : "elsewhere",
      `utilitarian-${spec.stamp}-${spec.from}-to-${spec.to}.dump`,
    );
  };
  return {
    dir,
    verified: { "1.0.0": file("verified 1.0.0"), "1.1.0": file("verified 1.1.0"), "1.2.0": file("verified 1.2.0") },
    /** The newest backup taken while 1.3.0 ran has no manifest. */
    withoutManifest: file("withoutManifest"),
    withoutChecksum: file("withoutChecksum"),
    /** Its manifest says more bytes than the file holds: cut short after it was verified. */
    truncated: file("truncated"),
    /** A complete backup, but in another directory. */
    outside: file("outside"),
  };
})();
