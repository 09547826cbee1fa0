import * as crypto from "crypto";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import type * as plugproto from "@pulumi/pulumi/proto/plugin_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import { DynamicProviderHost } from "./dynamicHost";
import { dynamicProviderLaunch, type ProjectInfo } from "./languageHost";
import { shutDown, type StepResult } from "./monitorError";
import type { Diagnostic, DynamicCall, HarnessRegistration, ResourceState } from "./types";
import { annotateSecrets, forProvider, sameValue, UNKNOWN } from "./wire";

export const DYNAMIC_PACKAGE = "pulumi-nodejs";
const { DIFF_UNKNOWN, DIFF_NONE, DIFF_SOME } = provproto.DiffResponse.DiffChanges;

export interface DynamicResourcesContext {
  project: ProjectInfo;
  stack: string;
  preview: boolean;
  config: Record<string, string>;
  priorState: Map<string, ResourceState>;
  engineAddress: string;
  calls: DynamicCall[];
  diagnostics: Diagnostic[];
  /** Records the engine's error and cancels the deployment. */
  fail(message: string, urn?: string): void;
}

/**
 * Steps dynamic resources (package pulumi-nodejs) through the SDK's real dynamic provider host,
 * in the engine's order (step_generator.go generateSteps): Check(olds, news); with an old state,
 * Diff; then Create, Update or nothing. A preview calls neither Create nor Update: the host's
 * Configure answers supportsPreview=false, so provider_plugin.go hands back the checked inputs.
 */
export class DynamicResources {
  private host?: Promise<DynamicProviderHost>;

  constructor(private readonly ctx: DynamicResourcesContext) {}

  static handles(type: string): boolean {
    return type.split(":")[0] === DYNAMIC_PACKAGE;
  }

  async step(registration: HarnessRegistration, news: Record<string, any>): Promise<StepResult> {
    const host = await this.started();
    const { name, urn, type } = registration;
    const { preview, priorState } = this.ctx;
    const prior = priorState.get(name);

    const checked = await this.call<provproto.CheckResponse>(
      host,
      name,
      "check",
      new provproto.CheckRequest()
        .setUrn(urn)
        .setName(name)
        .setType(type)
        .setOlds(struct(forProvider(prior?.inputs ?? {})))
        .setNews(struct(forProvider(news)))
        .setRandomseed(crypto.randomBytes(32)),
      failureSummary,
    );
    const failures = checked.getFailuresList();
    if (failures.length > 0) {
      // step_generator.go issueCheckFailures (diag codes 2002/2003); the resource is invalid: bail.
      for (const f of failures) {
        const message = f.getProperty()
          ? `${type} resource '${name}': property ${f.getProperty()} value {${String(forProvider(news[f.getProperty()]) ?? "")}} has a problem: ${f.getReason()}`
          : `${type} resource '${name}' has a problem: ${f.getReason()}`;
        this.ctx.fail(message, urn);
      }
      throw shutDown("waiting on step's done channel");
    }
    const inputs = annotateSecrets(objectOf(checked.getInputs()), news);

    const create = async (): Promise<StepResult> => {
      if (preview) return { id: "", inputs, outputs: inputs };
      const res = await this.call<provproto.CreateResponse>(
        host,
        name,
        "create",
        new provproto.CreateRequest()
          .setUrn(urn)
          .setName(name)
          .setType(type)
          .setProperties(struct(forProvider(inputs)))
          .setPreview(false),
      );
      return { id: res.getId(), inputs, outputs: annotateSecrets(objectOf(res.getProperties()), inputs) };
    };
    if (!prior) return create();

    const id = prior.id ?? `${name}-id`;
    const diff = await this.call<provproto.DiffResponse>(
      host,
      name,
      "diff",
      new provproto.DiffRequest()
        .setId(id)
        .setUrn(urn)
        .setName(name)
        .setType(type)
        .setOlds(struct(forProvider(prior.outputs)))
        .setNews(struct(forProvider(inputs)))
        .setOldInputs(struct(forProvider(prior.inputs)))
        .setIgnorechangesList(registration.ignoreChanges),
      diffSummary,
    );
    // diffResource: an unknown answer becomes a comparison of the old and new inputs.
    const changes =
      diff.getChanges() !== DIFF_UNKNOWN
        ? diff.getChanges()
        : sameValue(forProvider(prior.inputs), forProvider(inputs))
          ? DIFF_NONE
          : DIFF_SOME;
    // A replacement creates the new resource now; the old one would be deleted at the end (not carried out here).
    if (diff.getReplacesList().length > 0) return create();
    if (changes === DIFF_NONE) return { id, inputs, outputs: prior.outputs };
    if (preview) return { id, inputs, outputs: inputs };
    const res = await this.call<provproto.UpdateResponse>(
      host,
      name,
      "update",
      new provproto.UpdateRequest()
        .setId(id)
        .setUrn(urn)
        .setName(name)
        .setType(type)
        .setOlds(struct(forProvider(prior.outputs)))
        .setNews(struct(forProvider(inputs)))
        .setOldInputs(struct(forProvider(prior.inputs)))
        .setIgnorechangesList(registration.ignoreChanges)
        .setPreview(false),
    );
    return { id, inputs, outputs: annotateSecrets(objectOf(res.getProperties()), inputs) };
  }

  /** Stops the host; the engine shows each line a plugin wrote to stderr. */
  async stop(): Promise<void> {
    const host = await this.host?.catch(() => undefined);
    if (!host) return;
    await host.stop();
    for (const line of host.stderr.split("\n").filter((l) => l.trim() !== ""))
      this.ctx.diagnostics.push({ severity: "info#err", message: line });
  }

  /**
   * Starts the host and sets up the default provider `pulumi:providers:pulumi-nodejs::default`
   * the first time a dynamic resource registers, as the provider registry does (registry.go
   * Check, Diff, Create/Same): Handshake (the host answers UNIMPLEMENTED, the engine falls back),
   * GetPluginInfo (host.go Provider), CheckConfig, DiffConfig when the stack already had the
   * provider, Configure.
   */
  private started(): Promise<DynamicProviderHost> {
    this.host ??= (async () => {
      const { project, config, priorState, preview, stack, engineAddress } = this.ctx;
      const host = await DynamicProviderHost.start(dynamicProviderLaunch({ project, engineAddress, config }));
      const name = "default";
      const type = `pulumi:providers:${DYNAMIC_PACKAGE}`;
      const urn = `urn:pulumi:${stack}::${project.name}::${type}::${name}`;
      const pluginDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [project.programDir] }));
      await this.call(
        host,
        name,
        "handshake",
        new provproto.ProviderHandshakeRequest()
          .setEngineAddress(engineAddress)
          .setRootDirectory(pluginDir)
          .setProgramDirectory(pluginDir)
          .setConfigureWithUrn(true)
          .setSupportsViews(true)
          .setSupportsRefreshBeforeUpdate(true)
          .setInvokeWithPreview(true),
        undefined,
        true,
      );
      await this.call<plugproto.PluginInfo>(
        host,
        name,
        "getPluginInfo",
        new emptyproto.Empty(),
        (info) => `version ${info.getVersion()}`,
      );
      await this.call(
        host,
        name,
        "checkConfig",
        new provproto.CheckRequest().setUrn(urn).setName(name).setType(type).setOlds(struct({})).setNews(struct({})),
        undefined,
        true,
      );
      const hadProvider = [...priorState.values()].some((s) => typeof s.inputs.__provider === "string");
      if (hadProvider) {
        await this.call(
          host,
          name,
          "diffConfig",
          new provproto.DiffRequest()
            .setId(UNKNOWN)
            .setUrn(urn)
            .setName(name)
            .setType(type)
            .setOlds(struct({}))
            .setNews(struct({}))
            .setOldInputs(struct({})),
          undefined,
          true,
        );
      }
      // registry.go Create: a new provider's ID is unknown in a preview and a fresh UUID in an update.
      const id = preview && !hadProvider ? UNKNOWN : crypto.randomUUID();
      await this.call<provproto.ConfigureResponse>(
        host,
        name,
        "configure",
        new provproto.ConfigureRequest()
          .setUrn(urn)
          .setName(name)
          .setType(type)
          .setId(id)
          .setAcceptsecrets(true)
          .setAcceptresources(true)
          .setSendsOldInputs(true)
          .setSendsOldInputsToDelete(true)
          .setArgs(struct({})),
        (res) => `acceptSecrets=${res.getAcceptsecrets()} supportsPreview=${res.getSupportspreview()}`,
      );
      return host;
    })();
    return this.host;
  }

  /** Calls the host and records the call; an error fails the deployment as the engine reports it (the RPC's message). */
  private async call<Res>(
    host: DynamicProviderHost,
    name: string,
    method: string,
    request: unknown,
    summarize?: (res: Res) => string,
    unimplementedOk = false,
  ): Promise<Res> {
    const call: DynamicCall = { name, method: method[0].toUpperCase() + method.slice(1) };
    this.ctx.calls.push(call);
    try {
      const res = await host.call<unknown, Res>(method, request);
      if (summarize) call.result = summarize(res);
      return res;
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (unimplementedOk && e.code === grpc.status.UNIMPLEMENTED) {
        call.result = "UNIMPLEMENTED";
        return undefined as Res;
      }
      const message = e.details ?? e.message;
      call.result = `error: ${message}`;
      this.ctx.fail(message, (request as { getUrn?: () => string }).getUrn?.());
      throw shutDown("waiting on step's done channel");
    }
  }
}

/** Struct.fromJavaScript refuses `undefined`; the engine never sends it either. */
export const struct = (value: Record<string, any>) =>
  structproto.Struct.fromJavaScript(JSON.parse(JSON.stringify(value)));

const objectOf = (s: structproto.Struct | undefined) => (s?.toJavaScript() ?? {}) as Record<string, any>;

function failureSummary(res: provproto.CheckResponse): string {
  const failures = res.getFailuresList().map((f) => f.getProperty() || "(resource)");
  return failures.length ? `failures: ${failures.join(", ")}` : "ok";
}

function diffSummary(res: provproto.DiffResponse): string {
  const names: Record<number, string> = {
    [DIFF_UNKNOWN]: "DIFF_UNKNOWN",
    [DIFF_NONE]: "DIFF_NONE",
    [DIFF_SOME]: "DIFF_SOME",
  };
  const replaces = res.getReplacesList();
  return names[res.getChanges()] + (replaces.length ? ` replaces: ${replaces.join(", ")}` : "");
}
