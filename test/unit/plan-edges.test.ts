import { describe, expect, test } from "vitest";
import { planEdgeDifferences } from "../support/plan-edges";
import { SECRET_VALUES, SWARM_SETTINGS } from "./support/fixtures";
import { deploy } from "./support/program";

/**
 * The plan is the one place the order lives: what the resources really waited for (the register
 * requests' dependencies, recorded by the mock from the SDK's own requests) must be exactly what
 * the plan says, no more and no less. test/runtime repeats this under the real runtime.
 */
describe("the component builds exactly the plan's edges", () => {
  for (const [title, values] of [
    ["an upgrade", { version: "1.1.0" }],
    ["a rollback", { version: "1.0.0", restoreFrom: "latest" }],
    ["writers left running during the backup", { backup: { stopWriters: false } }],
    // In the host's network the UDP server takes no input from the private network.
    ["the UDP server in the host's network", { udpServer: { version: "1.0.0", network: "host" } }],
    [
      "external database and RabbitMQ, an independent poster",
      {
        database: { mode: "external", host: "db.example.net" },
        rabbitmq: { mode: "external" },
        poster: { version: "1.0.0", dependsOnApi: false },
      },
    ],
    // The nodes' pull: its environment takes each image's digest, the backup and the UDP server wait for it.
    ["a swarm", { ...SWARM_SETTINGS, backup: { stopWriters: false } }],
  ] as const) {
    test(title, async () => {
      const secrets: Record<string, string> = {
        ...SECRET_VALUES,
        ...("rabbitmq" in values ? { rabbitmqUrl: "amqp://u:p@mq.example.net:5672//" } : {}),
      };
      const { mocks, deployment } = await deploy(values, { secrets });
      expect(planEdgeDifferences(deployment.plan, mocks.registrations, "u")).toEqual([]);
    });
  }

  test("an edge the plan does not declare is found (the check can fail)", async () => {
    const { mocks, deployment } = await deploy({ version: "1.1.0" });
    const migrate = mocks.get("u-migrate");
    const tampered = mocks.registrations.map((r) =>
      r === migrate ? { ...r, dependencies: [...r.dependencies, "u-udp-server"] } : r,
    );
    expect(planEdgeDifferences(deployment.plan, tampered, "u")).toEqual([
      "migrate waits for udp-server, which the plan does not say",
    ]);
    const api = mocks.get("u-api");
    const untied = mocks.registrations.map((r) =>
      r === api ? { ...r, dependencies: r.dependencies.filter((d) => d !== "u-schema-guard") } : r,
    );
    expect(planEdgeDifferences(deployment.plan, untied, "u")).toEqual([
      "api: the plan says it waits for schema-guard, but it did not",
    ]);
  });

  test("on a swarm, a backup that no longer waits for the nodes' pull is found", async () => {
    const { mocks, deployment } = await deploy({ ...SWARM_SETTINGS, backup: { stopWriters: false } });
    const backup = mocks.get("u-backup");
    expect(backup.dependencies).toContain("u-pull");
    // What the nodes pull: each image by the digest the services run, on their labels' nodes; a
    // changed digest runs the script again (no `update` command: the provider runs `create`).
    const pull = mocks.get("u-pull");
    expect(pull.inputs.update).toBeUndefined();
    expect(pull.inputs.create).toBe("bash 'scripts/pull.sh'");
    const digestOf = (name: string) => mocks.get(name).inputs.name + "@sha256:";
    expect(String(pull.inputs.environment.PULL_IMAGES).split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^utilitarian\\.app ${digestOf("u-image-app")}[0-9a-f]+ u-api,u-beat$`)),
      expect.stringMatching(new RegExp(`^utilitarian\\.workers ${digestOf("u-image-app")}[0-9a-f]+ u-worker-default$`)),
      expect.stringMatching(/^utilitarian\.app \S+@sha256:[0-9a-f]+ u-processor$/),
      expect.stringMatching(/^utilitarian\.app \S+@sha256:[0-9a-f]+ u-poster$/),
      expect.stringMatching(/^utilitarian\.edge \S+@sha256:[0-9a-f]+ u-udp-server$/),
    ]);
    const untied = mocks.registrations.map((r) =>
      r === backup ? { ...r, dependencies: r.dependencies.filter((d) => d !== "u-pull") } : r,
    );
    expect(planEdgeDifferences(deployment.plan, untied, "u")).toEqual([
      "backup: the plan says it waits for pull, but it did not",
    ]);
  });
});
