import { defineConfig } from "vitest/config";

/** The stacks' engine benchmark (stacks.ts) runs under vitest, from the repository's root, as the load benchmark does. */
export default defineConfig({
  test: {
    include: ["bench/engine/stacks.ts"],
    disableConsoleIntercept: true,
    testTimeout: 60 * 60_000,
  },
});
