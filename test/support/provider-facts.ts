/**
 * What the providers answer when the engine asks them to diff, create, read and update, as far as
 * the engine model (engine.ts) needs it. Each fact names the source it was read from; versions:
 * - pulumi/pulumi-docker (npm @pulumi/docker 5.2.0; read at 237b7899, 2026-08-14, bridge v3.137.0;
 *   v5.1.0 has the same upstream commit), upstream kreuzwerker/terraform-provider-docker v4.5.0
 *   (submodule 5074970c), pulumi/pulumi-terraform-bridge v3.136.0 / HEAD (`pkg/tfbridge/provider.go`,
 *   unchanged in the parts quoted since v3.133.0), hashicorp/terraform-plugin-sdk v2.40.1;
 * - pulumi/pulumi-command v1.2.1 on pulumi/pulumi-go-provider v1.3.0.
 */

export const CONTAINER = "docker:index/container:Container";
export const SERVICE = "docker:index/service:Service";
export const SECRET = "docker:index/secret:Secret";

export interface ProviderFacts {
  /**
   * Input properties whose change the provider's Diff answers with a replacement (Terraform's
   * ForceNew, or a go-provider `replaceOnChanges` tag); "all" for every property.
   */
  replaceKeys: readonly string[] | "all";
  /**
   * When the provider's Diff sets DeleteBeforeReplace: "whenReplacing" only if it reported
   * replace keys itself (the bridge), "always" on every diff (the engine's test providers).
   */
  deleteBeforeReplace?: "whenReplacing" | "always";
  /**
   * ForceNew attributes nested in a block (dotted Pulumi paths): a change under one of them makes
   * the provider's Diff replace, reported on the top-level property that holds it.
   */
  nestedReplacePaths?: readonly string[];
}

/**
 * docker_container's top-level ForceNew attributes (resource_docker_container.go, v4.5.0), in
 * Pulumi's names. Not ForceNew, so changed in place by Update or only recorded: attach,
 * container_read_refresh_timeout_milliseconds, cpu_period, cpu_quota, cpu_set, cpu_shares,
 * destroy_grace_seconds, device_*_bps/iops, healthcheck, init, logs, max_retry_count, memory*,
 * must_run, remove_volumes, restart, rm, start, tmpfs, wait, wait_timeout.
 */
const CONTAINER_FORCE_NEW = [
  "capabilities",
  "cgroupParent",
  "cgroupnsMode",
  "command",
  "cpus",
  "deviceRequests",
  "devices",
  "dns",
  "dnsOpts",
  "dnsSearches",
  "domainname",
  "entrypoints",
  "envs",
  "gpus",
  "groupAdds",
  "hosts",
  "hostname",
  "image",
  "ipcMode",
  "labels",
  "logDriver",
  "logOpts",
  "mounts",
  "name",
  "networkMode",
  "networksAdvanced",
  "pidMode",
  "platform",
  "ports",
  "privileged",
  "publishAllPorts",
  "readOnly",
  "runtime",
  "securityOpts",
  "shmSize",
  "stdinOpen",
  "stopSignal",
  "stopTimeout",
  "storageOpts",
  "sysctls",
  "tty",
  "ulimits",
  "uploads",
  "user",
  "usernsMode",
  "volumes",
  "workingDir",
];

/** The providers of this project's resources. Types not listed diff to an update, never a replacement. */
export const PROVIDER_FACTS: Record<string, ProviderFacts> = {
  // pulumi-docker provider/resources.go: `"docker_container": { ..., DeleteBeforeReplace: true }`, and the
  // bridge's Diff (provider.go): `deleteBeforeReplace := len(replaces) > 0 && (res.Schema.DeleteBeforeReplace || ...)`,
  // where `replaces` are the properties the Terraform diff marks *_REPLACE. So a replacement that only
  // `replaceOnChanges` asked for (the engine adds it in applyReplaceOnChanges) is NOT delete-before-replace.
  [CONTAINER]: { replaceKeys: CONTAINER_FORCE_NEW, deleteBeforeReplace: "whenReplacing" },
  // resource_docker_image.go: name, pull_triggers, triggers, platform are ForceNew (keep_locally is not).
  "docker:index/remoteImage:RemoteImage": { replaceKeys: ["name", "pullTriggers", "triggers", "platform"] },
  // resource_docker_network.go: every attribute is ForceNew (name :29, labels :36, driver :44,
  // options :52, internal :61, attachable :68, ...); the resource has no UpdateContext (:17-19).
  "docker:index/network:Network": { replaceKeys: "all" },
  [SERVICE]: {
    // resource_docker_service.go (v4.5.0): top-level ForceNew auth :26, name :58, mode :768; not ForceNew
    // (updated in place by ServiceUpdate): labels, task_spec, update_config, rollback_config,
    // endpoint_spec, converge_config. pulumi-docker resources.go:135 gives docker_service no
    // DeleteBeforeReplace, so the bridge never sets it: a program whose name is fixed must ask for
    // deleteBeforeReplace itself, or the create of the replacement fails on the name.
    replaceKeys: ["auth", "name", "mode"],
    // Nested ForceNew inside task_spec: container_spec.hosts (its host and ip, :357-375),
    // container_spec.sysctl (:502-506), networks_advanced (:701) name, id, aliases, driver_opts (:707-732):
    // every field of a networks_advanced element is ForceNew, so any change to the set replaces.
    nestedReplacePaths: ["taskSpec.containerSpec.hosts", "taskSpec.containerSpec.sysctl", "taskSpec.networksAdvanceds"],
  },
  // resource_docker_secret.go: name :27, data :35 (Sensitive, base64), labels :43 are ForceNew and the
  // resource has no UpdateContext (:18-20): every change replaces.
  [SECRET]: { replaceKeys: "all" },
  "docker:index/volume:Volume": { replaceKeys: "all" },
  "postgresql:index/database:Database": { replaceKeys: ["name", "template", "encoding", "lcCollate", "lcCtype"] },
  // pulumi-command common/inputs.go: `Triggers ... provider:"replaceOnChanges"`; go-provider infer/resource.go
  // Diff marks that top-level key *_REPLACE and never sets DeleteBeforeReplace. (The SDK also adds the
  // resource option replaceOnChanges ["triggers[*]"] for element changes.)
  "command:local:Command": { replaceKeys: ["triggers"] },
};

export function factsOf(type: string, extra?: Record<string, ProviderFacts>): ProviderFacts {
  return extra?.[type] ?? PROVIDER_FACTS[type] ?? { replaceKeys: [] };
}

export function providerReplaces(facts: ProviderFacts, property: string): boolean {
  return facts.replaceKeys === "all" || facts.replaceKeys.includes(property);
}

/** The top-level properties holding a nested ForceNew path whose value differs (nestedReplacePaths). */
export function nestedReplaces(
  facts: ProviderFacts,
  olds: Record<string, any>,
  news: Record<string, any>,
  same: (a: unknown, b: unknown) => boolean,
): string[] {
  const at = (o: unknown, path: string) =>
    path.split(".").reduce<any>((v, k) => (v && typeof v === "object" ? v[k] : undefined), o);
  return [
    ...new Set(
      (facts.nestedReplacePaths ?? []).filter((p) => !same(at(olds, p), at(news, p))).map((p) => p.split(".")[0]),
    ),
  ];
}

/**
 * (a) Read, e.g. during `pulumi refresh` or `pulumi up --refresh`: resourceDockerContainerRead
 * (resource_docker_container_funcs.go) on a container that is not running:
 *   `if d.Get("must_run").(bool) { log.Printf("[WARN] Container %s is stopped but must_run is configured as
 *    true. Setting must_run to false in state to trigger update." ...); d.Set("must_run", false) }`
 * A container that no longer exists reads as gone (`d.SetId("")`). The refreshed state carries no
 * initialisation errors (step.go RefreshStep.Apply: `s.new.InitErrors = initErrors`, empty unless the
 * Read itself failed part way). Returns the entry as the refreshed state records it.
 */
export function readDockerContainer<T extends { inputs: Record<string, any>; initErrors?: string[] }>(
  entry: T,
  live: { exists: boolean; running: boolean },
): T | undefined {
  if (!live.exists) return undefined;
  const mustRun = entry.inputs.mustRun !== false;
  const inputs = !live.running && mustRun ? { ...entry.inputs, mustRun: false } : entry.inputs;
  return { ...entry, inputs, initErrors: undefined };
}

/**
 * (b) What resourceDockerContainerUpdate does with an update the engine planned (the properties
 * whose values differ between the state and the program):
 * - it starts the container only when must_run goes from false to true
 *   (`if d.HasChange("must_run") { old, new := d.GetChange("must_run"); if !old.(bool) && new.(bool) { ...
 *    client.ContainerStart(...) } }`), which happens only after a Read recorded a stopped container;
 * - it applies restart, max_retry_count, cpu_shares, memory, memory_reservation, cpu_set, memory_swap and
 *   device_* limits through ContainerUpdate;
 * - everything else that is not ForceNew (healthcheck, wait, wait_timeout, destroy_grace_seconds, ...) is
 *   only recorded in the state.
 * An update with no property changes (the one the engine plans to "continue" a create that failed part
 * way, step_generator.go continueStepsFromDiff `if hasInitErrors`) reaches the bridge's Update, whose
 * Terraform diff is empty: `if diff == nil { return &pulumirpc.UpdateResponse{Properties: req.GetOlds()}, nil }`
 * (provider.go Update). Nothing is started; the init errors are cleared from the state.
 */
export function dockerContainerUpdate(
  oldInputs: Record<string, any>,
  newInputs: Record<string, any>,
  changed: readonly string[],
): { starts: boolean; applied: string[]; recordedOnly: string[] } {
  const APPLIED = [
    "restart",
    "maxRetryCount",
    "cpuShares",
    "memory",
    "memoryReservation",
    "cpuSet",
    "memorySwap",
    "deviceReadBps",
    "deviceReadIops",
    "deviceWriteBps",
    "deviceWriteIops",
  ];
  const starts =
    changed.includes("mustRun") &&
    oldInputs.mustRun === false &&
    newInputs.mustRun !== false &&
    newInputs.start !== false;
  return {
    starts,
    applied: changed.filter((p) => APPLIED.includes(p)),
    recordedOnly: changed.filter((p) => !APPLIED.includes(p) && p !== "mustRun"),
  };
}

/**
 * (c) Create: resourceDockerContainerCreate calls `d.SetId(retContainer.ID)` right after
 * ContainerCreate succeeded, before ContainerStart (`return diag.Errorf("Unable to start container: %s", err)`)
 * and before the health wait (`return diag.FromErr(errContainerFailedToBeInHealthyState)`). The SDK keeps
 * a state with an ID after a failed create (helper/schema/resource.go Apply returns `data.State()`;
 * grpc_provider.go ApplyResourceChange returns NewState unless the ID is empty), the bridge turns it into
 * `initializationError(newstate.ID(), mprops, reasons)` (provider.go Create), and the engine records the
 * resource with InitErrors (step.go CreateStep.Apply `s.new.InitErrors = initErr.Reasons`; update.go
 * OnResourceStepPost ends the snapshot mutation successfully for StatusPartialFailure). The run still fails.
 * A container that starts and then exits at once is NOT a failed create: Create ends with the Read above,
 * which records must_run=false, and the next diff plans an update that starts it.
 */
export const PARTIAL_CREATE_STAGES = ["docker start failed", "health wait timed out"] as const;

/**
 * (d) docker_service as kreuzwerker v4.5.0 carries it out (internal/provider/resource_docker_service_funcs.go
 * unless named; test/provider/docker-service.ts follows it):
 * - Create builds the whole ServiceSpec (createServiceSpec, _structures.go:589) and calls ServiceCreate
 *   (:48, QueryRegistry :45). With converge_config it waits (StateChangeConf :56-64: Delay = converge_config.delay,
 *   MinTimeout 5 s, Timeout = converge_config.timeout) until as many tasks of desired state running are
 *   running as the service has replicas (replicatedConsoleLogUpdater.update :510-560, tasks filtered by
 *   desired-state running :369); on a timeout it removes the service (:69) and fails with
 *   DidNotConvergeError (:73), "Service with ID (<id>) did not converge after <Go duration>" (:354). The ID
 *   is set only after that (:79), so a create that did not converge leaves no resource.
 * - Update inspects the service for its version and calls ServiceUpdate with the whole new spec (:192):
 *   Docker rolls the tasks by the spec's update_config (order stop-first by default, resource_docker_service.go
 *   :845-846). With converge_config it waits with a fixed Delay of 7 s (:210, not converge_config.delay),
 *   MinTimeout 5 s, Timeout = converge_config.timeout: UpdateStatus completed ends it (:439), rollback
 *   completed or paused fail ("service rollback completed: ", "service update paused: ", :443-448), else the
 *   same running == replicas count; a timeout fails with DidNotConvergeError (:218).
 * - converge_config conflicts with mode.0.global (resource_docker_service.go:968): the updater needs a
 *   replica count (:512 "no replica count"). Its defaults: delay 7s (:974), timeout 3m (:981).
 * - Delete (deleteService :261-337): when task_spec.container_spec.stop_grace_period is set and not "0s",
 *   it first lists the service's tasks (filter service=<name>) and keeps the container IDs of those not
 *   shut down (:264-284); then ServiceRemove (:288), which frees the name at once (the swarm's store);
 *   then for each kept container ContainerWait(condition removed) bounded by the grace period (:301)
 *   and ContainerRemove force with volumes (:326). "No such container" is ignored (a task on another node
 *   is not visible through the manager's socket); a wait that outlasts the grace period fails the delete
 *   ("error on wait for container with ID '<id>': context deadline exceeded", :318). Seen here (the stand-in
 *   on Docker 20.10, a task on the manager): swarm stops and removes a removed service's container some
 *   2-3 s after ServiceRemove even when it exits at once on SIGTERM, so a grace period of 2 s failed the
 *   delete; a process that ignores SIGTERM (sleep as PID 1) needs the whole grace period and always fails it.
 * - Read (:83-167) finds the service by ID or by name (fetchDockerService :245-259, the match :252), gone: removed from
 *   state; otherwise waits up to 30 s (:95) for the endpoint spec to show and sets name, labels,
 *   task_spec, mode, update_config, rollback_config, endpoint_spec from inspect.
 * A service's task_spec.container_spec.secrets element: secret_id (required), secret_name, file_name
 * (required), file_uid and file_gid (default "0"), file_mode (default 0o444; the defaults at
 * resource_docker_service.go:432-445); createServiceSpec turns it into a SecretReference whose File
 * target has those. Docker mounts a relative file_name under /run/secrets in each task.
 * docker_secret (resource_docker_secret.go): Create decodes data with base64.StdEncoding, ignoring an error
 * (:96), and calls SecretCreate (:110); Read never sets data (:139, the API does not return it); Delete
 * is SecretRemove (:148). docker_network Delete retries NetworkRemove while "has active endpoints"
 * (resource_docker_network_funcs.go:217) for 30 s, first after 2 s, then every 5 s (:21-23).
 */
export const SERVICE_CONVERGE = {
  createDelayDefault: "7s",
  updateDelayMs: 7_000,
  minTimeoutMs: 5_000,
  timeoutDefault: "3m",
} as const;
export const NETWORK_REMOVE = { timeoutMs: 30_000, delayMs: 2_000, minTimeoutMs: 5_000 } as const;

/** DidNotConvergeError's message (resource_docker_service_funcs.go:354). */
export function didNotConverge(serviceId: string, timeoutMs: number): string {
  return `Service with ID (${serviceId}) did not converge after ${goDuration(timeoutMs)}`;
}

/** time.ParseDuration for the units the provider's docs name (ns|us|ms|s|m|h), in milliseconds. */
export function parseGoDuration(s: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (s === "0") return 0;
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== s) throw new Error(`time: invalid duration "${s}"`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]], 0);
}

/** Go's time.Duration.String() for whole milliseconds: "3m0s", "30s", "1h0m0s", "500ms". */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ""}${h || m ? `${m}m` : ""}${s}s`;
}
