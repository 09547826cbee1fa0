/**
 * The maintenance proxy (`proxy.enabled`): HAProxy in front of the API, published where the API
 * was, so that while the API is down for an upgrade clients get `503 Service Unavailable` with
 * `Retry-After` and a maintenance page instead of a refused connection. HAProxy itself is the
 * image's (`proxy.image`, the official `haproxy` image or the Debian package); everything it is
 * told is written here: the configuration and both pages reach the container as environment
 * values, and its command writes them to files before it starts HAProxy, so any image with
 * `haproxy` 2.6 or newer and `sh`, `base64` and `mktemp` on its PATH serves (the official image's
 * entrypoint runs a command other than `haproxy` as it is).
 */

/** The port HAProxy listens on in its container: above 1023, as the official image runs it unprivileged. */
export const PROXY_PORT = 8080;

/** What the proxy is told: where the API is and what the maintenance answer says. */
export interface ProxySettings {
  /** The API's name on the private network and its port there. */
  apiHost: string;
  apiPort: number;
  retryAfterSeconds: number;
  message: string;
}

/** The environment values the command below writes to files. */
const ENV = { config: "PROXY_CONFIG", html: "PROXY_MAINTENANCE_HTML", json: "PROXY_MAINTENANCE_JSON" } as const;
/** The files they become, in the directory HAProxy starts in. */
const FILES = { config: "haproxy.cfg", html: "maintenance-html.http", json: "maintenance-json.http" } as const;

/**
 * The container's command: the configuration and the maintenance answers from the environment
 * into files, then HAProxy in the foreground (`-db`) under its master process (`-W`), which turns
 * Docker's SIGTERM into a graceful stop. No value is in the command text. The values are base64,
 * one line each, because an environment is often handled line by line (env files, `docker
 * inspect` listings), and a configuration is many lines.
 */
export function proxyCommand(): string[] {
  const script = [
    "set -eu",
    'cd "$(mktemp -d)"',
    ...(Object.keys(ENV) as (keyof typeof ENV)[]).map((k) => `printf '%s' "$${ENV[k]}" | base64 -d >${FILES[k]}`),
    `exec haproxy -W -db -f ${FILES.config}`,
  ].join("\n");
  return ["sh", "-c", script];
}

/** The proxy's environment: its configuration and the two maintenance answers, each base64. */
export function proxyEnvironment(s: ProxySettings): Record<string, string> {
  const files = proxyFiles(s);
  return Object.fromEntries(
    (Object.keys(ENV) as (keyof typeof ENV)[]).map((k) => [ENV[k], Buffer.from(files[k], "utf8").toString("base64")]),
  );
}

/** What the proxy's files hold: its configuration and the maintenance answer for each kind of client. */
export function proxyFiles(s: ProxySettings): Record<keyof typeof ENV, string> {
  return {
    config: haproxyConfig(s),
    html: maintenanceResponse("text/html; charset=utf-8", maintenanceHtml(s.message), s.retryAfterSeconds),
    json: maintenanceResponse("application/json", maintenanceJson(s), s.retryAfterSeconds),
  };
}

/**
 * A whole HTTP response, as HAProxy's `errorfile` takes it: its status line is the one sent,
 * whichever error HAProxy met, so a failed connection (502) is answered as maintenance too.
 */
export function maintenanceResponse(contentType: string, body: string, retryAfterSeconds: number): string {
  return [
    "HTTP/1.1 503 Service Unavailable",
    `Content-Type: ${contentType}`,
    `Content-Length: ${Buffer.byteLength(body, "utf8")}`,
    `Retry-After: ${retryAfterSeconds}`,
    // A proxy or browser cache must not keep the maintenance answer once the API is back.
    "Cache-Control: no-store",
    "",
    body,
  ].join("\r\n");
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** The page a browser gets: the message, and nothing it has to load from the API that is down. */
export function maintenanceHtml(message: string): string {
  const text = message.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
  return [
    "<!doctype html>",
    '<html lang="en">',
    '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Maintenance</title></head>',
    '<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; padding: 0 1em">',
    "<h1>Down for maintenance</h1>",
    `<p>${text}</p>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/** What a client that asks for JSON gets. */
export function maintenanceJson(s: Pick<ProxySettings, "message" | "retryAfterSeconds">): string {
  return `${JSON.stringify({ status: "maintenance", detail: s.message, retryAfterSeconds: s.retryAfterSeconds })}\n`;
}

/**
 * HAProxy's configuration. The API is checked on `/_health/` every 250 ms (one failure marks it
 * down, one success up); its name is resolved through Docker's DNS at run time, because every new
 * API container may get another address, and may not exist when the proxy starts. A backend
 * without a healthy server answers 503 at once. In the moment before the check sees the API go, a
 * request may meet a refused connection or a server that closes it unanswered: an idempotent one
 * is sent again, and when the retries are spent (or the request may not be repeated) the answer is
 * the maintenance one too, as both 502 and 503 are answered by the maintenance response. That
 * answer is per backend (`errorfile` is not per request), so each kind of client has its own. A
 * response of the API passes through unchanged (only `X-Forwarded-For` is added to the request),
 * bodies streamed either way, so large uploads and slow responses pass.
 */
export function haproxyConfig(s: ProxySettings): string {
  const backend = (name: string, file: string) => [
    `backend ${name}`,
    "    option httpchk",
    `    http-check send meth GET uri /_health/ ver HTTP/1.1 hdr Host ${s.apiHost}`,
    "    http-check expect status 200",
    "    retries 3",
    "    retry-on conn-failure empty-response",
    // A request that may have reached the API is not sent twice: it gets the maintenance answer.
    "    http-request disable-l7-retry unless { method GET HEAD OPTIONS }",
    `    errorfile 502 ${file}`,
    `    errorfile 503 ${file}`,
    `    server api ${s.apiHost}:${s.apiPort} check inter 250ms fall 1 rise 1 resolvers docker init-addr last,libc,none`,
    "",
  ];
  return [
    "global",
    // Every request with its timings and how it ended: what clients saw of a maintenance window.
    "    log stdout format raw local0 info",
    "",
    // Docker's DNS (its address is in the container's resolv.conf); answers are held briefly, as
    // the API's address changes with every new container.
    "resolvers docker",
    "    parse-resolv-conf",
    "    resolve_retries 3",
    "    timeout resolve 250ms",
    "    timeout retry 250ms",
    "    hold valid 1s",
    "    hold nx 1s",
    "    hold other 1s",
    "    hold refused 1s",
    "    hold timeout 1s",
    "    hold obsolete 1s",
    "",
    "defaults",
    "    mode http",
    "    log global",
    "    option httplog",
    "    option forwardfor",
    // Gunicorn's sync workers close every connection after a response: reusing none means no
    // request is ever sent on a connection the API is closing.
    "    option http-server-close",
    "    timeout connect 1s",
    "    timeout client 60s",
    "    timeout http-request 30s",
    // The API's slowest answers (a report, an export) may take minutes.
    "    timeout server 300s",
    "    timeout check 1s",
    "",
    "frontend api",
    `    bind :${PROXY_PORT}`,
    "    use_backend api_json if { req.hdr(accept) -m sub application/json }",
    "    default_backend api_html",
    "",
    ...backend("api_html", FILES.html),
    ...backend("api_json", FILES.json),
  ].join("\n");
}
