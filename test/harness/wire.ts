import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { isUnknown } from "@pulumi/pulumi/output";

/**
 * Property values as they travel between program, engine and providers (the JSON form of a
 * protobuf Struct): secrets `{ [SIG]: SECRET, value }`, unknowns the UNKNOWN string, resource
 * references `{ [SIG]: RESOURCE, urn, id }`. The records keep this form, so a recorded state can
 * be sent back to a provider as it is.
 */
export const UNKNOWN = rpc.unknownValue;
export const SIG = rpc.specialSigKey;
export const SECRET = rpc.specialSecretSig;

const isObject = (v: unknown): v is Record<string, any> => typeof v === "object" && v !== null && !Array.isArray(v);
export const isSecret = (v: unknown): boolean => isObject(v) && v[SIG] === SECRET;

/** Values deserializeProperties would turn into live SDK objects (in this process); records keep their wire form. */
const KEPT_AS_WIRE = new Set([
  rpc.specialResourceSig,
  rpc.specialOutputValueSig,
  rpc.specialAssetSig,
  rpc.specialArchiveSig,
]);
const PLACEHOLDER = "\u0000harness-wire-value:";

/**
 * A request's properties, deserialized with the SDK's own `deserializeProperties` (secrets stay
 * wrapped and are lifted to their top-level property), with the SDK's unknown sentinel turned
 * back into the wire's UNKNOWN string so the record stays plain data. Resource references,
 * output values and assets stay as they arrived: deserializing them would construct SDK objects
 * (even resources) in the test process.
 */
export function deserialize(struct: structproto.Struct | undefined): Record<string, any> {
  if (!struct) return {};
  const kept: unknown[] = [];
  const hidden = mapWire(struct.toJavaScript(), (special) => `${PLACEHOLDER}${kept.push(special) - 1}`);
  const deserialized = rpc.deserializeProperties(
    structproto.Struct.fromJavaScript(hidden as Record<string, any>),
    /* keepUnknowns */ true,
  );
  return restore(unknownsToWire(deserialized), kept) as Record<string, any>;
}

function mapWire(value: unknown, replace: (special: Record<string, any>) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => mapWire(v, replace));
  if (isObject(value)) {
    if (KEPT_AS_WIRE.has(value[SIG])) return replace(value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapWire(v, replace)]));
  }
  return value;
}

function restore(value: unknown, kept: unknown[]): unknown {
  if (typeof value === "string" && value.startsWith(PLACEHOLDER)) return kept[Number(value.slice(PLACEHOLDER.length))];
  if (Array.isArray(value)) return value.map((v) => restore(v, kept));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, restore(v, kept)]));
  return value;
}

function unknownsToWire(value: unknown): unknown {
  if (isUnknown(value)) return UNKNOWN;
  if (Array.isArray(value)) return value.map(unknownsToWire);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unknownsToWire(v)]));
  return value;
}

/**
 * What the engine sends a provider that does not accept secrets or resource references (the
 * dynamic provider host answers Configure with acceptSecrets=false): secrets unwrapped, resource
 * references downgraded to their ID (or URN). provider_plugin.go, MarshalProperties with
 * KeepSecrets/KeepResources false.
 */
export function forProvider(value: any): any {
  if (Array.isArray(value)) return value.map(forProvider);
  if (isObject(value)) {
    if (value[SIG] === SECRET) return forProvider(value.value);
    if (value[SIG] === rpc.specialResourceSig) return value.id || value.urn;
    if (value[SIG] === rpc.specialOutputValueSig) return "value" in value ? forProvider(value.value) : UNKNOWN;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forProvider(v)]));
  }
  return value;
}

/**
 * The engine's `annotateSecrets` for providers that cannot keep secrets: a property the provider
 * returns is marked secret again when the input of the same name was.
 */
export function annotateSecrets(outputs: Record<string, any>, inputs: Record<string, any>): Record<string, any> {
  return Object.fromEntries(
    Object.entries(outputs).map(([k, v]) => [k, isSecret(inputs[k]) && !isSecret(v) ? { [SIG]: SECRET, value: v } : v]),
  );
}

/** Deep equality of two wire values (the engine's PropertyMap.DeepEquals for plain data). */
export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value))
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  return value;
}
