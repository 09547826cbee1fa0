import { describe, expect, test } from "vitest";
import { healthcheckOf, publishedPorts } from "../../components/containers";
import { databaseEndpoints, MANAGED_DATABASE_OPERATOR_PORT } from "../../components/endpoints";
import { EDGE_ROLES, KINDS, kindOf, STAGES, type KindKey } from "../../components/kinds";
import { renderMaintenance, maintenanceStages } from "../../components/maintenance";
import { planDeployment, RUNBOOK, servicesOf, upgradeStages, type RunbookStep } from "../../components/plan";
import { loaded } from "./support/fixtures";
import { deploy } from "./support/program";

/**
 * The service-kind descriptors (components/kinds.ts) and what is derived from them: the services'
 * runbook steps, the upgrade's stages, published ports, health checks and database endpoints.
 */
const settings = loaded().settings;

describe("the descriptors", () => {
  test("the edge services are the kinds with their own release, in the order the plan runs them", () => {
    expect(EDGE_ROLES).toEqual(["processor", "poster", "udpServer"]);
  });

  test("a service's runbook steps are its kind's stops and starts; an independent one carries out none", () => {
    const runbooks = Object.fromEntries(servicesOf(planDeployment(settings)).map((s) => [s.key, s.runbook]));
    expect(runbooks).toEqual({
      api: [3, 5, 6],
      beat: [3, 5, 9],
      "worker-default-1": [3, 5, 9],
      processor: [2, 9],
      poster: [2, 9],
      // udpServer.dependsOnApi defaults to false: it keeps running through the upgrade.
      "udp-server": [],
      // The maintenance proxy (on by default) keeps running too, answering for the API.
      proxy: [],
    });
  });

  test("the maintenance proxy (in the API's place) and the UDP server publish their ports as the settings say; TCP is left to Docker's default", () => {
    // The proxy on, by default: it publishes the API's address, the API nothing.
    expect(publishedPorts(KINDS.proxy, settings)).toEqual([{ internal: 8080, external: 8000, ip: "127.0.0.1" }]);
    expect(publishedPorts(KINDS.api, settings)).toBeUndefined();
    // The proxy off: the API publishes its own port.
    const off = loaded({ proxy: { enabled: false } }).settings;
    expect(publishedPorts(KINDS.api, off)).toEqual([{ internal: 8000, external: 8000, ip: "127.0.0.1" }]);
    expect(publishedPorts(KINDS.udpServer, settings)).toEqual([
      { internal: 4059, external: 4059, ip: "0.0.0.0", protocol: "udp" },
    ]);
    expect(publishedPorts(KINDS.worker, settings)).toBeUndefined();
  });

  test("the managed PostgreSQL and RabbitMQ containers register their kinds' health checks and aliases", async () => {
    const { mocks } = await deploy({});
    const container = (name: string) => mocks.registrations.find((r) => r.name === `u-${name}`)!.inputs;
    for (const role of ["postgres", "rabbitmq", "api"] as const satisfies KindKey[]) {
      expect(container(role).healthcheck).toEqual(healthcheckOf(kindOf(role), settings));
      expect(container(role).networksAdvanced).toEqual([{ name: "u-net", aliases: [kindOf(role).alias] }]);
    }
  });
});

describe("the upgrade's stages, from the plan and the kinds", () => {
  test("in order, each with its runbook steps; every runbook step happens in exactly one stage", () => {
    const stages = upgradeStages(planDeployment(settings));
    expect(stages).toEqual([
      { key: "pull", runbook: [4] },
      { key: "backup", runbook: [1] },
      { key: "stop", runbook: [2, 3] },
      { key: "start-api", runbook: [5, 6] },
      { key: "migrate", runbook: [7] },
      { key: "static", runbook: [8] },
      { key: "start", runbook: [9] },
      { key: "verify", runbook: [10] },
    ]);
    const carried = stages.flatMap((s) => s.runbook);
    expect([...carried].sort((a, b) => a - b)).toEqual(Object.keys(RUNBOOK).map(Number) as RunbookStep[]);
  });

  test("a rollback adds the restore, after the backup", () => {
    const stages = upgradeStages(planDeployment(loaded({ version: "1.0.0", restoreFrom: "latest" }).settings));
    expect(stages.map((s) => s.key)).toEqual(STAGES);
    expect(stages.find((s) => s.key === "restore")!.runbook).toEqual([]);
  });

  // As main's code printed it before the stages were derived (its lines, checked by hand).
  test("a plan with no followers keeps the stop and start stages, and their runbook steps", () => {
    const alone = loaded({
      workers: [],
      beat: { enabled: false },
      processor: { enabled: false },
      poster: { version: "1.0.0", dependsOnApi: false },
    }).settings;
    const ctx = {
      from: "0.9.0",
      containerName: (k: string) => k,
      backup: { dir: "b", stopWriters: true, testRestore: "schema" as const },
    };
    const text = renderMaintenance(maintenanceStages(planDeployment(alone), ctx));
    expect(text).toContain("3. Stop the services that depend on the API, then the API [runbook 2, 3]");
    expect(text).toContain("     - stop none (they call the API)");
    expect(text).toContain("7. Start everything else on 1.0.0 [runbook 9]");
    expect(text).toContain("     - create none; they drain what queued up in RabbitMQ");
  });
});

describe("database endpoints", () => {
  test("a managed server: its alias and port inside, loopback and the operator port outside", () => {
    expect(databaseEndpoints(settings.database)).toEqual({
      containerHost: "postgres",
      containerPort: 5432,
      operatorHost: "127.0.0.1",
      operatorPort: MANAGED_DATABASE_OPERATOR_PORT,
    });
  });

  test("an external server: its host and port, unless the operator reaches it elsewhere", () => {
    const external = {
      mode: "external",
      host: "db.internal",
      port: 6432,
    } as const;
    expect(databaseEndpoints(external)).toEqual({
      containerHost: "db.internal",
      containerPort: 6432,
      operatorHost: "db.internal",
      operatorPort: 6432,
    });
    expect(databaseEndpoints({ ...external, operatorHost: "::1", operatorPort: 0 })).toMatchObject({
      operatorHost: "::1",
      // A configured 0 is kept (`??`, not `||`); the schema refuses it before it gets here.
      operatorPort: 0,
    });
  });
});
