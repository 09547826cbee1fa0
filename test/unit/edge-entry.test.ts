import { beforeAll, describe, expect, test } from "vitest";
// Only the descriptors are imported before the entry is added; whatever reads them is imported after.
import * as kinds from "../../components/kinds";
import { BROKER, EDGE_FOLLOWER, type KindKey, type ServiceKind } from "../../components/kinds";
import type * as Plan from "../../components/plan";
import type * as Naming from "../../config/naming";
import type * as Reference from "../../config/reference";
import type * as Schema from "../../config/schema";
import type * as Validate from "../../config/validate";

/**
 * A new edge service is one entry in components/kinds.ts: the README's example (Extending), an
 * exporter that calls the API and has its own image, added to the descriptors before anything that
 * reads them is loaded (this file's modules are its own, so the entry reaches no other test). Its
 * settings, image, reserved environment, version check, token requirement and plan then follow.
 */
const EXPORTER = {
  ...EDGE_FOLLOWER,
  role: "exporter",
  writer: false,
  callsApi: true,
  secrets: ["edgeAuthToken", ...BROKER],
  settings: {
    title: "the exporter",
    does: "calls the API",
    image: "quay.io/pwit/utilitarian-exporter",
    enabled: false,
    dependsOnApi: true,
  },
} satisfies ServiceKind;

let schema: typeof Schema;
let plan: typeof Plan;
let reference: typeof Reference;
let validate: typeof Validate;
let naming: typeof Naming;

beforeAll(async () => {
  Object.assign(kinds.KINDS, { exporter: EXPORTER });
  const roles = kinds.EDGE_ROLES as string[];
  roles.splice(
    0,
    roles.length,
    ...Object.keys(kinds.KINDS).filter((k) => kinds.kindOf(k as KindKey).release === "own"),
  );
  schema = await import("../../config/schema");
  plan = await import("../../components/plan");
  reference = await import("../../config/reference");
  validate = await import("../../config/validate");
  naming = await import("../../config/naming");
});

const VERSIONS = { processor: { version: "1.0.0" }, poster: { version: "1.0.0" }, udpServer: { version: "1.0.0" } };
const SECRETS = {
  secretKey: "test-secret-key-7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b",
  databasePassword: "db-pass",
  databaseAdminPassword: "admin-pass",
  rabbitmqPassword: "rabbit-pass",
};
const problemsOf = (settings: Record<string, unknown>, secrets: Record<string, unknown> = SECRETS) =>
  validate.validateDeployment({ settings: { version: "1.2.0", ...settings }, secrets }, naming.STACK_CONFIG, {
    projectDir: process.cwd(),
  }).problems;

describe("an exporter, one entry in components/kinds.ts", () => {
  test("is an edge service after the UDP server", () => {
    expect(kinds.EDGE_ROLES).toEqual(["processor", "poster", "udpServer", "exporter"]);
  });

  test("its settings block and image repository, with the entry's defaults and words, in the reference", () => {
    const rows = reference
      .referenceRows(schema.settingsSchema)
      .map((r) => `${r.key} | ${r.default} | ${r.description}`);
    const keys = rows.map((r) => r.split(" | ")[0]);
    expect(keys.indexOf("images.exporter")).toBe(keys.indexOf("images.udpServer") + 1);
    expect(keys.indexOf("exporter")).toBe(keys.indexOf("udpServer.applicationContext") + 1);
    expect(rows).toEqual(
      expect.arrayContaining([
        "images | its keys' defaults | Where the images of the Utilitarian services come from; their tags come from the version keys: the five keys below.",
        expect.stringMatching(
          /^images\.exporter \| `quay\.io\/pwit\/utilitarian-exporter` \| Image repository of the exporter, tagged with `exporter\.version`: /,
        ),
        "exporter | its keys' defaults | The exporter, an edge service that calls the API and has its own releases: the keys below.",
        "exporter.enabled | `false` | Whether the exporter runs: `true` or `false`.",
        expect.stringMatching(/^exporter\.version \| required while `exporter\.enabled` \| Release of the exporter, /),
        "exporter.dependsOnApi | `true` | Whether the exporter follows the API, stopped before it and started after the migrations during an API upgrade: `true` or `false`.",
        "exporter.env | `{}` | Extra plain environment of the exporter: UPPER_CASE names with one-line values, except `AMQP_CONNECTION_STRING`, `UTILITARIAN_BASE_URL` and `UTILITARIAN_AUTH_TOKEN`, which the deployment sets.",
      ]),
    );
    const defaults = schema.settingsSchema.parse({ version: "1.2.0", ...VERSIONS }) as Record<string, unknown>;
    expect(defaults.exporter).toEqual({ enabled: false, dependsOnApi: true, env: {} });
    expect((defaults.images as Record<string, string>).exporter).toBe("quay.io/pwit/utilitarian-exporter");
  });

  test("enabled, it needs its version and the API's token; the environment the deployment sets it is refused", () => {
    expect(problemsOf({ ...VERSIONS, exporter: { enabled: true } })).toEqual([
      "`utilitarian:exporter.version` is required while exporter is enabled: the release of this edge service, like 1.0.0; set it with `pulumi config set --path 'utilitarian:exporter.version' 1.0.0` or disable it with `pulumi config set --path 'utilitarian:exporter.enabled' false`",
    ]);
    const alone = { processor: { enabled: false }, poster: { enabled: false }, udpServer: { enabled: false } };
    expect(problemsOf({ ...alone, exporter: { enabled: true, version: "2.0.0" } }).join("\n")).toMatch(/edgeAuthToken/);
    expect(problemsOf({ ...alone, exporter: { enabled: true, version: "2.0.0", dependsOnApi: false } })).toEqual([]);
    expect(Object.keys((schema.RESERVED_ENV as Record<string, object>).exporter)).toEqual([
      "AMQP_CONNECTION_STRING",
      "UTILITARIAN_BASE_URL",
      "UTILITARIAN_AUTH_TOKEN",
    ]);
    expect(problemsOf({ ...VERSIONS, exporter: { env: { UTILITARIAN_BASE_URL: "http://x" } } }).join("\n")).toMatch(
      /exporter\.env\.UTILITARIAN_BASE_URL.* is set by the deployment itself \(from the API's container\)/,
    );
  });

  test("the plan pulls its image and runs it, stopped before the API and started with the rest", () => {
    const settings = schema.settingsSchema.parse({
      version: "1.2.0",
      ...VERSIONS,
      exporter: { enabled: true, version: "2.0.0" },
    });
    const p = plan.planDeployment(settings);
    const image = p.nodes.find((n) => n.key === "image-exporter");
    expect(image).toMatchObject({ kind: "image", ref: "quay.io/pwit/utilitarian-exporter:2.0.0", runbook: [4] });
    expect(p.nodes.find((n) => n.key === "exporter")).toMatchObject({ kind: "service", role: "exporter" });
    expect(
      plan.planDeployment(schema.settingsSchema.parse({ version: "1.2.0", ...VERSIONS })).nodes.map((n) => n.key),
    ).not.toContain("exporter");
  });
});
