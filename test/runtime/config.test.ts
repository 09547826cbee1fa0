import { describe, expect, test } from "vitest";
import { BAD_CONFIGS } from "../unit/support/bad-configs";
import { EDGE_VERSIONS, SECRET_VALUES } from "../unit/support/fixtures";
import { configFromValues, runProgram } from "../harness";
import { PROJECT_DIR, redact, RUN_TIMEOUT_MS, showsASecret } from "./support";

/**
 * Stack config reaches index.ts as the CLI passes it (PULUMI_CONFIG with structured values as
 * JSON strings, PULUMI_CONFIG_SECRET_KEYS); a bad one stops the real program before it creates
 * anything, with the loader's message.
 */

function badConfig(label: string): [Record<string, unknown>, string] {
  const entry = BAD_CONFIGS.find(([l]) => l === label);
  if (!entry) throw new Error(`test/unit/support/bad-configs.ts has no case '${label}'`);
  return [entry[1], entry[2]];
}

const errorsOf = (run: { diagnostics: { severity: string; message: string }[] }) =>
  redact(
    run.diagnostics
      .filter((d) => d.severity === "error")
      .map((d) => d.message)
      .join("\n"),
  );

describe("malformed config under the real runtime", () => {
  test(
    "every problem is reported at once, the program exits non-zero, no custom resource is registered",
    async () => {
      const [portValues, portMessage] = badConfig("port out of range");
      const [workerValues, workerMessage] = badConfig("worker concurrency 0");
      const { config, secretKeys } = configFromValues(
        { ...EDGE_VERSIONS, version: "latest", ...portValues, ...workerValues },
        SECRET_VALUES,
      );
      const run = await runProgram({ programDir: PROJECT_DIR, stack: "dev", config, secretKeys, preview: true });
      // 32: cmd/run logged the error itself; the language host adds nothing (main.go execRuntime).
      expect(run.exitCode).toBe(32);
      expect(errorsOf(run)).toContain(badConfig("version 'latest'")[1]);
      expect(errorsOf(run)).toContain(portMessage);
      expect(errorsOf(run)).toContain(workerMessage);
      expect(run.registrations.filter((r) => r.custom).map((r) => r.name)).toEqual([]);
      expect(showsASecret(run)).toBe(false);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "a secret the CLI does not list in PULUMI_CONFIG_SECRET_KEYS is refused as stored in plain text, without echoing it",
    async () => {
      const { config, secretKeys } = configFromValues({ ...EDGE_VERSIONS, version: "1.0.0" }, SECRET_VALUES);
      const run = await runProgram({
        programDir: PROJECT_DIR,
        stack: "dev",
        config,
        preview: true,
        secretKeys: secretKeys.filter((key) => key !== "utilitarian:databasePassword"),
      });
      expect(run.exitCode).not.toBe(0);
      expect(errorsOf(run)).toContain("`utilitarian:databasePassword` is stored in plain text");
      expect(run.registrations.filter((r) => r.custom)).toHaveLength(0);
      expect(showsASecret(run)).toBe(false);
    },
    RUN_TIMEOUT_MS,
  );
});
