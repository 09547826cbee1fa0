import { defineConfig } from "vitest/config";

/**
 * The swarm benchmark (run.ts) runs under vitest, as test/engine/swarm does; `npm run
 * bench:swarm` starts it from the repository's root, which `include` is relative to.
 */
export default defineConfig({
  test: {
    include: ["bench/swarm/run.ts"],
    fileParallelism: false,
    // The rounds print their figures as they finish.
    disableConsoleIntercept: true,
    testTimeout: 4 * 60 * 60_000,
    hookTimeout: 30 * 60_000,
  },
});
