import { z } from "zod";

/**
 * The stack configuration of a Utilitarian deployment, namespace `utilitarian`.
 *
 * Every key is validated here, with messages that name the fix; `config/load.ts` reports all
 * problems at once. Secrets are separate keys (see `SECRET_KEYS`) so that Pulumi encrypts each
 * of them and so that a plain-text value can be refused.
 */

const RELEASE = /^\d+\.\d+\.\d+([-.][0-9A-Za-z.-]+)?$/;
const NAME = /^[a-z][a-z0-9-]{0,40}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const QUEUE = /^[A-Za-z0-9_.-]+$/;
// registry[:port]/path, lower case; no ":tag" in the last segment (the tag comes from the version).
const REPOSITORY = /^([a-z0-9.-]+(:\d+)?\/)?[a-z0-9]+([._/-][a-z0-9]+)*$/;

const release = (key: string) =>
  z.string().regex(RELEASE, `must be a release tag like 1.2.0 (set \`utilitarian:${key}\` to the version to run)`);

const bool = z.preprocess(
  (v) => (v === "true" ? true : v === "false" ? false : v),
  z.boolean({ error: "must be true or false" }),
);

const int = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v)) ? Number(v) : v),
    z.number({ error: `must be a whole number from ${min} to ${max}` }).int(`must be a whole number from ${min} to ${max}`)
      .min(min, `must be at least ${min}`).max(max, `must be at most ${max}`),
  );

const port = int(1, 65535);

const ipAddress = z.string().regex(
  /^(\d{1,3}\.){3}\d{1,3}$|^\[?[0-9a-fA-F:]+\]?$/,
  "must be an IP address to publish on, like 127.0.0.1 (local only) or 0.0.0.0 (all interfaces)",
);

const repository = z.string().regex(
  REPOSITORY,
  "must be an image repository without a tag, like quay.io/pwit/utilitarian (the tag comes from the version)",
);

/** Extra environment for a container: plain values; secrets go in the matching secret key. */
const envMap = z.record(
  z.string().regex(ENV_NAME, "environment variable names must be UPPER_CASE letters, digits and _"),
  z.union([z.string(), z.number(), z.boolean()], { error: "must be a text, number or boolean value" }).transform(String),
);

const dockerHost = z.string().regex(
  /^(unix:\/\/\/.+|ssh:\/\/[^\s]+|tcp:\/\/[^\s]+)$/,
  "must be unix:///path/to/docker.sock, ssh://user@host or tcp://host:port",
);

const databaseSchema = z.strictObject({
  /** `managed`: a PostgreSQL container on the private network; `external`: a server you run. */
  mode: z.enum(["managed", "external"], { error: "must be managed or external" }).default("managed"),
  /** Image of the managed PostgreSQL container. */
  image: z.string().min(1).default("postgres:15"),
  /** Database the application uses. */
  name: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier like utilitarian").default("utilitarian"),
  /** Least-privilege role the application logs in as; it owns only its database. */
  user: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier like utilitarian").default("utilitarian"),
  /** Administrator used by the postgresql provider and for backups (CREATEDB for test restores). */
  adminUser: z.string().min(1).default("postgres"),
  /** Where the containers reach an external server. Required when mode is external. */
  host: z.string().min(1).optional(),
  /** Port of an external server as seen by the containers. */
  port: port.default(5432),
  /** Where this machine (the one running `pulumi up`) reaches the database. */
  operatorHost: z.string().min(1).optional(),
  /** Port this machine uses to reach the database; for a managed database, the port published on the Docker host's 127.0.0.1. */
  operatorPort: port.optional(),
  /** sslmode for this machine's connections (provider, backups). */
  sslmode: z.enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]).default("prefer"),
  /** false on managed services (RDS, Cloud SQL) where the admin is not a superuser. */
  superuser: bool.default(true),
});

const rabbitmqSchema = z.strictObject({
  mode: z.enum(["managed", "external"], { error: "must be managed or external" }).default("managed"),
  image: z.string().min(1).default("rabbitmq:3-management"),
  user: z.string().min(1).default("utilitarian"),
});

const apiSchema = z.strictObject({
  /** Port published for the API on the Docker host. */
  port: port.default(8000),
  /** Address the API port is published on. */
  publishAddress: ipAddress.default("127.0.0.1"),
  /** Django ALLOWED_HOSTS. */
  allowedHosts: z.array(z.string().min(1)).min(1, "must list at least one host name").default(["localhost", "127.0.0.1"]),
  /** Extra plain environment (UTILITARIAN_LOGLEVEL, DATA_RETENTION_DAYS, CORS_WHITELIST, ...). */
  env: envMap.default({}),
  /** How long the API may take to become healthy after a start, in seconds. */
  healthTimeoutSeconds: int(10, 3600).default(120),
});

const workerSchema = z.strictObject({
  /** Group name: becomes part of the container names. */
  name: z.string().regex(NAME, "must be lower case letters, digits and - (no underscores: names become host names)"),
  /** Celery queues this group consumes; empty means Celery's default queue. */
  queues: z.array(z.string().regex(QUEUE, "queue names may hold letters, digits, '.', '_' and '-'")).default([]),
  /** Celery --concurrency per container. */
  concurrency: int(1, 64).default(2),
  /** Number of containers in the group (the docs prefer more processes over higher concurrency). */
  count: int(1, 32).default(1),
});

const edgeSchema = (defaults: { enabled: boolean; dependsOnApi: boolean }) =>
  z.strictObject({
    enabled: bool.default(defaults.enabled),
    /**
     * Image tag of this edge service; required when enabled. Edge services have their own
     * releases, and following the API's version would restart them with every API upgrade.
     */
    version: z.string().regex(RELEASE, "must be a release tag like 1.2.0").optional(),
    /** true: stopped before the API and started after migrations during an API upgrade. */
    dependsOnApi: bool.default(defaults.dependsOnApi),
    env: envMap.default({}),
  });

const udpServerSchema = edgeSchema({ enabled: true, dependsOnApi: false }).extend({
  /** UDP port published for DLMS push messages. */
  port: port.default(4059),
  publishAddress: ipAddress.default("0.0.0.0"),
  applicationContext: z.string().min(1).default("default"),
});

const backupSchema = z.strictObject({
  /** Directory on this machine that holds the verified dumps. */
  dir: z.string().min(1).default("./backups"),
  /** How many verified dumps to keep. */
  keep: int(1, 1000).default(5),
  /** Restore each dump into a scratch database and compare row counts. */
  /**
   * Stop the asynchronous writers (beat, workers, and the processor and poster when they follow
   * the API) before the backup, so every reading the backup lacks still waits in RabbitMQ and a
   * rollback loses none; they are started again if the backup fails. Costs follower downtime
   * equal to the backup's duration.
   */
  stopWriters: bool.default(true),
  testRestore: bool.default(true),
  /** Free space required before dumping, in MiB; unset means estimated from the database size. */
  minFreeMb: int(0, 10_000_000).optional(),
});

const graceSchema = z.strictObject({
  api: int(0, 3600).default(30),
  beat: int(0, 3600).default(10),
  worker: int(0, 3600).default(60),
  edge: int(0, 3600).default(15),
});

export const settingsSchema = z
  .strictObject({
    version: release("version"),
    /** Name prefix of containers, network and volumes; defaults to `utilitarian-<stack>`. */
    prefix: z.string().regex(NAME, "must be lower case letters, digits and - (no underscores)").optional(),
    dockerHost: dockerHost.optional(),
    images: z.strictObject({
      api: repository.default("quay.io/pwit/utilitarian"),
      processor: repository.default("quay.io/pwit/utilitarian-dlms-processor"),
      poster: repository.default("quay.io/pwit/utilitarian-poster"),
      udpServer: repository.default("quay.io/pwit/utilitarian-dlms-udp-server"),
    }).default({
      api: "quay.io/pwit/utilitarian",
      processor: "quay.io/pwit/utilitarian-dlms-processor",
      poster: "quay.io/pwit/utilitarian-poster",
      udpServer: "quay.io/pwit/utilitarian-dlms-udp-server",
    }),
    registry: z.strictObject({
      server: z.string().min(1).default("quay.io"),
      username: z.string().min(1, "must name the pull account"),
    }).optional(),
    database: databaseSchema.default(databaseSchema.parse({})),
    rabbitmq: rabbitmqSchema.default(rabbitmqSchema.parse({})),
    api: apiSchema.default(apiSchema.parse({})),
    beat: z.strictObject({ enabled: bool.default(true) }).default({ enabled: true }),
    workers: z.array(workerSchema).default([{ name: "default", queues: [], concurrency: 2, count: 1 }]),
    processor: edgeSchema({ enabled: true, dependsOnApi: true }).default(edgeSchema({ enabled: true, dependsOnApi: true }).parse({})),
    poster: edgeSchema({ enabled: true, dependsOnApi: true }).default(edgeSchema({ enabled: true, dependsOnApi: true }).parse({})),
    udpServer: udpServerSchema.default(udpServerSchema.parse({})),
    backup: backupSchema.default(backupSchema.parse({})),
    stopGraceSeconds: graceSchema.default(graceSchema.parse({})),
    /** Rollback only: the verified backup to restore while going back to an older version. */
    restoreFrom: z.string().min(1).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.database.mode === "external" && !s.database.host) {
      ctx.addIssue({ code: "custom", path: ["database", "host"], message: "is required when database.mode is external (the host the containers reach the server at)" });
    }
    for (const role of ["processor", "poster", "udpServer"] as const) {
      if (s[role].enabled && !s[role].version) {
        ctx.addIssue({ code: "custom", path: [role, "version"], message: `is required while ${role} is enabled: the release of this edge service, like 1.0.0; set it with \`pulumi config set --path utilitarian:${role}.version 1.0.0\` or disable it with \`--path utilitarian:${role}.enabled false\`` });
      }
    }
    const names = s.workers.map((w) => w.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) {
      ctx.addIssue({ code: "custom", path: ["workers"], message: `has two groups named '${dup}'; give each worker group its own name` });
    }
    if (s.udpServer.enabled && s.udpServer.port === s.api.port && s.udpServer.publishAddress === s.api.publishAddress) {
      // Different protocols, but one number for two services is almost always a typo.
      ctx.addIssue({ code: "custom", path: ["udpServer", "port"], message: `equals api.port (${s.api.port}); choose another port` });
    }
  });

export type Settings = z.infer<typeof settingsSchema>;
export type WorkerGroup = Settings["workers"][number];
export type EdgeSettings = Settings["processor"];
export type UdpServerSettings = Settings["udpServer"];

/**
 * Secret keys, each set with `pulumi config set --secret`. `when` says when a key is required.
 */
export const SECRET_KEYS = {
  secretKey: { when: () => true, what: "Django SECRET_KEY (about 50 random characters)" },
  databasePassword: { when: () => true, what: "password of the application's database role" },
  databaseAdminPassword: { when: () => true, what: "password of database.adminUser (provider, backups)" },
  rabbitmqPassword: { when: (s: Settings) => s.rabbitmq.mode === "managed", what: "password of the managed RabbitMQ user" },
  rabbitmqUrl: { when: (s: Settings) => s.rabbitmq.mode === "external", what: "amqp://user:password@host:5672/vhost of the external RabbitMQ" },
  edgeAuthToken: {
    when: (s: Settings) => (s.processor.enabled && s.processor.dependsOnApi) || (s.poster.enabled && s.poster.dependsOnApi),
    what: "API token the DLMS processor and poster present (create it in Utilitarian's admin)",
  },
  registryPassword: { when: (s: Settings) => s.registry !== undefined, what: "password of registry.username" },
  apiSecretEnv: { when: () => false, what: "extra secret environment for API, beat and workers, as a map (e.g. JWT_SIGNING_KEY)" },
} as const;

export type SecretKey = keyof typeof SECRET_KEYS;
/** Secret values after validation: the always-required ones are present. */
export type Secrets = Record<"secretKey" | "databasePassword" | "databaseAdminPassword", string> &
  Partial<Record<"rabbitmqPassword" | "rabbitmqUrl" | "edgeAuthToken" | "registryPassword", string>> & { apiSecretEnv?: Record<string, string> };
