/**
 * scripts/dev-up.sh (the README's main job) with a recording stand-in for the Pulumi CLI, which
 * cannot be downloaded here. The stand-in sits where the project's pinned launcher (the `pulumi`
 * npm package) caches the binary of its version, so the script's `npx pulumi` goes through the
 * real launcher and must ask for exactly the pinned version. It shows the order of the CLI calls,
 * that secrets are generated once and passed on stdin only, and that a second run keeps them.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, test } from "vitest";
import { exec } from "../support/exec";
import { tempDir } from "../support/standin-stack";

const ROOT = path.resolve(__dirname, "../..");
const PINNED = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).devDependencies.pulumi as string;

/**
 * A fake `pulumi` in `<home>/versions/<version>/bin`, the launcher's cache, that keeps config in
 * a directory and logs each call with what it read on stdin. Returns the directory of its files.
 */
function fakePulumi(home: string, version: string): string {
  const dir = path.join(home, "versions", version, "bin");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "pulumi"), `#!/usr/bin/env bash
state=${home}/config; mkdir -p "$state"; log=${home}/calls.log
key=""; for a in "$@"; do case "$a" in utilitarian:*) key="$a";; esac; done
file="$state/$(printf '%s' "$key" | tr '/:' '__')"
case "$1 $2" in
  "config get") [[ -f "$file" ]] || exit 1; cat "$file"; echo "$*" >>"$log"; exit 0 ;;
  "config set") input=$(cat); printf '%s' "$input" >"$file"; echo "$* <stdin:\${#input} chars>" >>"$log"; exit 0 ;;
esac
echo "$*" >>"$log"
`, { mode: 0o755 });
  return home;
}

describe("scripts/dev-up.sh", () => {
  test("selects the dev stack, generates each secret once through stdin, then runs pulumi up", async () => {
    expect(PINNED).toMatch(/^\d+\.\d+\.\d+$/); // an exact version, not a range
    const bin = fakePulumi(tempDir("fake-pulumi"), PINNED);
    // A `pulumi` on PATH that is not the pinned one must not be used.
    const decoy = tempDir("decoy-pulumi");
    fs.writeFileSync(path.join(decoy, "pulumi"), "#!/bin/sh\necho decoy >&2; exit 97\n", { mode: 0o755 });
    const env = { ...process.env, PATH: `${decoy}:${process.env.PATH}`, PULUMI_HOME: bin, PULUMI_BACKEND_URL: `file://${bin}/state` };
    const first = await exec("bash", [path.join(ROOT, "scripts/dev-up.sh"), "--yes"], { env, timeoutMs: 600_000 });
    expect(first.code, first.stderr).toBe(0);
    const calls = fs.readFileSync(path.join(bin, "calls.log"), "utf8").trim().split("\n");
    const sets = calls.filter((c) => c.startsWith("config set"));
    expect(calls[0]).toBe("stack select dev --create --non-interactive");
    expect(sets.map((c) => c.split(" ").find((a) => a.startsWith("utilitarian:")))).toEqual([
      "utilitarian:secretKey", "utilitarian:databasePassword", "utilitarian:databaseAdminPassword",
      "utilitarian:rabbitmqPassword", "utilitarian:edgeAuthToken", "utilitarian:apiSecretEnv.STANDIN_ACCEPTED_TOKEN",
    ]);
    for (const c of sets) expect(c).toMatch(/^config set --secret .*<stdin:(\d+) chars>$/);
    expect(Number(/<stdin:(\d+)/.exec(sets[0])![1])).toBeGreaterThanOrEqual(32);
    expect(calls.at(-1)).toBe("up --stack dev --yes");
    const token = fs.readFileSync(path.join(bin, "config", "utilitarian_edgeAuthToken"), "utf8");
    expect(fs.readFileSync(path.join(bin, "config", "utilitarian_apiSecretEnv.STANDIN_ACCEPTED_TOKEN"), "utf8")).toBe(token);
    // No generated value reached the terminal.
    expect(first.stdout + first.stderr).not.toContain(token);

    const second = await exec("bash", [path.join(ROOT, "scripts/dev-up.sh"), "--yes"], { env, timeoutMs: 600_000 });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).not.toContain("generated");
    expect(fs.readFileSync(path.join(bin, "config", "utilitarian_edgeAuthToken"), "utf8")).toBe(token);
  }, 600_000);
});
