/**
 * The backup manifest's one definition (config/manifest.ts) against its two readers: the
 * preview's config/backups.ts and the scripts' lib.sh (scripts/manifest.sh generated from it,
 * the name and `latest` functions). restore.sh's own refusals of the same table run in
 * test/real/backup-manifest.test.ts, against a real server.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { afterAll, describe, expect, test } from "vitest";
import { latestFor } from "../../config/backups";
import {
  backupGlob,
  backupName,
  manifestFieldTypes,
  manifestProblem,
  manifestSchema,
  manifestShellFacts,
} from "../../config/manifest";
import { SCRIPTS_DIR } from "../support/run-script";
import { tempBackupDir } from "./support/backups";
import { expectPreviewAgrees, latestName, MANIFEST_CASES, standInManifest, writeCase } from "./support/manifest-cases";

/** Runs `script` in bash with lib.sh sourced; `args` are its $1... */
function libSh(script: string, ...args: string[]): string {
  return execFileSync("bash", ["-c", `source "$LIB"; ${script}`, "lib", ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, LIB: path.join(SCRIPTS_DIR, "lib.sh") },
  });
}

const root = tempBackupDir("manifest");
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const dump = Buffer.from("PGDMP stand-in dump\n");
const model = standInManifest(dump);

describe("scripts/manifest.sh", () => {
  test("is what config/manifest.ts generates (UPDATE_MANIFEST_SH=1 rewrites it)", () => {
    const file = path.join(SCRIPTS_DIR, "manifest.sh");
    if (process.env.UPDATE_MANIFEST_SH === "1") fs.writeFileSync(file, manifestShellFacts());
    expect(fs.readFileSync(file, "utf8")).toBe(manifestShellFacts());
  });
});

describe("the manifest schema", () => {
  const valid: Record<string, unknown> = {
    ...model,
    file: backupName("20250102T030000Z", "1.0.0", "1.1.0"),
    sha256: "a".repeat(64),
    from: "1.0.0",
    to: "1.1.0",
  };

  test("accepts a manifest as backup.sh writes it, and one from before schema_restore and compress_level", () => {
    expect(manifestProblem(valid)).toBeUndefined();
    const { schema_restore: _s, compress_level: _c, ...older } = valid;
    expect(manifestProblem(older)).toBeUndefined();
  });

  const fields = manifestFieldTypes();
  test.each(fields.filter((f) => f.required).map((f) => f.field))("refuses one without %s", (field) => {
    const { [field]: _dropped, ...rest } = valid;
    expect(manifestProblem(rest)).toMatch(new RegExp(`^${field}: `));
  });

  const otherType: Record<string, unknown> = { string: 7, number: "7", boolean: "true", object: [] };
  test.each(fields)("refuses $field of another JSON type than $type", ({ field, type }) => {
    expect(manifestProblem({ ...valid, [field]: otherType[type] })).toMatch(new RegExp(`^${field}: `));
  });

  test("every field is a JSON type restore.sh's json_typeof check knows", () => {
    expect(fields.every((f) => f.type in otherType)).toBe(true);
    expect(Object.keys(manifestSchema.shape)).toEqual(fields.map((f) => f.field));
  });
});

describe("names: lib.sh and config/manifest.ts", () => {
  test("backup_name and backup_glob", () => {
    expect(libSh('backup_name "$1" "$2" "$3"', "20250301T021500Z", "none", "1.1.0+b.2")).toBe(
      backupName("20250301T021500Z", "none", "1.1.0+b.2"),
    );
    expect(libSh('backup_glob "$1"', "1.0.0")).toBe(backupGlob("1.0.0"));
    expect(libSh('backup_glob ""')).toBe(backupGlob());
  });
});

describe("latest: lib.sh (restore.sh's choice) and config/backups.ts on the shared table", () => {
  test.each(MANIFEST_CASES)("$name", (c) => {
    const dir = path.join(root, c.name.replace(/\W+/g, "-"));
    writeCase(dir, c.backups, dump, model);
    const expected = latestName(c);

    const script = libSh(
      'mapfile -t found < <(backups_newest_first "$1" "$(backup_glob "$2")" .sha256); printf %s "${found[0]:-}"',
      dir,
      c.version,
    );
    expect(script || undefined).toBe(expected);
    expect(latestFor(dir, c.version)).toBe(expected);
    expectPreviewAgrees(c, dir);
  });
});
