import * as pulumi from "@pulumi/pulumi";

/**
 * Refuses, at preview, to lower `utilitarian:version` without restoring a backup: the database
 * would carry migrations that the older code does not know.
 *
 * A dynamic resource, because its `check` sees the inputs of the last successful run (`olds`)
 * next to this run's (`news`) and can fail the preview with a message; nothing else in a Pulumi
 * program sees the previous state. It is registered after the verified backup and before the
 * API is touched, so what it records is "the stop-and-migrate phase began for this version":
 * a run that failed during its backup changed nothing and does not count.
 */
export interface SchemaGuardInputs {
  /** The Utilitarian version this run brings up. */
  version: string;
  /** Rollback only: the verified backup restored while going back to an older version. */
  restoreFrom?: string;
}

export interface GuardFailure {
  property: string;
  reason: string;
}

/** Orders release tags like 1.10.0 > 1.9.2 (numeric parts; a pre-release sorts before its release). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split(/-(.*)/s, 2);
    return { parts: core.split(".").map((p) => Number.parseInt(p, 10) || 0), pre: pre ?? "" };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.parts.length, y.parts.length); i++) {
    const d = (x.parts[i] ?? 0) - (y.parts[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === "") return 1;
  if (y.pre === "") return -1;
  return x.pre < y.pre ? -1 : 1;
}

/**
 * The rule itself, pure so that it is tested without Pulumi. `olds` is undefined on the first run.
 * Kept free of imports: the dynamic provider below is serialised with its closure.
 */
export function checkVersionChange(
  olds: Partial<SchemaGuardInputs> | undefined,
  news: SchemaGuardInputs,
): GuardFailure[] {
  const previous = olds?.version;
  if (!previous) {
    return news.restoreFrom
      ? [
          {
            property: "restoreFrom",
            reason:
              "`utilitarian:restoreFrom` is only for going back to an older version; this stack has no earlier version. Remove it with `pulumi config rm utilitarian:restoreFrom`.",
          },
        ]
      : [];
  }
  const order = compareVersions(news.version, previous);
  if (order < 0 && !news.restoreFrom) {
    return [
      {
        property: "version",
        reason:
          `Refusing to go from ${previous} down to ${news.version} without restoring the database: it may carry ` +
          `${previous}'s migrations, which ${news.version}'s code does not know. To roll back, restore the verified backup ` +
          `taken before the upgrade: \`pulumi config set utilitarian:restoreFrom <backup file>\` (or \`latest\`), then ` +
          `\`pulumi up\`. To stay on ${previous}, set \`utilitarian:version\` back to ${previous}.`,
      },
    ];
  }
  // Same version and same backup: resuming a rollback that stopped half way.
  const resuming = order === 0 && news.restoreFrom === olds?.restoreFrom;
  if (news.restoreFrom && order >= 0 && !resuming) {
    return [
      {
        property: "restoreFrom",
        reason:
          `\`utilitarian:restoreFrom\` restores a backup, which only makes sense while lowering the version (now ${previous}, ` +
          `asked ${news.version}). Remove it with \`pulumi config rm utilitarian:restoreFrom\` after a rollback has finished.`,
      },
    ];
  }
  return [];
}

// The parameter must not share a name with a method: the closure serialiser takes `check` inside
// the method `check` for the method itself and leaves the parameter out, so the provider loaded
// by the dynamic provider host threw `ReferenceError: check is not defined`.
function guardProvider(rule: typeof checkVersionChange): pulumi.dynamic.ResourceProvider {
  return {
    async check(olds, news) {
      const failures = rule(olds && Object.keys(olds).length > 0 ? olds : undefined, news as SchemaGuardInputs);
      return { inputs: news, failures };
    },
    async diff(_id, olds, news) {
      const changes = olds.version !== news.version || olds.restoreFrom !== news.restoreFrom;
      return { changes };
    },
    async create(inputs) {
      return { id: "schema-guard", outs: { ...inputs, previousVersion: "none" } };
    },
    async update(_id, olds, news) {
      return { outs: { ...news, previousVersion: olds.version } };
    },
  };
}

export class SchemaGuard extends pulumi.dynamic.Resource {
  /** The version whose stop-and-migrate phase this run begins. */
  declare readonly version: pulumi.Output<string>;
  /** The version before it ("none" on the first install). */
  declare readonly previousVersion: pulumi.Output<string>;

  constructor(
    name: string,
    args: { version: pulumi.Input<string>; restoreFrom?: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      guardProvider(checkVersionChange),
      name,
      { ...args, previousVersion: undefined },
      opts,
      "utilitarian-schema-guard",
    );
  }
}
