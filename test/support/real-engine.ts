/**
 * The real Pulumi engine as the tests run it: `toolchain/pulumi` (the CLI built from Go modules by
 * toolchain/build.sh), a local file backend and a Pulumi home of the test's own, so that nothing
 * of the machine's ~/.pulumi is read or written.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { exec, type ExecResult } from "./exec";

export const PROJECT_DIR = path.resolve(__dirname, "../..");
export const PULUMI = path.join(PROJECT_DIR, "toolchain/pulumi");
/** The version package.json pins: the one place of the CLI's version. */
export const PINNED_CLI_VERSION: string = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8"))
  .devDependencies.pulumi;

export interface Workspace {
  /** The program's directory (Pulumi.yaml, package.json, index.ts). */
  dir: string;
  home: string;
  backend: string;
  env: NodeJS.ProcessEnv;
}

/**
 * A TypeScript program in a directory of its own: `index` is its index.ts, `dependencies` its
 * package.json's (they decide which resource plugins the engine asks for). It uses this
 * project's node_modules, so @pulumi/pulumi is the SDK the project pins.
 */
export function program(
  name: string,
  index: string,
  dependencies: Record<string, string> = { "@pulumi/pulumi": "*" },
): Workspace {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `utilitarian-engine-${name}-`));
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`,
  );
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, private: true, dependencies }, null, 2));
  fs.writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "es2022",
        module: "commonjs",
        moduleResolution: "node",
        esModuleInterop: true,
        skipLibCheck: true,
      },
      files: ["index.ts"],
    }),
  );
  fs.writeFileSync(path.join(dir, "index.ts"), index);
  fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(dir, "node_modules"));
  const home = path.join(dir, ".pulumi-home");
  const backend = path.join(dir, ".pulumi-state");
  fs.mkdirSync(home);
  fs.mkdirSync(backend);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PULUMI_HOME: home,
    PULUMI_BACKEND_URL: `file://${backend}`,
    PULUMI_CONFIG_PASSPHRASE: "",
  };
  for (const key of Object.keys(env)) if (key.startsWith("VITEST") || key === "NODE_OPTIONS") delete env[key];
  return { dir, home, backend, env };
}

/** `toolchain/pulumi ARGS` in the workspace; never throws on a non-zero exit. */
export function pulumi(
  ws: Workspace,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return exec(PULUMI, [...args, "--non-interactive"], {
    cwd: ws.dir,
    env: { ...ws.env, ...options.env },
    timeoutMs: options.timeoutMs ?? 120_000,
  });
}

/** The same, failing the test with the command's output when it does not exit 0. */
export async function pulumiOk(
  ws: Workspace,
  args: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  const result = await pulumi(ws, args, options);
  if (result.code !== 0)
    throw new Error(`pulumi ${args.join(" ")} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** The directory toolchain/build.sh installed the engine in (it builds it when missing). */
export async function toolchainDir(): Promise<string> {
  const result = await exec("bash", [path.join(PROJECT_DIR, "toolchain/build.sh")], { timeoutMs: 30 * 60_000 });
  if (result.code !== 0) throw new Error(`toolchain/build.sh exited ${result.code}: ${result.stderr}`);
  return result.stdout.trim();
}
