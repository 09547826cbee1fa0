import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { describe, expect, test } from "vitest";
import { SECRET_SIG } from "../support/engine";
import { annotateSecrets, deserialize, forProvider, SECRET, SIG, UNKNOWN } from "../harness/wire";

/** How the test engine reads what the program sends and what it passes on to a provider. */
const secret = (value: unknown) => ({ [SIG]: SECRET, value });
const reference = {
  [SIG]: rpc.specialResourceSig,
  urn: "urn:pulumi:dev::utilitarian::docker:index/network:Network::net",
  id: "net-id",
};

describe("the wire form of properties", () => {
  test("records keep secrets wrapped as the engine model expects, lifted to their property as the SDK does", () => {
    const wire = {
      name: "api",
      password: secret("p"),
      envs: ["A=1", secret("B=2")],
      later: UNKNOWN,
      network: reference,
    };
    const recorded = deserialize(structproto.Struct.fromJavaScript(wire));
    expect(SIG).toBe(SECRET_SIG);
    expect(recorded).toEqual({
      name: "api",
      password: secret("p"),
      envs: secret(["A=1", "B=2"]),
      later: UNKNOWN,
      network: reference,
    });
  });

  test("a provider that takes no secrets gets plain values and references as IDs; its answer is marked secret again", () => {
    const inputs = { version: "1.0.0", token: secret("t"), network: reference };
    expect(forProvider(inputs)).toEqual({ version: "1.0.0", token: "t", network: "net-id" });
    expect(annotateSecrets({ version: "1.0.0", token: "t" }, inputs)).toEqual({ version: "1.0.0", token: secret("t") });
  });
});
