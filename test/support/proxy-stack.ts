/**
 * The maintenance proxy (components/proxy.ts) in front of a stand-in API with plain `docker run`:
 * a private network, PostgreSQL, the API under the alias `api`, and the stand-in HAProxy image
 * run with exactly the command and environment the component gives it, published on loopback.
 * Shared by test/real/proxy.test.ts and `npm run bench:proxy`, each under its own name prefix.
 */
import { proxyCommand, proxyEnvironment, PROXY_PORT } from "../../components/proxy";
import { docker, exec, waitFor } from "./exec";
import { freeLoopbackPort } from "./ports";
import { requireEngineAndImages } from "./standin-stack";

export interface ProxyStackOptions {
  /** Every container's and the network's name starts with it; the proxy is named `prefix` itself. */
  prefix: string;
  retryAfterSeconds: number;
  message: string;
  /** Also publish the API's own port on loopback (`apiBase`), as it is without the proxy. */
  publishApi?: boolean;
}

export class ProxyStack {
  readonly net: string;
  readonly pg: string;
  readonly api: string;
  readonly proxy: string;
  /** Takes the API's address while it is gone, so the new API container gets another one. */
  readonly filler: string;
  /** The token the stand-in API accepts on `/api/v1/readings/`. */
  readonly token: string;
  /** `http://127.0.0.1:<port>` of the proxy, and of the API itself when `publishApi`. */
  base = "";
  apiBase = "";
  private readonly secrets: Record<string, string>;

  constructor(private readonly options: ProxyStackOptions) {
    const p = options.prefix;
    [this.net, this.pg, this.api, this.proxy, this.filler] = [
      `${p}-net`,
      `${p}-postgres`,
      `${p}-api`,
      p,
      `${p}-filler`,
    ];
    this.token = `${p}-token-5f1c`;
    this.secrets = {
      POSTGRES_PASSWORD: `${p}-admin-pw-2Qx`,
      DATABASE_URL: `postgres://postgres:${p}-admin-pw-2Qx@postgres:5432/utilitarian`,
      SECRET_KEY: `${p}-secret-key-0123456789abcdef0123`,
    };
  }

  /** Removes whatever an earlier run left, starts everything, migrates, and waits for 200 through the proxy. */
  async start(): Promise<void> {
    await requireEngineAndImages();
    await this.remove();
    const port = await freeLoopbackPort("tcp");
    this.base = `http://127.0.0.1:${port}`;
    if (this.options.publishApi) this.apiBase = `http://127.0.0.1:${await freeLoopbackPort("tcp", [port])}`;
    await docker(["network", "create", this.net]);
    await this.run(this.pg, { POSTGRES_PASSWORD: this.secrets.POSTGRES_PASSWORD, POSTGRES_DB: "utilitarian" }, [
      "--network-alias",
      "postgres",
      "utilitarian-standin/postgres:15",
    ]);
    await this.startApi();
    const { retryAfterSeconds, message } = this.options;
    await this.run(this.proxy, proxyEnvironment({ apiHost: "api", apiPort: 8000, retryAfterSeconds, message }), [
      "-p",
      `127.0.0.1:${port}:${PROXY_PORT}`,
      "utilitarian-standin/haproxy:2.6",
      ...proxyCommand(),
    ]);
    const migrate = ["exec", this.api, "python", "manage.py", "migrate", "--noinput"];
    if (!(await waitFor(async () => (await exec("docker", migrate)).code === 0, 90_000, 1000)))
      throw new Error(`the stand-in API did not migrate: ${await docker(["logs", this.api], { allowFailure: true })}`);
    if (!(await waitFor(async () => (await this.status("/_health/")) === 200, 60_000, 250)))
      throw new Error(`no 200 through the proxy: ${await docker(["logs", this.proxy], { allowFailure: true })}`);
  }

  /** A new API container (as an upgrade creates one), published on `apiBase`'s port when `publishApi`. */
  startApi(): Promise<void> {
    const publish = this.apiBase ? ["-p", `${this.apiBase.slice("http://".length)}:8000`] : [];
    return this.run(
      this.api,
      {
        DATABASE_URL: this.secrets.DATABASE_URL,
        SECRET_KEY: this.secrets.SECRET_KEY,
        STANDIN_ACCEPTED_TOKEN: this.token,
        ALLOWED_HOSTS: "127.0.0.1,api",
      },
      ["--network-alias", "api", "--stop-timeout", "10", ...publish, "utilitarian-standin/utilitarian:1.0.0"],
    );
  }

  /** The filler container, on the network while the API is gone. */
  startFiller(): Promise<string> {
    return docker([
      "run",
      "-d",
      "--name",
      this.filler,
      "--network",
      this.net,
      "utilitarian-standin/base:latest",
      "sleep",
      "600",
    ]);
  }

  /** Every container and the network; nothing else. */
  async remove(): Promise<void> {
    await docker(["rm", "-f", this.proxy, this.api, this.filler, this.pg], { allowFailure: true });
    await docker(["network", "rm", this.net], { allowFailure: true });
  }

  /** The status of a request through the proxy, or 0 when none came. */
  async status(path: string, init?: RequestInit): Promise<number> {
    const response = await fetch(`${this.base}${path}`, { ...init, signal: AbortSignal.timeout(5000) }).catch(
      () => undefined,
    );
    return response?.status ?? 0;
  }

  /**
   * `docker run -d` on the network. Secrets reach `docker run` through its environment (`-e
   * NAME`), never its command text.
   */
  private async run(name: string, env: Record<string, string>, args: string[]): Promise<void> {
    const envArgs = Object.keys(env).flatMap((k) => ["-e", k]);
    const result = await exec("docker", ["run", "-d", "--name", name, "--network", this.net, ...envArgs, ...args], {
      env: { ...process.env, ...env },
    });
    if (result.code !== 0) throw new Error(`docker run ${name} failed: ${result.stderr.trim()}`);
  }
}
