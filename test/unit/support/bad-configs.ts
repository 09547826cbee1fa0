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
  ["external database without host", { database: { mode: "external" } }, "`utilitarian:database.host` is required when database.mode is external"],
  ["database name with a dash", { database: { name: "my-db" } }, "`utilitarian:database.name` must be a lower-case SQL identifier"],
  ["port out of range", { api: { port: 70000 } }, "`utilitarian:api.port` must be at most 65535"],
  ["port not a number", { api: { port: "eighty" } }, "`utilitarian:api.port` must be a whole number from 1 to 65535"],
  ["publish address not an IP", { api: { publishAddress: "localhost" } }, "`utilitarian:api.publishAddress` must be an IP address"],
  ["worker name with underscore", { workers: [{ name: "amr_fast" }] }, "`utilitarian:workers[0].name` must be lower case letters, digits and - (no underscores"],
  ["worker concurrency 0", { workers: [{ name: "a", concurrency: 0 }] }, "`utilitarian:workers[0].concurrency` must be at least 1"],
  ["worker count not whole", { workers: [{ name: "a", count: 1.5 }] }, "`utilitarian:workers[0].count` must be a whole number"],
  ["two worker groups with one name", { workers: [{ name: "a" }, { name: "a" }] }, "`utilitarian:workers` has two groups named 'a'"],
  ["bad queue name", { workers: [{ name: "a", queues: ["bad queue"] }] }, "`utilitarian:workers[0].queues[0]` queue names may hold"],
  ["edge version malformed", { poster: { version: "new" } }, "`utilitarian:poster.version` must be a release tag"],
  ["enabled edge without its version", { udpServer: { port: 4060 } }, "`utilitarian:udpServer.version` is required while udpServer is enabled"],
  ["boolean as word", { beat: { enabled: "yes" } }, "`utilitarian:beat.enabled` must be true or false"],
  ["image with tag", { images: { api: "quay.io/pwit/utilitarian:1.0.0" } }, "`utilitarian:images.api` must be an image repository without a tag"],
  ["docker host scheme", { dockerHost: "docker.example.com" }, "`utilitarian:dockerHost` must be unix:///path/to/docker.sock, ssh://user@host"],
  ["backup keep 0", { backup: { keep: 0 } }, "`utilitarian:backup.keep` must be at least 1"],
  ["env var name lower case", { api: { env: { debug: "1" } } }, "`utilitarian:api.env.debug` environment variable names must be UPPER_CASE"],
  ["reserved env var", { api: { env: { DATABASE_URL: "postgres://x" } } }, "`utilitarian:api.env.DATABASE_URL` is set by the deployment itself"],
  ["UDP port equals API port", { udpServer: { port: 8000 }, api: { publishAddress: "0.0.0.0" } }, "`utilitarian:udpServer.port` equals api.port"],
  ["grace period negative", { stopGraceSeconds: { worker: -5 } }, "`utilitarian:stopGraceSeconds.worker` must be at least 0"],
  ["registry without username", { registry: { server: "quay.io" } }, "`utilitarian:registry.username`"],
  ["sslmode unknown", { database: { sslmode: "on" } }, "`utilitarian:database.sslmode`"],
];
