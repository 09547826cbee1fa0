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
  "docker:index/network:Network": { replaceKeys: "all" },
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
