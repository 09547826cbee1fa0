import * as path from "path";
import { BACKUPS } from "./backups";

/**
 * Malformed stack configurations, each with a part of the message that must name its key and
 * the fix. Used by config.test.ts (the loader) and program.test.ts (index.ts creates nothing).
 */
export const BAD_CONFIGS: [label: string, values: Record<string, unknown>, message: string][] = [
  ["version missing", { version: undefined }, "`utilitarian:version` is required"],
  ["version 'latest'", { version: "latest" }, "`utilitarian:version` must be a release tag like 1.2.0"],
  ["version with a v", { version: "v1.2.0" }, "`utilitarian:version` must be a release tag"],
  ["unknown top-level key", { verison: "1.2.0" }, "`utilitarian:verison` is not a known setting"],
  ["unknown nested key", { database: { hots: "x" } }, "`utilitarian:database.hots` is not a known setting"],
  ["bad database mode", { database: { mode: "cloud" } }, "`utilitarian:database.mode` must be managed or external"],
  [
    "external database without host",
    { database: { mode: "external" } },
    "`utilitarian:database.host` is required when database.mode is external",
  ],
  [
    "database name with a dash",
    { database: { name: "my-db" } },
    "`utilitarian:database.name` must be a lower-case SQL identifier",
  ],
  [
    "port out of range",
    { api: { port: 70000 } },
    "`utilitarian:api.port` must be a port, a whole number from 1 to 65535; got 70000. Set it with `pulumi config set --path utilitarian:api.port 8000`.",
  ],
  [
    "port not a number",
    { api: { port: "eighty" } },
    "`utilitarian:api.port` must be a port, a whole number from 1 to 65535; got 'eighty'",
  ],
  [
    "publish address not an IP",
    { api: { publishAddress: "localhost" } },
    "`utilitarian:api.publishAddress` must be an IP address",
  ],
  [
    "worker name with underscore",
    { workers: [{ name: "amr_fast" }] },
    "`utilitarian:workers[0].name` must be lower case letters, digits and - (no underscores",
  ],
  [
    "worker concurrency 0",
    { workers: [{ name: "a", concurrency: 0 }] },
    "`utilitarian:workers[0].concurrency` must be at least 1",
  ],
  [
    "worker count not whole",
    { workers: [{ name: "a", count: 1.5 }] },
    "`utilitarian:workers[0].count` must be a whole number",
  ],
  [
    "two worker groups with one name",
    { workers: [{ name: "a" }, { name: "a" }] },
    "`utilitarian:workers` has two groups named 'a'",
  ],
  [
    "bad queue name",
    { workers: [{ name: "a", queues: ["bad queue"] }] },
    "`utilitarian:workers[0].queues[0]` queue names may hold",
  ],
  ["edge version malformed", { poster: { version: "new" } }, "`utilitarian:poster.version` must be a release tag"],
  [
    "enabled edge without its version",
    { udpServer: { port: 4060 } },
    "`utilitarian:udpServer.version` is required while udpServer is enabled",
  ],
  ["boolean as word", { beat: { enabled: "yes" } }, "`utilitarian:beat.enabled` must be true or false"],
  [
    "image with tag",
    { images: { api: "quay.io/pwit/utilitarian:1.0.0" } },
    "`utilitarian:images.api` must be an image repository without a tag",
  ],
  [
    "docker host scheme",
    { dockerHost: "docker.example.com" },
    "`utilitarian:dockerHost` must be unix:///path/to/docker.sock, ssh://user@host",
  ],
  ["backup keep 0", { backup: { keep: 0 } }, "`utilitarian:backup.keep` must be at least 1"],
  [
    "env var name lower case",
    { api: { env: { debug: "1" } } },
    "`utilitarian:api.env.debug` environment variable names must be UPPER_CASE",
  ],
  [
    "reserved env var",
    { api: { env: { DATABASE_URL: "postgres://x" } } },
    "`utilitarian:api.env.DATABASE_URL` is set by the deployment itself",
  ],
  [
    "UDP port equals API port",
    { udpServer: { port: 8000 }, api: { publishAddress: "0.0.0.0" } },
    "`utilitarian:udpServer.port` equals api.port",
  ],
  [
    "grace period negative",
    { stopGraceSeconds: { worker: -5 } },
    "`utilitarian:stopGraceSeconds.worker` must be at least 0",
  ],
  ["registry without username", { registry: { server: "quay.io" } }, "`utilitarian:registry.username`"],
  [
    "sslmode unknown",
    { database: { sslmode: "on" } },
    "`utilitarian:database.sslmode` must be one of disable, allow, prefer, require, verify-ca, verify-full",
  ],

  // Hosts and addresses.
  [
    "external database host with a space",
    { database: { mode: "external", host: "db .example.com" } },
    "`utilitarian:database.host` must be a host name or IP address (letters, digits, dots, hyphens; IPv6 like 2001:db8::5); got 'db .example.com'. Set it with `pulumi config set --path utilitarian:database.host db.example.com`.",
  ],
  [
    "external database host with an underscore",
    { database: { mode: "external", host: "db_main" } },
    "`utilitarian:database.host` must be a host name or IP address",
  ],
  [
    "external database host as a URL",
    { database: { mode: "external", host: "postgres://db.example.com:5432" } },
    "got 'postgres://db.example.com:5432'",
  ],
  [
    "external database host on loopback",
    { database: { mode: "external", host: "127.0.0.1" } },
    "`utilitarian:database.host` is '127.0.0.1', which inside a container is the container itself",
  ],
  [
    "operator host with a trailing space",
    { database: { operatorHost: "127.0.0.1 " } },
    "`utilitarian:database.operatorHost` must be a host name or IP address (letters, digits, dots, hyphens; IPv6 like 2001:db8::5); got '127.0.0.1 '",
  ],
  [
    "operator host IPv4 octet above 255",
    { database: { operatorHost: "192.168.1.300" } },
    "`utilitarian:database.operatorHost` must be a host name or IP address",
  ],
  [
    "database port 0",
    { database: { mode: "external", host: "db.example.com", port: 0 } },
    "`utilitarian:database.port` must be a port, a whole number from 1 to 65535; got 0. Set it with `pulumi config set --path utilitarian:database.port 5432`.",
  ],
  [
    "operator port not whole",
    { database: { operatorPort: "15432.5" } },
    "`utilitarian:database.operatorPort` must be a port",
  ],
  [
    "managed database port taken by the API",
    { database: { operatorPort: 8000 } },
    "`utilitarian:database.operatorPort` is 8000, which api.port also publishes on 127.0.0.1",
  ],
  [
    "IPv4 publish address octet above 255",
    { api: { publishAddress: "10.0.0.256" } },
    "`utilitarian:api.publishAddress` must be an IP address of the Docker host to publish on: 127.0.0.1 (this host only), 0.0.0.0 (all IPv4 interfaces), ::1 or :: for IPv6; got '10.0.0.256'. Set it with `pulumi config set --path utilitarian:api.publishAddress 127.0.0.1`.",
  ],
  [
    "publish address with leading zeros",
    { api: { publishAddress: "127.000.000.001" } },
    "`utilitarian:api.publishAddress` must be an IP address",
  ],
  ["publish address IPv6 with a zone", { api: { publishAddress: "fe80::1%eth0" } }, "got 'fe80::1%eth0'"],
  [
    "UDP publish address as a host name",
    { udpServer: { version: "1.0.0", publishAddress: "localhost" } },
    "`utilitarian:udpServer.publishAddress` must be an IP address of the Docker host",
  ],
  [
    "UDP server network neither bridge nor host",
    { udpServer: { version: "1.0.0", network: "macvlan" } },
    "`utilitarian:udpServer.network` must be bridge or host",
  ],
  [
    "host network with a remapped UDP port",
    { udpServer: { version: "1.0.0", network: "host", port: 14059 } },
    "`utilitarian:udpServer.port` is 14059, but with udpServer.network host the DLMS UDP server binds the host's UDP 4059 itself and nothing maps it: set it to 4059",
  ],
  [
    "host network with a publish address",
    { udpServer: { version: "1.0.0", network: "host", publishAddress: "127.0.0.1" } },
    "`utilitarian:udpServer.publishAddress` is '127.0.0.1', but with udpServer.network host the DLMS UDP server binds every address of the host itself: remove it",
  ],
  [
    "host network: RabbitMQ's loopback port taken by the database",
    { udpServer: { version: "1.0.0", network: "host" }, rabbitmq: { loopbackPort: 15432 } },
    "`utilitarian:rabbitmq.loopbackPort` is 15432, which database.operatorPort also publishes on the Docker host's 127.0.0.1",
  ],
  [
    "RabbitMQ loopback port out of range",
    { rabbitmq: { loopbackPort: 0 } },
    "`utilitarian:rabbitmq.loopbackPort` must be a port, a whole number from 1 to 65535",
  ],
  [
    "UDP port out of range",
    { udpServer: { version: "1.0.0", port: 65536 } },
    "`utilitarian:udpServer.port` must be a port, a whole number from 1 to 65535; got 65536. Set it with `pulumi config set --path utilitarian:udpServer.port 4059`.",
  ],
  [
    "allowed host with a scheme",
    { api: { allowedHosts: ["https://utilitarian.example.net"] } },
    "`utilitarian:api.allowedHosts[0]` must be a host name (utilitarian.example.net), a subdomain wildcard (.example.net), an IPv4 address, an IPv6 address in brackets ([::1]) or * (no scheme, port or path: Django compares the host name alone); got 'https://utilitarian.example.net'. Set it with `pulumi config set --path 'utilitarian:api.allowedHosts[0]' utilitarian.example.net`.",
  ],
  [
    "allowed host with a port",
    { api: { allowedHosts: ["localhost", "utilitarian.example.net:8000"] } },
    "`utilitarian:api.allowedHosts[1]` must be a host name",
  ],
  ["allowed host bare IPv6", { api: { allowedHosts: ["::1"] } }, "(Django sees IPv6 hosts in brackets: write [::1])"],
  ["allowed host empty", { api: { allowedHosts: [""] } }, "`utilitarian:api.allowedHosts[0]` must be a host name"],

  // Docker engine, images, registry.
  [
    "docker host with a path",
    { dockerHost: "ssh://deploy@app1.example.net/var/run/docker.sock" },
    "`utilitarian:dockerHost` must be unix:///path/to/docker.sock, ssh://user@host[:port] or tcp://host:port; got 'ssh://deploy@app1.example.net/var/run/docker.sock'",
  ],
  [
    "docker host with a space in the host",
    { dockerHost: "ssh://deploy@app1 .example.net" },
    "`utilitarian:dockerHost` must be unix:///path/to/docker.sock",
  ],
  [
    "docker host tcp port out of range",
    { dockerHost: "tcp://docker.example.net:99999" },
    "with a port from 1 to 65535; got 'tcp://docker.example.net:99999'",
  ],
  [
    "docker host unix socket not absolute",
    { dockerHost: "unix://docker.sock" },
    "a unix socket needs an absolute path after unix:// (three slashes)",
  ],
  [
    "docker host with a password",
    { dockerHost: "ssh://deploy:hunter2@app1.example.net" },
    "`utilitarian:dockerHost` must not hold a password (it would be stored in plain text in the stack file)",
  ],
  [
    "image repository in upper case",
    { images: { poster: "quay.io/PWIT/utilitarian-poster" } },
    "`utilitarian:images.poster` must be an image repository (lower-case path components separated by /, optionally after a registry host[:port]/), like quay.io/pwit/utilitarian-poster; got 'quay.io/PWIT/utilitarian-poster'",
  ],
  [
    "image repository with a digest",
    {
      images: {
        udpServer:
          "quay.io/pwit/utilitarian-dlms-udp-server@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      },
    },
    "`utilitarian:images.udpServer` must be an image repository without a tag, like quay.io/pwit/utilitarian-dlms-udp-server (the tag comes from udpServer.version)",
  ],
  [
    "image repository with a space",
    { images: { processor: "quay.io/pwit/dlms processor" } },
    "`utilitarian:images.processor` must be an image repository",
  ],
  [
    "database image with a space",
    { database: { image: "postgres: 15" } },
    "`utilitarian:database.image` must be a Docker image reference like postgres:15",
  ],
  [
    "RabbitMQ image with a scheme",
    { rabbitmq: { image: "https://hub.docker.com/rabbitmq:3" } },
    "`utilitarian:rabbitmq.image` must be a Docker image reference like rabbitmq:3-management",
  ],
  ["proxy switched on with yes", { proxy: { enabled: "yes" } }, "`utilitarian:proxy.enabled` must be true or false"],
  [
    "proxy's Retry-After of 0",
    { proxy: { retryAfterSeconds: 0 } },
    "`utilitarian:proxy.retryAfterSeconds` must be at least 1",
  ],
  [
    "maintenance text on two lines",
    { proxy: { message: "Down for maintenance\nback soon" } },
    "`utilitarian:proxy.message` must be one line of text without control characters; it holds a line break at character 21",
  ],
  [
    "proxy image with a scheme",
    { proxy: { image: "https://hub.docker.com/haproxy:2.6" } },
    "`utilitarian:proxy.image` must be a Docker image reference like haproxy:2.6",
  ],
  [
    "registry server with a scheme",
    { registry: { server: "https://quay.io", username: "robot" } },
    "`utilitarian:registry.server` must be the registry's host name with an optional :port, without https:// or a path, like quay.io; got 'https://quay.io'",
  ],
  [
    "registry no image is pulled from",
    { registry: { server: "ghcr.io", username: "robot" } },
    "`utilitarian:registry.server` is 'ghcr.io', but no image is pulled from it (the images come from quay.io, docker.io); set it to the registry of the private images. Set it with `pulumi config set --path utilitarian:registry.server quay.io`.",
  ],
  [
    "registry username with a space",
    { registry: { username: "pwit robot" } },
    "`utilitarian:registry.username` must be the pull account's name, without spaces",
  ],

  // Names, environment, paths.
  [
    "prefix with a dot",
    { prefix: "utilitarian.prod" },
    "`utilitarian:prefix` must be lower case letters, digits and - (no underscores: names become host names), starting with a letter, not ending with -, at most 41 characters; got 'utilitarian.prod'. Set it with `pulumi config set --path utilitarian:prefix utilitarian-prod`.",
  ],
  [
    "worker name ending in a hyphen",
    { workers: [{ name: "amr-" }] },
    "`utilitarian:workers[0].name` must be lower case letters, digits and -",
  ],
  [
    "database admin user with a space",
    { database: { adminUser: "pg admin" } },
    "`utilitarian:database.adminUser` must be a PostgreSQL role name without spaces",
  ],
  [
    "env value with a line break",
    { api: { env: { UTILITARIAN_LOGLEVEL: "info\n" } } },
    "`utilitarian:api.env.UTILITARIAN_LOGLEVEL` must be one line of text without control characters; it holds a line break at character 5",
  ],
  [
    "edge env value with a NUL",
    { poster: { version: "1.0.0", env: { POSTER_CONSUME_FROM: "a\u0000b" } } },
    "`utilitarian:poster.env.POSTER_CONSUME_FROM` must be one line of text without control characters; it holds a control character at character 2",
  ],
  [
    "plain env that looks like a secret",
    { api: { env: { JWT_SIGNING_KEY: "not-so-secret" } } },
    "`utilitarian:api.env.JWT_SIGNING_KEY` looks like a secret, and plain config is stored unencrypted; move it",
  ],
  [
    "edge env the deployment sets",
    { processor: { version: "1.0.0", env: { UTILITARIAN_AUTH_TOKEN: "t" } } },
    "`utilitarian:processor.env.UTILITARIAN_AUTH_TOKEN` is set by the deployment itself (from the secret `utilitarian:edgeAuthToken`)",
  ],
  [
    "UDP application context with a line break",
    { udpServer: { version: "1.0.0", applicationContext: "acme\nelectricity" } },
    "`utilitarian:udpServer.applicationContext` must be one line of text",
  ],
  [
    "backup dir with ~",
    { backup: { dir: "~/backups" } },
    "`utilitarian:backup.dir` starts with ~, which is not expanded here",
  ],
  [
    "backup dir with a variable",
    { backup: { dir: "$HOME/backups" } },
    "`utilitarian:backup.dir` holds $, and variables are not expanded here",
  ],

  // restoreFrom must name a verified backup in backup.dir (test/unit/support/backups.ts).
  [
    "restoreFrom not a dump",
    { restoreFrom: "backups/before-upgrade.sql" },
    "`utilitarian:restoreFrom` must be latest or the path of a verified backup",
  ],
  [
    "restoreFrom outside backup.dir",
    { version: "1.0.0", backup: { dir: BACKUPS.dir }, restoreFrom: BACKUPS.outside },
    `\`utilitarian:restoreFrom\` is refused: ${BACKUPS.outside} is not inside backup.dir ${BACKUPS.dir}`,
  ],
  [
    "restoreFrom a missing file",
    {
      version: "1.0.0",
      backup: { dir: BACKUPS.dir },
      restoreFrom: path.join(BACKUPS.dir, "utilitarian-20240101T000000Z-1.0.0-to-1.1.0.dump"),
    },
    "utilitarian-20240101T000000Z-1.0.0-to-1.1.0.dump does not exist",
  ],
  [
    "restoreFrom without its checksum",
    { version: "1.4.0", backup: { dir: BACKUPS.dir }, restoreFrom: BACKUPS.withoutChecksum },
    "is not a verified backup: its checksum file utilitarian-20250106T030000Z-1.4.0-to-1.5.0.dump.sha256 is missing",
  ],
  [
    "restoreFrom without its manifest",
    { version: "1.3.0", backup: { dir: BACKUPS.dir }, restoreFrom: BACKUPS.withoutManifest },
    "is not a verified backup: its manifest utilitarian-20250105T030000Z-1.3.0-to-1.4.0.dump.json is missing",
  ],
  [
    "restoreFrom a file cut short",
    { version: "1.5.0", backup: { dir: BACKUPS.dir }, restoreFrom: BACKUPS.truncated },
    "but its manifest says 10000: the file changed or was cut short after it was verified",
  ],
  [
    "restoreFrom taken while another version ran",
    { version: "1.0.0", backup: { dir: BACKUPS.dir }, restoreFrom: BACKUPS.verified["1.1.0"] },
    "was taken while 1.1.0 ran, but `utilitarian:version` is 1.0.0",
  ],
  [
    "restoreFrom latest with no backup of the version",
    { version: "0.9.0", backup: { dir: BACKUPS.dir }, restoreFrom: "latest" },
    "latest means the newest backup taken while 0.9.0 ran (utilitarian-*-0.9.0-to-*.dump), and backup.dir",
  ],
  [
    "restoreFrom latest whose newest backup is unverified",
    { version: "1.3.0", backup: { dir: BACKUPS.dir }, restoreFrom: "latest" },
    "latest is utilitarian-20250105T030000Z-1.3.0-to-1.4.0.dump (the newest utilitarian-*-1.3.0-to-*.dump), which is not a verified backup: its manifest",
  ],
  [
    "restoreFrom with backup.dir missing",
    { version: "1.0.0", backup: { dir: path.join(BACKUPS.dir, "no-such-dir") }, restoreFrom: "latest" },
    "no-such-dir is not a directory here",
  ],
];
