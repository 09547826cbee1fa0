import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, test } from "vitest";
import { plain, providerName } from "../support/engine";
import { SECRET_VALUES } from "../unit/support/fixtures";
import { runProgram, unknownOutputsEngine, type HarnessRegistration, type ProgramRun } from "../harness";
import { isSecret } from "../harness/wire";
import { callsFor, explain, PROJECT_DIR, RUN_TIMEOUT_MS, runDev, showsASecret } from "./support";

/**
 * Another team's program: `npm pack` of this project, installed into a separate tiny Pulumi
 * program that imports the component with a minimal args object, run under the runtime harness
 * as `pulumi preview` and `pulumi up` run it. What it registers must be what the project's own
 * program registers for the same settings, with the step scripts found in the installed package.
 */

const PROJECT = "library-user";
/** The consumer's component name, also its prefix: replaced by the stack program's to compare. */
const NAME = "acme";
const STACK_PROGRAM_NAME = "utilitarian-dev";
/** The stack resource of the project's program on stack dev: `<project>-<stack>`. */
const STACK_RESOURCE = "utilitarian-dev";
const SETUP_TIMEOUT_MS = 240_000;

/** The consumer's whole program: the minimal args; secrets from its own stack config. */
const CONSUMER_PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import * as library from "utilitarian-deploy";
import { UtilitarianDeployment } from "utilitarian-deploy";

const config = new pulumi.Config();
export const exported = Object.keys(library).sort();

let outputs: Record<string, pulumi.Output<unknown>> = {};
if (config.get("mode") !== "import-only") {
  const deployment = new UtilitarianDeployment("${NAME}", {
    version: "1.0.0",
    processor: { version: "1.0.0" },
    poster: { version: "1.0.0" },
    udpServer: { version: "1.0.0" },
    secrets: {
      secretKey: config.requireSecret("secretKey"),
      databasePassword: config.requireSecret("databasePassword"),
      databaseAdminPassword: config.requireSecret("databaseAdminPassword"),
      rabbitmqPassword: config.requireSecret("rabbitmqPassword"),
      edgeAuthToken: config.requireSecret("edgeAuthToken"),
    },
  });
  outputs = { apiUrl: deployment.apiUrl, containers: deployment.containers, version: deployment.version };
}
export const { apiUrl, containers, version } = outputs;
`;

/** The same program with an arg of the wrong type: ts-node, as pulumi runs it, must refuse it. */
const MISTYPED_PROGRAM = CONSUMER_PROGRAM.replace(
  `version: "1.0.0",\n    processor`,
  `version: "1.0.0",\n    api: { port: "8000" },\n    processor`,
);

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    target: "es2022",
    module: "commonjs",
    moduleResolution: "node",
    esModuleInterop: true,
    skipLibCheck: true,
    types: ["node"],
  },
  files: ["index.ts"],
};

interface Installed {
  /** Temporary directory holding everything; removed afterwards. */
  work: string;
  /** The consumer program's directory (its Pulumi.yaml). */
  consumer: string;
  /** A twin of the consumer whose index.ts passes a mistyped arg. */
  mistyped: string;
  /** Paths in the packed tarball, and its package.json. */
  files: string[];
  manifest: { main: string; types: string; exports: Record<string, unknown>; dependencies: Record<string, string> };
  timings: { packMs: number; installMs: number };
}

let installing: Promise<Installed> | undefined;
const installed = () => (installing ??= install());

/**
 * Packs the project as `npm pack` does (its `prepack` builds dist/), from a copy of the checkout
 * so that the build does not rewrite the shared dist/ others may be running; then installs the
 * tarball into the consumer as npm lays a package out (node_modules/utilitarian-deploy, extracted),
 * with exactly its declared `dependencies` (and the consumer's @pulumi/pulumi, typescript,
 * @types/node) linked from the project's node_modules: an import the package does not declare
 * fails here as it would for its users. A real `npm install --prefer-offline` of the tarball (with
 * @pulumi/pulumi and typescript), even with a warm npm cache, took 86 to 312 times as long as this
 * layout side by side (6.5-17.9 s against 50-82 ms), and needs the registry on a fresh machine.
 */
async function install(): Promise<Installed> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "utilitarian-library-"));
  const source = path.join(work, "source");
  const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: PROJECT_DIR,
    encoding: "utf8",
  })
    .split("\0")
    .filter((f) => f !== "" && !f.startsWith("test/") && fs.existsSync(path.join(PROJECT_DIR, f)));
  for (const file of listed) fs.cpSync(path.join(PROJECT_DIR, file), path.join(source, file));
  fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(source, "node_modules"), "dir");

  let started = Date.now();
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", work], {
      cwd: source,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }),
  )[0];
  const packMs = Date.now() - started;
  const tarball = path.join(work, packed.filename);

  started = Date.now();
  const consumer = path.join(work, "consumer");
  const installedAt = path.join(consumer, "node_modules", "utilitarian-deploy");
  fs.mkdirSync(installedAt, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", installedAt, "--strip-components=1"]);
  const manifest = JSON.parse(fs.readFileSync(path.join(installedAt, "package.json"), "utf8"));
  const pulumiVersion = JSON.parse(
    fs.readFileSync(path.join(PROJECT_DIR, "node_modules/@pulumi/pulumi/package.json"), "utf8"),
  ).version;
  for (const dependency of [...Object.keys(manifest.dependencies), "@pulumi/pulumi", "typescript", "@types/node"]) {
    const link = path.join(consumer, "node_modules", dependency);
    if (fs.existsSync(link)) continue;
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(PROJECT_DIR, "node_modules", dependency), link, "dir");
  }
  const installMs = Date.now() - started;

  writeProgram(consumer, CONSUMER_PROGRAM, { tarball: path.relative(consumer, tarball), pulumiVersion });
  const mistyped = path.join(work, "mistyped");
  writeProgram(mistyped, MISTYPED_PROGRAM, { tarball: path.relative(mistyped, tarball), pulumiVersion });
  fs.symlinkSync(path.join(consumer, "node_modules"), path.join(mistyped, "node_modules"), "dir");
  return {
    work,
    consumer,
    mistyped,
    files: packed.files.map((f: { path: string }) => f.path),
    manifest,
    timings: { packMs, installMs },
  };
}

function writeProgram(dir: string, program: string, deps: { tarball: string; pulumiVersion: string }): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    `name: ${PROJECT}\ndescription: Another team's program using the packed utilitarian-deploy.\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`,
  );
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify(
      {
        name: PROJECT,
        private: true,
        main: "index.ts",
        dependencies: { "utilitarian-deploy": `file:${deps.tarball}`, "@pulumi/pulumi": deps.pulumiVersion },
      },
      null,
      2,
    ),
  );
  fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  fs.writeFileSync(path.join(dir, "index.ts"), program);
}

afterAll(() => {
  // Only what install() made; awaited so that a half-made install is removed too.
  return installing?.then(
    (i) => fs.rmSync(i.work, { recursive: true, force: true }),
    () => undefined,
  );
});

/** Runs the consumer program; its secrets are its own stack config, as `pulumi config set --secret` leaves them. */
async function runConsumer(options: {
  preview: boolean;
  mode?: string;
  dir?: "consumer" | "mistyped";
  engine?: ReturnType<typeof unknownOutputsEngine>;
}): Promise<ProgramRun> {
  const i = await installed();
  const config: Record<string, string> = Object.fromEntries(
    Object.entries(SECRET_VALUES).map(([k, v]) => [`${PROJECT}:${k}`, v]),
  );
  if (options.mode) config[`${PROJECT}:mode`] = options.mode;
  return runProgram({
    programDir: i[options.dir ?? "consumer"],
    stack: "dev",
    config,
    preview: options.preview,
    engine: options.engine,
    secretKeys: Object.keys(SECRET_VALUES).map((k) => `${PROJECT}:${k}`),
  });
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

const consumerPreview = once(() => runConsumer({ preview: true, engine: unknownOutputsEngine() }));
const stackProgramPreview = once(() => runDev({}, { preview: true, engine: unknownOutputsEngine() }));
const consumerUp = once(() => runConsumer({ preview: false }));

async function succeeded(run: Promise<ProgramRun>): Promise<ProgramRun> {
  const result = await run;
  expect(result.succeeded, explain(result)).toBe(true);
  return result;
}

/** A registration with the consumer's names (its stack's, its component's) and script paths turned into the stack program's. */
function comparable(r: HarnessRegistration, from: { stack: string; name: string; scripts: string }) {
  const swap = (text: string) =>
    text
      .split(from.scripts)
      .join("scripts/")
      .split(from.stack)
      .join(STACK_RESOURCE)
      .split(from.name)
      .join(STACK_PROGRAM_NAME);
  const names = (list: string[]) => list.map(swap).sort();
  return JSON.parse(
    swap(
      JSON.stringify({
        type: r.type,
        name: r.name,
        parent: r.parent,
        custom: r.custom,
        provider: providerName(r.provider),
        inputs: plain(r.inputs),
        dependencies: names(r.dependencies),
        propertyDependencies: Object.fromEntries(Object.entries(r.propertyDependencies).map(([k, v]) => [k, names(v)])),
        protect: r.protect,
        retainOnDelete: r.retainOnDelete,
        replaceOnChanges: r.replaceOnChanges,
        deleteBeforeReplace: r.deleteBeforeReplace,
      }),
    ),
  );
}

const SCRIPTS_IN_PACKAGE = "node_modules/utilitarian-deploy/scripts/";

describe("the packed package", () => {
  test(
    "holds the built library, its types, every step script and the README; no tests, sources or stack program",
    async () => {
      const { files, manifest, timings } = await installed();
      console.info(
        `npm pack (prepack build included): ${timings.packMs} ms; install laid out: ${timings.installMs} ms`,
      );
      // Every file under scripts/, window-report/'s parts too.
      const scripts = (fs.readdirSync(path.join(PROJECT_DIR, "scripts"), { recursive: true }) as string[])
        .filter((s) => fs.statSync(path.join(PROJECT_DIR, "scripts", s)).isFile())
        .map((s) => `scripts/${s}`);
      expect(scripts).toContain("scripts/window-report/assemble.js");
      expect(files).toEqual(
        expect.arrayContaining([
          "package.json",
          "README.md",
          "dist/lib.js",
          "dist/lib.d.ts",
          "dist/components/deployment.js",
          ...scripts,
        ]),
      );
      expect(
        files.filter(
          (f) => f.startsWith("test/") || (f.endsWith(".ts") && !f.endsWith(".d.ts")) || f.startsWith("dist/index."),
        ),
      ).toEqual([]);
      expect(manifest).toMatchObject({
        main: "dist/lib.js",
        types: "dist/lib.d.ts",
        exports: { ".": { types: "./dist/lib.d.ts", default: "./dist/lib.js" } },
      });
      expect(Object.keys(manifest.dependencies).sort()).toEqual([
        "@pulumi/command",
        "@pulumi/docker",
        "@pulumi/postgresql",
        "@pulumi/pulumi",
        "zod",
      ]);
    },
    SETUP_TIMEOUT_MS,
  );

  test(
    "require() loads it without an engine and deploys nothing; only its entry point is exported",
    async () => {
      const { consumer } = await installed();
      const node = (code: string) => spawnSync(process.execPath, ["-e", code], { cwd: consumer, encoding: "utf8" });
      const loaded = node(
        `const lib = require("utilitarian-deploy"); console.log(JSON.stringify(Object.keys(lib).sort()))`,
      );
      expect(loaded.stderr).toBe("");
      expect(JSON.parse(loaded.stdout)).toEqual(
        expect.arrayContaining([
          "ArgsError",
          "UtilitarianDeployment",
          "planDeployment",
          "renderMaintenance",
          "settingsSchema",
        ]),
      );
      expect(node(`require("utilitarian-deploy/dist/components/deployment.js")`).stderr).toContain(
        "ERR_PACKAGE_PATH_NOT_EXPORTED",
      );
    },
    SETUP_TIMEOUT_MS,
  );

  test(
    "imported by a program under the runtime, it registers nothing: only the program's stack",
    async () => {
      const run = await succeeded(runConsumer({ preview: true, mode: "import-only" }));
      expect(run.registrations.map((r) => `${r.type} ${r.name}`)).toEqual([`pulumi:pulumi:Stack ${PROJECT}-dev`]);
      expect(run.outputs.exported).toEqual(expect.arrayContaining(["UtilitarianDeployment", "settingsSchema"]));
    },
    RUN_TIMEOUT_MS,
  );
});

describe("another team's program with minimal args, under the runtime harness", () => {
  test(
    "preview: it registers exactly what the project's own program registers for the same settings",
    async () => {
      const [consumer, own] = [await succeeded(consumerPreview()), await succeeded(stackProgramPreview())];
      const resources = (run: ProgramRun, from: { stack: string; name: string; scripts: string }) =>
        run.registrations
          .filter((r) => r.type !== "pulumi:pulumi:Stack")
          .map((r) => comparable(r, from))
          .sort((a, b) => a.name.localeCompare(b.name));
      const mine = resources(consumer, { stack: `${PROJECT}-dev`, name: NAME, scripts: SCRIPTS_IN_PACKAGE });
      expect(mine.length).toBeGreaterThan(20);
      expect(mine).toEqual(resources(own, { stack: STACK_RESOURCE, name: STACK_PROGRAM_NAME, scripts: "scripts/" }));
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "the step Commands run the installed package's scripts, by paths relative to the program's directory",
    async () => {
      const run = await succeeded(consumerPreview());
      const { consumer } = await installed();
      const commands = run.registrations.filter((r) => r.type === "command:local:Command");
      expect(commands.map((c) => c.name).sort()).toEqual([
        `${NAME}-backup`,
        `${NAME}-migrate`,
        `${NAME}-static`,
        `${NAME}-verify`,
      ]);
      for (const c of commands) {
        const scripts = [...String(c.inputs.create).matchAll(/'([^']+)'/g)].map((m) => m[1]);
        expect(scripts.length, c.name).toBeGreaterThan(0);
        for (const script of scripts) {
          expect(script.startsWith(SCRIPTS_IN_PACKAGE), script).toBe(true);
          expect(fs.existsSync(path.join(consumer, script)), script).toBe(true);
        }
      }
      expect(run.registrations.find((r) => r.name === `${NAME}-backup`)?.inputs.create).toBe(
        `bash '${SCRIPTS_IN_PACKAGE}writers-stopped.sh' '${SCRIPTS_IN_PACKAGE}backup.sh'`,
      );
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "no input holds an absolute path of the program's or the project's directory",
    async () => {
      const run = await succeeded(consumerPreview());
      const { work } = await installed();
      const inputs = JSON.stringify(run.registrations.map((r) => plain(r.inputs)));
      for (const dir of [work, fs.realpathSync(work), PROJECT_DIR]) expect(inputs).not.toContain(dir);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "up: the schema guard from the installed package is checked and created by the real dynamic provider host; outputs reach the stack",
    async () => {
      const run = await succeeded(consumerUp());
      expect(callsFor(run, `${NAME}-schema-guard`)).toEqual(["Check: ok", "Create"]);
      expect(run.state.get(`${NAME}-schema-guard`)).toMatchObject({
        outputs: { version: "1.0.0", previousVersion: "none" },
      });
      expect(run.outputs).toMatchObject({
        apiUrl: "http://127.0.0.1:8000",
        version: "1.0.0",
        containers: { api: `${NAME}-api`, "udp-server": `${NAME}-udp-server` },
      });
      expect(isSecret(run.registrations.find((r) => r.name === `${NAME}-backup`)!.inputs.environment)).toBe(true);
      expect(showsASecret(run)).toBe(false);
    },
    RUN_TIMEOUT_MS,
  );

  test(
    "the program is type-checked against the package's types: a mistyped arg fails the run, naming it",
    async () => {
      const run = await runConsumer({ preview: true, dir: "mistyped" });
      expect(run.succeeded).toBe(false);
      expect(run.registrations.filter((r) => r.type !== "pulumi:pulumi:Stack")).toEqual([]);
      expect(explain(run)).toMatch(
        /index\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/,
      );
    },
    RUN_TIMEOUT_MS,
  );
});
