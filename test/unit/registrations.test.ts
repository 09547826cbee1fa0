import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";
import { describe, expect, test } from "vitest";
import { renderMaintenance } from "../../components/maintenance";
import { SECRET_VALUES } from "./support/fixtures";
import { promiseOf } from "./support/mocks";
import { deploy } from "./support/program";

/**
 * Everything the component registers, for representative configurations, against snapshots
 * written by the code before the refactor of issue 17 (service-kind descriptors, stages derived
 * from the plan): a refactor that changes a resource's type, name, inputs, options or edges, the
 * plan or the printed maintenance fails here. Update the snapshots (`vitest -u`) only for a
 * change meant to change what is deployed.
 */
const STACKS = path.resolve(__dirname, "../../stacks");

/** A stack file's plain values, keyed as `deploy` takes them. */
function stackValues(file: string): Record<string, unknown> {
  const doc = load(fs.readFileSync(path.join(STACKS, file), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^utilitarian:/, ""), v]));
}

const { rabbitmqPassword: _unused, ...withoutBroker } = SECRET_VALUES;

const CONFIGS: Record<string, { values: Record<string, unknown>; secrets?: Record<string, string>; prefix?: string }> =
  {
    defaults: { values: {} },
    // The proxy turned off: exactly what `defaults` registered before the proxy's default was on.
    "proxy-off": { values: { proxy: { enabled: false } } },
    "dev-stack": { values: stackValues("Pulumi.dev.yaml"), prefix: "utilitarian-dev" },
    "production-example": {
      values: stackValues("Pulumi.production.example.yaml"),
      secrets: { ...SECRET_VALUES, registryPassword: "registry-pass" },
      prefix: "utilitarian-prod",
    },
    "external-database-and-broker": {
      values: {
        database: { mode: "external", host: "db.internal", port: 6432, operatorHost: "127.0.0.1", operatorPort: 6543 },
        rabbitmq: { mode: "external" },
        poster: { version: "1.1.0", dependsOnApi: false },
        backup: { stopWriters: false },
      },
      secrets: { ...withoutBroker, rabbitmqUrl: "amqps://u:p@mq.internal:5671/utilitarian" },
    },
    "worker-groups-registry-no-edges": {
      values: {
        registry: { server: "registry.example.net", username: "robot" },
        images: {
          api: "registry.example.net/utilitarian",
          processor: "registry.example.net/processor",
          poster: "registry.example.net/poster",
          udpServer: "registry.example.net/udp",
        },
        workers: [
          { name: "default", concurrency: 4, count: 2 },
          {
            name: "amr",
            queues: ["utilitarian.tasks.amr", "utilitarian.tasks.amr.on_demand"],
            concurrency: 2,
            count: 3,
          },
        ],
        beat: { enabled: false },
        processor: { enabled: false },
        udpServer: { enabled: false },
      },
      secrets: { ...SECRET_VALUES, registryPassword: "registry-pass" },
    },
    "ipv6-and-host-network": {
      values: {
        api: { publishAddress: "::1", port: 8080 },
        udpServer: { version: "1.2.0", network: "host" },
        database: { mode: "external", host: "2001:db8::5", operatorHost: "::1", port: 6432 },
        dockerHost: "ssh://deploy@app1.example.net",
      },
    },
    rollback: { values: { version: "1.0.0", restoreFrom: "latest", udpServer: { version: "1.0.0", port: 4060 } } },
  };

describe("what the component registers, unchanged by refactoring", () => {
  for (const [name, config] of Object.entries(CONFIGS)) {
    test(name, async () => {
      const { mocks, deployment } = await deploy(config.values, { secrets: config.secrets, prefix: config.prefix });
      const registrations = mocks.registrations
        .map(({ seq: _seq, ...r }) => r)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const snapshot = {
        registrations,
        plan: deployment.plan,
        maintenance: deployment.maintenance,
        rendered: renderMaintenance(deployment.maintenance).split("\n"),
        markdown: renderMaintenance(deployment.maintenance, "markdown").split("\n"),
        apiUrl: await promiseOf(deployment.apiUrl),
        containers: await promiseOf(deployment.containers),
      };
      await expect(`${JSON.stringify(snapshot, null, 2)}\n`).toMatchFileSnapshot(
        `snapshots/registrations/${name}.json`,
      );
    });
  }
});
