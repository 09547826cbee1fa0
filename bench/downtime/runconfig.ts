/**
 * The literal runbook's "run config" (its step 5, "upgrade docker config"): what an operator's
 * docker-compose file holds for each container, read back from the containers the project's
 * install created (`docker inspect`), so that both ways of upgrading start the same containers.
 * Each service becomes three files the runbook script reads: `<name>.args` (one `docker run`
 * argument per line), `<name>.env` (the environment, mode 0600: secrets never appear in a
 * command line) and `<name>.cmd` (the command, one argument per line; empty for the image's own).
 */
import * as fs from "fs";
import * as path from "path";
import { docker } from "../../test/support/exec";

/** The parts of `docker inspect <container>` the run config is made of. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Config: {
    Image: string;
    Env: string[] | null;
    Cmd: string[] | null;
    Labels: Record<string, string> | null;
    StopTimeout?: number;
    Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  };
  HostConfig: {
    RestartPolicy: { Name: string };
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]> | null;
    LogConfig: { Type: string; Config: Record<string, string> | null };
    Binds: string[] | null;
  };
  Mounts: unknown[];
  NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> };
}

/** The parts of `docker image inspect` that tell what the container inherited from its image. */
export interface ImageInspect {
  Config: { Env: string[] | null; Cmd: string[] | null; Labels: Record<string, string> | null };
}

export interface RunConfig {
  args: string[];
  env: string[];
  cmd: string[];
}

const VERSION_LABEL = "io.utilitarian.version";

/**
 * The `docker run` arguments that recreate `container` from another image, everything the
 * container had that its image did not give it; `version` replaces the version label.
 */
export function runConfigOf(container: ContainerInspect, image: ImageInspect, version: string): RunConfig {
  if (container.Mounts.length > 0 || (container.HostConfig.Binds ?? []).length > 0) {
    throw new Error(`${container.Name} has mounts: the run config does not carry them; extend runconfig.ts`);
  }
  const name = container.Name.replace(/^\//, "");
  const args = ["--name", name, "--restart", container.HostConfig.RestartPolicy.Name || "no"];
  const imageLabels = image.Config.Labels ?? {};
  for (const [label, value] of Object.entries(container.Config.Labels ?? {}).sort()) {
    if (label === VERSION_LABEL) args.push("--label", `${label}=${version}`);
    else if (imageLabels[label] !== value) args.push("--label", `${label}=${value}`);
  }
  const shortId = container.Id.slice(0, 12);
  for (const [network, settings] of Object.entries(container.NetworkSettings.Networks)) {
    args.push("--network", network);
    // Docker adds the container's short ID (and, on newer engines, its name) itself.
    for (const alias of settings.Aliases ?? [])
      if (alias !== shortId && alias !== name) args.push("--network-alias", alias);
  }
  for (const [port, bindings] of Object.entries(container.HostConfig.PortBindings ?? {})) {
    for (const b of bindings) args.push("-p", `${b.HostIp ? `${b.HostIp}:` : ""}${b.HostPort}:${port}`);
  }
  if (container.Config.StopTimeout !== undefined) args.push("--stop-timeout", String(container.Config.StopTimeout));
  const log = container.HostConfig.LogConfig;
  args.push("--log-driver", log.Type);
  for (const [key, value] of Object.entries(log.Config ?? {}).sort()) args.push("--log-opt", `${key}=${value}`);
  const hc = container.Config.Healthcheck;
  if (hc) {
    const [kind, ...test] = hc.Test;
    args.push("--health-cmd", kind === "CMD" ? test.map(shellQuote).join(" ") : test.join(" "));
    const seconds = (ns?: number) => `${(ns ?? 0) / 1e9}s`;
    if (hc.Interval) args.push("--health-interval", seconds(hc.Interval));
    if (hc.Timeout) args.push("--health-timeout", seconds(hc.Timeout));
    if (hc.StartPeriod) args.push("--health-start-period", seconds(hc.StartPeriod));
    if (hc.Retries !== undefined) args.push("--health-retries", String(hc.Retries));
  }
  const imageEnv = new Set(image.Config.Env ?? []);
  const env = (container.Config.Env ?? []).filter((e) => !imageEnv.has(e));
  for (const e of env)
    if (e.includes("\n")) throw new Error(`${name}: an environment value spans lines; an env file cannot carry it`);
  const ownCmd = JSON.stringify(container.Config.Cmd) !== JSON.stringify(image.Config.Cmd);
  return { args, env, cmd: ownCmd ? (container.Config.Cmd ?? []) : [] };
}

/** Writes the run config of each named container into `dir` (created 0700). */
export async function writeRunConfig(names: string[], dir: string, version: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const name of names) {
    const container = JSON.parse(await docker(["inspect", "--type", "container", name]))[0] as ContainerInspect;
    const image = JSON.parse(await docker(["image", "inspect", container.Config.Image]))[0] as ImageInspect;
    const config = runConfigOf(container, image, version);
    const lines = (items: string[]) => items.map((i) => `${i}\n`).join("");
    fs.writeFileSync(path.join(dir, `${name}.args`), lines(config.args));
    fs.writeFileSync(path.join(dir, `${name}.env`), lines(config.env), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, `${name}.cmd`), lines(config.cmd));
  }
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
