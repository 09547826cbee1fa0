import * as fs from "fs";
import * as path from "path";
import { describe, expect, test } from "vitest";
import { runProgram } from "../harness";
import { explain, FIXTURE_PROGRAMS, RUN_TIMEOUT_MS } from "./support";

/**
 * TypeScript goes through ts-node as `pulumi up` runs it: type-checked, with the tsconfig the
 * host names (`runtime.options.tsconfig` in Pulumi.yaml -> PULUMI_NODEJS_TSCONFIG_PATH, else
 * tsconfig.json). A copy of the closure-miss fixture gets an unused local and a second tsconfig
 * that forbids it; the copy lives in test/.work, since the project's own type check covers test/.
 */
const WORK = path.resolve(__dirname, "../.work/typescript-program");

function programWithUnusedLocal(runtimeOptions: string): string {
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.cpSync(path.join(FIXTURE_PROGRAMS, "closure-miss"), WORK, { recursive: true });
  fs.appendFileSync(
    path.join(WORK, "index.ts"),
    "\nfunction unusedHelper(): number {\n  const unused = 1;\n  return 2;\n}\nexport const helper = unusedHelper();\n",
  );
  const tsconfig = JSON.parse(fs.readFileSync(path.join(WORK, "tsconfig.json"), "utf8"));
  tsconfig.compilerOptions.noUnusedLocals = true;
  fs.writeFileSync(path.join(WORK, "tsconfig.strict.json"), JSON.stringify(tsconfig, null, 2));
  const yaml = fs
    .readFileSync(path.join(WORK, "Pulumi.yaml"), "utf8")
    .replace("    typescript: true", `    typescript: true\n${runtimeOptions}`);
  fs.writeFileSync(path.join(WORK, "Pulumi.yaml"), yaml);
  return WORK;
}

const run = (programDir: string) =>
  runProgram({
    programDir,
    stack: "test",
    config: { "closure-miss:variant": "renamed", "closure-miss:value": "x" },
    preview: true,
  });

describe("TypeScript under the real runtime", () => {
  test(
    "the tsconfig Pulumi.yaml names is the one ts-node type-checks with: its rule fails the run",
    async () => {
      const result = await run(programWithUnusedLocal("    tsconfig: tsconfig.strict.json"));
      expect(result.exitCode).toBe(32);
      expect(result.diagnostics.map((d) => d.message).join("\n")).toMatch(
        /TSError: ⨯ Unable to compile TypeScript:\nindex\.ts\(\d+,9\): error TS6133: 'unused' is declared but its value is never read/,
      );
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "without that option the program's tsconfig.json applies, which allows the unused local",
    async () => {
      const result = await run(programWithUnusedLocal(""));
      expect(result.succeeded, explain(result)).toBe(true);
      expect(result.outputs).toEqual({ value: "x", helper: 2 });
    },
    RUN_TIMEOUT_MS,
  );
});
