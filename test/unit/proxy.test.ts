import { describe, expect, test } from "vitest";
import { validateArgs } from "../../components/args";
import { maintenanceStages } from "../../components/maintenance";
import { planDeployment, servicesOf } from "../../components/plan";
import { maintenanceResponse, proxyCommand, PROXY_PORT } from "../../components/proxy";
import { plain } from "../support/engine";
import { EDGE_VERSIONS, loaded, SECRET_VALUES } from "./support/fixtures";
import { promiseOf } from "./support/mocks";
import { deploy } from "./support/program";

/**
 * The maintenance proxy's settings (`proxy.*`), through both entry points: stack config (text, as
 * Pulumi gives it) and the library's args (typed values) give the same settings, and what they
 * build. The refusals of bad values, alike on both paths, are among test/unit/support/bad-configs.ts.
 */

const DEFAULTS = {
  enabled: true,
  image: "haproxy:2.6",
  retryAfterSeconds: 30,
  message: "Utilitarian is down for maintenance and will be back shortly.",
};
const MESSAGE = "Wartung: zurück um 10:00 <bald>";

const fromArgs = (proxy?: Record<string, unknown>) =>
  validateArgs("u", {
    version: "1.0.0",
    ...EDGE_VERSIONS,
    ...(proxy ? { proxy } : {}),
    secrets: SECRET_VALUES,
  } as never).settings.proxy;

describe("the proxy's settings from stack config and from args", () => {
  test("on by default, with the defaults of its image, Retry-After and page text", () => {
    expect(loaded().settings.proxy).toEqual(DEFAULTS);
    expect(fromArgs()).toEqual(DEFAULTS);
  });

  test("turned off: stack config's `false` and the args' `enabled: false` alike, the other keys at their defaults", () => {
    const off = { ...DEFAULTS, enabled: false };
    expect(loaded({ proxy: { enabled: "false" } }).settings.proxy).toEqual(off);
    expect(fromArgs({ enabled: false })).toEqual(off);
  });

  test("set: stack config's text and the args' values give the same settings", () => {
    const fromStack = loaded({
      proxy: { enabled: "true", retryAfterSeconds: "45", message: MESSAGE, image: "utilitarian-standin/haproxy:2.6" },
    }).settings.proxy;
    const expected = {
      enabled: true,
      retryAfterSeconds: 45,
      message: MESSAGE,
      image: "utilitarian-standin/haproxy:2.6",
    };
    expect(fromStack).toEqual(expected);
    expect(fromArgs(expected)).toEqual(expected);
  });
});

describe("off (`proxy.enabled: false`): the API publishes its own port, and nothing of the proxy exists", () => {
  test("no proxy node, no proxy image; the API's port published as before the proxy", async () => {
    const off = { proxy: { enabled: false } };
    const plan = planDeployment(loaded(off).settings);
    expect(plan.nodes.filter((n) => n.key.includes("proxy"))).toEqual([]);
    const { mocks, deployment } = await deploy(off);
    expect(mocks.registrations.filter((r) => r.name.includes("proxy"))).toEqual([]);
    expect(mocks.get("u-api").inputs.ports).toEqual([{ internal: 8000, external: 8000, ip: "127.0.0.1" }]);
    expect(await promiseOf(deployment.apiUrl)).toBe("http://127.0.0.1:8000");
  });
});

describe("on by default: a config that says nothing of the proxy gets it", () => {
  test("the proxy publishes the API's default address with the default image; the API publishes nothing", async () => {
    const { mocks, deployment } = await deploy({});
    expect(mocks.get("u-image-proxy").inputs.name).toBe("haproxy:2.6");
    expect(mocks.get("u-proxy").inputs.ports).toEqual([{ internal: PROXY_PORT, external: 8000, ip: "127.0.0.1" }]);
    expect(mocks.get("u-api").inputs.ports).toBeUndefined();
    expect(await promiseOf(deployment.apiUrl)).toBe("http://127.0.0.1:8000");
  });
});

describe("on: the proxy in the API's place", () => {
  const settings = { proxy: { enabled: true, retryAfterSeconds: 45, message: MESSAGE }, api: { port: 8080 } };

  test("the plan: the proxy's image, and the proxy after the API, with no edge the API's replacement follows", () => {
    const plan = planDeployment(loaded(settings).settings);
    expect(plan.nodes.find((n) => n.key === "image-proxy")).toEqual({
      kind: "image",
      key: "image-proxy",
      image: "proxy",
      ref: "haproxy:2.6",
      waits: [],
      runbook: [],
    });
    const proxy = servicesOf(plan).find((s) => s.key === "proxy")!;
    expect(proxy).toMatchObject({ role: "proxy", image: "proxy", version: "2.6", followsApi: false, replacedWith: [] });
    expect(proxy.runbook).toEqual([]);
    expect(proxy.waits.map((w) => [w.on, w.via])).toEqual([
      ["image-proxy", "image"],
      ["network", "network"],
      ["api", "dependsOn"],
    ]);
    // Not an application image: the backup does not wait for its pull, the upgrade does not pull it.
    expect(plan.nodes.find((n) => n.key === "backup")!.waits.map((w) => w.on)).not.toContain("image-proxy");
    // It keeps running through the upgrade, and verify checks it runs.
    const maintenance = maintenanceStages(plan, {
      from: "1.0.0",
      containerName: (key) => `u-${key}`,
      backup: { dir: "./backups", stopWriters: true, testRestore: "schema" },
    });
    expect(maintenance.keepsRunning).toContain("u-proxy");
    expect(plan.nodes.find((n) => n.key === "verify")!.waits.map((w) => w.on)).toContain("proxy");
  });

  test("the proxy publishes the API's address; the API is on the private network only; apiUrl is the proxy's", async () => {
    const { mocks, deployment } = await deploy(settings);
    const proxy = mocks.get("u-proxy");
    expect(proxy.type).toBe("docker:index/container:Container");
    expect(proxy.inputs.name).toBe("u-proxy");
    expect(proxy.inputs.ports).toEqual([{ internal: PROXY_PORT, external: 8080, ip: "127.0.0.1" }]);
    expect(proxy.inputs.networksAdvanced).toEqual([{ name: "u-net" }]);
    expect(proxy.inputs.command).toEqual(proxyCommand());
    expect(proxy.dependencies).toContain("u-api");
    expect(mocks.get("u-api").inputs.ports).toBeUndefined();
    expect(await promiseOf(deployment.apiUrl)).toBe("http://127.0.0.1:8080");
  });

  test("its environment carries the configured Retry-After and page text, and no secret", async () => {
    const { mocks } = await deploy(settings);
    const envs: string[] = plain(mocks.get("u-proxy").inputs.envs);
    // Each value is base64, one line; what the proxy's command writes to its files is the decoded text.
    for (const entry of envs) expect(entry).toMatch(/^[A-Z_]+=[A-Za-z0-9+/]+=*$/);
    const env = Object.fromEntries(
      envs.map((e) => [
        e.slice(0, e.indexOf("=")),
        Buffer.from(e.slice(e.indexOf("=") + 1), "base64").toString("utf8"),
      ]),
    );
    expect(Object.keys(env).sort()).toEqual(["PROXY_CONFIG", "PROXY_MAINTENANCE_HTML", "PROXY_MAINTENANCE_JSON"]);
    expect(env.PROXY_CONFIG).toContain("server api api:8000 check");
    expect(env.PROXY_CONFIG).toContain(`bind :${PROXY_PORT}`);
    expect(env.PROXY_MAINTENANCE_HTML).toContain("\r\nRetry-After: 45\r\n");
    expect(env.PROXY_MAINTENANCE_HTML).toContain("<p>Wartung: zurück um 10:00 &lt;bald&gt;</p>");
    expect(env.PROXY_MAINTENANCE_JSON).toContain("\r\nRetry-After: 45\r\n");
    expect(JSON.parse(env.PROXY_MAINTENANCE_JSON.split("\r\n\r\n")[1])).toEqual({
      status: "maintenance",
      detail: MESSAGE,
      retryAfterSeconds: 45,
    });
    for (const secret of Object.values(SECRET_VALUES)) expect(envs.join("\n")).not.toContain(secret);
  });
});

test("the maintenance answer's Content-Length counts bytes, not characters", () => {
  const response = maintenanceResponse("text/plain", "zurück", 5);
  expect(response).toBe(
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nRetry-After: 5\r\nCache-Control: no-store\r\n\r\nzurück",
  );
});
