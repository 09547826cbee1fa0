import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { exec } from "../support/exec";
import {
  CONTAINER,
  NETWORK_REMOVE,
  dockerContainerUpdate,
  factsOf,
  readDockerContainer,
} from "../support/provider-facts";
import { dockerSwarmResources } from "./docker-service";
import { InitError, unsupported, type Context, type Props, type ResourceType } from "./types";

/**
 * docker_container, docker_network, docker_volume and docker_image (kreuzwerker/terraform-provider-docker
 * v4.5.0 as pulumi-docker 5.2.0 bridges it), carried out with the docker CLI against the provider's `host`.
 */
export function dockerResources(ctx: Context): Record<string, ResourceType> {
  const docker = async (args: string[], allowFailure = false): Promise<string> => {
    const host = ctx.config().host;
    const result = await exec("docker", args, { env: host ? { ...process.env, DOCKER_HOST: host } : process.env });
    if (result.code !== 0 && !allowFailure)
      throw new Error(`docker ${args[0]} ${args[1] ?? ""}: ${result.stderr.trim()}`);
    return result.code === 0 ? result.stdout.trim() : "";
  };
  const exists = async (kind: string, id: string) =>
    (await docker([kind, "inspect", "--format", "{{.Id}}", id], true)) !== "";

  const CONTAINER_PROPERTIES = [
    "name",
    "image",
    "envs",
    "labels",
    "command",
    "hostname",
    "networkMode",
    "networksAdvanced",
    "ports",
    "volumes",
    "healthcheck",
    "restart",
    "mustRun",
    "wait",
    "waitTimeout",
    "destroyGraceSeconds",
    "stopTimeout",
    "logDriver",
    "logOpts",
  ];

  /** After a start: the health wait when `wait` is set (errContainerFailedToBeInHealthyState otherwise). */
  async function waitHealthy(c: Props, signal: AbortSignal): Promise<void> {
    if (!c.wait) return;
    const deadline = Date.now() + (c.waitTimeout ?? 60) * 1000;
    while (Date.now() < deadline && !signal.aborted) {
      if ((await docker(["inspect", "-f", "{{.State.Health.Status}}", c.name], true)) === "healthy") return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`container ${c.name} did not become healthy within ${c.waitTimeout ?? 60}s`);
  }

  const container: ResourceType = {
    facts: factsOf(CONTAINER),
    check: (inputs) => unsupported(inputs, CONTAINER_PROPERTIES),
    async create(_urn, c, signal) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "standin-docker-env-"));
      const envFile = path.join(dir, "env");
      // An env file keeps secret values out of the process list, as the provider's API call does.
      fs.writeFileSync(envFile, (c.envs ?? []).map((e: string) => `${e}\n`).join(""), { mode: 0o600 });
      const args = ["create", "--name", c.name, "--env-file", envFile, "--restart", c.restart ?? "no"];
      for (const l of c.labels ?? []) args.push("--label", `${l.label}=${l.value}`);
      if (c.networkMode) args.push("--network", c.networkMode);
      for (const n of c.networksAdvanced ?? []) {
        args.push("--network", n.name);
        for (const a of n.aliases ?? []) args.push("--network-alias", a);
      }
      for (const p of c.ports ?? [])
        args.push("-p", `${p.ip ? `${p.ip}:` : ""}${p.external ?? ""}:${p.internal}/${p.protocol ?? "tcp"}`);
      for (const v of c.volumes ?? []) args.push("-v", `${v.volumeName ?? v.hostPath}:${v.containerPath}`);
      if (c.hostname) args.push("--hostname", c.hostname);
      if (c.stopTimeout !== undefined) args.push("--stop-timeout", String(c.stopTimeout));
      if (c.logDriver) args.push("--log-driver", c.logDriver);
      for (const [k, v] of Object.entries(c.logOpts ?? {})) args.push("--log-opt", `${k}=${v}`);
      const hc = c.healthcheck;
      if (hc) {
        const [kind, ...cmd] = hc.tests as string[];
        args.push("--health-cmd", kind === "CMD" ? cmd.map(shellQuote).join(" ") : cmd.join(" "));
        if (hc.interval) args.push("--health-interval", hc.interval);
        if (hc.timeout) args.push("--health-timeout", hc.timeout);
        if (hc.retries !== undefined) args.push("--health-retries", String(hc.retries));
        if (hc.startPeriod) args.push("--health-start-period", hc.startPeriod);
      }
      args.push(c.image, ...(c.command ?? []));
      let id: string;
      try {
        id = await docker(args);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      // From here on the container exists: a failure is a partial create (provider-facts.ts (c)).
      try {
        await docker(["start", id]);
        await waitHealthy(c, signal);
      } catch (e) {
        throw new InitError(id, c, `Unable to start container: ${(e as Error).message}`);
      }
      // Create ends with a Read: a container that exited at once records must_run false.
      const running = (await docker(["inspect", "-f", "{{.State.Running}}", id], true)) === "true";
      return { id, outs: running || c.mustRun === false ? {} : { mustRun: false } };
    },
    async read(id, props, inputs) {
      const state = await docker(["inspect", "-f", "{{.State.Running}}", id], true);
      const read = readDockerContainer({ inputs }, { exists: state !== "", running: state === "true" });
      return read && { props: { ...props, mustRun: read.inputs.mustRun }, inputs: read.inputs };
    },
    async update(_urn, id, olds, news, signal) {
      const changed = Object.keys({ ...olds, ...news }).filter(
        (k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]),
      );
      const update = dockerContainerUpdate(olds, news, changed);
      if (update.applied.includes("restart")) await docker(["update", "--restart", news.restart ?? "no", id]);
      if (update.starts) {
        await docker(["start", id]);
        await waitHealthy(news, signal);
      }
      return {};
    },
    async delete(_urn, id, props) {
      // resourceDockerContainerDelete: stop with destroy_grace_seconds, then remove with its volumes.
      await docker(["stop", "-t", String(props.destroyGraceSeconds ?? 0), id], true);
      await docker(["rm", "-f", "-v", id], true);
    },
  };

  return {
    ...dockerSwarmResources(ctx),
    [CONTAINER]: container,
    "docker:index/network:Network": {
      facts: factsOf("docker:index/network:Network"),
      check: (inputs) => unsupported(inputs, ["name", "driver", "attachable"]),
      create: async (_urn, n) => ({
        // An overlay network is created through a swarm manager's host; attachable lets plain
        // containers join it (resource_docker_network_funcs.go:37, :46).
        id: await docker([
          "network",
          "create",
          "--driver",
          n.driver ?? "bridge",
          ...(n.attachable ? ["--attachable"] : []),
          n.name,
        ]),
      }),
      read: async (id, props, inputs) => ((await exists("network", id)) ? { props, inputs } : undefined),
      async delete(_urn, id) {
        // resourceDockerNetworkDelete: retried while the network "has active endpoints" (a removed
        // service's tasks still leaving it) for 30 s (provider-facts.ts NETWORK_REMOVE).
        const deadline = Date.now() + NETWORK_REMOVE.timeoutMs;
        await new Promise((r) => setTimeout(r, NETWORK_REMOVE.delayMs));
        for (;;) {
          const host = ctx.config().host;
          const result = await exec("docker", ["network", "rm", id], {
            env: host ? { ...process.env, DOCKER_HOST: host } : process.env,
          });
          if (result.code === 0 || /No such network|not found/.test(result.stderr)) return;
          if (!/has active endpoints/.test(result.stderr) || Date.now() > deadline)
            throw new Error(`docker network rm: ${result.stderr.trim()}`);
          await new Promise((r) => setTimeout(r, NETWORK_REMOVE.minTimeoutMs));
        }
      },
    },
    "docker:index/volume:Volume": {
      facts: factsOf("docker:index/volume:Volume"),
      check: (inputs) => unsupported(inputs, ["name"]),
      create: async (_urn, v) => ({ id: await docker(["volume", "create", v.name]) }),
      read: async (id, props, inputs) => ((await exists("volume", id)) ? { props, inputs } : undefined),
      delete: async (_urn, id) => void (await docker(["volume", "rm", id])),
    },
    "docker:index/remoteImage:RemoteImage": {
      facts: factsOf("docker:index/remoteImage:RemoteImage"),
      check: (inputs) => unsupported(inputs, ["name", "keepLocally"]),
      async create(_urn, image) {
        // resource_docker_image_funcs.go: pull only when the name is not present locally.
        let imageId = await docker(["image", "inspect", "--format", "{{.Id}}", image.name], true);
        if (!imageId) {
          await docker(["pull", image.name]);
          imageId = await docker(["image", "inspect", "--format", "{{.Id}}", image.name]);
        }
        const repoDigest = await docker(
          ["image", "inspect", "--format", "{{if .RepoDigests}}{{index .RepoDigests 0}}{{end}}", image.name],
          true,
        );
        return { id: `${imageId}${image.name}`, outs: { imageId, repoDigest } };
      },
      async read(_id, props, inputs) {
        return (await docker(["image", "inspect", "--format", "{{.Id}}", props.name], true))
          ? { props, inputs }
          : undefined;
      },
      async delete(_urn, _id, props) {
        if (!props.keepLocally) await docker(["rmi", props.name], true);
      },
    },
  };
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
