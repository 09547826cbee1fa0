import { spawnSync } from "child_process";
import * as path from "path";
import { describe, expect, test } from "vitest";
import { plain } from "../support/engine";
import { SECRET_VALUES } from "./support/fixtures";
import { deploy } from "./support/program";

describe("what the component declares", () => {
  test("backup and migrate carry per-version triggers; static also the API container's ID; verify every service container's ID", async () => {
    const { mocks } = await deploy({ version: "1.3.0" });
    for (const step of ["u-backup", "u-migrate"]) expect(mocks.get(step).inputs.triggers, step).toEqual(["1.3.0"]);
    // Collected assets live in the API container: every new API container gets them.
    expect(mocks.get("u-static").inputs.triggers).toEqual(["1.3.0", expect.stringMatching(/^u-api-/)]);
    expect(mocks.get("u-static").propertyDependencies.triggers).toEqual(["u-api"]);
    const verify = mocks.get("u-verify");
    expect(verify.inputs.triggers[0]).toBe("1.3.0");
    expect(verify.inputs.triggers.slice(1)).toHaveLength(7);
    expect(verify.propertyDependencies.triggers.sort()).toEqual([
      "u-api",
      "u-beat",
      "u-poster",
      "u-processor",
      "u-proxy",
      "u-udp-server",
      "u-worker-default-1",
    ]);
    // A changed setting alone does not repeat a step: the update only records it.
    expect(mocks.get("u-migrate").inputs.update).toMatch(/^echo /);
    // Relative to the project directory, where the command provider runs it: the same in every clone.
    expect(mocks.get("u-migrate").inputs.create).toBe("bash 'scripts/migrate.sh'");
    // The backup runs with the asynchronous writers stopped (backup.stopWriters, on by default).
    expect(mocks.get("u-backup").inputs.create).toBe("bash 'scripts/writers-stopped.sh' 'scripts/backup.sh'");
    expect(plain(mocks.get("u-backup").inputs.environment).STOP_WRITERS).toBe(
      "u-beat u-worker-default-1 u-processor u-poster",
    );
  });

  test("an update of a step prints the last real run's stdout again, as the command provider hands it over, so outputs like lastBackup survive", async () => {
    const { mocks } = await deploy();
    const update = mocks.get("u-backup").inputs.update as string;
    expect(mocks.get("u-backup").inputs.addPreviousOutputInEnv).toBe(true);
    const previous = "BACKUP_FILE=/srv/backups/utilitarian-20261124T000000Z-1.0.0-to-1.1.0.dump\nBACKUP_BYTES=1234";
    // The provider runs `interpreter + [text]` with PULUMI_COMMAND_STDOUT set to the recorded stdout
    // (pulumi-command provider/pkg/provider/local: it is set only when non-empty).
    const run = (env: Record<string, string>) =>
      spawnSync("/bin/bash", ["-c", update], { env: { PATH: process.env.PATH, ...env }, encoding: "utf8" });
    const withPrevious = run({ PULUMI_COMMAND_STDOUT: previous });
    expect(withPrevious.status).toBe(0);
    expect(withPrevious.stdout).toBe(`${previous}\n`);
    expect(withPrevious.stderr).toMatch(/backup\.sh: already done for these triggers/);
    const withoutPrevious = run({});
    expect(withoutPrevious.status).toBe(0);
    expect(withoutPrevious.stdout).toBe("");
  });

  test("no input carries a path of this checkout: another clone or CI path of the same stack previews no change", async () => {
    const { mocks } = await deploy({ backup: { dir: "./backups" }, restoreFrom: undefined });
    const root = path.resolve(__dirname, "../..");
    const offenders = mocks.registrations.flatMap((r) => {
      const text = JSON.stringify(plain(r.inputs));
      return text.includes(root)
        ? [`${r.name}: ${text.slice(Math.max(0, text.indexOf(root) - 40), text.indexOf(root) + root.length + 40)}`]
        : [];
    });
    expect(offenders).toEqual([]);
    expect(plain(mocks.get("u-backup").inputs.environment).BACKUP_DIR).toBe("./backups");
  });

  test("every service container is replaced delete-before-create: fixed names cannot exist twice, whatever asked for the replacement", async () => {
    const { mocks } = await deploy();
    const containers = mocks.ofType("docker:index/container:Container");
    expect(containers.map((c) => c.name).sort()).toEqual([
      "u-api",
      "u-beat",
      "u-poster",
      "u-postgres",
      "u-processor",
      "u-proxy",
      "u-rabbitmq",
      "u-udp-server",
      "u-worker-default-1",
    ]);
    for (const c of containers) expect(c.deleteBeforeReplace, c.name).toBe(true);
  });

  test("only the API's address (the maintenance proxy's, or with the proxy off the API's own) and the UDP server are published on their configured addresses; PostgreSQL on loopback for this machine; RabbitMQ not at all", async () => {
    const published = async (proxy: Record<string, unknown>) => {
      const { mocks } = await deploy({
        api: { port: 8080, publishAddress: "10.0.0.5" },
        udpServer: { version: "1.0.0", port: 4060, publishAddress: "0.0.0.0" },
        proxy,
      });
      return Object.fromEntries(
        mocks
          .ofType("docker:index/container:Container")
          .filter((c) => c.inputs.ports?.length)
          .map((c) => [
            c.name,
            c.inputs.ports.map((p: any) => `${p.ip}:${p.external}->${p.internal}/${p.protocol ?? "tcp"}`),
          ]),
      );
    };
    // The proxy on, by default.
    expect(await published({})).toEqual({
      "u-postgres": ["127.0.0.1:15432->5432/tcp"],
      "u-udp-server": ["0.0.0.0:4060->4059/udp"],
      "u-proxy": ["10.0.0.5:8080->8080/tcp"],
    });
    expect(await published({ enabled: false })).toEqual({
      "u-postgres": ["127.0.0.1:15432->5432/tcp"],
      "u-udp-server": ["0.0.0.0:4060->4059/udp"],
      "u-api": ["10.0.0.5:8080->8000/tcp"],
    });
  });

  test("udpServer.network host: the UDP server joins the host's network (no private network, no published port) and reaches RabbitMQ on its loopback port", async () => {
    const { mocks } = await deploy({
      udpServer: { version: "1.0.0", network: "host" },
      rabbitmq: { loopbackPort: 25673 },
    });
    const udp = mocks.get("u-udp-server");
    expect(udp.inputs.networkMode).toBe("host");
    expect(udp.inputs.networksAdvanced).toBeUndefined();
    expect(udp.inputs.ports).toBeUndefined();
    expect(udp.propertyDependencies.networksAdvanced ?? []).toEqual([]);
    // Where each connects, with the credentials cut out (never compared in the open: a failure prints them).
    const amqp = (name: string) =>
      (plain(mocks.get(name).inputs.envs) as string[])
        .find((e) => e.startsWith("AMQP_CONNECTION_STRING="))
        ?.replace(/\/\/[^@]*@/, "//<credentials>@");
    expect(amqp("u-udp-server")).toBe("AMQP_CONNECTION_STRING=amqp://<credentials>@127.0.0.1:25673//");
    // The others still use the private network's name, and RabbitMQ is published on loopback only.
    expect(amqp("u-processor")).toBe("AMQP_CONNECTION_STRING=amqp://<credentials>@rabbitmq:5672//");
    expect(mocks.get("u-rabbitmq").inputs.ports).toEqual([{ internal: 5672, external: 25673, ip: "127.0.0.1" }]);
    expect(mocks.get("u-rabbitmq").inputs.networksAdvanced).toEqual([{ name: "u-net", aliases: ["rabbitmq"] }]);
    // An external broker is reached at its URL from the host's network as from the private one.
    const { rabbitmqPassword: _r, ...secrets } = SECRET_VALUES;
    const external = await deploy(
      { udpServer: { version: "1.0.0", network: "host" }, rabbitmq: { mode: "external" } },
      { secrets: { ...secrets, rabbitmqUrl: "amqps://u:p@mq.internal:5671/utilitarian" } },
    );
    expect(plain(external.mocks.get("u-udp-server").inputs.envs)).toContain(
      "AMQP_CONNECTION_STRING=amqps://u:p@mq.internal:5671/utilitarian",
    );
  });

  test("udpServer.network bridge (the default): RabbitMQ publishes no port and the UDP server is on the private network", async () => {
    const { mocks } = await deploy();
    expect(mocks.get("u-rabbitmq").inputs.ports).toBeUndefined();
    expect(mocks.get("u-udp-server").inputs.networkMode).toBeUndefined();
    expect(mocks.get("u-udp-server").inputs.networksAdvanced).toEqual([{ name: "u-net" }]);
  });

  test("data volumes, the database and the role are protected; images are kept for rollback", async () => {
    const { mocks } = await deploy();
    for (const name of ["u-postgres-data", "u-rabbitmq-data", "u-role", "u-database"])
      expect(mocks.get(name).protect, name).toBe(true);
    for (const name of ["u-postgres-data", "u-rabbitmq-data"]) expect(mocks.get(name).retainOnDelete, name).toBe(true);
    for (const image of mocks.ofType("docker:index/remoteImage:RemoteImage"))
      expect(image.inputs.keepLocally, image.name).toBe(true);
    expect(mocks.get("u-role").inputs).toMatchObject({
      login: true,
      superuser: false,
      createDatabase: false,
      createRole: false,
    });
    expect(mocks.get("u-database").inputs).toMatchObject({ name: "utilitarian", owner: "utilitarian" });
  });

  test("every service restarts unless stopped and stops with its grace period; the API has a health check on /_health/", async () => {
    const { mocks } = await deploy({ stopGraceSeconds: { api: 25, worker: 90, beat: 0, edge: 7 } });
    const grace = Object.fromEntries(
      mocks
        .ofType("docker:index/container:Container")
        .map((c) => [c.name, [c.inputs.restart, c.inputs.destroyGraceSeconds]]),
    );
    expect(grace).toMatchObject({
      "u-api": ["unless-stopped", 25],
      "u-worker-default-1": ["unless-stopped", 90],
      "u-beat": ["unless-stopped", 0],
      "u-processor": ["unless-stopped", 7],
      "u-udp-server": ["unless-stopped", 7],
    });
    expect(mocks.get("u-api").inputs.healthcheck.tests.join(" ")).toContain("http://127.0.0.1:8000/_health/");
    expect(mocks.get("u-api").replaceOnChanges).toEqual(["healthcheck"]);
  });

  test("exactly one beat, whatever the worker groups", async () => {
    const { mocks } = await deploy({
      workers: [
        { name: "a", count: 3 },
        { name: "b", count: 2 },
      ],
    });
    const commands = mocks.ofType("docker:index/container:Container").map((c) => (c.inputs.command ?? []).join(" "));
    expect(commands.filter((c) => c.includes(" beat "))).toHaveLength(1);
    expect(commands.filter((c) => c.includes(" worker "))).toHaveLength(5);
  });

  test("the API accepts its container name and alias as Host, since the edge services call it by them", async () => {
    const { mocks } = await deploy({ api: { allowedHosts: ["utilitarian.example.net"] } });
    const envs: string[] = plain(mocks.get("u-api").inputs.envs);
    expect(envs).toContain("ALLOWED_HOSTS=utilitarian.example.net,u-api,api");
  });

  test("an external database and RabbitMQ: no managed containers or volumes, the URL points at the server", async () => {
    const { rabbitmqPassword: _r, ...secrets } = (await import("./support/fixtures")).SECRET_VALUES;
    const { mocks } = await deploy(
      { database: { mode: "external", host: "db.internal", port: 6432 }, rabbitmq: { mode: "external" } },
      { secrets: { ...secrets, rabbitmqUrl: "amqps://u:p@mq.internal:5671/utilitarian" } },
    );
    expect(mocks.find("u-postgres")).toBeUndefined();
    expect(mocks.find("u-rabbitmq-data")).toBeUndefined();
    const envs: string[] = plain(mocks.get("u-api").inputs.envs);
    expect(envs.find((e) => e.startsWith("DATABASE_URL="))).toMatch(/@db\.internal:6432\/utilitarian$/);
    expect(envs).toContain("AMQP_CONNECTION_STRING=amqps://u:p@mq.internal:5671/utilitarian");
    expect(mocks.get("u-postgresql").inputs).toMatchObject({ host: "db.internal", port: "6432" });
    // An external server's disk cannot be read from here: the backup says so instead of checking.
    expect(plain(mocks.get("u-backup").inputs.environment).DATABASE_CONTAINER).toBeUndefined();
  });

  test("an external database on an IPv6 address is reached with the address in brackets", async () => {
    const { mocks } = await deploy({ database: { mode: "external", host: "2001:db8::5" } });
    const envs = plain(mocks.get("u-api").inputs.envs) as string[];
    expect(envs.find((e) => e.startsWith("DATABASE_URL="))).toBe(
      `DATABASE_URL=postgres://utilitarian:${encodeURIComponent(SECRET_VALUES.databasePassword)}@[2001:db8::5]:5432/utilitarian`,
    );
  });

  test("with the managed database, backup and restore check the server's disk through its container", async () => {
    const { mocks } = await deploy({ version: "1.0.0", restoreFrom: "latest" });
    for (const step of ["u-backup", "u-restore"]) {
      expect(plain(mocks.get(step).inputs.environment).DATABASE_CONTAINER, step).toBe("u-postgres");
    }
  });

  test("a remote Docker host reaches the provider and every step script", async () => {
    const { mocks } = await deploy({ dockerHost: "ssh://deploy@app1.example.net" });
    expect(mocks.get("u-docker").inputs.host).toBe("ssh://deploy@app1.example.net");
    for (const step of ["u-backup", "u-migrate", "u-static", "u-verify"]) {
      expect(plain(mocks.get(step).inputs.environment).DOCKER_HOST, step).toBe("ssh://deploy@app1.example.net");
    }
  });
});
