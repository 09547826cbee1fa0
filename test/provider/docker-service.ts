import * as http from "http";
import { SECRET, SERVICE, SERVICE_CONVERGE, didNotConverge, factsOf, parseGoDuration } from "../support/provider-facts";
import { unsupported, type Context, type Props, type ResourceType } from "./types";

/**
 * docker_service and docker_secret (kreuzwerker/terraform-provider-docker v4.5.0, as pulumi-docker 5.2.0
 * bridges them; provider-facts.ts (d)), carried out against the provider's `host`, a swarm manager.
 *
 * Unlike docker.ts this talks to the Engine API over the host's unix socket rather than through the
 * docker CLI, as the provider's Go client does: the provider sends the whole ServiceSpec on create and
 * on update (ServiceUpdate replaces the spec), and `docker service update` has no --env-file, so an
 * update through the CLI would put the new env values (secrets among them) on its command line
 * (--env-add). Here the spec and a secret's data travel only in request bodies: nothing reaches a
 * command line.
 */
export function dockerSwarmResources(ctx: Context): Record<string, ResourceType> {
  const api = async (method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<any> => {
    const host: string = ctx.config().host ?? process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
    if (!host.startsWith("unix://"))
      throw new Error(`the stand-in docker provider reaches a swarm only through a unix:// host, not ${host}`);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: host.slice("unix://".length),
          path,
          method,
          headers: payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {},
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            const json = text ? tryJson(text) : undefined;
            if ((res.statusCode ?? 500) >= 300) {
              const message = (json as Props | undefined)?.message ?? text;
              reject(Object.assign(new Error(`Error response from daemon: ${message}`), { status: res.statusCode }));
            } else resolve(json);
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("context deadline exceeded")));
      req.on("error", reject);
      req.end(payload);
    });
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const SERVICE_PROPERTIES = ["name", "labels", "mode", "taskSpec", "endpointSpec", "updateConfig", "convergeConfig"];
  const TASK_SPEC = ["containerSpec", "placement", "restartPolicy", "networksAdvanceds", "logDriver"];
  const CONTAINER_SPEC = [
    "image",
    "commands",
    "args",
    "env",
    "hostname",
    "labels",
    "mounts",
    "healthcheck",
    "stopGracePeriod",
    "stopSignal",
    "secrets",
  ];

  function check(s: Props): { property: string; reason: string }[] {
    const nested = (prefix: string, o: Props | undefined, keys: string[]) =>
      unsupported(o ?? {}, keys).map((f) => ({
        property: `${prefix}.${f.property}`,
        reason: f.reason.split(f.property).join(`${prefix}.${f.property}`),
      }));
    const failures = [
      ...unsupported(s, SERVICE_PROPERTIES),
      ...nested("mode", s.mode, ["replicated", "global"]),
      ...nested("taskSpec", s.taskSpec, TASK_SPEC),
      ...nested("taskSpec.containerSpec", s.taskSpec?.containerSpec, CONTAINER_SPEC),
      ...nested("taskSpec.placement", s.taskSpec?.placement, ["constraints", "maxReplicas"]),
      ...nested("taskSpec.restartPolicy", s.taskSpec?.restartPolicy, ["condition", "delay", "maxAttempts"]),
      ...nested("taskSpec.logDriver", s.taskSpec?.logDriver, ["name", "options"]),
      ...nested("endpointSpec", s.endpointSpec, ["mode", "ports"]),
      ...nested("updateConfig", s.updateConfig, ["order", "parallelism", "failureAction"]),
      ...nested("convergeConfig", s.convergeConfig, ["delay", "timeout"]),
    ];
    const list = (v: unknown): Props[] => (Array.isArray(v) ? v : []);
    list(s.taskSpec?.networksAdvanceds).forEach((n: Props, i: number) =>
      failures.push(...nested(`taskSpec.networksAdvanceds[${i}]`, n, ["name", "id", "aliases"])),
    );
    list(s.taskSpec?.containerSpec?.secrets).forEach((x: Props, i: number) =>
      failures.push(
        ...nested(`taskSpec.containerSpec.secrets[${i}]`, x, [
          "secretId",
          "secretName",
          "fileName",
          "fileUid",
          "fileGid",
          "fileMode",
        ]),
      ),
    );
    list(s.taskSpec?.containerSpec?.mounts).forEach((m: Props, i: number) => {
      failures.push(...nested(`taskSpec.containerSpec.mounts[${i}]`, m, ["type", "source", "target", "readOnly"]));
      if (m.type !== "volume")
        failures.push({
          property: `taskSpec.containerSpec.mounts[${i}].type`,
          reason: "the stand-in mounts volumes only",
        });
    });
    list(s.endpointSpec?.ports).forEach((p: Props, i: number) =>
      failures.push(
        ...nested(`endpointSpec.ports[${i}]`, p, ["targetPort", "publishedPort", "protocol", "publishMode"]),
      ),
    );
    // resource_docker_service.go:968: converge_config ConflictsWith mode.0.global.
    if (s.convergeConfig && s.mode?.global)
      failures.push({ property: "convergeConfig", reason: '"converge_config": conflicts with mode.0.global' });
    return failures;
  }

  const ns = (d: string | undefined) => (d === undefined ? undefined : Math.round(parseGoDuration(d) * 1e6));
  const labelMap = (labels: Props[] | undefined) =>
    labels?.length ? Object.fromEntries(labels.map((l) => [l.label, l.value])) : undefined;

  /** createServiceSpec (resource_docker_service_structures.go:589-634), for the supported subset. */
  function serviceSpec(s: Props): Props {
    const c: Props = s.taskSpec?.containerSpec ?? {};
    const t: Props = s.taskSpec ?? {};
    const spec: Props = {
      Name: s.name,
      Labels: labelMap(s.labels),
      TaskTemplate: {
        ContainerSpec: {
          Image: c.image,
          Labels: labelMap(c.labels),
          Command: c.commands,
          Args: c.args,
          Hostname: c.hostname,
          // mapTypeMapValsToStringSlice (resource_docker_container_structures.go:218)
          Env: c.env ? Object.entries(c.env).map(([k, v]) => `${k}=${v}`) : undefined,
          Mounts: c.mounts?.map((m: Props) => ({
            Type: m.type,
            Source: m.source,
            Target: m.target,
            ReadOnly: m.readOnly ?? false,
          })),
          StopSignal: c.stopSignal,
          StopGracePeriod: ns(c.stopGracePeriod),
          Healthcheck: c.healthcheck && {
            Test: c.healthcheck.tests,
            // schema defaults "0s" and 0 (resource_docker_service.go:328-350)
            Interval: ns(c.healthcheck.interval ?? "0s"),
            Timeout: ns(c.healthcheck.timeout ?? "0s"),
            StartPeriod: ns(c.healthcheck.startPeriod ?? "0s"),
            Retries: c.healthcheck.retries ?? 0,
          },
          // file_uid/gid "0", file_mode 0o444 by default (resource_docker_service.go:432-445); set ones as given
          Secrets: c.secrets?.map((x: Props) => ({
            SecretID: x.secretId,
            SecretName: x.secretName,
            File: { Name: x.fileName, UID: x.fileUid ?? "0", GID: x.fileGid ?? "0", Mode: x.fileMode ?? 0o444 },
          })),
        },
        RestartPolicy: t.restartPolicy && {
          Condition: t.restartPolicy.condition,
          Delay: ns(t.restartPolicy.delay),
          MaxAttempts: t.restartPolicy.maxAttempts,
        },
        Placement: t.placement && {
          Constraints: t.placement.constraints,
          MaxReplicas: t.placement.maxReplicas,
        },
        Networks: t.networksAdvanceds?.map((n: Props) => ({ Target: n.id || n.name, Aliases: n.aliases })),
        LogDriver: t.logDriver && { Name: t.logDriver.name, Options: t.logDriver.options },
      },
      Mode: s.mode?.global
        ? { Global: {} }
        : s.mode?.replicated
          ? { Replicated: { Replicas: s.mode.replicated.replicas ?? 1 } }
          : {},
      // createUpdateOrRollbackConfig (:1294); the block's defaults: parallelism 1, failure_action pause,
      // monitor 5s, order stop-first (resource_docker_service.go:809-846).
      UpdateConfig: s.updateConfig && {
        Parallelism: s.updateConfig.parallelism ?? 1,
        Delay: 0,
        FailureAction: s.updateConfig.failureAction ?? "pause",
        Monitor: ns("5s"),
        MaxFailureRatio: 0,
        Order: s.updateConfig.order ?? "stop-first",
      },
      // createServiceEndpointSpec (:1240); port defaults protocol tcp, publish_mode ingress (:929-949).
      EndpointSpec: {
        Mode: s.endpointSpec?.mode,
        Ports: s.endpointSpec?.ports?.map((p: Props) => ({
          Protocol: p.protocol ?? "tcp",
          TargetPort: p.targetPort,
          PublishedPort: p.publishedPort,
          PublishMode: p.publishMode ?? "ingress",
        })),
      },
    };
    return JSON.parse(JSON.stringify(spec));
  }

  const replicasOf = (service: Props): number | undefined => service.Spec?.Mode?.Replicated?.Replicas;

  /** replicatedConsoleLogUpdater.update (resource_docker_service_funcs.go:510-560): running == replicas. */
  async function converged(serviceId: string): Promise<boolean> {
    const service = await api("GET", `/services/${serviceId}`);
    const replicas = replicasOf(service);
    if (replicas === undefined) throw new Error("no replica count");
    const filters = encodeURIComponent(JSON.stringify({ service: [serviceId], "desired-state": ["running"] }));
    const tasks: Props[] = await api("GET", `/tasks?filters=${filters}`);
    const nodes: Props[] = await api("GET", "/nodes");
    const active = new Set(nodes.filter((n) => n.Status?.State !== "down").map((n) => n.ID));
    const rank = (state: string) => TASK_ORDER.indexOf(state) + 1;
    const bySlot = new Map<number, Props>();
    for (const task of tasks) {
      if (!rank(task.DesiredState) || !rank(task.Status?.State)) continue;
      const prior = bySlot.get(task.Slot ?? 0);
      // The lowest desired state wins a slot; equal ones, the lowest observed state (start-first updates).
      if (prior && rank(prior.DesiredState) < rank(task.DesiredState)) continue;
      if (
        prior &&
        rank(prior.DesiredState) === rank(task.DesiredState) &&
        rank(prior.Status.State) <= rank(task.Status.State)
      )
        continue;
      if (task.NodeID && !active.has(task.NodeID)) continue;
      bySlot.set(task.Slot ?? 0, task);
    }
    const running = [...bySlot.values()].filter(
      (t) => rank(t.DesiredState) <= rank("running") && t.Status.State === "running",
    ).length;
    return running === replicas;
  }

  /** retry.StateChangeConf as the provider configures it: Delay, then a refresh at least every MinTimeout. */
  async function waitFor(
    refresh: () => Promise<"done" | "pending">,
    delayMs: number,
    timeoutMs: number,
    onTimeout: () => Promise<Error>,
    signal: AbortSignal,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await sleep(Math.min(delayMs, timeoutMs));
    while (Date.now() < deadline && !signal.aborted) {
      if ((await refresh()) === "done") return;
      await sleep(Math.min(SERVICE_CONVERGE.minTimeoutMs, Math.max(0, deadline - Date.now())));
    }
    throw await onTimeout();
  }

  const convergeTimeoutMs = (s: Props) => parseGoDuration(s.convergeConfig?.timeout ?? SERVICE_CONVERGE.timeoutDefault);

  /** deleteService (resource_docker_service_funcs.go:259-339). */
  async function deleteService(id: string, s: Props): Promise<void> {
    const grace: string | undefined = s.taskSpec?.containerSpec?.stopGracePeriod;
    const waits = grace !== undefined && grace !== "0s";
    const containers: string[] = [];
    if (waits) {
      const filters = encodeURIComponent(JSON.stringify({ service: [s.name] }));
      for (const task of (await api("GET", `/tasks?filters=${filters}`)) as Props[]) {
        const containerId: string = task.Status?.ContainerStatus?.ContainerID ?? "";
        if (containerId.trim() && task.Status?.State !== "shutdown") containers.push(containerId);
      }
    }
    try {
      await api("DELETE", `/services/${id}`);
    } catch (e) {
      throw new Error(`Error deleting service with ID '${id}': ${(e as Error).message}`);
    }
    if (!waits) return;
    const graceMs = parseGoDuration(grace);
    for (const containerId of containers) {
      try {
        await api("POST", `/containers/${containerId}/wait?condition=removed`, undefined, graceMs);
      } catch (e) {
        if (!/No such container/.test((e as Error).message))
          throw new Error(`error on wait for container with ID '${containerId}': ${(e as Error).message}`);
      }
      try {
        await api("DELETE", `/containers/${containerId}?force=true&v=true`);
      } catch (e) {
        if (!/No such container|is already in progress/.test((e as Error).message))
          throw new Error(`Error deleting container with ID '${containerId}': ${(e as Error).message}`);
      }
    }
  }

  const service: ResourceType = {
    facts: factsOf(SERVICE),
    check,
    async create(_urn, s, signal) {
      const created = await api("POST", "/services/create", serviceSpec(s));
      const id: string = created.ID;
      if (s.convergeConfig) {
        const timeoutMs = convergeTimeoutMs(s);
        await waitFor(
          async () => ((await converged(id)) ? "done" : "pending"),
          parseGoDuration(s.convergeConfig.delay ?? SERVICE_CONVERGE.createDelayDefault),
          timeoutMs,
          async () => {
            // The service is removed when it did not converge (:69), then the error (:73).
            await deleteService(id, s);
            return new Error(didNotConverge(id, timeoutMs));
          },
          signal,
        );
      }
      return { id };
    },
    async read(id, props, inputs) {
      // fetchDockerService (:245-259): by ID or by name; gone: removed from the state.
      const services: Props[] = await api("GET", "/services");
      const found = services.find((x) => x.ID === id || x.Spec?.Name === props.name);
      return found ? { props, inputs } : undefined;
    },
    async update(_urn, id, _olds, news, signal) {
      const current = await api("GET", `/services/${id}`);
      await api("POST", `/services/${id}/update?version=${current.Version.Index}`, serviceSpec(news));
      if (news.convergeConfig) {
        const timeoutMs = convergeTimeoutMs(news);
        await waitFor(
          async () => {
            const now = await api("GET", `/services/${id}`);
            const state: string | undefined = now.UpdateStatus?.State;
            const message: string = now.UpdateStatus?.Message ?? "";
            if (state === "completed") return "done";
            if (state === "rollback_completed") throw new Error(`service rollback completed: ${message}`);
            if (state === "paused") throw new Error(`service update paused: ${message}`);
            if (state === "rollback_paused") throw new Error(`service rollback paused: ${message}`);
            if (await converged(id)) {
              if (state === "rollback_started") throw new Error(`service rollback completed: ${message}`);
              return "done";
            }
            return "pending";
          },
          SERVICE_CONVERGE.updateDelayMs,
          timeoutMs,
          async () => new Error(didNotConverge(id, timeoutMs)),
          signal,
        );
      }
      return {};
    },
    async delete(_urn, id, props) {
      await deleteService(id, props);
    },
  };

  const secret: ResourceType = {
    facts: factsOf(SECRET),
    check: (inputs) => unsupported(inputs, ["name", "data", "labels"]),
    async create(_urn, s) {
      // resourceDockerSecretCreate: base64.StdEncoding.DecodeString, its error ignored (:96); the API takes
      // the bytes base64-encoded again. The data goes in the request body, never on a command line.
      const data = Buffer.from(Buffer.from(s.data, "base64")).toString("base64");
      const created = await api("POST", "/secrets/create", { Name: s.name, Labels: labelMap(s.labels), Data: data });
      return { id: created.ID };
    },
    async read(id, props, inputs) {
      try {
        await api("GET", `/secrets/${id}`);
        return { props, inputs };
      } catch (e) {
        if ((e as { status?: number }).status === 404) return undefined;
        throw e;
      }
    },
    async delete(_urn, id) {
      await api("DELETE", `/secrets/${id}`);
    },
  };

  return { [SERVICE]: service, [SECRET]: secret };
}

/** numberedStates (resource_docker_service_funcs.go:668-685), in order. */
const TASK_ORDER = [
  "new",
  "allocated",
  "pending",
  "assigned",
  "accepted",
  "preparing",
  "ready",
  "starting",
  "running",
  "complete",
  "shutdown",
  "failed",
  "rejected",
];

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
