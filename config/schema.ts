import { z } from "zod";
import {
  allowedHost, dnsName, dockerHost, hostOrAddress, imageReference, imageRepository, normalizeRegistry, pathProblem, port,
  publishAddress, REGISTRY_HOST, registryOf, registryServer, roleName, shown, text, textProblem,
} from "./values";

/**
 * The stack configuration of a Utilitarian deployment, namespace `utilitarian`.
 *
 * Every key is validated here, with messages that name the fix; `config/load.ts` reports all
 * problems at once. Secrets are separate keys (see `SECRET_KEYS`) so that Pulumi encrypts each
 * of them and so that a plain-text value can be refused.
 */

const RELEASE = /^\d+\.\d+\.\d+([-.][0-9A-Za-z.-]+)?$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const QUEUE = /^[A-Za-z0-9_.-]+$/;

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

/** Extra environment for a container: plain values, one line each; secrets go in the matching secret key. */
const envMap = z.record(
  z.string().regex(ENV_NAME, "environment variable names must be UPPER_CASE letters, digits and _"),
  z.union([z.string(), z.number(), z.boolean()], { error: "must be a text, number or boolean value" }).transform(String)
    .superRefine((value, ctx) => {
      const problem = textProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem, params: { example: "..." } });
    }),
);

/** Plain env names that hold secrets by their look: those belong in an encrypted key. */
export const SECRET_LIKE_ENV = /(^|_)(PASSWORD|PASSWD|PASS|SECRET|TOKEN|KEY|CREDENTIALS?)$/;
/** Edge env the deployment sets itself (`components/environment.ts`): a user's value would be overwritten. */
const EDGE_RESERVED_ENV: Record<"processor" | "poster" | "udpServer", Record<string, string>> = {
  processor: { AMQP_CONNECTION_STRING: "set from the broker", UTILITARIAN_BASE_URL: "the API's container", UTILITARIAN_AUTH_TOKEN: "the secret `utilitarian:edgeAuthToken`" },
  poster: { AMQP_CONNECTION_STRING: "set from the broker", UTILITARIAN_BASE_URL: "the API's container", UTILITARIAN_AUTH_TOKEN: "the secret `utilitarian:edgeAuthToken`" },
  udpServer: { AMQP_CONNECTION_STRING: "set from the broker", UTILITARIAN_APPLICATION_CONTEXT: "`utilitarian:udpServer.applicationContext`" },
};

const databaseSchema = z.strictObject({
  /** `managed`: a PostgreSQL container on the private network; `external`: a server you run. */
  mode: z.enum(["managed", "external"], { error: "must be managed or external" }).default("managed"),
  /** Image of the managed PostgreSQL container. */
  image: imageReference("postgres:15").default("postgres:15"),
  /** Database the application uses. */
  name: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier like utilitarian").default("utilitarian"),
  /** Least-privilege role the application logs in as; it owns only its database. */
  user: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier like utilitarian").default("utilitarian"),
  /** Administrator used by the postgresql provider and for backups (CREATEDB for test restores). */
  adminUser: roleName("postgres").default("postgres"),
  /** Where the containers reach an external server. Required when mode is external. */
  host: hostOrAddress("db.example.com", { fromContainers: true }).optional(),
  /** Port of an external server as seen by the containers. */
  port: port(5432).default(5432),
  /** Where this machine (the one running `pulumi up`) reaches the database. */
  operatorHost: hostOrAddress("127.0.0.1").optional(),
  /** Port this machine uses to reach the database; for a managed database, the port published on the Docker host's 127.0.0.1. */
  operatorPort: port(15432).optional(),
  /** sslmode for this machine's connections (provider, backups). */
  sslmode: z.enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], { error: "must be one of disable, allow, prefer, require, verify-ca, verify-full" }).default("prefer"),
  /** false on managed services (RDS, Cloud SQL) where the admin is not a superuser. */
  superuser: bool.default(true),
});

const rabbitmqSchema = z.strictObject({
  mode: z.enum(["managed", "external"], { error: "must be managed or external" }).default("managed"),
  image: imageReference("rabbitmq:3-management").default("rabbitmq:3-management"),
  user: text("utilitarian").default("utilitarian"),
});

const apiSchema = z.strictObject({
  /** Port published for the API on the Docker host. */
  port: port(8000).default(8000),
  /** Address the API port is published on. */
  publishAddress: publishAddress("127.0.0.1").default("127.0.0.1"),
  /** Django ALLOWED_HOSTS. */
  allowedHosts: z.array(allowedHost).min(1, "must list at least one host name").default(["localhost", "127.0.0.1"]),
  /** Extra plain environment (UTILITARIAN_LOGLEVEL, DATA_RETENTION_DAYS, CORS_WHITELIST, ...). */
  env: envMap.default({}),
  /** How long the API may take to become healthy after a start, in seconds. */
  healthTimeoutSeconds: int(10, 3600).default(120),
});

const workerSchema = z.strictObject({
  /** Group name: becomes part of the container names. */
  name: dnsName("default"),
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
  port: port(4059).default(4059),
  publishAddress: publishAddress("0.0.0.0").default("0.0.0.0"),
  applicationContext: text("default").default("default"),
});

const backupSchema = z.strictObject({
  /** Directory on this machine that holds the verified dumps. */
  dir: z.string().min(1).default("./backups"),
  /** How many verified dumps to keep. */
  keep: int(1, 1000).default(5),
  /** Restore each dump into a scratch database and compare row counts. */
  testRestore: bool.default(true),
  /** Free space required before dumping, in MiB; unset means estimated from the database size. */
  minFreeMb: int(0, 10_000_000).optional(),
  /**
   * Stop the asynchronous writers (beat, workers, and the processor and poster when they follow
   * the API) before the backup, so every reading the backup lacks still waits in RabbitMQ and a
   * rollback loses none; they are started again if the backup fails. Costs follower downtime
   * equal to the backup's duration.
   */
  stopWriters: bool.default(true),
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
    prefix: dnsName("utilitarian-prod").optional(),
    dockerHost: dockerHost.optional(),
    images: z.strictObject({
      api: imageRepository("quay.io/pwit/utilitarian", "utilitarian:version").default("quay.io/pwit/utilitarian"),
      processor: imageRepository("quay.io/pwit/utilitarian-dlms-processor", "processor.version").default("quay.io/pwit/utilitarian-dlms-processor"),
      poster: imageRepository("quay.io/pwit/utilitarian-poster", "poster.version").default("quay.io/pwit/utilitarian-poster"),
      udpServer: imageRepository("quay.io/pwit/utilitarian-dlms-udp-server", "udpServer.version").default("quay.io/pwit/utilitarian-dlms-udp-server"),
    }).default({
      api: "quay.io/pwit/utilitarian",
      processor: "quay.io/pwit/utilitarian-dlms-processor",
      poster: "quay.io/pwit/utilitarian-poster",
      udpServer: "quay.io/pwit/utilitarian-dlms-udp-server",
    }),
    registry: z.strictObject({
      server: registryServer.default("quay.io"),
      username: z.string({ error: "must name the pull account" }).min(1, "must name the pull account").superRefine((value, ctx) => {
        if (/[\s\u0000-\u001f\u007f]/.test(value)) ctx.addIssue({ code: "custom", message: "must be the pull account's name, without spaces or control characters", params: { example: "pwit+acme_pull" } });
      }),
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
    restoreFrom: z.string().superRefine((value, ctx) => {
      // Whether it names a verified backup is checked against backup.dir by config/backups.ts.
      const problem = value === "latest" ? undefined : pathProblem(value) ?? (value.endsWith(".dump") ? undefined
        : `must be latest or the path of a verified backup, a utilitarian-<time>-<from>-to-<to>.dump file in backup.dir; got ${shown(value)}`);
      if (problem) ctx.addIssue({ code: "custom", message: problem, params: { example: "latest" } });
    }).optional(),
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
    crossFieldProblems(s, ctx);
  });

/** Rules between settings, and for keys whose own block is kept free of them (backup). */
function crossFieldProblems(s: Settings, ctx: z.RefinementCtx): void {
  // backup.dir and restoreFrom are paths on this machine, passed to the scripts as given.
  const dirProblem = pathProblem(s.backup.dir);
  if (dirProblem) ctx.addIssue({ code: "custom", path: ["backup", "dir"], message: dirProblem, params: { example: "./backups" } });

  // The managed database is published on the Docker host's 127.0.0.1: the API must not take its port there.
  const dbPort = s.database.operatorPort ?? 15432;
  if (s.database.mode === "managed" && dbPort === s.api.port && ["127.0.0.1", "0.0.0.0"].includes(s.api.publishAddress)) {
    ctx.addIssue({
      code: "custom", path: ["database", "operatorPort"], params: { example: "15432" },
      message: `is ${dbPort}, which api.port also publishes on ${s.api.publishAddress}; the managed database is published on the Docker host's 127.0.0.1:${dbPort}, so the two would collide: choose another port for one of them`,
    });
  }

  if (s.registry && REGISTRY_HOST.test(s.registry.server)) {
    // The Docker provider hands the credentials only to pulls from this registry.
    const images = [s.images.api, s.images.processor, s.images.poster, s.images.udpServer,
      ...(s.database.mode === "managed" ? [s.database.image] : []), ...(s.rabbitmq.mode === "managed" ? [s.rabbitmq.image] : [])];
    const registries = [...new Set(images.map(registryOf))];
    if (!registries.includes(normalizeRegistry(s.registry.server))) {
      ctx.addIssue({
        code: "custom", path: ["registry", "server"], params: { example: registries[0] },
        message: `is ${shown(s.registry.server)}, but no image is pulled from it (the images come from ${registries.join(", ")}); set it to the registry of the private images`,
      });
    }
  }

  for (const name of Object.keys(s.api.env)) {
    if (SECRET_LIKE_ENV.test(name) && name !== "SECRET_KEY") {
      ctx.addIssue({
        code: "custom", path: ["api", "env", name],
        message: `looks like a secret, and plain config is stored unencrypted; move it: \`pulumi config rm --path utilitarian:api.env.${name}\`, then \`pulumi config set --secret --path 'utilitarian:apiSecretEnv.${name}' ...\``,
      });
    }
  }
  for (const role of ["processor", "poster", "udpServer"] as const) {
    for (const [name, source] of Object.entries(EDGE_RESERVED_ENV[role])) {
      if (name in s[role].env) {
        ctx.addIssue({ code: "custom", path: [role, "env", name], message: `is set by the deployment itself (from ${source}); remove it with \`pulumi config rm --path utilitarian:${role}.env.${name}\`` });
      }
    }
  }
}

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
