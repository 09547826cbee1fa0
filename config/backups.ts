import * as fs from "fs";
import * as path from "path";
import { BACKUP_NAME, backupGlob, globMatches, parseChecksumLine, parseManifest } from "./manifest";
import { STACK_CONFIG, type Naming } from "./naming";

/**
 * The verified backups in `backup.dir`, read as config/manifest.ts defines them (the format
 * `scripts/backup.sh` writes and `scripts/restore.sh` reads), so that `utilitarian:restoreFrom`
 * is refused while the program runs (preview included), before any resource is registered,
 * instead of half way through a rollback.
 *
 * The check compares the manifest with the file's size and with the checksum file, but does not
 * hash the dump: that reads the whole dump at every preview, and restore.sh hashes it anyway
 * before it touches the database.
 */

/** How many backups a refusal lists. */
const LISTED = 5;

export interface VerifiedBackup {
  /** File name inside the backup directory. */
  name: string;
  /** Version that ran when it was taken ("none" before the first install). */
  from: string;
  /** Version the run that took it deployed. */
  to: string;
}

/** Why a backup file is not a verified one, or undefined when it is. */
export function backupProblem(dir: string, name: string): string | undefined {
  const file = path.join(dir, name);
  if (!BACKUP_NAME.test(name))
    return `its name is not utilitarian-<time>-<from>-to-<to>.dump, as scripts/backup.sh names verified backups`;
  const size = statOf(file);
  if (!size?.isFile()) return "it is not a file";
  const checksum = readSmall(`${file}.sha256`);
  if (checksum === undefined) return `its checksum file ${name}.sha256 is missing`;
  const listed = parseChecksumLine(checksum);
  if (listed?.name !== name) return `its checksum file ${name}.sha256 does not hold "<sha256>  ${name}"`;
  const manifestText = readSmall(`${file}.json`);
  if (manifestText === undefined) return `its manifest ${name}.json is missing`;
  let json: unknown;
  try {
    json = JSON.parse(manifestText);
  } catch {
    return `its manifest ${name}.json is not JSON`;
  }
  const parsed = parseManifest(json);
  if ("problem" in parsed) return `its manifest ${name}.json is not one backup.sh writes (${parsed.problem})`;
  const { manifest } = parsed;
  if (manifest.file !== name) return `its manifest ${name}.json describes another file (${manifest.file})`;
  if (manifest.bytes !== size.size)
    return `it has ${size.size} bytes but its manifest says ${manifest.bytes}: the file changed or was cut short after it was verified`;
  if (manifest.sha256 !== listed.sha256) return `its manifest and its checksum file disagree on the sha256`;
  if (!name.endsWith(`-${manifest.from}-to-${manifest.to}.dump`))
    return `its manifest's from/to versions do not match its name`;
  return undefined;
}

/** The verified backups in `dir`, newest first (names sort by their UTC time, as backup.sh relies on). */
export function verifiedBackups(dir: string): VerifiedBackup[] {
  return candidates(dir)
    .filter((name) => backupProblem(dir, name) === undefined)
    .map((name) => {
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), "utf8")) as {
        from: string;
        to: string;
      };
      return { name, from: manifest.from, to: manifest.to };
    });
}

export interface RestoreCheck {
  /** The configured `utilitarian:restoreFrom`: `latest` or a path. */
  restoreFrom: string;
  /** `utilitarian:backup.dir` as configured. */
  backupDir: string;
  /** `utilitarian:version`: the version the rollback brings up. */
  version: string;
  /** Relative paths (backup.dir, restoreFrom) are taken from here: the project directory. */
  projectDir: string;
  /** How the refusals name the settings and word the fix: stack config's unless given. */
  naming?: Naming;
}

/**
 * Problems with `restoreFrom`, each a whole message naming the key, the verified backups found
 * and the fix; empty when it names (or `latest` resolves to) a verified backup taken while
 * `version` ran. `latest` resolves as restore.sh resolves it: the newest
 * `utilitarian-*-<version>-to-*.dump` with a checksum file.
 */
export function restoreFromProblems(check: RestoreCheck): string[] {
  const dir = path.resolve(check.projectDir, check.backupDir);
  const realDir = realpathOf(dir);
  if (!realDir || !statOf(realDir)?.isDirectory()) {
    return [
      refusal(
        check,
        `backup.dir ${check.backupDir} is not a directory here, so it holds no backup to restore`,
        undefined,
      ),
    ];
  }
  if (check.restoreFrom === "latest") {
    const pattern = backupGlob(check.version);
    const newest = latestFor(realDir, check.version);
    if (!newest)
      return [
        refusal(
          check,
          `latest means the newest backup taken while ${check.version} ran (${pattern}), and backup.dir ${check.backupDir} holds none`,
          realDir,
        ),
      ];
    const problem = backupProblem(realDir, newest);
    return problem
      ? [
          refusal(
            check,
            `latest is ${newest} (the newest ${pattern}), which is not a verified backup: ${problem}`,
            realDir,
          ),
        ]
      : [];
  }

  const file = path.resolve(check.projectDir, check.restoreFrom);
  if (!fs.existsSync(file)) {
    const inDir = path.join(realDir, check.restoreFrom);
    const hint =
      !path.isAbsolute(check.restoreFrom) && fs.existsSync(inDir)
        ? ` (relative paths start at the project directory; that file is ${shownPath(check, path.basename(inDir))})`
        : "";
    return [refusal(check, `${check.restoreFrom} does not exist${hint}`, realDir)];
  }
  const realFile = realpathOf(file)!;
  if (path.dirname(realFile) !== realDir) {
    return [
      refusal(
        check,
        `${check.restoreFrom} is not inside backup.dir ${check.backupDir}; only the verified backups there can be restored`,
        realDir,
      ),
    ];
  }
  const name = path.basename(realFile);
  const problem = backupProblem(realDir, name);
  if (problem) return [refusal(check, `${check.restoreFrom} is not a verified backup: ${problem}`, realDir)];
  if (!matchesVersion(name, check.version)) {
    const taken = verifiedBackups(realDir).find((b) => b.name === name)!;
    return [
      refusal(
        check,
        `${check.restoreFrom} was taken while ${taken.from} ran, but ${namingOf(check).name("version")} is ${check.version}: ` +
          `${check.version}'s code would meet ${taken.from}'s schema`,
        realDir,
      ),
    ];
  }
  return [];
}

/**
 * The file restore.sh restores for `latest`: `find -type f` (no symlinks) of
 * utilitarian-*-<version>-to-*.dump, newest name first, the first with a checksum file.
 */
export function latestFor(dir: string, version: string): string | undefined {
  return candidates(dir).find(
    (name) =>
      matchesVersion(name, version) &&
      lstatOf(path.join(dir, name))?.isFile() &&
      fs.existsSync(path.join(dir, `${name}.sha256`)),
  );
}

/**
 * One refusal: what is wrong, the newest verified backups as the values to set, and the fix
 * that works: `latest` when it resolves to a verified backup of the version, else the newest
 * verified one of the version, else another version or directory. `realDir` is undefined when
 * backup.dir itself is missing.
 */
function refusal(check: RestoreCheck, what: string, realDir: string | undefined): string {
  const n = namingOf(check);
  const head = `${n.name("restoreFrom")} is refused: ${what}.`;
  const remove = `or remove it (${n.remove("restoreFrom")}) if no rollback is under way.`;
  const otherDir = `point backup.dir at the directory that holds the backups (${n.set("backup.dir", "<directory>")}, relative to the project directory)`;
  const found = realDir ? verifiedBackups(realDir) : [];
  if (found.length === 0) {
    return `${head}${realDir ? ` backup.dir ${check.backupDir} holds no verified backup.` : ""} ${capitalised(otherDir)}, ${remove}`;
  }
  const listed = found
    .slice(0, LISTED)
    .map(
      (b) =>
        `${shownPath(check, b.name)} (${b.from === "none" ? `taken before the first install of ${b.to}` : `taken while ${b.from} ran, before the upgrade to ${b.to}`})`,
    );
  const more = found.length > LISTED ? `; and ${found.length - LISTED} older` : "";
  const inventory = `Verified backups in ${check.backupDir}, newest first: ${listed.join("; ")}${more}.`;
  const latest = latestFor(realDir!, check.version);
  const usable = found.find((b) => b.from === check.version);
  const fix =
    latest !== undefined && backupProblem(realDir!, latest) === undefined
      ? `Set it with ${n.set("restoreFrom", "latest")} (${shownPath(check, latest)}), ${remove}`
      : usable
        ? `Set it with ${n.set("restoreFrom", shownPath(check, usable.name))}, the newest verified backup taken while ${check.version} ran, ${remove}`
        : `None was taken while ${check.version} ran: set ${n.name("version")} to the version a backup was taken under, or ${otherDir}, ${remove}`;
  return `${head} ${inventory} ${fix}`;
}

const namingOf = (check: RestoreCheck) => check.naming ?? STACK_CONFIG;

const capitalised = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** The value to set for a backup: backup.dir as configured joined with its name. */
const shownPath = (check: RestoreCheck, name: string) => path.join(check.backupDir, name);

/** restore.sh's glob for the backups taken while `version` ran. */
const matchesVersion = (name: string, version: string) => globMatches(backupGlob(version), name);

/** Names of utilitarian-*.dump files, newest first (LC_ALL=C sort -r, as the scripts sort). */
function candidates(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => globMatches(backupGlob(), n)).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
}

function statOf(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

function lstatOf(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

function realpathOf(file: string): string | undefined {
  try {
    return fs.realpathSync(file);
  } catch {
    return undefined;
  }
}

/** A sidecar file's text; undefined when missing, not a file, or implausibly large for one. */
function readSmall(file: string): string | undefined {
  const stat = statOf(file);
  if (!stat?.isFile() || stat.size > 16 * 1024 * 1024) return undefined;
  return fs.readFileSync(file, "utf8");
}
