/**
 * test/support/chromium.ts against Debian's headless Chromium, no Docker: local pages and an SVG
 * through file:// URLs (as the maintenance diagram's test renders its picture), and its errors.
 * test/real/proxy shows it on the maintenance page; test/unit/png-facts the PNG reader alone.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chromiumDom, chromiumScreenshot, domText, pngFacts, renderProblems } from "../support/chromium";
import { freeLoopbackPort } from "../support/ports";

let dir = "";
const url = (name: string, content: string) => {
  writeFileSync(join(dir, name), content);
  return pathToFileURL(join(dir, name)).href;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "utilitarian-chromium-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("chromiumScreenshot", () => {
  test("a page with a known red box: the window's size, the box's pixels red, the rest white", async () => {
    const page = url(
      "box.html",
      '<!doctype html><body style="margin:0;background:#fff"><div style="width:200px;height:100px;background:#f00"></div><p style="font:20px sans-serif">Backup</p></body>',
    );
    const png = await chromiumScreenshot({ url: page, width: 400, height: 300 });
    const { width, height, pixels } = pngFacts(png);
    expect([width, height]).toEqual([400, 300]);
    expect(pixels!.background).toEqual([255, 0, 0]); // the top-left pixel is the box's
    expect(pixels!.at(199, 99)).toEqual([255, 0, 0]);
    expect(pixels!.at(200, 50)).toEqual([255, 255, 255]);
    expect(pixels!.at(399, 299)).toEqual([255, 255, 255]);
    // 200x100 of 400x300 is the box; the text's anti-aliasing gives many greys.
    expect(pixels!.nonBackgroundFraction).toBeGreaterThan(0.8);
    expect(pixels!.distinctColours).toBeGreaterThan(10);
  });

  test("an SVG through a file:// URL is rendered, its labels in its DOM; the same SVG empty is judged blank", async () => {
    const labels = ["Backup", "Migrate", "Verify"];
    const svg = (body: string) =>
      `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="200" viewBox="0 0 600 200"><rect width="600" height="200" fill="#fff"/>${body}</svg>`;
    const stages = labels
      .map(
        (label, i) =>
          `<rect x="${20 + i * 200}" y="60" width="160" height="60" fill="#dde8f7" stroke="#36c"/><text x="${40 + i * 200}" y="98" font-family="sans-serif" font-size="20">${label}</text>`,
      )
      .join("");
    const picture = url("stages.svg", svg(stages));
    const png = await chromiumScreenshot({ url: picture, width: 600, height: 200, outFile: join(dir, "stages.png") });
    expect(renderProblems(png, { width: 600, height: 200 })).toEqual([]);
    expect(pngFacts(png).pixels!.at(100, 65)).toEqual([0xdd, 0xe8, 0xf7]);
    const text = domText(await chromiumDom(picture));
    for (const label of labels) expect(text).toContain(label);

    const empty = await chromiumScreenshot({ url: url("empty.svg", svg("")), width: 600, height: 200 });
    expect(renderProblems(empty, { width: 600, height: 200 })).toEqual([
      "blank: 0.00% of pixels differ from the background, expected at least 0.5%",
      "blank: 1 distinct colours, expected at least 3",
    ]);
  });

  test("a page that does not load is an error with Chromium's reason, not a picture", async () => {
    const port = await freeLoopbackPort("tcp");
    const refused = `http://127.0.0.1:${port}/`;
    await expect(chromiumScreenshot({ url: refused, width: 400, height: 300 })).rejects.toThrow(
      new RegExp(`chromium screenshot of ${refused} failed: exited 0; its stderr:\\n.*ERR_CONNECTION_REFUSED`),
    );
    await expect(chromiumDom(refused)).rejects.toThrow(/chromium --dump-dom of .* failed/);
  });

  test("a page that never answers is killed at the timeout, saying so", async () => {
    const silent = http.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    try {
      const started = Date.now();
      await expect(
        chromiumScreenshot({ url: `http://127.0.0.1:${port}/`, width: 400, height: 300, timeoutMs: 3000 }),
      ).rejects.toThrow(/failed: timed out after 3000 ms/);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

test("domText: the text a reader sees, entities decoded", () => {
  const html =
    "<html><head><title>Maintenance</title></head><body><h1>Down</h1>\n<p>a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;</p></body></html>";
  expect(domText(html)).toBe(`Down a <b> & "c" 'd'`);
});
