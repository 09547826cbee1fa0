import * as pulumi from "@pulumi/pulumi";
import { describe, expect, test } from "vitest";
import { SECRET_SIG } from "../support/engine";
import { SECRET_VALUES } from "./support/fixtures";
import { promiseOf } from "./support/mocks";
import { deploy } from "./support/program";

const ALL_SECRETS = {
  ...SECRET_VALUES,
  registryPassword: "registry-pass-K8j$w1",
  apiSecretEnv: JSON.stringify({ JWT_SIGNING_KEY: "jwt-key-R5t@u7" }),
};
const SECRET_STRINGS = [...Object.values(SECRET_VALUES), "registry-pass-K8j$w1", "jwt-key-R5t@u7"];
// Values also appear URL-encoded inside DATABASE_URL and AMQP_CONNECTION_STRING.
const NEEDLES = [...new Set(SECRET_STRINGS.flatMap((s) => [s, encodeURIComponent(s)]))];

/** Paths of every string outside a secret wrapper that contains a secret value. */
function plainLeaks(value: unknown, path = ""): string[] {
  if (typeof value === "string") return NEEDLES.some((n) => value.includes(n)) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => plainLeaks(v, `${path}[${i}]`));
  if (value && typeof value === "object") {
    if (SECRET_SIG in value) return [];
    return Object.entries(value).flatMap(([k, v]) => plainLeaks(v, `${path}.${k}`));
  }
  return [];
}

describe("secrets reach containers and scripts only as secret environment values", () => {
  test("no resource input holds a secret outside a Pulumi secret", async () => {
    const { mocks } = await deploy({ registry: { username: "robot" } }, { secrets: ALL_SECRETS });
    const leaks = mocks.registrations.flatMap((r) => plainLeaks(r.inputs).map((p) => `${r.name}${p}`));
    expect(leaks).toEqual([]);
    // The search would find them: they are there, wrapped.
    const wrapped = JSON.stringify(mocks.registrations.map((r) => r.inputs));
    for (const s of ["jwt-key-R5t@u7", SECRET_VALUES.edgeAuthToken, SECRET_VALUES.databaseAdminPassword])
      expect(wrapped).toContain(s);
  });

  test("command text never contains a secret, and the scripts get them through the environment", async () => {
    const { mocks } = await deploy({}, { secrets: ALL_SECRETS });
    const commands = mocks.ofType("command:local:Command");
    expect(commands.map((c) => c.name).sort()).toEqual(["u-backup", "u-migrate", "u-static", "u-verify"]);
    for (const c of commands) {
      for (const field of ["create", "update", "delete"]) {
        const text = String(c.inputs[field] ?? "");
        for (const n of NEEDLES) expect(text, `${c.name}.${field}`).not.toContain(n);
      }
    }
    const backupEnv = mocks.get("u-backup").inputs.environment;
    expect(backupEnv[SECRET_SIG]).toBeTruthy();
    expect(backupEnv.value.PGPASSWORD).toBe(SECRET_VALUES.databaseAdminPassword);
  });

  test("the component's outputs hold no secret", async () => {
    const { deployment } = await deploy({}, { secrets: ALL_SECRETS });
    const outputs = await promiseOf(
      pulumi.all([deployment.apiUrl, deployment.version, deployment.lastBackup, deployment.containers]),
    );
    const text = JSON.stringify(outputs);
    expect(text).toContain("u-api");
    for (const n of NEEDLES) expect(text).not.toContain(n);
  });

  test("a library caller's plain-string secrets are marked secret all the same", async () => {
    const { mocks } = await deploy();
    const envs = mocks.get("u-postgres").inputs.envs;
    expect(envs[SECRET_SIG]).toBeTruthy();
    expect(plainLeaks(mocks.get("u-api").inputs)).toEqual([]);
  });
});
