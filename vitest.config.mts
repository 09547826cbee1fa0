import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Real tests share one Docker engine and one machine of 2 cores: run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});
