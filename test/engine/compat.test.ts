/**
 * Stacks in the field were created by older code. A refactor of the component (issue 17: one
 * place for each fact) must leave them as they are: the code of BEFORE_REFACTOR installs a stack
 * and upgrades it once, then today's code runs on that state under the real engine. Its first run
 * creates the two child components (ManagedPostgres, ManagedRabbitMq: logical resources, no
 * provider call) and nothing else: the aliases keep every container's and volume's URN, so nothing
 * is replaced, updated or deleted and no container is touched; from then on
 * `pulumi preview --expect-no-changes` and `pulumi up --expect-no-changes` pass.
 * The old code comes from git (`git archive`), so the test needs the clone's history.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { exec } from "../support/exec";
import { PROJECT_DIR } from "../support/real-engine";
import { RealStack, type RealRun } from "../support/real-stack";
import {
  health,
  prepareStack,
  removeStack,
  SECRETS,
  stackContainers,
  standinConfig,
  tempDir,
} from "../support/standin-stack";

const MINUTE = 60_000;
const PREFIX = "cp";
/** The last commit before issue 17's refactor began (0d4f3d8, 2026-12-07). */
const BEFORE_REFACTOR = "0d4f3d8021e3b6124672b2ec13afcb733cabbb8e";

const stack = new RealStack("compat", SECRETS);
const backups = tempDir("compat-backups");
const oldCode = path.join(tempDir("compat-code"), "utilitarian-deploy");
// Two worker groups and every edge service, so each kind of resource is in the old state.
const config = (version: string) =>
  standinConfig(version, backups, {
    prefix: PREFIX,
    workers: [
      { name: "default", count: 1 },
      { name: "reports", count: 2 },
    ],
  });

beforeAll(async () => {
  const archive = await exec("bash", [
    "-c",
    `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`,
    "archive",
    PROJECT_DIR,
    BEFORE_REFACTOR,
    (fs.mkdirSync(oldCode, { recursive: true }), oldCode),
  ]);
  if (archive.code !== 0)
    throw new Error(
      `git archive ${BEFORE_REFACTOR} failed: this test needs the clone's history (a shallow clone: git fetch --unshallow):\n${archive.stderr}`,
    );
  // The old code's runtime dependencies are today's (only linters were added since).
  fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(oldCode, "node_modules"));
  await prepareStack(PREFIX);
  await stack.init();
}, 5 * MINUTE);

afterAll(async () => {
  await removeStack(PREFIX);
  stack.remove();
  fs.rmSync(path.dirname(oldCode), { recursive: true, force: true });
}, 2 * MINUTE);

test(
  "a stack installed and upgraded by the code before the refactor: today's code adds the two child components, replaces nothing, touches no container, then changes nothing",
  async () => {
    const byOldCode = async (version: string) => {
      stack.configure(config(version));
      const up = await stack.run(["up", "--yes", "--skip-preview"], { cwd: oldCode, timeoutMs: 10 * MINUTE });
      expect(up.code, `the old code's up to ${version}:\n${up.stdout.slice(-4000)}\n${up.stderr}`).toBe(0);
    };
    await byOldCode("1.0.0");
    await byOldCode("1.1.0");
    expect(await health()).toBe(200);
    const before = await stackContainers(PREFIX);
    expect(before.size).toBeGreaterThanOrEqual(8);

    // The first run of today's code: only the two new components, created.
    const changes = (run: RealRun) =>
      run.steps
        .filter((s) => s.op !== "same")
        .map((s) => `${s.op} ${s.type}`)
        .sort();
    const adopted = ["create utilitarian:index:ManagedPostgres", "create utilitarian:index:ManagedRabbitMq"];
    const firstPreview = await stack.up(["--diff"], { preview: true });
    expect(firstPreview.code, firstPreview.stdout + firstPreview.stderr).toBe(0);
    expect(changes(firstPreview), firstPreview.stdout).toEqual(adopted);
    const firstUp = await stack.up();
    expect(firstUp.code, firstUp.stdout + firstUp.stderr).toBe(0);
    expect(changes(firstUp), firstUp.stdout).toEqual(adopted);

    // From then on, nothing.
    const preview = await stack.run(["preview", "--expect-no-changes", "--diff"]);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const up = await stack.run(["up", "--yes", "--expect-no-changes"]);
    expect(up.code, up.stdout + up.stderr).toBe(0);

    const after = await stackContainers(PREFIX);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [name, state] of after) {
      expect({ name, id: state.id, startedAt: state.startedAt }).toEqual({
        name,
        id: before.get(name)!.id,
        startedAt: before.get(name)!.startedAt,
      });
    }
    expect(await health()).toBe(200);
  },
  25 * MINUTE,
);
