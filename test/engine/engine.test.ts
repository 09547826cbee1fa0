/**
 * What the real engine (toolchain/pulumi: the CLI built from Go modules, its language host, the
 * SDK's dynamic-provider plugin) does with programs that need no provider it cannot build here:
 * it runs offline, it fails at once on a missing plugin, and it refuses a downgrade at preview
 * with the schema guard's message.
 */
import * as fs from "fs";
import * as path from "path";
import { beforeAll, describe, expect, test } from "vitest";
import { exec } from "../support/exec";
import { program, PROJECT_DIR, pulumi, pulumiOk, toolchainDir, type Workspace } from "../support/real-engine";

const MINUTE = 60_000;
let bin = "";

beforeAll(async () => {
  bin = await toolchainDir();
}, 30 * MINUTE);

interface Connect {
  family: string;
  address: string;
  port: number;
}

/** Every connect(2) of the process tree under strace: AF_UNIX paths, IPv4 and IPv6 addresses. */
async function connectsOf(
  file: string,
  args: string[],
  ws: Workspace,
  env: NodeJS.ProcessEnv = ws.env,
): Promise<{ code: number; connects: Connect[]; output: string }> {
  const trace = path.join(ws.dir, `strace-${Date.now()}.txt`);
  const result = await exec("strace", ["-f", "-qq", "-e", "trace=connect", "-o", trace, file, ...args], {
    cwd: ws.dir,
    env,
    timeoutMs: 2 * MINUTE,
  });
  const connects: Connect[] = [];
  for (const line of fs.readFileSync(trace, "utf8").split("\n")) {
    const family = /sa_family=(AF_\w+)/.exec(line)?.[1];
    if (!family) continue;
    const address = /inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"|sun_path="([^"]*)"/.exec(line);
    const port = Number(/htons\((\d+)\)/.exec(line)?.[1] ?? 0);
    connects.push({ family, address: address?.[1] ?? address?.[2] ?? address?.[3] ?? "", port });
  }
  return { code: result.code, connects, output: result.stdout + result.stderr };
}

const loopback = (c: Connect) =>
  c.family === "AF_UNIX" || /^127\./.test(c.address) || c.address === "::1" || /^::ffff:127\./.test(c.address);
const offMachine = (connects: Connect[]) => connects.filter((c) => !loopback(c) || c.port === 53);

describe("the real engine, offline", () => {
  test(
    "an empty TypeScript program: preview, up and a no-op up connect to nothing but loopback and local sockets",
    async () => {
      const ws = program("floor", "export const answer = 42;\n");
      await pulumiOk(ws, ["stack", "init", "dev"]);
      for (const args of [
        ["preview", "--stack", "dev"],
        ["up", "--yes", "--stack", "dev"],
        ["up", "--yes", "--stack", "dev", "--expect-no-changes"],
      ]) {
        const run = await connectsOf(path.join(PROJECT_DIR, "toolchain/pulumi"), [...args, "--non-interactive"], ws);
        expect(run.code, run.output).toBe(0);
        // The engine reaches its language host and the program reaches the engine over gRPC on 127.0.0.1:
        // the trace saw them, so an empty list below is not a trace that saw nothing.
        expect(run.connects.filter((c) => c.family === "AF_INET" && /^127\./.test(c.address)).length).toBeGreaterThan(
          0,
        );
        expect(offMachine(run.connects), args.join(" ")).toEqual([]);
      }
      const outputs = await pulumiOk(ws, ["stack", "output", "--json", "--stack", "dev"]);
      expect(JSON.parse(outputs.stdout)).toEqual({ answer: 42 });
    },
    5 * MINUTE,
  );

  test(
    "negative control: the bare CLI without toolchain/pulumi's settings does try to reach the network",
    async () => {
      const ws = program("control", "export const answer = 42;\n");
      await pulumiOk(ws, ["stack", "init", "dev"]);
      // The update check that PULUMI_SKIP_UPDATE_CHECK turns off (it looks up the Pulumi service).
      const env: NodeJS.ProcessEnv = { ...ws.env };
      for (const key of [
        "PULUMI_SKIP_UPDATE_CHECK",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
        "PULUMI_DISABLE_REGISTRY_RESOLVE",
      ])
        delete env[key];
      const run = await connectsOf(
        path.join(bin, "pulumi"),
        ["up", "--yes", "--stack", "dev", "--non-interactive"],
        ws,
        env,
      );
      expect(offMachine(run.connects).length, JSON.stringify(run.connects)).toBeGreaterThan(0);
    },
    3 * MINUTE,
  );

  test(
    "a plugin the program's packages ask for and nobody installed: refused at once, naming it, the package and why",
    async () => {
      const ws = program(
        "needs-docker",
        'import * as docker from "@pulumi/docker";\nexport const network = new docker.Network("n").name;\n',
        {
          "@pulumi/pulumi": "*",
          "@pulumi/docker": "*",
        },
      );
      await pulumiOk(ws, ["stack", "init", "dev"]);
      const started = Date.now();
      const result = await pulumi(ws, ["preview", "--stack", "dev"]);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(result.code).toBe(1);
      const docker = JSON.parse(
        fs.readFileSync(path.join(PROJECT_DIR, "node_modules/@pulumi/docker/package.json"), "utf8"),
      );
      expect(result.stderr).toContain(
        `the resource plugin docker v${docker.pulumi.version} (asked for by @pulumi/docker ${docker.version}) is not installed`,
      );
      expect(result.stderr).toContain("github.com/pulumi/pulumi-docker/provider/v5");
      expect(result.stderr).toContain(
        `toolchain/pulumi plugin install resource docker ${docker.pulumi.version} --file`,
      );
      // Nothing ran: no stack update was recorded.
      const history = await pulumiOk(ws, ["stack", "history", "--json", "--stack", "dev"]);
      expect(JSON.parse(history.stdout)).toEqual([]);
    },
    2 * MINUTE,
  );
});

describe("the schema guard under the real engine", () => {
  const guardProgram = [
    'import * as pulumi from "@pulumi/pulumi";',
    `import { SchemaGuard } from ${JSON.stringify(path.join(PROJECT_DIR, "components/schemaGuard"))};`,
    'const config = new pulumi.Config("guard");',
    'const guard = new SchemaGuard("schema-guard", { version: config.require("version"), restoreFrom: config.get("restoreFrom") });',
    "export const version = guard.version;",
    "export const previousVersion = guard.previousVersion;",
    "",
  ].join("\n");

  test(
    "records the version, refuses a downgrade at preview with its message, changes nothing, and lets a restore through",
    async () => {
      const ws = program("guard", guardProgram);
      const stack = ["--stack", "dev"];
      await pulumiOk(ws, ["stack", "init", "dev"]);
      await pulumiOk(ws, ["config", "set", "guard:version", "1.0.0", ...stack]);
      await pulumiOk(ws, ["up", "--yes", ...stack]);
      await pulumiOk(ws, ["config", "set", "guard:version", "1.1.0", ...stack]);
      await pulumiOk(ws, ["up", "--yes", ...stack]);
      await pulumiOk(ws, ["preview", "--expect-no-changes", ...stack]);
      await pulumiOk(ws, ["up", "--yes", "--expect-no-changes", ...stack]);
      expect(JSON.parse((await pulumiOk(ws, ["stack", "output", "--json", ...stack])).stdout)).toEqual({
        version: "1.1.0",
        previousVersion: "1.0.0",
      });

      await pulumiOk(ws, ["config", "set", "guard:version", "1.0.0", ...stack]);
      const exported = (await pulumiOk(ws, ["stack", "export", ...stack])).stdout;
      const refused = await pulumi(ws, ["preview", ...stack]);
      expect(refused.code).not.toBe(0);
      expect(refused.stdout).toContain("Refusing to go from 1.1.0 down to 1.0.0 without restoring the database");
      const up = await pulumi(ws, ["up", "--yes", ...stack]);
      expect(up.code).not.toBe(0);
      expect(up.stdout).toContain("Refusing to go from 1.1.0 down to 1.0.0");
      // The refused preview and up left the state as it was.
      expect(JSON.parse((await pulumiOk(ws, ["stack", "export", ...stack])).stdout).deployment.resources).toEqual(
        JSON.parse(exported).deployment.resources,
      );

      await pulumiOk(ws, ["config", "set", "guard:restoreFrom", "latest", ...stack]);
      await pulumiOk(ws, ["up", "--yes", ...stack]);
      expect(JSON.parse((await pulumiOk(ws, ["stack", "output", "--json", ...stack])).stdout)).toEqual({
        version: "1.0.0",
        previousVersion: "1.1.0",
      });
    },
    5 * MINUTE,
  );
});
