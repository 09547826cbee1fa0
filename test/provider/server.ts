/**
 * A resource provider plugin for the real Pulumi engine, standing in for the docker, postgresql
 * and command plugins that cannot be built here (the Go module proxy refuses their provider
 * modules: README "The engine toolchain"). It speaks the engine's own protocol: the plugin
 * handshake (the port on the first line of stdout), then the ResourceProvider gRPC service from
 * the SDK's generated definitions. It implements exactly the resource types and properties the
 * component uses, against the real Docker engine, PostgreSQL and shell, and answers Check and Diff
 * as the real providers do (test/support/provider-facts.ts, each rule citing its source).
 *
 *   node server.js <package> <engine address>     (the launcher toolchain/standin-plugins.sh writes)
 */
import * as grpc from "@grpc/grpc-js";
import * as anyproto from "google-protobuf/google/protobuf/any_pb";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as engrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engproto from "@pulumi/pulumi/proto/engine_pb";
import * as plugproto from "@pulumi/pulumi/proto/plugin_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as statusproto from "@pulumi/pulumi/proto/status_pb";
import { commandResources } from "./command";
import { diffInputs } from "./diff";
import { dockerResources } from "./docker";
import { postgresqlResources } from "./postgresql";
import { SECRET_SIG } from "../support/engine-types";
import { InitError, type Context, type ResourceType, type Props } from "./types";

const PACKAGES: Record<string, (ctx: Context) => Record<string, ResourceType>> = {
  docker: dockerResources,
  postgresql: postgresqlResources,
  command: commandResources,
};

const [pkg, ...rest] = process.argv.slice(2);
const engineAddress = rest.filter((a) => !a.startsWith("-")).pop();
if (!pkg || !PACKAGES[pkg]) {
  process.stderr.write(`usage: server.js <${Object.keys(PACKAGES).join("|")}> <engine address>\n`);
  process.exit(2);
}
/** The version the npm package asks the engine for (its package.json `pulumi.version`): the launcher passes it. */
const version = process.env.STANDIN_PLUGIN_VERSION ?? "0.0.0";

const engine = engineAddress ? new engrpc.EngineClient(engineAddress, grpc.credentials.createInsecure()) : undefined;
const inFlight = new Set<AbortController>();
let config: Props = {};

const ctx: Context = {
  config: () => config,
  log: (urn, message) =>
    new Promise((resolve) => {
      if (!engine) return resolve();
      const req = new engproto.LogRequest();
      req.setSeverity(engproto.LogSeverity.INFO);
      req.setUrn(urn);
      req.setMessage(message);
      engine.log(req, () => resolve());
    }),
};
const types = PACKAGES[pkg](ctx);

/** The special signature of a secret value (sdk/go/common/resource/sig). */
const SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270";
const typeOf = (urn: string) => urn.split("::")[2]?.split("$").pop() ?? "";

function resourceType(urn: string): ResourceType {
  const type = typeOf(urn);
  const found = types[type];
  if (!found)
    throw Object.assign(new Error(`the stand-in ${pkg} provider does not implement ${type}`), {
      code: grpc.status.UNIMPLEMENTED,
    });
  return found;
}

const toJs = (s: structproto.Struct | undefined): Props => (s ? (unwrapSecrets(s.toJavaScript()) as Props) : {});

/**
 * Plain values for secret ones: Configure's args arrive before the plugin has said it does not
 * accept secrets, as the engine's `{ <SECRET_SIG>: <SECRET_VALUE>, value }` objects.
 */
function unwrapSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === "object") {
    const o = v as Props;
    if (o[SECRET_SIG] === SECRET_VALUE_SIG) return unwrapSecrets(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}
const toStruct = (p: Props) => structproto.Struct.fromJavaScript(JSON.parse(JSON.stringify(p)));

type Handler<Req, Res> = (req: Req, signal: AbortSignal) => Promise<Res>;

/** A unary method: errors go back as gRPC errors; a partial create as the engine's ErrorResourceInitFailed. */
function unary<Req, Res>(handler: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const abort = new AbortController();
    inFlight.add(abort);
    handler(call.request, abort.signal)
      .then(
        (res) => callback(null, res),
        (e: Error & { code?: number }) => {
          if (e instanceof InitError) {
            // The engine reads a partial failure from the status details (plugin/provider_plugin.go
            // resourceStateAndError: pulumirpc.ErrorResourceInitFailed with id, properties, reasons).
            const detail = new provproto.ErrorResourceInitFailed();
            detail.setId(e.id);
            detail.setProperties(toStruct(e.props));
            detail.setReasonsList([e.message]);
            callback(statusWithDetail(e.message, detail), null);
            return;
          }
          callback({ code: e.code ?? grpc.status.UNKNOWN, details: e.message }, null);
        },
      )
      .finally(() => inFlight.delete(abort));
  };
}

function statusWithDetail(message: string, detail: provproto.ErrorResourceInitFailed): grpc.ServiceError {
  // google.rpc.Status { code, message, details: [Any] } in grpc-status-details-bin, as grpc-go reads it.
  const any = new anyproto.Any();
  any.pack(detail.serializeBinary(), "pulumirpc.ErrorResourceInitFailed");
  const status = new statusproto.Status();
  status.setCode(grpc.status.UNKNOWN);
  status.setMessage(message);
  status.addDetails(any);
  const metadata = new grpc.Metadata();
  metadata.add("grpc-status-details-bin", Buffer.from(status.serializeBinary()));
  return Object.assign(new Error(message), { code: grpc.status.UNKNOWN, details: message, metadata });
}

const service: Partial<provrpc.IResourceProviderServer> = {
  getPluginInfo: unary(async () => new plugproto.PluginInfo().setVersion(version)),
  getSchema: unary(async () => new provproto.GetSchemaResponse().setSchema("{}")),
  attach: unary(async () => new emptyproto.Empty()),
  cancel: unary(async () => {
    // As go-provider's cancel middleware: every request in flight sees its context cancelled.
    for (const abort of inFlight) abort.abort();
    return new emptyproto.Empty();
  }),
  checkConfig: unary(async (req: provproto.CheckRequest) => new provproto.CheckResponse().setInputs(req.getNews())),
  diffConfig: unary(async (req: provproto.DiffRequest) => {
    const changed = diffInputs({ replaceKeys: [] }, priorInputs(req), toJs(req.getNews())).changed;
    return new provproto.DiffResponse()
      .setChanges(
        changed.length ? provproto.DiffResponse.DiffChanges.DIFF_SOME : provproto.DiffResponse.DiffChanges.DIFF_NONE,
      )
      .setDiffsList(changed);
  }),
  configure: unary(async (req: provproto.ConfigureRequest) => {
    config = toJs(req.getArgs());
    if (Object.keys(config).length === 0) {
      // An engine that sends only variables ("docker:config:host" -> value).
      for (const [k, v] of req.getVariablesMap().entries()) config[String(k).split(":").pop()!] = tryJson(String(v));
    }
    // Secrets arrive as plain values (acceptSecrets false): the engine marks as secret every output
    // whose input was (plugin/provider_plugin.go annotateSecrets), so nothing secret is stored plain.
    return new provproto.ConfigureResponse()
      .setAcceptsecrets(false)
      .setSupportspreview(false)
      .setAcceptresources(false)
      .setAcceptoutputs(false);
  }),
  check: unary(async (req: provproto.CheckRequest) => {
    const type = resourceType(req.getUrn());
    const news = toJs(req.getNews());
    const failures = type.check?.(news) ?? [];
    const res = new provproto.CheckResponse().setInputs(toStruct(news));
    res.setFailuresList(failures.map((f) => new provproto.CheckFailure().setProperty(f.property).setReason(f.reason)));
    return res;
  }),
  diff: unary(async (req: provproto.DiffRequest) => {
    const type = resourceType(req.getUrn());
    const { changed, replaces, deleteBeforeReplace } = diffInputs(type.facts, priorInputs(req), toJs(req.getNews()));
    return new provproto.DiffResponse()
      .setChanges(
        changed.length ? provproto.DiffResponse.DiffChanges.DIFF_SOME : provproto.DiffResponse.DiffChanges.DIFF_NONE,
      )
      .setDiffsList(changed)
      .setReplacesList(replaces)
      .setDeletebeforereplace(deleteBeforeReplace);
  }),
  create: unary(async (req: provproto.CreateRequest, signal) => {
    const urn = req.getUrn();
    const inputs = toJs(req.getProperties());
    if (req.getPreview()) return new provproto.CreateResponse().setId("").setProperties(toStruct(inputs));
    const { id, outs } = await resourceType(urn).create(urn, inputs, signal);
    return new provproto.CreateResponse().setId(id).setProperties(toStruct({ ...inputs, ...outs }));
  }),
  read: unary(async (req: provproto.ReadRequest) => {
    const urn = req.getUrn();
    const props = toJs(req.getProperties());
    const inputs = toJs(req.getInputs());
    const read = resourceType(urn).read;
    const result = read ? await read(req.getId(), props, inputs) : { props, inputs };
    const res = new provproto.ReadResponse();
    if (!result) return res.setId("");
    return res.setId(req.getId()).setProperties(toStruct(result.props)).setInputs(toStruct(result.inputs));
  }),
  update: unary(async (req: provproto.UpdateRequest, signal) => {
    const urn = req.getUrn();
    const olds = toJs(req.getOlds());
    const news = toJs(req.getNews());
    if (req.getPreview()) return new provproto.UpdateResponse().setProperties(toStruct({ ...olds, ...news }));
    const type = resourceType(urn);
    const outs = type.update ? await type.update(urn, req.getId(), olds, news, signal) : {};
    return new provproto.UpdateResponse().setProperties(toStruct({ ...news, ...outs }));
  }),
  delete: unary(async (req: provproto.DeleteRequest, signal) => {
    const urn = req.getUrn();
    await resourceType(urn).delete?.(urn, req.getId(), toJs(req.getProperties()), signal);
    return new emptyproto.Empty();
  }),
};

/**
 * The inputs as the provider's state holds them now: the bridge diffs the new inputs against its
 * state (a Read may have changed `mustRun` there), so each old input is taken from the outputs.
 */
function priorInputs(req: provproto.DiffRequest): Props {
  const olds = toJs(req.getOlds());
  const oldInputs = toJs(req.getOldInputs());
  const news = toJs(req.getNews());
  const keys = new Set([...Object.keys(oldInputs), ...Object.keys(news)]);
  return Object.fromEntries(
    [...keys].filter((k) => k in olds || k in oldInputs).map((k) => [k, k in olds ? olds[k] : oldInputs[k]]),
  );
}

function tryJson(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

const server = new grpc.Server();
const unimplemented: grpc.UntypedServiceImplementation = {};
for (const name of Object.keys(provrpc.ResourceProviderService)) {
  unimplemented[name] = (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
    callback(
      { code: grpc.status.UNIMPLEMENTED, details: `the stand-in ${pkg} provider does not implement ${name}` },
      null,
    );
}
server.addService(provrpc.ResourceProviderService, {
  ...unimplemented,
  ...service,
} as grpc.UntypedServiceImplementation);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${port}\n`);
});
// The engine stops a plugin with SIGINT to its process group, and SIGKILLs the group only if the
// plugin is still alive 5 s later (pulumi/pulumi v3.250.0 sdk/go/common/resource/plugin/plugin.go
// :648-651). pulumi-command's main (built on pkg v3.224.0) installs no SIGINT handler and exits at
// once; so does this plugin.
process.on("SIGINT", () => process.exit(0));
