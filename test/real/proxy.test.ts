/**
 * The maintenance proxy (components/proxy.ts) for real: the stand-in HAProxy image (Debian's
 * haproxy) run with exactly the command and environment the component gives it, in front of a
 * stand-in API on a private network, the API stopped, removed and started again under it as an
 * upgrade does (test/support/proxy-stack.ts, which `npm run bench:proxy` shares), and the
 * maintenance page as headless Chromium shows it (test/support/chromium.ts). The engine's upgrade
 * with the proxy on is not run here.
 */
import * as http from "http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chromiumDom, chromiumScreenshot, domText, pngFacts, renderProblems } from "../support/chromium";
import { docker, sleep, waitFor } from "../support/exec";
import { poller, unexpected } from "../support/proxy-client";
import { ProxyStack } from "../support/proxy-stack";

const MESSAGE = `Utilitarian is being upgraded <until 10:00> & "back" soon.`;
const RETRY_AFTER = 17;
const T = 180_000;

const stack = new ProxyStack({ prefix: "mp-proxy", retryAfterSeconds: RETRY_AFTER, message: MESSAGE });
const { api: API, proxy: PROXY, token: TOKEN } = stack;
let base = "";
const status = (path: string) => stack.status(path);

beforeAll(async () => {
  await stack.start();
  base = stack.base;
}, T);

afterAll(() => stack.remove(), 60_000);

describe("the maintenance proxy in front of a running API", () => {
  test("passes requests through: method, headers and body to the API, status, headers and body back", async () => {
    const response = await fetch(`${base}/api/v1/readings/`, {
      method: "POST",
      headers: { Authorization: `Token ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ meter: "mp-a", value: 1.5, timestamp: new Date().toISOString() }),
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ meter: "mp-a", value: 1.5 });
    // A large upload (2.4 MB, under Django's 2.5 MB limit) arrives whole: the API parses all of it.
    const padding = "x".repeat(2_400_000);
    const large = await fetch(`${base}/api/v1/readings/`, {
      method: "POST",
      headers: { Authorization: `Token ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ meter: "mp-large", value: 2.5, timestamp: new Date().toISOString(), padding }),
    });
    expect(large.status).toBe(201);
    expect(await large.json()).toMatchObject({ meter: "mp-large", value: 2.5 });
    // The API's own refusals and headers come back as they are, not the maintenance answer.
    const refused = await fetch(`${base}/api/v1/readings/`, { method: "POST", body: "{}" });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("retry-after")).toBeNull();
    expect(await refused.json()).toEqual({ detail: "Invalid token." });
    const health = await fetch(`${base}/_health/`);
    expect(health.headers.get("server")).toBe("gunicorn");
    expect(await health.json()).toEqual({ status: "ok", version: "1.0.0" });
  });
});

describe("the API stopped, removed and started again under the proxy, a client polling every 100 ms", () => {
  let html: Awaited<ReturnType<ReturnType<typeof poller>["stop"]>> = [];
  let json: typeof html = [];
  let outage = { firstMs: 0, lastMs: 0 };

  beforeAll(async () => {
    const browsers = poller(`${base}/_health/`, 100, { Accept: "text/html,*/*;q=0.8" });
    const clients = poller(`${base}/_health/`, 100, { Accept: "application/json" });
    await sleep(1500);
    // As the engine replaces the API: stop with its grace period, remove, create anew (another address).
    await docker(["stop", API]);
    await sleep(1500);
    await docker(["rm", API]);
    await stack.startFiller();
    await sleep(1000);
    await stack.startApi();
    const back = await waitFor(async () => (await status("/_health/")) === 200, 90_000, 250);
    await sleep(1500);
    html = await browsers.stop();
    json = await clients.stop();
    expect(back, "the API answered again through the proxy").toBe(true);
    const down = html.filter((r) => r.status === 503);
    outage = { firstMs: down[0]?.at ?? 0, lastMs: down.at(-1)?.at ?? 0 };
  }, T);

  test("every request is answered, only with 200 or 503 with Retry-After: never refused or reset", () => {
    expect(html.length).toBeGreaterThan(40);
    expect(json.length).toBeGreaterThan(40);
    expect(unexpected(html)).toEqual([]);
    expect(unexpected(json)).toEqual([]);
    for (const results of [html, json]) {
      // 200 before the stop, 503 while the API is gone, 200 again after: the maintenance was seen.
      expect(results[0].status).toBe(200);
      expect(results.some((r) => r.status === 503)).toBe(true);
      expect(results.at(-1)!.status).toBe(200);
    }
    console.log(
      `proxy: ${html.length} + ${json.length} requests, 503 from ${outage.firstMs} to ${outage.lastMs} ms after the poll started`,
    );
  });

  test("a browser gets the plain maintenance page with the configured text and Retry-After", () => {
    const page = html.find((r) => r.status === 503)!;
    expect(page.retryAfter).toBe(String(RETRY_AFTER));
    expect(page.contentType).toBe("text/html; charset=utf-8");
    expect(page.body).toContain("<h1>Down for maintenance</h1>");
    expect(page.body).toContain("Utilitarian is being upgraded &lt;until 10:00&gt; &amp; &quot;back&quot; soon.");
    expect(html.filter((r) => r.status === 503).every((r) => r.body === page.body)).toBe(true);
  });

  test("a client that asks for JSON gets the maintenance answer as JSON", () => {
    const answers = json.filter((r) => r.status === 503);
    for (const answer of answers) {
      expect(answer.retryAfter).toBe(String(RETRY_AFTER));
      expect(answer.contentType).toBe("application/json");
      expect(JSON.parse(answer.body)).toEqual({
        status: "maintenance",
        detail: MESSAGE,
        retryAfterSeconds: RETRY_AFTER,
      });
    }
  });

  test("the proxy kept running throughout", async () => {
    expect(await docker(["inspect", "-f", "{{.State.Running}} {{.RestartCount}}", PROXY])).toBe("true 0");
  });
});

/** A POST whose body is sent in `chunks` pieces `gapMs` apart: a request in flight for a while. */
function trickledPost(path: string, body: string, chunks: number, gapMs: number) {
  return new Promise<{ status: number; retryAfter?: string; body: string }>((resolve, reject) => {
    const request = http.request(
      `${base}${path}`,
      {
        method: "POST",
        headers: {
          Authorization: `Token ${TOKEN}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
        },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (d) => (text += d));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, retryAfter: response.headers["retry-after"], body: text }),
        );
      },
    );
    request.on("error", reject);
    const size = Math.ceil(body.length / chunks);
    let sent = 0;
    const next = () => {
      request.write(body.slice(sent, sent + size));
      sent += size;
      if (sent >= body.length) request.end();
      else setTimeout(next, gapMs);
    };
    next();
  });
}

describe("a request in flight when the API stops", () => {
  test("finishes within the API's stop grace period, or gets the maintenance answer", async () => {
    const body = JSON.stringify({ meter: "mp-in-flight", value: 3.5, timestamp: new Date().toISOString() });
    // Its body takes 2 s to arrive; the API is told to stop 0.5 s in (it has 10 s to finish).
    const answer = trickledPost("/api/v1/readings/", body, 10, 200);
    await sleep(500);
    const stopped = docker(["stop", API]);
    const { status, retryAfter, body: text } = await answer;
    await stopped;
    expect(await docker(["inspect", "-f", "{{.State.Running}}", API])).toBe("false");
    expect([201, 503], text).toContain(status);
    if (status === 201) expect(JSON.parse(text)).toMatchObject({ meter: "mp-in-flight", value: 3.5 });
    else expect(retryAfter).toBe(String(RETRY_AFTER));
    console.log(`proxy: a request in flight when the API stopped was answered ${status}`);
  });
});

describe("the maintenance page in headless Chromium while the API is stopped", () => {
  const SIZE = { width: 1024, height: 768 };

  beforeAll(async () => {
    await docker(["stop", API]); // already stopped by the test before; this one stands alone too
    const html = { headers: { Accept: "text/html" } };
    expect(await waitFor(async () => (await stack.status("/", html)) === 503, 30_000, 250)).toBe(true);
  }, T);

  test("its DOM after load says the service is in maintenance, with the configured message", async () => {
    const started = Date.now();
    const dom = await chromiumDom(`${base}/`);
    expect(dom).toContain("<title>Maintenance</title>");
    const text = domText(dom);
    expect(text).toContain("Down for maintenance");
    expect(text).toContain(MESSAGE);
    console.log(`proxy: the maintenance page's DOM in ${Date.now() - started} ms: "${text}"`);
  });

  test("its 1024x768 screenshot is that size and not blank; about:blank's is judged blank by the same check", async () => {
    const outFile = join(mkdtempSync(join(tmpdir(), "utilitarian-proxy-page-")), "maintenance.png");
    const started = Date.now();
    const png = await chromiumScreenshot({ url: `${base}/`, ...SIZE, outFile });
    const took = Date.now() - started;
    expect(renderProblems(png, SIZE)).toEqual([]);
    const { pixels } = pngFacts(png);
    expect(pixels!.background).toEqual([255, 255, 255]);
    console.log(
      `proxy: the maintenance page's screenshot in ${took} ms, ${outFile}: ` +
        `${(pixels!.nonBackgroundFraction * 100).toFixed(2)}% of pixels not background, ${pixels!.distinctColours} colours`,
    );

    // The negative control: an empty page fails the check the maintenance page passed.
    const blank = await chromiumScreenshot({ url: "about:blank", ...SIZE });
    expect(renderProblems(blank, SIZE)).toEqual([
      "blank: 0.00% of pixels differ from the background, expected at least 0.5%",
      "blank: 1 distinct colours, expected at least 3",
    ]);
  });
});

describe("a slow answer passes through", () => {
  // A stand-in for an API view that takes its time (a report, an export): it sends its headers at
  // once and then 5 chunks of 64 kB, 1.5 s apart, under the API's alias while the API is stopped.
  const SLOW = `${API}-slow`;
  const CHUNK = 65_536;
  const server = `
import http.server, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/_health/":
            body = b'{"status": "ok"}'
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        self.send_response(200); self.send_header("Content-Length", str(5 * ${CHUNK})); self.end_headers()
        for i in range(5):
            time.sleep(1.5); self.wfile.write(bytes([65 + i]) * ${CHUNK}); self.wfile.flush()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
`;

  beforeAll(async () => {
    await docker(["stop", API], { allowFailure: true });
    await docker(["rm", "-f", SLOW], { allowFailure: true });
    await docker([
      "run",
      "-d",
      "--name",
      SLOW,
      "--network",
      stack.net,
      "--network-alias",
      "api",
      "--entrypoint",
      "python",
      "utilitarian-standin/utilitarian:1.0.0",
      "-c",
      server,
    ]);
    expect(await waitFor(async () => (await status("/_health/")) === 200, 30_000, 250)).toBe(true);
  }, T);

  afterAll(() => docker(["rm", "-f", SLOW], { allowFailure: true }), 60_000);

  test(
    "an answer that takes 7.5 s to stream arrives whole, as it was sent",
    async () => {
      const started = Date.now();
      const response = await fetch(`${base}/export`, { signal: AbortSignal.timeout(60_000) });
      const body = Buffer.from(await response.arrayBuffer());
      const took = Date.now() - started;
      expect(response.status).toBe(200);
      expect(body.length).toBe(5 * CHUNK);
      for (let i = 0; i < 5; i++)
        expect(body.subarray(i * CHUNK, (i + 1) * CHUNK).every((b) => b === 65 + i)).toBe(true);
      // It really was slow: the proxy waited for it rather than answering for it.
      expect(took).toBeGreaterThanOrEqual(7000);
      console.log(`proxy: a slow answer (5 x 64 kB, 1.5 s apart) through the proxy in ${took} ms`);
    },
    T,
  );
});
