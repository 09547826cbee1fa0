/**
 * The maintenance proxy under the real engine: the stand-in stack installed at 1.0.0 with the
 * proxy on (the default, not set here) and upgraded to 1.1.0 by `pulumi up`
 * (test/support/real-stack.ts), while two clients, a browser's and one that asks for JSON, poll
 * the published API address every 100 ms.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { docker, sleep } from "../support/exec";
import { maintenanceStretches, poller, unexpected, type PollResult } from "../support/proxy-client";
import { changes, RealStack } from "../support/real-stack";
import { health, PORTS, prepareStack, removeStack, SECRETS, standinConfig, tempDir } from "../support/standin-stack";

const MINUTE = 60_000;
const PREFIX = "mp";
const RETRY_AFTER = 7;
const backups = tempDir("proxy-backups");
const stack = new RealStack("proxy", SECRETS);
const config = (version: string) =>
  standinConfig(version, backups, {
    prefix: PREFIX,
    // On by default: no `enabled` here. This block replaces standinConfig's, so it names the
    // stand-in image again.
    proxy: { image: "utilitarian-standin/haproxy:2.6", retryAfterSeconds: RETRY_AFTER },
  });
const proxyState = () => docker(["inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.RestartCount}}", `${PREFIX}-proxy`]);

beforeAll(async () => {
  await prepareStack(PREFIX);
  await stack.init();
}, 5 * MINUTE);

afterAll(async () => {
  await removeStack(PREFIX);
  stack.remove();
}, 2 * MINUTE);

describe.sequential(
  "the real engine with the proxy on by default: install, then the upgrade to 1.1.0 polled through the proxy",
  () => {
    let before = "";

    test(
      "install: the proxy publishes the API's address, the API publishes nothing",
      async () => {
        stack.configure(config("1.0.0"));
        const run = await stack.up();
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expect(changes(run)).toContain(`create ${PREFIX}-proxy`);
        expect(await health()).toBe(200);
        expect(await docker(["port", `${PREFIX}-api`])).toBe("");
        expect(await docker(["port", `${PREFIX}-proxy`])).toBe(`8080/tcp -> 127.0.0.1:${PORTS.api}`);
        expect((await stack.outputs()).apiUrl).toBe(`http://127.0.0.1:${PORTS.api}`);
        before = await proxyState();
      },
      8 * MINUTE,
    );

    test(
      "the upgrade: every request answered, with 200 or 503 and Retry-After only; the proxy untouched",
      async () => {
        const url = `http://127.0.0.1:${PORTS.api}/_health/`;
        const browser = poller(url, 100, { Accept: "text/html,*/*;q=0.8" });
        const client = poller(url, 100, { Accept: "application/json" });
        stack.configure(config("1.1.0"));
        const run = await stack.up();
        await sleep(1000);
        const results: Record<string, PollResult[]> = { browser: await browser.stop(), client: await client.stop() };
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expect(changes(run)).toContain(`create-replacement ${PREFIX}-api`);
        expect(changes(run).filter((c) => c.endsWith(`${PREFIX}-proxy`))).toEqual([]);
        expect(await proxyState()).toBe(before);
        for (const [who, answers] of Object.entries(results)) {
          expect(unexpected(answers), who).toEqual([]);
          const down = answers.filter((r) => r.status === 503);
          // The API was replaced under the proxy: its clients saw the maintenance answer, then the new API.
          expect(down.length, who).toBeGreaterThan(0);
          expect(
            down.every((r) => r.retryAfter === String(RETRY_AFTER)),
            who,
          ).toBe(true);
          expect(JSON.parse(answers.at(-1)!.body)).toEqual({ status: "ok", version: "1.1.0" });
          console.log(
            `proxy under the engine, ${who}: ${answers.length} requests in ${((run.endedAt - run.startedAt) / 1000).toFixed(1)} s of pulumi up, ` +
              `${down.length} answered 503 (sent ${maintenanceStretches(answers)
                .map(([a, b]) => `${a}-${b}`)
                .join(", ")} ms after the poll began), the rest 200`,
          );
        }
        expect(results.client.find((r) => r.status === 503)!.contentType).toBe("application/json");
        expect(results.browser.find((r) => r.status === 503)!.body).toContain("<h1>Down for maintenance</h1>");
      },
      8 * MINUTE,
    );
  },
);
