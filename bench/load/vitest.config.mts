import { defineConfig } from "vitest/config";

/**
 * The load benchmark (run.ts) runs under vitest, as the load test does (`pulumi up` of the real
 * engine carries out the upgrade). run.sh starts it from the repository's root, which `include`
 * is relative to.
 */
export default defineConfig({
  test: {
    include: ["bench/load/run.ts"],
    fileParallelism: false,
    // Progress lines and the figures as they come.
    disableConsoleIntercept: true,
    testTimeout: 2 * 60 * 60_000,
    hookTimeout: 10 * 60_000,
  },
});
