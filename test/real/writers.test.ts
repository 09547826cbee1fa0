/**
 * scripts/writers-stopped.sh against real containers: the writers stop before the wrapped step
 * (the backup) runs, stay stopped when it succeeds (the upgrade replaces them), and are started
 * again when it fails or is interrupted, so a failed backup leaves everything as it was.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { docker, sleep, waitFor } from "../support/exec";
import { lastLine, runScript, SCRIPTS_DIR } from "../support/run-script";
import { requireEngineAndImages, tempDir } from "../support/standin-stack";

const WRITERS = ["wr-test-beat", "wr-test-poster"];
const IDLE = "wr-test-idle";
const T = 120_000;
const work = tempDir("writers");

/**
 * A step script that records the writers' states while it runs, then exits with `code` (or waits
 * to be killed, away from the script's output pipes, which the test waits on).
 */
function stepScript(name: string, code: number | "hang"): string {
  const file = path.join(work, `${name}.sh`);
  fs.writeFileSync(
    file,
    `#!/usr/bin/env bash
for c in ${WRITERS.join(" ")}; do docker inspect -f '{{.Name}} {{.State.Status}}' "$c"; done > ${work}/${name}.during
${code === "hang" ? `echo $$ > ${work}/${name}.started; exec sleep 60 >/dev/null 2>&1` : `exit ${code}`}
`,
  );
  return file;
}

const status = async (name: string) => docker(["inspect", "-f", "{{.State.Status}}", name]);
const statuses = async () => Promise.all(WRITERS.map(status));

async function startWriters(): Promise<void> {
  for (const name of [...WRITERS, IDLE]) {
    await docker(["rm", "-f", name], { allowFailure: true });
    await docker([
      "create",
      "--name",
      name,
      "--label",
      "io.utilitarian.stack=wr-test",
      "utilitarian-standin/poster:1.0.0",
      "sleep",
      "infinity",
    ]);
  }
  await docker(["start", ...WRITERS]);
}

const env = () => ({ STOP_WRITERS: [...WRITERS, IDLE, "wr-test-absent"].join(" "), WRITERS_STOP_SECONDS: "1" });

beforeAll(async () => {
  await requireEngineAndImages();
}, T);

afterAll(async () => {
  await docker(["rm", "-f", ...WRITERS, IDLE], { allowFailure: true });
}, T);

describe("writers-stopped.sh", () => {
  test(
    "the writers are stopped while the step runs and stay stopped after it succeeds; absent or idle ones are skipped",
    async () => {
      await startWriters();
      const r = await runScript("writers-stopped.sh", env(), { args: [stepScript("ok", 0)] });
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(path.join(work, "ok.during"), "utf8").trim().split("\n")).toEqual(
        WRITERS.map((w) => `/${w} exited`),
      );
      expect(await statuses()).toEqual(["exited", "exited"]);
      // The guard (for a killed wrapper) heard that this run ended on its own, and leaves them stopped.
      await sleep(1500);
      expect(await statuses()).toEqual(["exited", "exited"]);
      expect(r.stderr).toMatch(/writer wr-test-idle is not running \(created/);
      expect(r.stderr).toMatch(/writer wr-test-absent is not running \(absent\)/);
      expect(r.stderr).toMatch(
        /the writers stay stopped until the upgrade starts them on the new version: wr-test-beat wr-test-poster/,
      );
    },
    T,
  );

  test(
    "a failed step starts again the writers it stopped, and only those",
    async () => {
      await startWriters();
      const r = await runScript("writers-stopped.sh", env(), { args: [stepScript("fail", 3)] });
      expect(r.code).toBe(1);
      expect(fs.readFileSync(path.join(work, "fail.during"), "utf8")).toContain("exited");
      expect(await statuses()).toEqual(["running", "running"]);
      expect(await status(IDLE)).toBe("created");
      expect(lastLine(r.stderr)).toMatch(
        /fail\.sh failed \(exit 3, reason above\); the writers it had stopped are started again$/,
      );
    },
    T,
  );

  test(
    "an interrupted step (SIGTERM, as when `pulumi up` is cancelled) starts the writers again",
    async () => {
      await startWriters();
      const r = await runScript("writers-stopped.sh", env(), {
        args: [stepScript("hang", "hang")],
        started: (child) => {
          const poll = setInterval(() => {
            if (fs.existsSync(path.join(work, "hang.started"))) {
              clearInterval(poll);
              child.kill("SIGTERM");
            }
          }, 100);
        },
      });
      expect(r.code).toBe(143);
      expect(await statuses()).toEqual(["running", "running"]);
      expect(r.stderr).toMatch(/started the writers again: wr-test-beat wr-test-poster/);
      expect(lastLine(r.stderr)).toMatch(/interrupted \(SIGTERM\)/);
    },
    T,
  );

  test(
    "SIGKILL, as the command provider kills a cancelled step: the guard starts the writers again once the step has ended, not before",
    async () => {
      await startWriters();
      const started = path.join(work, "killed.started");
      // Spawned here rather than by runScript, which waits for the output to close: the step that
      // runs on holds it (as a backup would hold the provider's, and `pulumi up` waits for that).
      const wrapper = spawn(path.join(SCRIPTS_DIR, "writers-stopped.sh"), [stepScript("killed", "hang")], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env() },
        stdio: "ignore",
      });
      const exited = new Promise<string | null>((resolve) => wrapper.on("exit", (_code, signal) => resolve(signal)));
      expect(
        await waitFor(
          async () => fs.existsSync(started) && fs.readFileSync(started, "utf8").trim() !== "",
          20_000,
          100,
        ),
      ).toBe(true);
      wrapper.kill("SIGKILL");
      expect(await exited).toBe("SIGKILL");
      // The wrapper's exit handler never ran; the step it started runs on (as a backup would), so the writers wait.
      const step = Number(fs.readFileSync(started, "utf8").trim());
      expect(fs.existsSync(`/proc/${step}`)).toBe(true);
      await sleep(1500);
      expect(await statuses()).toEqual(["exited", "exited"]);
      process.kill(step, "SIGTERM");
      expect(await waitFor(async () => (await statuses()).every((s) => s === "running"), 20_000, 200)).toBe(true);
      expect(await status(IDLE)).toBe("created");
    },
    T,
  );
});
