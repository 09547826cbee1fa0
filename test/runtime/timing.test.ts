import * as fs from "fs";
import * as path from "path";
import { expect, test } from "vitest";
import { deploy } from "../unit/support/program";
import { explain, RUN_TIMEOUT_MS, runDev } from "./support";

/**
 * What a harness run costs next to the in-process mock run it complements, measured side by side
 * in this process: one preview and one update of index.ts with the dev-like config, and one
 * `deploy()` of test/unit/support/program.ts. Written to test/.work/harness-timing.json.
 */
test(
  "a preview and an update of the real program each finish within the test budget; timings recorded",
  async () => {
    const timed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
      const start = performance.now();
      const result = await work();
      return [result, Math.round(performance.now() - start)];
    };
    await deploy({}); // warms the modules the mock run loads, as in any test file that uses it
    const [, mockMs] = await timed(() => deploy({}));
    const [preview, previewMs] = await timed(() => runDev({}, { preview: true }));
    const [update, updateMs] = await timed(() => runDev({}, { preview: false }));
    expect(preview.succeeded, explain(preview)).toBe(true);
    expect(update.succeeded, explain(update)).toBe(true);

    const report = {
      mockDeployMs: mockMs,
      harnessPreviewMs: previewMs,
      harnessUpdateMs: updateMs,
      previewToMockRatio: Number((previewMs / mockMs).toFixed(1)),
      updateToMockRatio: Number((updateMs / mockMs).toFixed(1)),
    };
    fs.mkdirSync(path.resolve(__dirname, "../.work"), { recursive: true });
    fs.writeFileSync(path.resolve(__dirname, "../.work/harness-timing.json"), JSON.stringify(report, null, 2));
    console.log(`harness timing: ${JSON.stringify(report)}`);
    // A run that needs longer than this has lost what makes it usable in `npm test`.
    expect(previewMs).toBeLessThan(60_000);
    expect(updateMs).toBeLessThan(60_000);
  },
  3 * RUN_TIMEOUT_MS,
);
