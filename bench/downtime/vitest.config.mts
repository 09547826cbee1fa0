import { defineConfig } from "vitest/config";

/**
 * The downtime benchmark (run.ts) runs under vitest, as the engine tests do. run.sh
 * starts it from the repository's root, which `include` is relative to.
 */
export default defineConfig({
  test: {
    include: ["bench/downtime/run.ts"],
    fileParallelism: false,
    // The rounds print their figures as they finish.
    disableConsoleIntercept: true,
    testTimeout: 4 * 60 * 60_000,
    hookTimeout: 10 * 60_000,
  },
});
