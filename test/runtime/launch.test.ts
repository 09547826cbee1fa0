import * as path from "path";
import { describe, expect, test } from "vitest";
import { rawConfig } from "../unit/support/fixtures";
import { configFromValues } from "../harness";
import { dynamicProviderLaunch, programLaunch, readProject } from "../harness/languageHost";
import { FIXTURE_PROGRAMS, PROJECT_DIR } from "./support";

/**
 * The command line and environment the harness gives `cmd/run` and `cmd/dynamic-provider`,
 * against pulumi-language-nodejs main.go (v3.250.0) and the engine's plugin launch.
 */

const project = readProject(PROJECT_DIR);
const request = {
  project,
  stack: "dev",
  organization: "organization",
  monitorAddress: "127.0.0.1:1001",
  engineAddress: "127.0.0.1:1002",
  syncDir: "/tmp/sync",
  parallel: 8,
  config: { "utilitarian:version": "1.0.0", "utilitarian:api": '{"port":8000}' },
  secretKeys: ["utilitarian:secretKey"],
};

describe("cmd/run as the Node language host starts it", () => {
  test("arguments in constructArguments' order; --dry-run only for a preview; the entry point last", () => {
    const runPath = require.resolve("@pulumi/pulumi/cmd/run", { paths: [PROJECT_DIR] });
    const flags = [
      "--monitor",
      "127.0.0.1:1001",
      "--engine",
      "127.0.0.1:1002",
      "--sync",
      "/tmp/sync",
      "--organization",
      "organization",
      "--project",
      "utilitarian",
      "--root-directory",
      PROJECT_DIR,
      "--stack",
      "dev",
      "--pwd",
      PROJECT_DIR,
    ];
    // Pulumi.yaml `main: index.ts` names a file: getPwdMain makes its base name the entry point.
    expect(programLaunch({ ...request, preview: true }).args).toEqual([
      runPath,
      ...flags,
      "--dry-run",
      "--parallel",
      "8",
      "index.ts",
    ]);
    expect(programLaunch({ ...request, preview: false }).args).toEqual([
      runPath,
      ...flags,
      "--parallel",
      "8",
      "index.ts",
    ]);
    expect(programLaunch({ ...request, preview: false }).cwd).toBe(PROJECT_DIR);
  });

  test("config keys in the host's namespace:config:key form, secret keys as a JSON list, TypeScript on from Pulumi.yaml", () => {
    const { env } = programLaunch({ ...request, preview: true });
    expect(JSON.parse(env.PULUMI_CONFIG)).toEqual({
      "utilitarian:config:version": "1.0.0",
      "utilitarian:config:api": '{"port":8000}',
    });
    expect(JSON.parse(env.PULUMI_CONFIG_SECRET_KEYS)).toEqual(["utilitarian:secretKey"]);
    expect(env.PULUMI_NODEJS_TYPESCRIPT).toBe("true");
    expect(env.PULUMI_NODEJS_TSCONFIG_PATH).toBeUndefined();
  });

  test("the outer environment cannot inject Pulumi settings", () => {
    process.env.PULUMI_CONFIG_PASSPHRASE = "from-the-shell";
    try {
      expect(programLaunch({ ...request, preview: true }).env.PULUMI_CONFIG_PASSPHRASE).toBeUndefined();
    } finally {
      delete process.env.PULUMI_CONFIG_PASSPHRASE;
    }
  });

  test("configFromValues gives the values rawConfig gives, structured ones as Go marshals them (keys sorted)", () => {
    const values = {
      version: "1.0.0",
      api: { publishAddress: "127.0.0.1", port: 8000 },
      workers: [{ name: "default", count: 1 }],
    };
    const { config, secretKeys } = configFromValues(values, { secretKey: "s" });
    expect(config["utilitarian:api"]).toBe('{"port":8000,"publishAddress":"127.0.0.1"}');
    expect(config["utilitarian:workers"]).toBe('[{"count":1,"name":"default"}]');
    const parsed = (c: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(c).map(([k, v]) => [k, v.startsWith("{") || v.startsWith("[") ? JSON.parse(v) : v]),
      );
    expect(parsed(config)).toEqual(parsed(rawConfig(values, { secretKey: "s" })));
    expect(secretKeys).toEqual(["utilitarian:secretKey"]);
  });
});

describe("cmd/dynamic-provider as the engine starts the pulumi-nodejs plugin", () => {
  test("the engine address is the only argument; runtime options, project and the plugin's own config in the environment", () => {
    const launch = dynamicProviderLaunch({
      project,
      engineAddress: "127.0.0.1:1002",
      config: { "utilitarian:version": "1.0.0" },
    });
    expect(launch.args).toEqual([
      require.resolve("@pulumi/pulumi/cmd/dynamic-provider", { paths: [PROJECT_DIR] }),
      "127.0.0.1:1002",
    ]);
    expect(launch.env).toMatchObject({
      PULUMI_RUNTIME_TYPESCRIPT: "true",
      PULUMI_NODEJS_PROJECT: "utilitarian",
      PULUMI_PROJECT: "utilitarian",
      PULUMI_CONFIG: "{}",
    });
    expect(launch.cwd).toBe(PROJECT_DIR);
  });

  test("a fixture program is its own project: its Pulumi.yaml, its directory", () => {
    expect(readProject(path.join(FIXTURE_PROGRAMS, "closure-miss"))).toMatchObject({
      name: "closure-miss",
      entryPoint: ".",
      programDir: path.join(FIXTURE_PROGRAMS, "closure-miss"),
    });
  });
});
