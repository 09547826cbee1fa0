import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";

/** One `newResource` call the program made, in the order the engine would have seen it. */
export interface Registration {
  type: string;
  name: string;
  inputs: Record<string, any>;
  provider?: string;
  /** 0-based position among all registrations. */
  seq: number;
  /** Input property -> names of the resources its value came from (the engine's property edges). */
  propertyDependencies: Record<string, string[]>;
  /** Names of every resource this one waited for (dependsOn and property edges). */
  dependencies: string[];
  protect: boolean;
  retainOnDelete: boolean;
  replaceOnChanges: string[];
  /** Name of the parent resource (none for children of the stack). */
  parent?: string;
  /** False for component resources. */
  custom: boolean;
  /** The `deleteBeforeReplace` option; undefined when the program did not set it. */
  deleteBeforeReplace?: boolean;
  /** Names of the resources in the `replaceWith` option. */
  replaceWith: string[];
  /** The `replacementTrigger` option's value, as sent. */
  replacementTrigger?: unknown;
}

/** What the real register request carried besides the inputs; the Mocks API does not pass it on. */
type RequestDetails = Omit<Registration, "type" | "name" | "inputs" | "provider" | "seq">;
const requestDetails = new Map<string, RequestDetails>();
const nameOfUrn = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

// Pulumi's MockMonitor sees the whole request; record the parts the engine would use for ordering.
const monitorPrototype = (MockMonitor as any).prototype;
if (!monitorPrototype.__recording) {
  const register = monitorPrototype.registerResource;
  monitorPrototype.registerResource = function (req: any, callback: unknown) {
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps: any, prop: string) => {
      propertyDependencies[prop] = deps.getUrnsList().map(nameOfUrn);
    });
    const parent: string = req.getParent();
    requestDetails.set(req.getName(), {
      propertyDependencies,
      dependencies: req.getDependenciesList().map(nameOfUrn),
      protect: Boolean(req.getProtect()),
      retainOnDelete: Boolean(req.getRetainondelete()),
      replaceOnChanges: req.getReplaceonchangesList(),
      // The stack itself is not registered through the mocks: its children have no parent here.
      parent: parent && !parent.includes("::pulumi:pulumi:Stack::") ? nameOfUrn(parent) : undefined,
      custom: req.getCustom(),
      deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
      replaceWith: req.getReplaceWithList().map(nameOfUrn),
      replacementTrigger: req.getReplacementTrigger()?.toJavaScript(),
    });
    return register.call(this, req, callback);
  };
  monitorPrototype.__recording = true;
}

/**
 * The one recording mock of the test suite. It answers like the providers would (IDs, image IDs,
 * command output), records every registration, and can hold back a resource's answer (a gate):
 * whatever waits for that resource cannot register until the gate is released.
 */
export class RecordingMocks implements pulumi.runtime.Mocks {
  readonly registrations: Registration[] = [];
  /**
   * Mixed into container IDs, which are otherwise derived from the inputs. Docker gives every created
   * container a new ID: a run that re-creates containers with the same inputs as an earlier one (a
   * rollback) sets a salt so that what takes a container's ID (triggers) sees a new one.
   */
  idSalt = "";
  private readonly gates = new Map<string, Promise<void>>();
  private readonly waiters: { name: string; resolve: () => void }[] = [];

  newResource(args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> {
    const details: RequestDetails = requestDetails.get(args.name) ?? {
      propertyDependencies: {},
      dependencies: [],
      protect: false,
      retainOnDelete: false,
      replaceOnChanges: [],
      custom: true,
      replaceWith: [],
    };
    const registration: Registration = {
      type: args.type,
      name: args.name,
      inputs: args.inputs,
      provider: args.provider,
      seq: this.registrations.length,
      ...details,
    };
    this.registrations.push(registration);
    for (const w of this.waiters.filter((w) => w.name === args.name)) w.resolve();
    const gate = this.gates.get(args.name) ?? Promise.resolve();
    // A container's ID changes when it is re-created with other inputs, as Docker's would.
    const id =
      args.type === "docker:index/container:Container"
        ? `${args.name}-${digest(JSON.stringify(args.inputs) + this.idSalt).slice(0, 12)}`
        : `${args.name}-id`;
    return gate.then(() => ({ id, state: { ...args.inputs, ...computedOutputs(args) } }));
  }

  call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
    throw new Error(`unexpected invoke ${args.token}: add it to the recording mock if the program really needs it`);
  }

  /** Holds back the answer for resource `name` until the returned function is called. */
  hold(name: string): () => void {
    let release!: () => void;
    this.gates.set(name, new Promise<void>((resolve) => (release = resolve)));
    return release;
  }

  /** Resolves when a resource named `name` has registered. */
  registered(name: string): Promise<void> {
    if (this.find(name)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ name, resolve }));
  }

  /** Resolves once no registration happened for `quietMs`. */
  async idle(quietMs = 100): Promise<void> {
    let count = -1;
    while (count !== this.registrations.length) {
      count = this.registrations.length;
      await new Promise((r) => setTimeout(r, quietMs));
    }
  }

  find(name: string): Registration | undefined {
    return this.registrations.find((r) => r.name === name);
  }

  get(name: string): Registration {
    const r = this.find(name);
    if (!r)
      throw new Error(`no resource named ${name}; registered: ${this.registrations.map((x) => x.name).join(", ")}`);
    return r;
  }

  ofType(type: string): Registration[] {
    return this.registrations.filter((r) => r.type === type);
  }
}

/** What the mock's `docker image inspect` says of every image: its entrypoint and command. */
export const MOCK_IMAGE_COMMAND = '[["/entrypoint.sh"],["serve","--port","8000"]]';

function computedOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  switch (args.type) {
    case "docker:index/remoteImage:RemoteImage": {
      const id = digest(String(args.inputs.name));
      return { imageId: `sha256:${id}`, repoDigest: `${args.inputs.name}@sha256:${id}` };
    }
    case "command:local:Command":
      // On a swarm, an image's entrypoint and command (`docker image inspect`, components/build.ts).
      if (String(args.inputs.create).startsWith("docker image inspect"))
        return { stdout: MOCK_IMAGE_COMMAND, stderr: "" };
      return { stdout: /backup/.test(args.name) ? "BACKUP_FILE=/backups/utilitarian-test.dump" : "", stderr: "" };
    case "pulumi-nodejs:dynamic:Resource":
      return { previousVersion: "none" };
    default:
      return {};
  }
}

function digest(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** The value of an Output, for assertions (never assert inside an un-awaited apply). */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) =>
    output.apply((v) => {
      resolve(v);
      return v;
    }),
  );
}
