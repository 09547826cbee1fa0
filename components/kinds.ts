/**
 * One descriptor per kind of service the deployment runs: what image it runs, what port it
 * listens on and where that is published, its health check, the upgrade stages that stop and
 * start it, whether it follows the API, whether the backup stops it, whether it calls the API,
 * which secrets reach it, and an edge service's settings.
 * The plan, the builder, the printed maintenance, the settings (config/schema.ts) and the tests
 * read these; adding a kind is one entry here plus its tests. Nothing here is Docker's own
 * vocabulary (labels, networks, restart policies live in the builder), so a second target can read
 * the same descriptors.
 */
import type { RunbookStep } from "./plan";
import { PROXY_PORT, proxyCommand, proxyEnvironment } from "./proxy";

/**
 * The upgrade's stages, in the order one `pulumi up` carries them out (the plan's node order:
 * images, backup, restore, the API's stop and start, migrate, static, the rest, verify). Each
 * step node of the plan is the stage of its name; the services' stages are their kinds'.
 */
export const STAGES = [
  "pull",
  "backup",
  "restore",
  "stop",
  "start-api",
  "migrate",
  "static",
  "start",
  "verify",
] as const;
export type StageKey = (typeof STAGES)[number];

/** The settings a descriptor reads; the stack's `Settings` and the library's settings both have them. */
export interface KindSettings {
  api: { port: number; publishAddress: string; healthTimeoutSeconds: number };
  udpServer: { port: number; publishAddress: string; network: "bridge" | "host"; applicationContext: string };
  database: { adminUser: string };
  proxy: { enabled: boolean; retryAfterSeconds: number; message: string };
}

/**
 * The secrets a kind can be given, as config/schema.ts's `SECRET_KEYS` names them, and the
 * `stopGraceSeconds` keys. Spelled out here rather than read from the schema, whose settings are
 * derived from these descriptors: a test checks that they name the same keys.
 */
export type SecretKey =
  | "secretKey"
  | "databasePassword"
  | "databaseAdminPassword"
  | "rabbitmqPassword"
  | "rabbitmqUrl"
  | "edgeAuthToken"
  | "registryPassword"
  | "apiSecretEnv";
export type GraceKey = "api" | "beat" | "worker" | "edge";
/** What a worker replica's command reads of its group (config/schema.ts's `WorkerGroup` has it). */
export interface WorkerGroup {
  name: string;
  queues: readonly string[];
  concurrency: number;
}

/**
 * An edge service's settings (config/schema.ts derives them): its block `<role>` with `enabled`,
 * `version`, `dependsOnApi` and `env`, and its image repository `images.<role>`.
 */
export interface EdgeSettingsFacts {
  /** How the descriptions name it, like `the DLMS processor`. */
  title: string;
  /** What it does, as its block's description says: `<Title>, an edge service that <does> and has its own releases`. */
  does: string;
  /** Its default image repository (`images.<role>`), tagged with `<role>.version`. */
  image: string;
  /** Whether it runs by default (`<role>.enabled`). */
  enabled: boolean;
  /** Whether it follows the API by default (`<role>.dependsOnApi`). */
  dependsOnApi: boolean;
}

export interface HealthCheck {
  /** Run in the container without a shell (`CMD` form). */
  command: string[];
  interval: string;
  timeout: string;
  retries: number;
  startPeriod: string;
}

/** Where in the upgrade a service stops, is declared anew, or starts: the stage, and the runbook steps it carries out there. */
export interface UpgradePart {
  stage: StageKey;
  runbook: RunbookStep[];
}

export interface ServiceKind {
  /** The `role` of the plan's service nodes and their `io.utilitarian.role` label. */
  role: string;
  /**
   * `app`: the API's image and version; `own`: its own image and release (`<role>.version`), an
   * edge service; `foundation`: PostgreSQL, RabbitMQ or the maintenance proxy, an image reference
   * of its own settings, never touched by an application upgrade.
   */
  release: "app" | "own" | "foundation";
  /** The name the other services reach it by on the private network. */
  alias?: string;
  /** The port it listens on in its container. */
  port?: { number: number; protocol: "tcp" | "udp" };
  /** Where its port is published on the host, from the settings, if at all (managed services decide theirs themselves). */
  publish?: (s: KindSettings) => { external: number; ip: string } | undefined;
  health?: (s: KindSettings) => HealthCheck;
  /**
   * Its command; undefined keeps the image's. A worker replica is told its group and index (no
   * index on a swarm, where one service runs the group's replicas and `%h` tells them apart).
   */
  command?: (replica?: { group: WorkerGroup; index?: number }) => string[];
  /** The grace period it gets to stop (`stopGraceSeconds.<key>`). */
  grace: GraceKey;
  /**
   * Stopped before the API and started after static files, because it calls the API or shares its
   * code: always, never, or as the settings say (`<role>.dependsOnApi`).
   */
  followsApi: boolean | "setting";
  /** Where an upgrade stops and starts it, when it is the API or follows it, in stage order; undefined: it keeps running. */
  upgrade?: UpgradePart[];
  /** Calls the API: it gets the API's URL (`UTILITARIAN_BASE_URL`) and, among its secrets, the token it authenticates with. */
  callsApi: boolean;
  /** Plain environment from its settings, set after its own `env` (config/schema.ts reserves these names). */
  environment?: (s: KindSettings) => Record<string, string>;
  /** Writes what the backup must contain: with `backup.stopWriters`, the backup stops it while it follows the API. */
  writer: boolean;
  /** Runs in the Docker host's network instead of the private one, as the settings say. */
  hostNetwork?: (s: Pick<KindSettings, "udpServer">) => boolean;
  /** The secrets that reach its environment (the broker's: `rabbitmqPassword` or `rabbitmqUrl`, by the broker's mode). */
  secrets: SecretKey[];
  /** An edge service's (`release: "own"`) settings; config/schema.ts derives its keys from these. */
  settings?: EdgeSettingsFacts;
}

export const BROKER: SecretKey[] = ["rabbitmqPassword", "rabbitmqUrl"];
const APP_SECRETS: SecretKey[] = ["secretKey", "databasePassword", "apiSecretEnv", ...BROKER];
/** Beat and workers run the API's code from its image: stopped with it, started after its static files. */
const APP_FOLLOWER = {
  release: "app",
  followsApi: true,
  writer: true,
  callsApi: false,
  secrets: APP_SECRETS,
  // Their run config is upgraded with the API's (runbook 5: declared from the same image and
  // version while only the API starts); they start after static files.
  upgrade: [
    { stage: "stop", runbook: [3] },
    { stage: "start-api", runbook: [5] },
    { stage: "start", runbook: [9] },
  ],
} as const satisfies Partial<ServiceKind>;
/** Edge services: their own release; stopped before the API (runbook 2) when `<role>.dependsOnApi`, started with the rest. */
export const EDGE_FOLLOWER = {
  release: "own",
  followsApi: "setting",
  grace: "edge",
  upgrade: [
    { stage: "stop", runbook: [2] },
    { stage: "start", runbook: [9] },
  ],
} as const satisfies Partial<ServiceKind>;

export const API_PORT = 8000;
/** The API's name on the private network, which the edge services and the maintenance proxy call. */
const API_ALIAS = "api";

export const KINDS = {
  api: {
    role: "api",
    release: "app",
    alias: API_ALIAS,
    port: { number: API_PORT, protocol: "tcp" },
    // Behind the maintenance proxy it is on the private network only: the proxy publishes its address.
    publish: (s) => (s.proxy.enabled ? undefined : { external: s.api.port, ip: s.api.publishAddress }),
    health: (s) => ({
      command: [
        "python",
        "-c",
        `import urllib.request; urllib.request.urlopen('http://127.0.0.1:${API_PORT}/_health/', timeout=5)`,
      ],
      interval: "15s",
      timeout: "6s",
      retries: 3,
      startPeriod: `${s.api.healthTimeoutSeconds}s`,
    }),
    grace: "api",
    followsApi: false,
    // Stopping the API closes its followers down first (runbook 2 and 3); the new one starts alone.
    upgrade: [
      { stage: "stop", runbook: [3] },
      { stage: "start-api", runbook: [5, 6] },
    ],
    writer: false,
    callsApi: false,
    secrets: APP_SECRETS,
  },
  beat: {
    ...APP_FOLLOWER,
    role: "beat",
    grace: "beat",
    command: () => ["celery", "-A", "utilitarian", "beat", "--loglevel=INFO"],
  },
  worker: {
    ...APP_FOLLOWER,
    role: "worker",
    grace: "worker",
    command: (replica) => {
      const { group, index } = replica!;
      return [
        "celery",
        "-A",
        "utilitarian",
        "worker",
        "--loglevel=INFO",
        `--concurrency=${group.concurrency}`,
        `--hostname=${index === undefined ? group.name : `${group.name}-${index}`}@%h`,
        ...(group.queues.length > 0 ? ["-Q", group.queues.join(",")] : []),
      ];
    },
  },
  processor: {
    ...EDGE_FOLLOWER,
    role: "processor",
    writer: true,
    callsApi: true,
    secrets: ["edgeAuthToken", ...BROKER],
    settings: {
      title: "the DLMS processor",
      does: "calls the API",
      image: "quay.io/pwit/utilitarian-dlms-processor",
      enabled: true,
      dependsOnApi: true,
    },
  },
  poster: {
    ...EDGE_FOLLOWER,
    role: "poster",
    writer: true,
    callsApi: true,
    secrets: ["edgeAuthToken", ...BROKER],
    settings: {
      title: "the poster",
      does: "calls the API",
      image: "quay.io/pwit/utilitarian-poster",
      enabled: true,
      dependsOnApi: true,
    },
  },
  udpServer: {
    ...EDGE_FOLLOWER,
    role: "udpServer",
    // Its further keys (network, port, publishAddress, applicationContext) extend its block in config/schema.ts.
    settings: {
      title: "the DLMS UDP server",
      does: "receives the meters' push messages",
      image: "quay.io/pwit/utilitarian-dlms-udp-server",
      enabled: true,
      dependsOnApi: false,
    },
    // It only queues what meters push; it writes nothing to the database the backup could miss.
    writer: false,
    port: { number: 4059, protocol: "udp" },
    publish: (s) => ({ external: s.udpServer.port, ip: s.udpServer.publishAddress }),
    hostNetwork: (s) => s.udpServer.network === "host",
    callsApi: false,
    environment: (s) => ({ UTILITARIAN_APPLICATION_CONTEXT: s.udpServer.applicationContext }),
    secrets: BROKER,
  },
  proxy: {
    role: "proxy",
    // Its own image (`proxy.image`); an upgrade of the API leaves it running, answering for the API.
    release: "foundation",
    port: { number: PROXY_PORT, protocol: "tcp" },
    // The API's published address is the proxy's: clients reach the API through it.
    publish: (s) => ({ external: s.api.port, ip: s.api.publishAddress }),
    command: () => proxyCommand(),
    environment: (s) =>
      proxyEnvironment({
        apiHost: API_ALIAS,
        apiPort: API_PORT,
        retryAfterSeconds: s.proxy.retryAfterSeconds,
        message: s.proxy.message,
      }),
    grace: "edge",
    followsApi: false,
    writer: false,
    callsApi: false,
    secrets: [],
  },
  postgres: {
    role: "postgres",
    release: "foundation",
    alias: "postgres",
    port: { number: 5432, protocol: "tcp" },
    health: (s) => ({
      command: ["pg_isready", "-U", s.database.adminUser, "-d", "postgres"],
      interval: "5s",
      timeout: "5s",
      retries: 12,
      startPeriod: "10s",
    }),
    grace: "api",
    followsApi: false,
    writer: false,
    callsApi: false,
    secrets: ["databaseAdminPassword"],
  },
  rabbitmq: {
    role: "rabbitmq",
    release: "foundation",
    alias: "rabbitmq",
    port: { number: 5672, protocol: "tcp" },
    health: () => ({
      command: ["rabbitmq-diagnostics", "-q", "check_port_connectivity"],
      interval: "5s",
      timeout: "10s",
      retries: 24,
      startPeriod: "10s",
    }),
    grace: "edge",
    followsApi: false,
    writer: false,
    callsApi: false,
    secrets: ["rabbitmqPassword"],
  },
} as const satisfies Record<string, ServiceKind>;

export type KindKey = keyof typeof KINDS;
/** The application's services: the API and what runs beside it (not PostgreSQL or RabbitMQ). */
export type ServiceRole = Exclude<KindKey, "postgres" | "rabbitmq">;
/** The edge services: their own image and release, each enabled or not by its settings key. */
export type EdgeRole = { [K in KindKey]: (typeof KINDS)[K]["release"] extends "own" ? K : never }[KindKey];
export const EDGE_ROLES = (Object.keys(KINDS) as KindKey[]).filter((k): k is EdgeRole => KINDS[k].release === "own");

/** The descriptor of a role, typed as the general shape. */
export const kindOf = (role: KindKey): ServiceKind => KINDS[role];

/** The settings of an edge service's descriptor: every `release: "own"` entry has them. */
export const edgeSettingsOf = (role: EdgeRole): EdgeSettingsFacts => KINDS[role].settings;
