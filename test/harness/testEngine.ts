import * as grpc from "@grpc/grpc-js";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as semver from "semver";
import * as engrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engproto from "@pulumi/pulumi/proto/engine_pb";
import * as resrpc from "@pulumi/pulumi/proto/resource_grpc_pb";
import * as resproto from "@pulumi/pulumi/proto/resource_pb";
import { DynamicResources, struct } from "./dynamicResources";
import type { ProjectInfo } from "./languageHost";
import { MonitorError, shutDown, type StepResult } from "./monitorError";
import type { Diagnostic, DynamicCall, EngineHook, HarnessRegistration, HookAnswer, ResourceState } from "./types";
import { deserialize } from "./wire";

/** The engine version whose behaviour this follows (the `pulumi` CLI the project pins). */
export const ENGINE_VERSION = "3.250.0";
const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";

/**
 * ResourceMonitor.SupportsFeature (pkg/resource/deploy/source_eval.go supportsFeatureID), for
 * what this engine implements: no transforms, hooks or package registrations (the SDK checks
 * these flags and refuses such a program with a clear error instead of calling us).
 */
const FEATURES: Record<string, boolean> = {
  secrets: true,
  resourceReferences: true,
  outputValues: true,
  aliasSpecs: true,
  deletedWith: true,
  replaceWith: true,
  replacementTrigger: true,
  transforms: false,
  invokeTransforms: false,
  parameterization: false,
  resourceHooks: false,
  errorHooks: false,
};

export interface TestEngineOptions {
  project: ProjectInfo;
  stack: string;
  preview: boolean;
  config: Record<string, string>;
  priorState: Map<string, ResourceState>;
  hook: Required<EngineHook>;
  /** Answers to SupportsFeature over FEATURES: an older engine, e.g. `{ replaceWith: false }`. */
  features?: Record<string, boolean>;
}

/**
 * The engine side of a run: a ResourceMonitor and an Engine gRPC server (the SDK's generated
 * service definitions) that record what the program registers and answer it, stepping dynamic
 * resources through the real dynamic provider host in the engine's order (step_generator.go
 * generateSteps: Check, then Diff when there is an old state, then Create/Update, which a
 * preview leaves out for a provider without preview support) and every other custom resource
 * through the engine hook.
 */
export class TestEngine {
  readonly registrations: HarnessRegistration[] = [];
  readonly diagnostics: Diagnostic[] = [];
  readonly dynamicCalls: DynamicCall[] = [];
  /** Resources whose step finished this run, by name. */
  readonly completed = new Map<string, ResourceState>();
  outputs: Record<string, any> = {};
  failed = false;
  engineAddress = "";

  private rootUrn = "";
  private readonly urnNames = new Map<string, string>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly servers: grpc.Server[] = [];
  private dynamic?: DynamicResources;

  constructor(private readonly options: TestEngineOptions) {}

  /** Starts the engine and monitor servers (two, as in the CLI: the host server and the monitor). */
  async start(): Promise<{ monitorAddress: string; engineAddress: string }> {
    this.engineAddress = await this.serve(engrpc.EngineService, this.engineService());
    const monitorAddress = await this.serve(resrpc.ResourceMonitorService, this.monitorService());
    return { monitorAddress, engineAddress: this.engineAddress };
  }

  /**
   * Once the program has exited: waits a little for steps still running (a hook's gate that is
   * never opened must not hang the test), stops the servers and the dynamic provider host.
   */
  async stop(graceMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const server of this.servers) server.forceShutdown();
    await this.dynamic?.stop();
  }

  /** Records an engine error and cancels the deployment, as deployment_executor.go reportError + bail. */
  fail(message: string, urn?: string): void {
    this.diagnostics.push({ severity: "error", message, urn });
    this.failed = true;
  }

  private async serve(
    service: grpc.ServiceDefinition,
    implementation: grpc.UntypedServiceImplementation,
  ): Promise<string> {
    const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
    server.addService(service, implementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.servers.push(server);
    return `127.0.0.1:${port}`;
  }

  private async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Runs a handler, answering the call with its result or its error; tracked until it settles. */
  private answer<T>(callback: grpc.sendUnaryData<T>, work: () => Promise<T>): void {
    const running = work().then(
      (result) => callback(null, result),
      (err: unknown) => {
        if (err instanceof MonitorError)
          return callback({ code: err.code, details: err.message } as grpc.ServiceError, null);
        const message = err instanceof Error ? err.message : String(err);
        this.fail(`test engine: ${message}`);
        callback({ code: grpc.status.UNKNOWN, details: message } as grpc.ServiceError, null);
      },
    );
    this.pending.add(running);
    void running.finally(() => this.pending.delete(running));
  }

  private unexpected(what: string): MonitorError {
    const message = `unexpected ${what}: the test engine answers RegisterResource only; extend test/harness if the program really needs it`;
    this.fail(message);
    return new MonitorError(grpc.status.UNIMPLEMENTED, message);
  }

  private monitorService(): grpc.UntypedServiceImplementation {
    const unexpected = (what: string) => (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      this.answer(callback, async () => {
        throw this.unexpected(what);
      });
    return {
      supportsFeature: (
        call: grpc.ServerUnaryCall<resproto.SupportsFeatureRequest, unknown>,
        callback: grpc.sendUnaryData<resproto.SupportsFeatureResponse>,
      ) =>
        callback(
          null,
          new resproto.SupportsFeatureResponse().setHassupport(
            { ...FEATURES, ...this.options.features }[call.request.getId()] ?? false,
          ),
        ),
      registerResource: (
        call: grpc.ServerUnaryCall<resproto.RegisterResourceRequest, unknown>,
        callback: grpc.sendUnaryData<resproto.RegisterResourceResponse>,
      ) => this.answer(callback, () => this.registerResource(call.request)),
      registerResourceOutputs: (
        call: grpc.ServerUnaryCall<resproto.RegisterResourceOutputsRequest, unknown>,
        callback: grpc.sendUnaryData<emptyproto.Empty>,
      ) => this.answer(callback, async () => this.registerResourceOutputs(call.request)),
      // The engine answers once every step has finished (deletes included); not tracked itself, or it would wait for itself.
      signalAndWaitForShutdown: (_call: unknown, callback: grpc.sendUnaryData<emptyproto.Empty>) =>
        void this.settled().then(() =>
          this.failed
            ? callback(
                { code: grpc.status.UNAVAILABLE, details: "resource monitor shut down" } as grpc.ServiceError,
                null,
              )
            : callback(null, new emptyproto.Empty()),
        ),
      invoke: (
        call: grpc.ServerUnaryCall<resproto.ResourceInvokeRequest, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => unexpected(`Invoke(${call.request.getTok()})`)(call, callback),
      call: unexpected("Call"),
      readResource: (
        call: grpc.ServerUnaryCall<resproto.ReadResourceRequest, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => unexpected(`ReadResource(${call.request.getType()} ${call.request.getName()})`)(call, callback),
      getDeploymentInfo: unexpected("GetDeploymentInfo"),
      registerStackTransform: unexpected("RegisterStackTransform"),
      registerStackInvokeTransform: unexpected("RegisterStackInvokeTransform"),
      registerResourceHook: unexpected("RegisterResourceHook"),
      registerErrorHook: unexpected("RegisterErrorHook"),
      registerPackage: unexpected("RegisterPackage"),
    };
  }

  private engineService(): grpc.UntypedServiceImplementation {
    const severities = ["debug", "info", "warning", "error"];
    return {
      log: (
        call: grpc.ServerUnaryCall<engproto.LogRequest, unknown>,
        callback: grpc.sendUnaryData<emptyproto.Empty>,
      ) => {
        const severity = severities[call.request.getSeverity()] ?? "info";
        // The CLI shows debug messages only with --debug.
        if (severity !== "debug")
          this.diagnostics.push({
            severity,
            message: call.request.getMessage(),
            urn: call.request.getUrn() || undefined,
          });
        callback(null, new emptyproto.Empty());
      },
      getRootResource: (_call: unknown, callback: grpc.sendUnaryData<engproto.GetRootResourceResponse>) =>
        callback(null, new engproto.GetRootResourceResponse().setUrn(this.rootUrn)),
      setRootResource: (
        call: grpc.ServerUnaryCall<engproto.SetRootResourceRequest, unknown>,
        callback: grpc.sendUnaryData<engproto.SetRootResourceResponse>,
      ) => {
        this.rootUrn = call.request.getUrn();
        callback(null, new engproto.SetRootResourceResponse());
      },
      requirePulumiVersion: (
        call: grpc.ServerUnaryCall<engproto.RequirePulumiVersionRequest, unknown>,
        callback: grpc.sendUnaryData<engproto.RequirePulumiVersionResponse>,
      ) => {
        const range = call.request.getPulumiVersionRange();
        if (semver.satisfies(ENGINE_VERSION, range)) return callback(null, new engproto.RequirePulumiVersionResponse());
        callback(
          {
            code: grpc.status.INVALID_ARGUMENT,
            details: `Pulumi CLI version ${ENGINE_VERSION} does not satisfy the version range "${range}"`,
          } as grpc.ServiceError,
          null,
        );
      },
      startDebugging: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        callback(
          {
            code: grpc.status.UNIMPLEMENTED,
            details: "unexpected StartDebugging: the test engine attaches no debugger",
          } as grpc.ServiceError,
          null,
        ),
    };
  }

  private async registerResource(req: resproto.RegisterResourceRequest): Promise<resproto.RegisterResourceResponse> {
    if (this.failed) throw shutDown("sending resource registration");
    const type = req.getType();
    const name = req.getName();
    if (req.getRemote()) throw this.unexpected(`Construct of remote component ${type} ${name}`);
    const urn = this.newUrn(req.getParent(), type, name);
    if (this.urnNames.has(urn)) {
      this.fail(`Duplicate resource URN '${urn}'; try giving it a unique name`, urn);
      throw shutDown("sending resource registration");
    }
    this.urnNames.set(urn, name);
    if (type === ROOT_STACK_TYPE && !req.getParent()) this.rootUrn = urn;

    const wireInputs = (req.getObject()?.toJavaScript() ?? {}) as Record<string, any>;
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps, prop) => {
      propertyDependencies[prop] = deps.getUrnsList().map((u) => this.nameOf(u));
    });
    const registration: HarnessRegistration = {
      type,
      name,
      urn,
      parent: req.getParent() ? this.nameOf(req.getParent()) : undefined,
      custom: req.getCustom(),
      inputs: deserialize(req.getObject()),
      provider: req.getProvider() || undefined,
      seq: this.registrations.length,
      propertyDependencies,
      dependencies: req.getDependenciesList().map((u) => this.nameOf(u)),
      protect: req.getProtect() ?? false,
      retainOnDelete: req.getRetainondelete() ?? false,
      deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
      replaceOnChanges: req.getReplaceonchangesList(),
      ignoreChanges: req.getIgnorechangesList(),
      replaceWith: req.getReplaceWithList().map((u) => this.nameOf(u)),
      deletedWith: req.getDeletedwith() ? this.nameOf(req.getDeletedwith()) : undefined,
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      replacementTrigger: req.getReplacementTrigger()?.toJavaScript(),
    };
    this.registrations.push(registration);

    const result = await this.step(registration, wireInputs);
    if (this.failed) throw shutDown("waiting on step's done channel");
    this.completed.set(name, result);
    return new resproto.RegisterResourceResponse().setUrn(urn).setId(result.id).setObject(struct(result.outputs));
  }

  private registerResourceOutputs(req: resproto.RegisterResourceOutputsRequest): emptyproto.Empty {
    if (this.failed) throw shutDown("sending resource outputs");
    const outputs = deserialize(req.getOutputs());
    const name = this.nameOf(req.getUrn());
    if (req.getUrn() === this.rootUrn) this.outputs = outputs;
    const done = this.completed.get(name);
    if (done) this.completed.set(name, { ...done, outputs });
    return new emptyproto.Empty();
  }

  /** resource.NewURN: the parent's qualified type is prefixed, except the root stack's. */
  private newUrn(parentUrn: string, type: string, name: string): string {
    const parentType = parentUrn ? parentUrn.split("::")[2] : "";
    const qualified = parentType && parentType !== ROOT_STACK_TYPE ? `${parentType}$${type}` : type;
    return `urn:pulumi:${this.options.stack}::${this.options.project.name}::${qualified}::${name}`;
  }

  private nameOf(urn: string): string {
    return this.urnNames.get(urn) ?? urn.slice(urn.lastIndexOf("::") + 2);
  }

  private async step(registration: HarnessRegistration, wireInputs: Record<string, any>): Promise<StepResult> {
    if (!registration.custom) return { id: "", inputs: registration.inputs, outputs: {} };
    if (DynamicResources.handles(registration.type)) return this.dynamicResources().step(registration, wireInputs);
    let answer: HookAnswer;
    try {
      answer = await this.options.hook.register(registration);
    } catch (err) {
      this.fail(err instanceof Error ? err.message : String(err), registration.urn);
      throw shutDown("waiting on step's done channel");
    }
    return { id: answer.id, inputs: registration.inputs, outputs: answer.outputs };
  }

  private dynamicResources(): DynamicResources {
    const { project, stack, preview, config, priorState } = this.options;
    this.dynamic ??= new DynamicResources({
      project,
      stack,
      preview,
      config,
      priorState,
      engineAddress: this.engineAddress,
      calls: this.dynamicCalls,
      diagnostics: this.diagnostics,
      fail: (message, urn) => this.fail(message, urn),
    });
    return this.dynamic;
  }
}
