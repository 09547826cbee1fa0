import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../config/load";
import { SECRET_VALUES } from "./support/fixtures";

const STACKS = path.resolve(__dirname, "../../stacks");

/** A stack file's config as the Pulumi CLI hands it to the program: structured values as JSON. */
function stackConfig(
  file: string,
  secrets: Record<string, string>,
): { raw: Record<string, string>; secretKeys: Set<string> } {
  const doc = load(fs.readFileSync(path.join(STACKS, file), "utf8")) as { config: Record<string, unknown> };
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.config)) raw[k] = typeof v === "string" ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(secrets)) raw[`utilitarian:${k}`] = v;
  return { raw, secretKeys: new Set(Object.keys(secrets).map((k) => `utilitarian:${k}`)) };
}

describe("the committed stack files", () => {
  test("dev: local Docker engine, managed PostgreSQL and RabbitMQ, stand-in images", () => {
    const { raw, secretKeys } = stackConfig("Pulumi.dev.yaml", SECRET_VALUES);
    const { settings } = loadConfig(raw, secretKeys);
    expect(settings.dockerHost).toBeUndefined();
    expect(settings.database.mode).toBe("managed");
    expect(settings.rabbitmq.mode).toBe("managed");
    expect(settings.images.api).toBe("utilitarian-standin/utilitarian");
  });

  test("production example: external database, remote Docker host over ssh, no secret values in the file", () => {
    const { rabbitmqPassword: _unused, ...rest } = SECRET_VALUES;
    const { raw, secretKeys } = stackConfig("Pulumi.production.example.yaml", {
      ...rest,
      rabbitmqPassword: "x",
      registryPassword: "y",
    });
    const { settings } = loadConfig(raw, secretKeys);
    expect(settings.dockerHost).toBe("ssh://deploy@app1.example.net");
    expect(settings.database).toMatchObject({
      mode: "external",
      host: "db1.example.net",
      operatorHost: "127.0.0.1",
      superuser: false,
    });
    expect(settings.workers.map((w) => [w.name, w.count])).toEqual([
      ["default", 2],
      ["amr", 3],
      ["commits", 2],
    ]);
    const text = fs.readFileSync(path.join(STACKS, "Pulumi.production.example.yaml"), "utf8");
    expect(text).not.toMatch(
      /secure:|^\s*utilitarian:(secretKey|databasePassword|databaseAdminPassword|rabbitmqPassword|edgeAuthToken|registryPassword):/m,
    );
  });

  test("swarm example: target swarm, the nodes' engines, what the swarm refuses yet turned off, no secret values", () => {
    const { raw, secretKeys } = stackConfig("Pulumi.swarm.example.yaml", SECRET_VALUES);
    const { settings } = loadConfig(raw, secretKeys);
    expect(settings.target).toBe("swarm");
    expect(Object.keys(settings.swarm.nodeHosts)).toEqual(["app-1", "app-2", "worker-1", "worker-2", "edge-1"]);
    expect(settings.swarm.apiReplicas).toBe(2);
    expect(settings.proxy.enabled).toBe(false);
    expect(settings.database.operatorHost).toBe("10.0.0.12");
    const text = fs.readFileSync(path.join(STACKS, "Pulumi.swarm.example.yaml"), "utf8");
    expect(text).not.toMatch(
      /secure:|^\s*utilitarian:(secretKey|databasePassword|databaseAdminPassword|rabbitmqPassword|edgeAuthToken):/m,
    );
  });
});
