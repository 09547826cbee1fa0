/**
 * The engine toolchain (issue 15, part 1): the Pulumi CLI and the Node.js language host built from
 * Go modules by toolchain/build.sh, run by toolchain/pulumi. Everything here is the real engine:
 * real `pulumi preview` and `pulumi up` against a local file backend.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { beforeAll, describe, expect, test } from "vitest";
import { exec } from "../support/exec";
import { PINNED_CLI_VERSION, PROJECT_DIR, PULUMI, toolchainDir } from "../support/real-engine";

const MINUTE = 60_000;
let bin = "";

beforeAll(async () => {
  // Builds the toolchain when this machine has none yet (about 5 minutes cold; run-all.sh builds it first).
  bin = await toolchainDir();
}, 30 * MINUTE);

describe("the toolchain", () => {
  test("toolchain/pulumi is the CLI package.json pins, built here, whatever else `pulumi` is on PATH", async () => {
    const decoy = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-decoy-"));
    fs.writeFileSync(path.join(decoy, "pulumi"), "#!/bin/sh\necho decoy\nexit 99\n", { mode: 0o755 });
    const result = await exec(PULUMI, ["version"], { env: { ...process.env, PATH: `${decoy}:${process.env.PATH}` } });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(`v${PINNED_CLI_VERSION}`);
    // The bundled plugins the engine looks for beside the binary.
    for (const file of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) {
      expect(fs.statSync(path.join(bin, file)).mode & 0o111, file).not.toBe(0);
    }
  });

  test("a second build finds the first one's binaries and takes under five seconds", async () => {
    const started = Date.now();
    expect(await toolchainDir()).toBe(bin);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test("the build refuses a CLI version other than package.json's pin, naming both and the fix", async () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-pin-"));
    fs.cpSync(path.join(PROJECT_DIR, "toolchain"), path.join(copy, "toolchain"), { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8"));
    manifest.devDependencies.pulumi = "3.249.0";
    fs.writeFileSync(path.join(copy, "package.json"), JSON.stringify(manifest));
    fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(copy, "node_modules"));
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-cache-"));
    const result = await exec("bash", [path.join(copy, "toolchain/build.sh")], {
      env: { ...process.env, UTILITARIAN_TOOLCHAIN_CACHE: cache },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`requires pkg/v3 v${PINNED_CLI_VERSION} but package.json pins pulumi 3.249.0`);
    expect(result.stderr).toContain("go get github.com/pulumi/pulumi/pkg/v3@v3.249.0");
    expect(fs.readdirSync(cache)).toEqual([]);
  });

  test(
    "a module that cannot be downloaded is named, with what to check, and nothing is installed",
    async () => {
      // An empty module cache and no proxy: the first module the CLI needs cannot be had.
      const cache = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-cache-"));
      const modules = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-gomod-"));
      const env = {
        ...process.env,
        UTILITARIAN_TOOLCHAIN_CACHE: cache,
        GOMODCACHE: modules,
        GOPROXY: "off",
        GOFLAGS: "",
      };
      const result = await exec("bash", [path.join(PROJECT_DIR, "toolchain/build.sh")], { env, timeoutMs: 2 * MINUTE });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/go: [^\s@]+@v[0-9][^\s:]*: module lookup disabled by GOPROXY=off/);
      expect(result.stderr).toContain("a module of toolchain/cli/go.mod could not be downloaded");
      expect(result.stderr).toContain("go env GOPROXY");
      expect(fs.readdirSync(cache)).toEqual([]);
      fs.rmSync(modules, { recursive: true, force: true, maxRetries: 3 });
    },
    2 * MINUTE,
  );

  test("a build killed half way leaves no binary installed", async () => {
    // A go command that answers the version, "downloads", then is killed while it writes the binary.
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-cache-"));
    const fakeGo = path.join(cache, "..", `fake-go-${path.basename(cache)}`);
    fs.writeFileSync(
      fakeGo,
      [
        "#!/bin/bash",
        'case "$1" in',
        "  env) echo go1.0-fake ;;",
        "  mod) exit 0 ;;",
        '  build) out=""; while (($#)); do [[ $1 == -o ]] && out=$2; shift; done; echo partial > "$out"',
        // SIGKILL build.sh itself, found among this process's ancestors: no trap of it runs.
        '    pid=$$; while pid=$(ps -o ppid= -p "$pid" | tr -d " ") && ((pid > 1)); do',
        '      if tr "\\0" " " < /proc/$pid/cmdline | grep -q "toolchain/build.sh"; then kill -9 "$pid"; exit 1; fi',
        "    done; exit 1 ;;",
        "esac",
      ].join("\n"),
      { mode: 0o755 },
    );
    const result = await exec("bash", [path.join(PROJECT_DIR, "toolchain/build.sh")], {
      env: { ...process.env, UTILITARIAN_TOOLCHAIN_CACHE: cache, GO: fakeGo },
    });
    expect(result.code).not.toBe(0);
    // Only the killed build's scratch directory, which the next build removes once it is old.
    const left = fs.readdirSync(cache);
    expect(left.filter((name) => name.startsWith("pulumi-"))).toEqual([]);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.building\./);
    // It was killed while writing: the partial binary is there, in the scratch directory only.
    expect(fs.readFileSync(path.join(cache, left[0], "pulumi"), "utf8")).toBe("partial\n");
  });
});
