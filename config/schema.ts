import { z } from "zod";
import {
  EDGE_ROLES,
  edgeSettingsOf,
  KINDS,
  type EdgeRole,
  type GraceKey,
  type SecretKey as KindSecretKey,
  type WorkerGroup as KindWorkerGroup,
} from "../components/kinds";
import { refuse } from "./issues";
import type { Naming } from "./naming";
import { swarmProblems, swarmSchema, targetSchema } from "./swarm";
import {
  allowedHost,
  bool,
  dnsName,
  dockerHost,
  hostOrAddress,
  imageReference,
  imageRepository,
  int,
  normalizeRegistry,
  pathProblem,
  port,
  publishAddress,
  REGISTRY_HOST,
  registryOf,
  registryServer,
  roleName,
  shown,
  text,
  textProblem,
} from "./values";

/**
 * The stack configuration of a Utilitarian deployment, namespace `utilitarian`.
 *
 * Every key is validated here, with messages that name the fix; `config/load.ts` reports all
 * problems at once. Secrets are separate keys (see `SECRET_KEYS`) so that Pulumi encrypts each
 * of them and so that a plain-text value can be refused.
 *
 * Every key carries its description as zod metadata (`.meta({ description })`: one sentence
 * ending with what is allowed; `whenUnset` says what an optional key without a default means).
 * The README's configuration reference is generated from it by `npm run docs`
 * (config/reference.ts), and `z.toJSONSchema` hands it to editors, so it is written only here.
 */

const IMAGE_REPOSITORY =
  "an image repository as Docker parses it (lower-case path components, optionally after `registry[:port]/`), without tag or digest";

const RELEASE = /^\d+\.\d+\.\d+([-.][0-9A-Za-z.-]+)?$/;
export const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const QUEUE = /^[A-Za-z0-9_.-]+$/;

const release = (key: string) =>
  z.string().superRefine((value, ctx) => {
    if (!RELEASE.test(value))
      refuse(ctx, (n) => `must be a release tag like 1.2.0 (set ${n.name(key)} to the version to run)`);
  });

/** Extra environment for a container: plain values, one line each; secrets go in the matching secret key. */
const envMap = z.record(
  z.string().regex(ENV_NAME, "environment variable names must be UPPER_CASE letters, digits and _"),
  z
    .union([z.string(), z.number(), z.boolean()], { error: "must be a text, number or boolean value" })
    .transform(String)
    .superRefine((value, ctx) => {
      const problem = textProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem, params: { example: "..." } });
    }),
);

/** Plain env names that hold secrets by their look: those belong in an encrypted key. */
export const SECRET_LIKE_ENV = /(^|_)(PASSWORD|PASSWD|PASS|SECRET|TOKEN|KEY|CREDENTIALS?)$/;
/** `A`, `B` and `C`, as the descriptions list names. */
const codeList = (names: string[]) =>
  names
    .map((n) => `\`${n}\``)
    .join(", ")
    .replace(/, ([^,]*)$/, " and $1");

/** The settings blocks with an `env`: their values reach container environments only. */
export type EnvHolder = "api" | EdgeRole;
export const ENV_HOLDERS: readonly EnvHolder[] = ["api", ...EDGE_ROLES];

const fromTheBroker = () => "the broker";
const callingTheApi = {
  UTILITARIAN_BASE_URL: () => "the API's container",
  UTILITARIAN_AUTH_TOKEN: (n: Naming) => `the secret ${n.name("secrets.edgeAuthToken")}`,
};
/** What an edge kind's own `environment` (components/kinds.ts) sets, by the setting it comes from. */
const EDGE_OWN_ENV: Partial<Record<EdgeRole, Record<string, (n: Naming) => string>>> = {
  udpServer: { UTILITARIAN_APPLICATION_CONTEXT: (n) => n.name("udpServer.applicationContext") },
};
/** An edge service's: the broker's URL, the API's URL and token when it calls the API, and its kind's own. */
const edgeReservedEnv = (role: EdgeRole): Record<string, (n: Naming) => string> => ({
  AMQP_CONNECTION_STRING: fromTheBroker,
  ...(KINDS[role].callsApi ? callingTheApi : {}),
  ...EDGE_OWN_ENV[role],
});
/**
 * Environment the deployment sets itself (components/environment.ts), by the block whose `env`
 * would carry it: a user's value would be overwritten without a word, so it is refused, naming
 * where the value comes from. `apiSecretEnv` shares the API's (config/validate.ts).
 */
export const RESERVED_ENV: Record<EnvHolder, Record<string, (n: Naming) => string>> = {
  api: {
    DATABASE_URL: (n) => `the database settings and the secret ${n.name("secrets.databasePassword")}`,
    SECRET_KEY: (n) => `the secret ${n.name("secrets.secretKey")}`,
    AMQP_CONNECTION_STRING: fromTheBroker,
    ALLOWED_HOSTS: (n) => n.name("api.allowedHosts"),
  },
  ...(Object.fromEntries(EDGE_ROLES.map((role) => [role, edgeReservedEnv(role)])) as Record<
    EdgeRole,
    Record<string, (n: Naming) => string>
  >),
};

/** The refusal of an env name the deployment sets itself, for `api.env.X` or `secrets.apiSecretEnv.X`. */
export const reservedEnvRefusal = (path: string, source: (n: Naming) => string) => (n: Naming) =>
  `is set by the deployment itself (from ${source(n)}); remove it (${n.remove(path)})`;

const SQL_IDENTIFIER =
  "a lower-case SQL identifier of letters, digits and `_`, not starting with a digit, at most 63 characters";

const databaseSchema = z.strictObject({
  mode: z.enum(["managed", "external"], { error: "must be managed or external" }).default("managed").meta({
    description:
      "Where PostgreSQL runs: `managed` (a container on the deployment's private network) or `external` (a server you run).",
  }),
  image: imageReference("postgres:15").default("postgres:15").meta({
    description:
      "Image of the managed PostgreSQL container: a Docker image reference, tag allowed, like `postgres:15`.",
  }),
  name: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier like utilitarian")
    .default("utilitarian")
    .meta({
      description: `Database the application uses: ${SQL_IDENTIFIER}.`,
    }),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier like utilitarian")
    .default("utilitarian")
    .meta({
      description: `Least-privilege role the application logs in as, owner of its database and nothing else (password: secret \`databasePassword\`): ${SQL_IDENTIFIER}.`,
    }),
  adminUser: roleName("postgres").default("postgres").meta({
    description:
      "Administrator the postgresql provider, the backups and the restores log in as, with CREATEDB for the test restores (password: secret `databaseAdminPassword`): a PostgreSQL role name without spaces or control characters, at most 63 characters.",
  }),
  host: hostOrAddress("db.example.com", { fromContainers: true }).optional().meta({
    description:
      "Where the containers reach an external server: a host name or IP address (IPv6 bare or in brackets), not `localhost` or a loopback address, which in a container is the container itself.",
    whenUnset: "required when `database.mode` is `external`",
  }),
  port: port(5432).default(5432).meta({
    description: "Port of an external server as the containers reach it: a whole number from 1 to 65535.",
  }),
  operatorHost: hostOrAddress("127.0.0.1").optional().meta({
    description:
      "Where this machine (the one running `pulumi up`) reaches the database for the postgresql provider, backups and restores: a host name or IP address.",
    whenUnset: "`127.0.0.1` (managed), `database.host` (external)",
  }),
  operatorPort: port(15432).optional().meta({
    description:
      "Port this machine reaches the database at; for a managed database, the port published on the Docker host's `127.0.0.1`: a whole number from 1 to 65535, for a managed database not `api.port` when the API is published on `127.0.0.1` or `0.0.0.0`.",
    whenUnset: "`15432` (managed), `database.port` (external)",
  }),
  sslmode: z
    .enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], {
      error: "must be one of disable, allow, prefer, require, verify-ca, verify-full",
    })
    .default("prefer")
    .meta({
      description:
        "libpq sslmode of this machine's connections (postgresql provider, backups, restores): `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`.",
    }),
  superuser: bool.default(true).meta({
    description:
      "Whether `database.adminUser` is a PostgreSQL superuser, as the postgresql provider must know: `true`, or `false` on managed services (RDS, Cloud SQL) where the administrator is not one.",
  }),
});

const rabbitmqSchema = z.strictObject({
  mode: z.enum(["managed", "external"], { error: "must be managed or external" }).default("managed").meta({
    description:
      "Where RabbitMQ runs: `managed` (a container on the private network; password: secret `rabbitmqPassword`) or `external` (its URL: secret `rabbitmqUrl`).",
  }),
  image: imageReference("rabbitmq:3-management").default("rabbitmq:3-management").meta({
    description:
      "Image of the managed RabbitMQ container: a Docker image reference, tag allowed, like `rabbitmq:3-management`.",
  }),
  user: text("utilitarian").default("utilitarian").meta({
    description:
      "User the services log in to the managed RabbitMQ as: one line of text, not empty, without leading or trailing spaces.",
  }),
  loopbackPort: port(5672).default(5672).meta({
    description:
      "Port the managed RabbitMQ's AMQP listener is published on, on the Docker host's `127.0.0.1`, when `udpServer.network` is `host` (the UDP server then reaches RabbitMQ there; otherwise RabbitMQ publishes no port): a whole number from 1 to 65535, not `api.port` or a managed database's `database.operatorPort`.",
  }),
});

const PUBLISH_ADDRESSES =
  "an IPv4 or IPv6 address of the Docker host, like `127.0.0.1` (this host only), `0.0.0.0` (all IPv4 interfaces), `::1` or `::` (brackets allowed)";

const apiSchema = z.strictObject({
  port: port(8000).default(8000).meta({
    description:
      "Port clients reach the API at on the Docker host: the maintenance proxy's, published in the API's place (with `proxy.enabled`, the default), or the API's own (with the proxy off): a whole number from 1 to 65535.",
  }),
  publishAddress: publishAddress("127.0.0.1")
    .default("127.0.0.1")
    .meta({
      description: `Address that port is published on (the maintenance proxy's with \`proxy.enabled\`, the default; the API's with the proxy off): ${PUBLISH_ADDRESSES}.`,
    }),
  allowedHosts: z
    .array(allowedHost)
    .min(1, "must list at least one host name")
    .default(["localhost", "127.0.0.1"])
    .meta({
      description:
        "Django `ALLOWED_HOSTS`, to which the deployment adds the API's container name and its alias `api` (the edge services call it by them): at least one entry, each a host name, a subdomain wildcard like `.example.net`, an IPv4 address, an IPv6 address in brackets (`[::1]`) or `*`, without scheme or port.",
    }),
  env: envMap.default({}).meta({
    description: `Extra plain environment of the API, beat and workers (\`UTILITARIAN_LOGLEVEL\`, \`DATA_RETENTION_DAYS\`, \`CORS_WHITELIST\`, ...): UPPER_CASE names with one-line values, except ${codeList(Object.keys(RESERVED_ENV.api))}, which the deployment sets, and names ending in \`_KEY\`, \`_PASSWORD\`, \`_PASSWD\`, \`_PASS\`, \`_SECRET\`, \`_TOKEN\` or \`_CREDENTIALS\`, which belong in the secret \`apiSecretEnv\`.`,
  }),
  healthTimeoutSeconds: int(10, 3600).default(120).meta({
    description: "How long the API may take to start and become healthy, in seconds: a whole number from 10 to 3600.",
  }),
});

const proxySchema = z.strictObject({
  enabled: bool.default(true).meta({
    description:
      "Whether the maintenance proxy runs in front of the API, published at `api.port` on `api.publishAddress` in the API's place (the API is then on the private network only), answering `503 Service Unavailable` with `Retry-After` and a maintenance page (JSON for clients that ask for it) while the API's `/_health/` fails, as during an upgrade, and passing every request through otherwise; turning it on or off replaces the API and its followers, a short outage (an existing stack that does not set it gets the proxy on its first run of a version with this default: set it to `false` to keep the API published itself): `true` or `false`.",
  }),
  image: imageReference("haproxy:2.6").default("haproxy:2.6").meta({
    description:
      "Image of the maintenance proxy, which needs `haproxy` 2.6 or newer and `sh` on its PATH (the deployment writes HAProxy's configuration itself): a Docker image reference, tag allowed, like `haproxy:2.6`.",
  }),
  retryAfterSeconds: int(1, 86400).default(30).meta({
    description:
      "The maintenance answer's `Retry-After`, in seconds after which a client should try again: a whole number from 1 to 86400.",
  }),
  message: text("Utilitarian is being upgraded and will be back in a few minutes.")
    .default("Utilitarian is down for maintenance and will be back shortly.")
    .meta({
      description:
        "The text of the maintenance page, shown as plain text (HTML is escaped) and as `detail` in the JSON answer: one line of text, not empty, without leading or trailing spaces.",
    }),
});

const DNS_NAME =
  "lower-case letters, digits and `-` (no `_`: names become host names), starting with a letter, not ending with `-`, at most 41 characters";

const workerSchema = z.strictObject({
  name: dnsName("default").meta({
    description: `Name of the group, part of its container names: ${DNS_NAME}, different for each group.`,
    whenUnset: "required",
  }),
  queues: z.array(z.string().regex(QUEUE, "queue names may hold letters, digits, '.', '_' and '-'")).default([]).meta({
    description:
      "Celery queues the group consumes, none meaning Celery's default queue: queue names of letters, digits, `.`, `_` and `-`.",
  }),
  concurrency: int(1, 64).default(2).meta({
    description: "Celery `--concurrency` of each container of the group: a whole number from 1 to 64.",
  }),
  count: int(1, 32).default(1).meta({
    description:
      "Number of containers in the group (the vendor's docs prefer more processes to a higher concurrency): a whole number from 1 to 32.",
  }),
});

const title = (role: EdgeRole) => edgeSettingsOf(role).title;
const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** The keys every edge service has, with its kind's defaults (components/kinds.ts, `settings`). */
const edgeSchema = (role: EdgeRole) =>
  z.strictObject({
    enabled: bool.default(edgeSettingsOf(role).enabled).meta({
      description: `Whether ${title(role)} runs: \`true\` or \`false\`.`,
    }),
    version: z
      .string()
      .regex(RELEASE, "must be a release tag like 1.2.0")
      .optional()
      .meta({
        description: `Release of ${title(role)}, the tag of its image, changed only to upgrade it (edge services have their own releases; following the API's version would restart them with every API upgrade): a release tag like \`1.0.0\`.`,
        whenUnset: `required while \`${role}.enabled\``,
      }),
    dependsOnApi: bool.default(edgeSettingsOf(role).dependsOnApi).meta({
      description: `Whether ${title(role)} follows the API, stopped before it and started after the migrations during an API upgrade: \`true\` or \`false\`.`,
    }),
    env: envMap.default({}).meta({
      description: `Extra plain environment of ${title(role)}: UPPER_CASE names with one-line values, except ${codeList(Object.keys(RESERVED_ENV[role]))}, which the deployment sets.`,
    }),
  });

const udpServerSchema = edgeSchema("udpServer").extend({
  // README, failure guide: a restarting Docker daemon flushes its NAT rules before it restores the
  // port mappings; meters' datagrams that arrive in that moment are lost on `bridge`, not on `host`.
  network: z.enum(["bridge", "host"], { error: "must be bridge or host" }).default("bridge").meta({
    description:
      "Where the DLMS UDP server's socket lives, since a restarting Docker daemon drops published ports for a moment (measured, `npm run bench:daemon-restart`: 116 to 143 of 5,000 datagrams sent at 500/s across a restart lost on `bridge`, none on `host`, in 4 runs) and switching replaces the UDP server and a managed RabbitMQ (do it in a maintenance window): `bridge` (the private network, its port published by Docker) or `host` (the Docker host's own network on UDP 4059, with a managed RabbitMQ published on `127.0.0.1:rabbitmq.loopbackPort` for it).",
  }),
  port: port(4059).default(4059).meta({
    description:
      "UDP port published for DLMS push messages: a whole number from 1 to 65535, not `api.port` when both are published on one address; with `network` `host`, 4059, the port the server binds itself.",
  }),
  publishAddress: publishAddress("0.0.0.0")
    .default("0.0.0.0")
    .meta({
      description: `Address the UDP port is published on: ${PUBLISH_ADDRESSES}; with \`network\` \`host\`, \`0.0.0.0\` (the server binds every address of the host itself).`,
    }),
  applicationContext: text("default").default("default").meta({
    description:
      "DLMS application context of the UDP server, its `UTILITARIAN_APPLICATION_CONTEXT`: one line of text, not empty, without leading or trailing spaces.",
  }),
});

/** The edge services whose block has keys beyond `edgeSchema`'s; the others' blocks are `edgeSchema(role)`. */
const EXTENDED_EDGE_SCHEMAS = { udpServer: udpServerSchema } satisfies Partial<Record<EdgeRole, z.ZodObject>>;
type EdgeBlockSchema<R extends EdgeRole> = R extends keyof typeof EXTENDED_EDGE_SCHEMAS
  ? (typeof EXTENDED_EDGE_SCHEMAS)[R]
  : ReturnType<typeof edgeSchema>;

/** The settings block of each edge service, `<role>`, in the order of components/kinds.ts. */
const edgeBlocks = Object.fromEntries(
  EDGE_ROLES.map((role) => {
    const schema: z.ZodObject =
      (EXTENDED_EDGE_SCHEMAS as Partial<Record<EdgeRole, z.ZodObject>>)[role] ?? edgeSchema(role);
    const { title: what, does } = edgeSettingsOf(role);
    return [
      role,
      schema.default(schema.parse({})).meta({
        description: `${capitalized(what)}, an edge service that ${does} and has its own releases: the keys below.`,
      }),
    ];
  }),
) as { [R in EdgeRole]: z.ZodDefault<EdgeBlockSchema<R>> };

/** The image repository of each edge service, `images.<role>`, with its kind's default. */
const edgeImage = (role: EdgeRole) => {
  const image = edgeSettingsOf(role).image;
  return imageRepository(image, `${role}.version`)
    .default(image)
    .meta({
      description: `Image repository of ${title(role)}, tagged with \`${role}.version\`: ${IMAGE_REPOSITORY}.`,
    });
};
const edgeImages = Object.fromEntries(EDGE_ROLES.map((role) => [role, edgeImage(role)])) as {
  [R in EdgeRole]: ReturnType<typeof edgeImage>;
};
const COUNTS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

const backupSchema = z.strictObject({
  dir: z.string().min(1).default("./backups").meta({
    description:
      "Directory on this machine that holds the verified dumps: a path relative to the project directory or absolute, one line, without `~` or `$VARIABLES` (nothing expands them).",
  }),
  keep: int(1, 1000).default(5).meta({
    description: "How many verified dumps to keep: a whole number from 1 to 1000.",
  }),
  // Every dump's data is read back out of the archive and counted on this machine anyway; this
  // decides what is also restored on the server (docs/benchmarks.md: `schema` costs about 4 MB of
  // WAL whatever the size, `true` about 1.1x the database's size in disk and 0.8x in WAL).
  testRestore: z
    .preprocess(
      (v) => (v === "true" ? true : v === "false" ? false : v),
      z.union([z.literal("schema"), z.boolean()], { error: "must be schema, true or false" }),
    )
    .default("schema")
    .meta({
      description:
        "What of each dump is restored into a scratch database on the database server before it counts as verified, beside the row counts read back out of the archive on this machine: `schema` (the DDL only, a few MB whatever the data), `true` (everything, with exact row counts; about 1.1x the database's size in disk and WAL) or `false` (nothing).",
    }),
  compressLevel: int(1, 9).default(1).meta({
    description:
      "The zlib level of the dump (`pg_dump -Z`), where 1 costs about what a plain SQL dump costs and pg_dump's own default 6 takes longer for a somewhat smaller file (docs/benchmarks.md), and 0 is refused because zlib's checksums are what catch a corrupted dump: a whole number from 1 to 9.",
  }),
  restoreJobs: int(1, 64).default(2).meta({
    description:
      "Parallel `pg_restore` jobs (connections) for a full test restore and for a rollback's restore, best near the database server's cores: a whole number from 1 to 64.",
  }),
  minFreeMb: int(0, 10_000_000).optional().meta({
    description: "Free space this machine must have before dumping, in MiB: a whole number from 0 to 10000000.",
    whenUnset: "estimated from the database's size",
  }),
  stopWriters: bool.default(true).meta({
    description:
      "Whether the asynchronous writers (beat, workers, and the processor and poster when they follow the API) stop before the backup, so that every reading the backup lacks still waits in RabbitMQ and a rollback loses none, at the cost of their downtime for the backup's duration (they start again if the backup fails): `true` or `false`.",
  }),
});

const graceSeconds = (what: string) =>
  `How long ${what} may take to stop, in seconds between SIGTERM and SIGKILL: a whole number from 0 to 3600.`;
const graceSchema = z.strictObject({
  api: int(0, 3600)
    .default(30)
    .meta({ description: graceSeconds("the API and the managed PostgreSQL containers") }),
  beat: int(0, 3600)
    .default(10)
    .meta({ description: graceSeconds("the beat container") }),
  worker: int(0, 3600)
    .default(60)
    .meta({ description: graceSeconds("the worker containers") }),
  edge: int(0, 3600)
    .default(15)
    .meta({
      description: graceSeconds("the processor, poster, UDP server, maintenance proxy and managed RabbitMQ containers"),
    }),
});

export const settingsSchema = z
  .strictObject({
    version: release("version").meta({
      description:
        "Utilitarian release to run, the tag of the API, beat and worker image: a release tag like `1.2.0` or `1.3.0-rc.1` (`latest` is refused, so that an upgrade is always a visible change).",
      whenUnset: "required",
    }),
    prefix: dnsName("utilitarian-prod")
      .optional()
      .meta({
        description: `Prefix of every container, network and volume name (a stack name with \`_\`, \`.\` or capitals needs it set): ${DNS_NAME}.`,
        whenUnset: "`utilitarian-<stack>`",
      }),
    dockerHost: dockerHost.optional().meta({
      description:
        "Docker engine the containers run on, given to the step scripts as `DOCKER_HOST`: `unix:///absolute/path`, `ssh://[user@]host[:port]` (with the key in your SSH agent) or `tcp://host[:port]`, the host a name or IP address (`[...]` for IPv6), without password or path.",
      whenUnset: "the local Docker socket",
    }),
    target: targetSchema,
    swarm: swarmSchema.default(swarmSchema.parse({})).meta({
      description:
        "With `target: swarm`: where the services are placed and how this machine reaches the nodes that run the API: the keys below.",
    }),
    images: z
      .strictObject({
        api: imageRepository("quay.io/pwit/utilitarian", "version")
          .default("quay.io/pwit/utilitarian")
          .meta({
            description: `Image repository of the API, beat and workers, tagged with \`version\`: ${IMAGE_REPOSITORY}.`,
          }),
        ...edgeImages,
      })
      .default({
        api: "quay.io/pwit/utilitarian",
        ...(Object.fromEntries(EDGE_ROLES.map((role) => [role, edgeSettingsOf(role).image])) as Record<
          EdgeRole,
          string
        >),
      })
      .meta({
        description: `Where the images of the Utilitarian services come from; their tags come from the version keys: the ${COUNTS[1 + EDGE_ROLES.length]} keys below.`,
      }),
    registry: z
      .strictObject({
        server: registryServer.default("quay.io").meta({
          description:
            "Registry the pull account logs in to, from which some image must come (`docker.io` and `index.docker.io` both mean Docker Hub): a host name with an optional `:port`, without `https://` or a path.",
        }),
        username: z
          .string({ error: "must name the pull account" })
          .min(1, "must name the pull account")
          .superRefine((value, ctx) => {
            // eslint-disable-next-line no-control-regex -- refusing control characters is the point
            if (/[\s\u0000-\u001f\u007f]/.test(value))
              ctx.addIssue({
                code: "custom",
                message: "must be the pull account's name, without spaces or control characters",
                params: { example: "pwit+acme_pull" },
              });
          })
          .meta({
            description:
              "Name of the pull account (password: secret `registryPassword`): not empty, without spaces or control characters.",
            whenUnset: "required with `registry`",
          }),
      })
      .optional()
      .meta({
        description:
          "Pull account for private images, handed by the Docker provider only to pulls from its registry: `server` and `username`.",
        whenUnset: "anonymous pulls",
      }),
    database: databaseSchema.default(databaseSchema.parse({})).meta({
      description:
        "The application's PostgreSQL, a managed container or an external server, and how this machine reaches it: the keys below.",
    }),
    rabbitmq: rabbitmqSchema.default(rabbitmqSchema.parse({})).meta({
      description: "The Celery broker, a managed RabbitMQ container or an external server: the keys below.",
    }),
    api: apiSchema.default(apiSchema.parse({})).meta({
      description: "The Django API container, where it is published and its environment: the keys below.",
    }),
    proxy: proxySchema.default(proxySchema.parse({})).meta({
      description:
        "The maintenance proxy in front of the API (HAProxy), which keeps running through an upgrade: the keys below.",
    }),
    beat: z
      .strictObject({
        enabled: bool.default(true).meta({
          description: "Whether the Celery beat scheduler runs, as one container, never two: `true` or `false`.",
        }),
      })
      .default({ enabled: true })
      .meta({ description: "The Celery beat scheduler, one container at most: the key below." }),
    workers: z
      .array(workerSchema)
      .default([{ name: "default", queues: [], concurrency: 2, count: 1 }])
      .meta({
        description:
          "Celery worker groups, each its own containers: a list of groups with the keys below, set with `--path 'utilitarian:workers[0].count'`.",
      }),
    ...edgeBlocks,
    backup: backupSchema.default(backupSchema.parse({})).meta({
      description: "The verified pg_dump backup taken before every upgrade: the keys below.",
    }),
    stopGraceSeconds: graceSchema.default(graceSchema.parse({})).meta({
      description: "How long each kind of container may take to stop: the keys below.",
    }),
    restoreFrom: z
      .string()
      .superRefine((value, ctx) => {
        // Whether it names a verified backup is checked against backup.dir by config/backups.ts.
        const problem =
          value === "latest"
            ? undefined
            : (pathProblem(value) ??
              (value.endsWith(".dump")
                ? undefined
                : `must be latest or the path of a verified backup, a utilitarian-<time>-<from>-to-<to>.dump file in backup.dir; got ${shown(value)}`));
        if (problem) ctx.addIssue({ code: "custom", message: problem, params: { example: "latest" } });
      })
      .optional()
      .meta({
        description:
          "Rollback only: the verified backup to restore while going back to an older version, checked at preview (see Rolling back): `latest`, or the path (relative to the project directory, or absolute) of a verified `utilitarian-<time>-<from>-to-<to>.dump` in `backup.dir` taken while `version` ran.",
        whenUnset: "no restore",
      }),
  })
  .superRefine((s, ctx) => {
    if (s.database.mode === "external" && !s.database.host) {
      ctx.addIssue({
        code: "custom",
        path: ["database", "host"],
        message: "is required when database.mode is external (the host the containers reach the server at)",
      });
    }
    for (const role of EDGE_ROLES) {
      if (s[role].enabled && !s[role].version) {
        refuse(
          ctx,
          (n) =>
            `is required while ${role} is enabled: the release of this edge service, like 1.0.0; set it with ${n.set(`${role}.version`, "1.0.0")} or disable it with ${n.set(`${role}.enabled`, "false")}`,
          { path: [role, "version"] },
        );
      }
    }
    const names = s.workers.map((w) => w.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) {
      ctx.addIssue({
        code: "custom",
        path: ["workers"],
        message: `has two groups named '${dup}'; give each worker group its own name`,
      });
    }
    if (s.udpServer.enabled && s.udpServer.port === s.api.port && s.udpServer.publishAddress === s.api.publishAddress) {
      // Different protocols, but one number for two services is almost always a typo.
      ctx.addIssue({
        code: "custom",
        path: ["udpServer", "port"],
        message: `equals api.port (${s.api.port}); choose another port`,
      });
    }
    hostNetworkProblems(s, ctx);
    crossFieldProblems(s, ctx);
    swarmProblems(s, ctx);
  });

/** The port of the DLMS UDP server's own socket (utilitarian.md): in the host's network nothing maps it. */
export const UDP_SERVER_PORT = 4059;

/** `udpServer.network: host`: what the host's network makes impossible, and the broker's port on the host. */
function hostNetworkProblems(s: Settings, ctx: z.RefinementCtx): void {
  const u = s.udpServer;
  if (!u.enabled || u.network !== "host") return;
  const fix = "or set `udpServer.network` to `bridge`, where Docker maps the port";
  if (u.port !== UDP_SERVER_PORT) {
    refuse(
      ctx,
      (n) =>
        `is ${u.port}, but with udpServer.network host the DLMS UDP server binds the host's UDP ${UDP_SERVER_PORT} itself and nothing maps it: set it to ${UDP_SERVER_PORT} (${n.set("udpServer.port", String(UDP_SERVER_PORT))}), ${fix}`,
      { path: ["udpServer", "port"] },
    );
  }
  if (u.publishAddress !== "0.0.0.0") {
    refuse(
      ctx,
      (n) =>
        `is ${shown(u.publishAddress)}, but with udpServer.network host the DLMS UDP server binds every address of the host itself: remove it (${n.remove("udpServer.publishAddress")}), ${fix}`,
      { path: ["udpServer", "publishAddress"] },
    );
  }
  if (s.rabbitmq.mode !== "managed") return;
  const amqp = s.rabbitmq.loopbackPort;
  const taken = [
    ...(["127.0.0.1", "0.0.0.0"].includes(s.api.publishAddress) ? [{ key: "api.port", port: s.api.port }] : []),
    ...(s.database.mode === "managed"
      ? [{ key: "database.operatorPort", port: s.database.operatorPort ?? 15432 }]
      : []),
  ].find((t) => t.port === amqp);
  if (taken) {
    ctx.addIssue({
      code: "custom",
      path: ["rabbitmq", "loopbackPort"],
      params: { example: "5672" },
      message: `is ${amqp}, which ${taken.key} also publishes on the Docker host's 127.0.0.1; with udpServer.network host the managed RabbitMQ is published there too: choose another port for one of them`,
    });
  }
}

/** Rules between settings, and for keys whose own block is kept free of them (backup). */
function crossFieldProblems(s: Settings, ctx: z.RefinementCtx): void {
  // backup.dir and restoreFrom are paths on this machine, passed to the scripts as given.
  const dirProblem = pathProblem(s.backup.dir);
  if (dirProblem)
    ctx.addIssue({ code: "custom", path: ["backup", "dir"], message: dirProblem, params: { example: "./backups" } });

  // The managed database is published on the Docker host's 127.0.0.1: the API must not take its port there.
  const dbPort = s.database.operatorPort ?? 15432;
  if (
    s.database.mode === "managed" &&
    dbPort === s.api.port &&
    ["127.0.0.1", "0.0.0.0"].includes(s.api.publishAddress)
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["database", "operatorPort"],
      params: { example: "15432" },
      message: `is ${dbPort}, which api.port also publishes on ${s.api.publishAddress}; the managed database is published on the Docker host's 127.0.0.1:${dbPort}, so the two would collide: choose another port for one of them`,
    });
  }

  if (s.registry && REGISTRY_HOST.test(s.registry.server)) {
    // The Docker provider hands the credentials only to pulls from this registry.
    const images = [
      s.images.api,
      ...EDGE_ROLES.map((role) => s.images[role]),
      ...(s.database.mode === "managed" ? [s.database.image] : []),
      ...(s.rabbitmq.mode === "managed" ? [s.rabbitmq.image] : []),
      ...(s.proxy.enabled ? [s.proxy.image] : []),
    ];
    const registries = [...new Set(images.map(registryOf))];
    if (!registries.includes(normalizeRegistry(s.registry.server))) {
      ctx.addIssue({
        code: "custom",
        path: ["registry", "server"],
        params: { example: registries[0] },
        message: `is ${shown(s.registry.server)}, but no image is pulled from it (the images come from ${registries.join(", ")}); set it to the registry of the private images`,
      });
    }
  }

  for (const name of Object.keys(s.api.env)) {
    // A name the deployment sets is refused below, with its own fix.
    if (SECRET_LIKE_ENV.test(name) && !(name in RESERVED_ENV.api)) {
      refuse(
        ctx,
        (n) =>
          `looks like a secret, and plain config is stored unencrypted; move it: ${n.remove(`api.env.${name}`)}, then ${n.set(`secrets.apiSecretEnv.${name}`, "...")}`,
        { path: ["api", "env", name] },
      );
    }
  }
  for (const holder of ENV_HOLDERS) {
    for (const [name, source] of Object.entries(RESERVED_ENV[holder])) {
      if (name in s[holder].env)
        refuse(ctx, reservedEnvRefusal(`${holder}.env.${name}`, source), { path: [holder, "env", name] });
    }
  }
}

export type Settings = z.infer<typeof settingsSchema>;
export type WorkerGroup = Settings["workers"][number];
export type EdgeSettings = Settings["processor"];
export type UdpServerSettings = Settings["udpServer"];

/**
 * Secret keys, each set with `pulumi config set --secret`. `when` says when a key is required
 * and `required` says it in words; `what` names the value in the loader's messages;
 * `description` is the README's (one sentence ending with what is allowed, never a value);
 * `how` is the command that sets it where `pulumi config set --secret utilitarian:<key>`, which
 * prompts for the value and so keeps it out of the shell's history, is not enough.
 */
export const SECRET_KEYS = {
  secretKey: {
    when: () => true,
    required: "always",
    what: "Django SECRET_KEY (about 50 random characters)",
    description: "Django's `SECRET_KEY` of the API, beat and workers: at least 32 random characters.",
    how: 'pulumi config set --secret utilitarian:secretKey "$(openssl rand -base64 48)"',
  },
  databasePassword: {
    when: () => true,
    required: "always",
    what: "password of the application's database role",
    description:
      "Password of the application's role `database.user`, which the services get inside `DATABASE_URL`: any text, not empty.",
  },
  databaseAdminPassword: {
    when: () => true,
    required: "always",
    what: "password of database.adminUser (provider, backups)",
    description:
      "Password of `database.adminUser`, the `PGPASSWORD` of the postgresql provider, backups and restores and the managed database's `POSTGRES_PASSWORD`: any text, not empty.",
  },
  rabbitmqPassword: {
    when: (s: Settings) => s.rabbitmq.mode === "managed",
    required: "when `rabbitmq.mode` is `managed`",
    what: "password of the managed RabbitMQ user",
    description:
      "Password of `rabbitmq.user` on the managed RabbitMQ, its `RABBITMQ_DEFAULT_PASS` and part of the services' `AMQP_CONNECTION_STRING`: any text, not empty.",
  },
  rabbitmqUrl: {
    when: (s: Settings) => s.rabbitmq.mode === "external",
    required: "when `rabbitmq.mode` is `external`",
    what: "amqp://user:password@host:5672/vhost of the external RabbitMQ",
    description:
      "URL of the external RabbitMQ, the services' `AMQP_CONNECTION_STRING`: `amqp://` or `amqps://`, then `user:password@host[:port]/vhost` with `@`, `:` and `/` in the password percent-encoded.",
  },
  edgeAuthToken: {
    // Every edge service that calls the API presents it.
    when: (s: Settings) => EDGE_ROLES.some((role) => KINDS[role].callsApi && s[role].enabled && s[role].dependsOnApi),
    required: "while the processor or the poster is enabled and follows the API (`dependsOnApi`)",
    what: "API token the DLMS processor and poster present (create it in Utilitarian's admin)",
    description:
      "API token the DLMS processor and poster present as `UTILITARIAN_AUTH_TOKEN`: a token created in Utilitarian's admin.",
  },
  registryPassword: {
    when: (s: Settings) => s.registry !== undefined,
    required: "with `registry`",
    what: "password of registry.username",
    description:
      "Password of `registry.username`, with which the Docker provider logs in to `registry.server`: any text, not empty.",
  },
  apiSecretEnv: {
    when: () => false,
    required: "no",
    what: "extra secret environment for API, beat and workers, as a map (e.g. JWT_SIGNING_KEY)",
    description: `Extra secret environment of the API, beat and workers, like \`JWT_SIGNING_KEY\`: a map of UPPER_CASE names to values without NUL characters, one entry set at a time, none of them also in \`api.env\` or one the deployment sets (${codeList(Object.keys(RESERVED_ENV.api))}).`,
    how: "pulumi config set --secret --path 'utilitarian:apiSecretEnv.JWT_SIGNING_KEY'",
  },
} as const;

export type SecretKey = keyof typeof SECRET_KEYS;

// Compile-time: the names components/kinds.ts spells out itself (its descriptors are read above, so
// they cannot be typed from these settings) are these settings' own.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const kindsNameTheSecrets: Same<SecretKey, KindSecretKey> = true;
const kindsNameTheGraces: Same<keyof Settings["stopGraceSeconds"], GraceKey> = true;
const workersAreKindsGroups: WorkerGroup extends KindWorkerGroup ? true : false = true;
void [kindsNameTheSecrets, kindsNameTheGraces, workersAreKindsGroups];
/** Secret values after validation: the always-required ones are present. */
export type Secrets = Record<"secretKey" | "databasePassword" | "databaseAdminPassword", string> &
  Partial<Record<"rabbitmqPassword" | "rabbitmqUrl" | "edgeAuthToken" | "registryPassword", string>> & {
    apiSecretEnv?: Record<string, string>;
  };
