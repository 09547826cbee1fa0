import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { goJson } from "./config";

/**
 * How `pulumi-language-nodejs` (pulumi/pulumi v3.250.0, sdk/nodejs/cmd/pulumi-language-nodejs/
 * main.go) starts a program, and how the engine starts the Node.js dynamic provider plugin
 * (sdk/go/common/resource/plugin/provider_plugin.go NewProvider, plugin.go ExecPlugin). Pure:
 * builds the command line and environment; program.ts and dynamicHost.ts spawn them.
 */

export interface ProjectInfo {
  /** `name` in Pulumi.yaml. */
  name: string;
  /** Directory of Pulumi.yaml (RunRequest.Info.RootDirectory). */
  rootDir: string;
  /** Where the program runs (pkg/engine/project.go getPwdMain): the root, or `main`'s directory. */
  programDir: string;
  /** "." unless `main` names a file (getPwdMain). */
  entryPoint: string;
  /** `runtime.options` in Pulumi.yaml. */
  runtimeOptions: Record<string, unknown>;
}

export function readProject(rootDir: string): ProjectInfo {
  const file = path.join(rootDir, "Pulumi.yaml");
  const project = yaml.load(fs.readFileSync(file, "utf8")) as {
    name: string;
    main?: string;
    runtime: string | { name: string; options?: Record<string, unknown> };
  };
  const runtime = typeof project.runtime === "string" ? { name: project.runtime, options: {} } : project.runtime;
  if (runtime.name !== "nodejs")
    throw new Error(`${file}: runtime ${runtime.name} is not nodejs; the harness runs Node.js programs only`);
  // getPwdMain: `main` relative to the root; a directory becomes the pwd with entry ".", a file its directory and base name.
  let programDir = rootDir;
  let entryPoint = ".";
  if (project.main) {
    const main = path.resolve(rootDir, project.main);
    if (fs.statSync(main).isDirectory()) programDir = main;
    else [programDir, entryPoint] = [path.dirname(main), path.basename(main)];
  }
  return { name: project.name, rootDir, programDir, entryPoint, runtimeOptions: runtime.options ?? {} };
}

/** main.go parseOptions: `typescript` defaults to true; `tsconfig` and `nodeargs` are optional strings. */
export function nodeOptions(options: Record<string, unknown>): {
  typescript: boolean;
  tsconfig?: string;
  nodeargs?: string;
} {
  const typescript = options.typescript ?? true;
  if (typeof typescript !== "boolean") throw new Error("typescript option must be a boolean");
  for (const key of ["tsconfig", "nodeargs"] as const) {
    if (options[key] !== undefined && typeof options[key] !== "string")
      throw new Error(`${key} option must be a string`);
  }
  return {
    typescript,
    tsconfig: options.tsconfig as string | undefined,
    nodeargs: options.nodeargs as string | undefined,
  };
}

/**
 * The environment the CLI hands its plugins: its own (os.Environ). Taken from this process
 * without PULUMI_* (so an outer shell cannot change config or engine behaviour), the test
 * runner's own variables and NODE_OPTIONS / TS_NODE_* (which would change how node or ts-node
 * run the program).
 */
export function inheritedEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(PULUMI_|VITEST|TS_NODE_)/.test(key) || key === "NODE_OPTIONS") continue;
    env[key] = value;
  }
  return env;
}

/** up.go defaultParallel: PULUMI_PARALLEL when set, else 4 x GOMAXPROCS (the CPUs this process may use). */
export function defaultParallel(): number {
  const fromEnv = Number.parseInt(process.env.PULUMI_PARALLEL ?? "", 10);
  return fromEnv > 0 ? fromEnv : os.availableParallelism() * 4;
}

export interface Launch {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface ProgramLaunchRequest {
  project: ProjectInfo;
  stack: string;
  /** The DIY backend's organization (pkg/backend/diy/state.go: always "organization"). */
  organization: string;
  monitorAddress: string;
  engineAddress: string;
  /** Directory for synchronous invokes (--sync); the SDK 3.248 never opens it (tryGetSyncInvokes has no caller). */
  syncDir: string;
  preview: boolean;
  parallel: number;
  config: Record<string, string>;
  secretKeys: string[];
}

/** main.go execRuntime + constructArguments + constructConfig + constructConfigSecretKeys. */
export function programLaunch(req: ProgramLaunchRequest): Launch {
  const { project } = req;
  const options = nodeOptions(project.runtimeOptions);
  // locateModule: `node -e require.resolve('@pulumi/pulumi/cmd/run')` in the program directory.
  const runPath = require.resolve("@pulumi/pulumi/cmd/run", { paths: [project.programDir] });
  const args = [runPath];
  const maybeAppendArg = (key: string, value: string) => {
    if (value !== "") args.push(`--${key}`, value);
  };
  maybeAppendArg("monitor", req.monitorAddress);
  maybeAppendArg("engine", req.engineAddress);
  maybeAppendArg("sync", req.syncDir);
  maybeAppendArg("organization", req.organization);
  maybeAppendArg("project", project.name);
  maybeAppendArg("root-directory", project.rootDir);
  maybeAppendArg("stack", req.stack);
  maybeAppendArg("pwd", project.programDir);
  if (req.preview) args.push("--dry-run");
  maybeAppendArg("parallel", String(req.parallel));
  args.push(project.entryPoint);

  const env = inheritedEnvironment();
  env.PULUMI_CONFIG = goJson(hostConfigKeys(req.config));
  env.PULUMI_CONFIG_SECRET_KEYS = goJson(req.secretKeys);
  if (options.typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true";
  if (options.tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = options.tsconfig;
  // nodeargs go before the run path (shlex.Split in main.go).
  return {
    command: process.execPath,
    args: [...splitArgs(options.nodeargs ?? ""), ...args],
    env,
    cwd: project.programDir,
  };
}

/**
 * constructConfig: the host rewrites `namespace:key` to the old `namespace:config:key` form;
 * the SDK's config.cleanKey turns it back.
 */
export function hostConfigKeys(config: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    const colon = key.indexOf(":");
    if (colon <= 0) throw new Error(`config key ${key} has no namespace (expected namespace:key)`);
    out[`${key.slice(0, colon)}:config:${key.slice(colon + 1)}`] = value;
  }
  return out;
}

export interface DynamicProviderLaunchRequest {
  project: ProjectInfo;
  engineAddress: string;
  config: Record<string, string>;
}

/**
 * How the engine starts `pulumi-resource-pulumi-nodejs` (a shell script in @pulumi/pulumi that
 * runs `node $(require.resolve('@pulumi/pulumi/cmd/dynamic-provider')) $@`): the engine address
 * as the only argument, the CLI's pwd (the program directory), and the runtime options, the
 * project name and the config of namespace `pulumi-nodejs` in the environment (host.go Provider,
 * provider_plugin.go NewProvider).
 */
export function dynamicProviderLaunch(req: DynamicProviderLaunchRequest): Launch {
  const script = require.resolve("@pulumi/pulumi/cmd/dynamic-provider", { paths: [req.project.programDir] });
  const env = inheritedEnvironment();
  for (const [key, value] of Object.entries(req.project.runtimeOptions))
    env[`PULUMI_RUNTIME_${key.toUpperCase()}`] = String(value);
  env.PULUMI_NODEJS_PROJECT = req.project.name;
  env.PULUMI_PROJECT = req.project.name;
  const own: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.config)) {
    if (key.startsWith("pulumi-nodejs:")) own[key.slice("pulumi-nodejs:".length)] = value;
  }
  env.PULUMI_CONFIG = goJson(own);
  return { command: process.execPath, args: [script, req.engineAddress], env, cwd: req.project.programDir };
}

/** shlex.Split for the simple cases nodeargs uses: whitespace-separated words, single or double quotes. */
function splitArgs(text: string): string[] {
  const words: string[] = [];
  for (const match of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) words.push(match[1] ?? match[2] ?? match[3]);
  return words;
}
