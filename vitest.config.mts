import { configDefaults, defineConfig } from "vitest/config";

/**
 * The load test runs on its own (`npm run test:load`): under a loaded machine the stand-in UDP
 * server's socket buffer can overflow during the 500 msg/s burst and the kernel drops datagrams
 * (seen once in four runs, RcvbufErrors 119), which would fail `npm test` for a reason outside
 * the deployment. See README "Testing".
 */
export const LOAD_TEST = "test/real/load.test.ts";

export default defineConfig({
  test: {
    // Real tests share one Docker engine and one machine of 2 cores: run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    exclude: [...configDefaults.exclude, ...(process.env.UTILITARIAN_LOAD_TEST ? [] : [LOAD_TEST])],
  },
});
