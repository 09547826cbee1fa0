import { isIP } from "net";
import { z } from "zod";

/**
 * Validators for the settings a user types by hand: host names, addresses, ports, image
 * references, paths. Each refusal says what is allowed and shows what was given; its `example`
 * (issue params) becomes the fix, worded for stack config or for args by the entry point's
 * Naming (config/naming.ts), which also names the setting. Values that may hold a secret are
 * never shown.
 */

/** A value as a message shows it: quoted, control characters escaped, long values cut. */
export function shown(value: unknown): string {
  if (typeof value !== "string") return JSON.stringify(value) ?? String(value);
  const text = value;
  const escaped = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text)
    .slice(1, -1)
    .replace(/\\"/g, '"');
  return `'${escaped}'`;
}

// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A custom issue with the example value that fixes it. */
const refuse = (ctx: z.RefinementCtx, message: string, example: string) =>
  ctx.addIssue({ code: "custom", message, params: { example } });

/** A string setting: `problem` says what is wrong with a value, or nothing. */
const checked = (problem: (value: string) => string | undefined, example: string) =>
  z.string({ error: `must be text, like ${example}` }).superRefine((value, ctx) => {
    const message = problem(value);
    if (message) refuse(ctx, message, example);
  });

// --- Host names and IP addresses -------------------------------------------------------------

// RFC 1123 labels. The last label must not be all digits: "10.0.0.256" is a broken IPv4
// address, not a host name (no top-level domain is numeric).
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
export function isHostName(value: string): boolean {
  const labels = value.split(".");
  return value.length <= 253 && labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1]);
}

/** "::1" or "[::1]" as bare "::1"; zone ids ("%eth0") are refused: Docker does not take them. */
export function ipVersion(value: string): 0 | 4 | 6 {
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (bare !== value && isIP(bare) !== 6) return 0;
  if (bare.includes("%")) return 0;
  return isIP(bare) as 0 | 4 | 6;
}
const unbracketed = (value: string) => (value.startsWith("[") ? value.slice(1, -1) : value);

const LOOPBACK_OR_WILDCARD = /^(localhost|127\.\d+\.\d+\.\d+|::1|0\.0\.0\.0|::)$/i;

/**
 * A server's host name or IP address; IPv6 is kept bare (libpq and the postgresql provider
 * take it so). `fromContainers`: the containers reach it, so loopback names are refused.
 */
export const hostOrAddress = (example: string, options: { fromContainers?: boolean } = {}) =>
  checked((value) => {
    if (!isHostName(value) && ipVersion(value) === 0) {
      return `must be a host name or IP address (letters, digits, dots, hyphens; IPv6 like 2001:db8::5); got ${shown(value)}`;
    }
    if (options.fromContainers && LOOPBACK_OR_WILDCARD.test(unbracketed(value))) {
      return (
        `is ${shown(value)}, which inside a container is the container itself, not the server; ` +
        "give the name or address the containers reach the server at (for a server on the Docker host: the host's address on the Docker bridge, e.g. 172.17.0.1)"
      );
    }
    return undefined;
  }, example).transform(unbracketed);

/** An IP address of the Docker host to publish a port on; IPv6 kept bare, as Docker takes it. */
export const publishAddress = (example: string) =>
  checked(
    (value) =>
      ipVersion(value) === 0
        ? `must be an IP address of the Docker host to publish on: 127.0.0.1 (this host only), 0.0.0.0 (all IPv4 interfaces), ::1 or :: for IPv6; got ${shown(value)}`
        : undefined,
    example,
  ).transform(unbracketed);

/** Django ALLOWED_HOSTS entry: compared with the request's Host header without its port. */
export const allowedHost = checked((value) => {
  if (value === "*") return undefined;
  const name = value.startsWith(".") ? value.slice(1) : value;
  if (isHostName(name) || ipVersion(value) === 4) return undefined;
  if (value.startsWith("[") && ipVersion(value) === 6) return undefined;
  const hint =
    ipVersion(value) === 6
      ? ` (Django sees IPv6 hosts in brackets: write [${value}])`
      : /^[a-z]+:\/\/|[:/]/i.test(value)
        ? " (no scheme, port or path: Django compares the host name alone)"
        : "";
  return `must be a host name (utilitarian.example.net), a subdomain wildcard (.example.net), an IPv4 address, an IPv6 address in brackets ([::1]) or *${hint}; got ${shown(value)}`;
}, "utilitarian.example.net");

// --- Ports -----------------------------------------------------------------------------------

const toNumber = (v: unknown) => (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v)) ? Number(v) : v);

/** A TCP or UDP port; strings from YAML are read as numbers. */
export const port = (example: number) =>
  z.preprocess(
    toNumber,
    z.custom<number>((v) => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535, {
      error: (issue) => `must be a port, a whole number from 1 to 65535; got ${shown(issue.input)}`,
      params: { example: String(example) },
    }),
  );

// --- Docker ----------------------------------------------------------------------------------

// The grammar of Docker image references (distribution/reference, regexp.go).
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const REPOSITORY = new RegExp(`^${NAME}$`);
const REFERENCE = new RegExp(`^${NAME}(?::${TAG})?(?:@${DIGEST})?$`);
export const REGISTRY_HOST = new RegExp(`^${DOMAIN}$`);

const REPOSITORY_RULES = "lower-case path components separated by /, optionally after a registry host[:port]/";

/** An image repository without tag or digest: the tag comes from a version setting. */
export const imageRepository = (example: string, tagFrom: string) =>
  checked((value) => {
    if (value.length <= 255 && REPOSITORY.test(value)) return undefined;
    if (REFERENCE.test(value))
      return `must be an image repository without a tag, like ${example} (the tag comes from ${tagFrom}); got ${shown(value)}`;
    return `must be an image repository (${REPOSITORY_RULES}), like ${example}; got ${shown(value)}`;
  }, example);

/** A whole image reference, tag allowed, like postgres:15. */
export const imageReference = (example: string) =>
  checked(
    (value) =>
      value.length <= 255 && REFERENCE.test(value)
        ? undefined
        : `must be a Docker image reference like ${example} (${REPOSITORY_RULES}, then an optional :tag); got ${shown(value)}`,
    example,
  );

/** The registry part of an image reference, as the Docker provider matches credentials. */
export function registryOf(image: string): string {
  const first = image.split("/")[0];
  const hasRegistry = image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  return normalizeRegistry(hasRegistry ? first : "docker.io");
}
export function normalizeRegistry(server: string): string {
  const lower = server.toLowerCase();
  return ["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"].includes(lower) ? "docker.io" : lower;
}

export const registryServer = checked(
  (value) =>
    REGISTRY_HOST.test(value)
      ? undefined
      : `must be the registry's host name with an optional :port, without https:// or a path, like quay.io; got ${shown(value)}`,
  "quay.io",
);

// A password in the URL would sit in plain text in the stack file: never show such a value.
const WITH_PASSWORD = /^[a-z]+:\/\/[^@/]*:[^@/]*@/i;
const SSH_OR_TCP = /^(ssh|tcp):\/\/(?:([^@/:\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:/@\s[\]]+)(?::([^/]*))?$/;
const DOCKER_HOST_FORMS = "unix:///path/to/docker.sock, ssh://user@host[:port] or tcp://host:port";

/** Where the Docker engine is: the forms the Docker CLI and the Docker provider accept. */
export const dockerHost = checked((value) => {
  if (WITH_PASSWORD.test(value)) {
    return `must not hold a password (it would be stored in plain text in the stack file); use ssh://user@host with an SSH key in your agent, or tcp:// with TLS certificates`;
  }
  if (value.startsWith("unix://")) {
    return /^unix:\/\/\/[^\s]*[^\s/]$/.test(value)
      ? undefined
      : `must be ${DOCKER_HOST_FORMS}; a unix socket needs an absolute path after unix:// (three slashes); got ${shown(value)}`;
  }
  const m = SSH_OR_TCP.exec(value);
  if (!m) return `must be ${DOCKER_HOST_FORMS}; got ${shown(value)}`;
  const [, , , host, portText] = m;
  if (!isHostName(host) && ipVersion(host) === 0)
    return `must be ${DOCKER_HOST_FORMS}, with a host name or IP address as host; got ${shown(value)}`;
  if (portText !== undefined && !(/^\d+$/.test(portText) && Number(portText) >= 1 && Number(portText) <= 65535)) {
    return `must be ${DOCKER_HOST_FORMS}, with a port from 1 to 65535; got ${shown(value)}`;
  }
  return undefined;
}, "ssh://deploy@app1.example.net");

// --- Names, text and paths -------------------------------------------------------------------

/** Lower-case name that becomes part of container and host names. */
export const NAME_PATTERN = /^[a-z]([a-z0-9-]{0,39}[a-z0-9])?$/;
export const dnsName = (example: string) =>
  checked(
    (value) =>
      NAME_PATTERN.test(value)
        ? undefined
        : `must be lower case letters, digits and - (no underscores: names become host names), starting with a letter, not ending with -, at most 41 characters; got ${shown(value)}`,
    example,
  );

/** A PostgreSQL role name as typed in connection settings (Azure's user@server included). */
export const roleName = (example: string) =>
  checked(
    (value) =>
      // eslint-disable-next-line no-control-regex -- refusing control characters is the point
      /^[^\s\u0000-\u001f\u007f]{1,63}$/.test(value)
        ? undefined
        : `must be a PostgreSQL role name without spaces or control characters, at most 63 characters, like ${example}; got ${shown(value)}`,
    example,
  );

/** One line of text; never shows the value, which may be a misplaced secret. */
export function textProblem(value: string): string | undefined {
  const at = value.search(CONTROL);
  if (at < 0) return undefined;
  const what = value[at] === "\n" ? "a line break" : value[at] === "\t" ? "a tab" : "a control character";
  const hint =
    value.endsWith("\n") && at === value.length - 1
      ? " (a YAML block scalar `|` adds one at the end; use `|-` or a plain scalar)"
      : "";
  return `must be one line of text without control characters; it holds ${what} at character ${at + 1}${hint}`;
}

export const text = (example: string) =>
  checked((value) => {
    if (value.trim() === "") return "must not be empty";
    if (value.trim() !== value) return `must not begin or end with spaces; got ${shown(value)}`;
    return textProblem(value);
  }, example);

/** A path on this machine: used as given, so nothing in it is expanded. */
export function pathProblem(value: string): string | undefined {
  if (value.trim() === "") return "must not be empty";
  const problem = textProblem(value);
  if (problem) return problem;
  if (value.trim() !== value) return `must not begin or end with spaces; got ${shown(value)}`;
  if (value.startsWith("~"))
    return `starts with ~, which is not expanded here (it would name a directory called '~'); use an absolute path like /var/backups/utilitarian or one relative to the project directory; got ${shown(value)}`;
  if (value.includes("$"))
    return `holds $, and variables are not expanded here; write the path out; got ${shown(value)}`;
  return undefined;
}

// --- Booleans and whole numbers, which stack config also gives as text -----------------------

export const bool = z.preprocess(
  (v) => (v === "true" ? true : v === "false" ? false : v),
  z.boolean({ error: "must be true or false" }),
);

export const int = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v)) ? Number(v) : v),
    z
      .number({ error: `must be a whole number from ${min} to ${max}` })
      .int(`must be a whole number from ${min} to ${max}`)
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`),
  );
