/**
 * scripts/dev-up.sh (the README's main job) for real, from a clean clone of this repository's
 * HEAD: it installs the npm packages, builds (or finds) the Pulumi engine and the stand-in
 * images, installs the provider plugins, generates the secrets and runs a real `pulumi up` of
 * the dev stack on the local Docker engine. The clone's dev stack gets its own prefix and free
 * ports, so it cannot meet a developer's dev stack or another test's.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { afterAll, describe, expect, test } from "vitest";
import { exec, waitFor } from "../support/exec";
import { freeLoopbackPort } from "../support/ports";
import { removeStack, tempDir, requireEngineAndImages } from "../support/standin-stack";

const ROOT = path.resolve(__dirname, "../..");
const PREFIX = "devup";
const MINUTE = 60_000;
const clone = path.join(tempDir("dev-up-clone"), "utilitarian-deploy");

afterAll(async () => {
  await removeStack(PREFIX);
  fs.rmSync(path.dirname(clone), { recursive: true, force: true });
}, 2 * MINUTE);

describe("scripts/dev-up.sh from a clean clone", () => {
  test(
    "brings the dev stack up under the real engine: the API answers /_health/, the UDP server takes datagrams; a second run changes nothing",
    async () => {
      await requireEngineAndImages();
      await removeStack(PREFIX);
      const cloned = await exec("git", ["clone", "--quiet", ROOT, clone]);
      expect(cloned.code, cloned.stderr).toBe(0);
      const ports = { api: await freeLoopbackPort("tcp"), udp: await freeLoopbackPort("udp"), postgres: 0 };
      ports.postgres = await freeLoopbackPort("tcp", [ports.api]);
      const stackFile = path.join(clone, "stacks/Pulumi.dev.yaml");
      const stack = yaml.load(fs.readFileSync(stackFile, "utf8")) as { config: Record<string, any> };
      stack.config["utilitarian:prefix"] = PREFIX;
      stack.config["utilitarian:api"].port = ports.api;
      stack.config["utilitarian:udpServer"].port = ports.udp;
      stack.config["utilitarian:database"].operatorPort = ports.postgres;
      fs.writeFileSync(stackFile, yaml.dump(stack));

      // A `pulumi` on PATH that is not the project's must not be used.
      const decoy = tempDir("decoy-pulumi");
      fs.writeFileSync(path.join(decoy, "pulumi"), "#!/bin/sh\necho decoy >&2; exit 97\n", { mode: 0o755 });
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${decoy}:${process.env.PATH}` };
      for (const key of ["PULUMI_HOME", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "NODE_OPTIONS"])
        delete env[key];
      for (const key of Object.keys(env)) if (key.startsWith("VITEST")) delete env[key];

      const first = await exec("bash", ["scripts/dev-up.sh", "--yes"], { cwd: clone, env, timeoutMs: 20 * MINUTE });
      const output = first.stdout + first.stderr;
      expect(first.code, output.slice(-4000)).toBe(0);
      expect(output).not.toContain("decoy");
      for (const key of ["secretKey", "databasePassword", "databaseAdminPassword", "rabbitmqPassword", "edgeAuthToken"])
        expect(output).toContain(`dev-up: generated utilitarian:${key}`);
      expect(output).toMatch(/using the stand-in of test\/provider/);
      expect(output).toMatch(/Resources:\s+\+ \d+ created/);

      const health = async () => (await fetch(`http://127.0.0.1:${ports.api}/_health/`).catch(() => undefined))?.status;
      expect(await health()).toBe(200);
      // Through the maintenance proxy (on by default, the stand-in image from the dev stack file):
      // it holds the API's address, the API publishes nothing.
      const port = async (name: string) => (await exec("docker", ["port", `${PREFIX}-${name}`])).stdout.trim();
      expect(await port("proxy")).toBe(`8080/tcp -> 127.0.0.1:${ports.api}`);
      expect(await port("api")).toBe("");

      // The state and secrets are the clone's own: ./.pulumi, passphrase-encrypted.
      const pulumiEnv = {
        ...env,
        PULUMI_HOME: path.join(clone, ".pulumi/home"),
        PULUMI_BACKEND_URL: `file://${clone}/.pulumi`,
        PULUMI_CONFIG_PASSPHRASE: "",
      };
      const get = async (key: string) => {
        const r = await exec("bash", ["toolchain/pulumi", "config", "get", key, "--stack", "dev"], {
          cwd: clone,
          env: pulumiEnv,
        });
        expect(r.code, r.stderr).toBe(0);
        return r.stdout.trim();
      };
      const adminPassword = await get("utilitarian:databaseAdminPassword");
      const secrets = await Promise.all(
        [
          "utilitarian:secretKey",
          "utilitarian:databasePassword",
          "utilitarian:rabbitmqPassword",
          "utilitarian:edgeAuthToken",
        ].map(get),
      );
      expect(stackFileSecrets(stackFile)).toBe(6);
      for (const s of [adminPassword, ...secrets]) expect(output).not.toContain(s);

      const dgram = await import("dgram");
      const socket = dgram.createSocket("udp4");
      const payload = Buffer.from(
        JSON.stringify({ meter: "devup-1", value: 4.5, timestamp: new Date().toISOString() }),
      );
      await new Promise<void>((resolve, reject) =>
        socket.send(payload, ports.udp, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
      );
      socket.close();
      const pgEnv = {
        ...process.env,
        PGHOST: "127.0.0.1",
        PGPORT: String(ports.postgres),
        PGUSER: "postgres",
        PGPASSWORD: adminPassword,
        PGDATABASE: "utilitarian",
      };
      const stored = await waitFor(
        async () =>
          (
            await exec(
              "psql",
              ["-X", "-A", "-t", "-c", "select count(*) from readings_meterreading where upper(meter) = 'DEVUP-1'"],
              { env: pgEnv },
            )
          ).stdout.trim() === "1",
        2 * MINUTE,
      );
      expect(stored).toBe(true);

      const second = await exec("bash", ["scripts/dev-up.sh", "--yes", "--expect-no-changes"], {
        cwd: clone,
        env,
        timeoutMs: 10 * MINUTE,
      });
      expect(second.code, (second.stdout + second.stderr).slice(-4000)).toBe(0);
      expect(second.stdout + second.stderr).not.toContain("generated");
    },
    30 * MINUTE,
  );
});

/** How many secure values the dev stack's file holds. */
function stackFileSecrets(file: string): number {
  return (fs.readFileSync(file, "utf8").match(/secure: /g) ?? []).length;
}
