import type { z } from "zod";
import { STACK_CONFIG, type Naming } from "./naming";

/** What a schema rule puts in its zod issue's `params`, besides the message. */
export interface IssueParams {
  /** A value that fixes the setting, offered by the entry point's Naming (`suggest`). */
  example?: string;
  /** The message, for a rule whose words name other settings or a fix: worded by the Naming. */
  say?: (n: Naming) => string;
}

/** A zod issue, as the validator reads it. */
export interface Issue {
  path: PropertyKey[];
  message: string;
  code: string;
  keys?: string[];
  /** Zod puts the reason of a bad record key one level down. */
  issues?: { message: string }[];
  params?: IssueParams;
}

/**
 * Adds a refusal whose words depend on the entry point. Its plain `message` is the stack
 * config's wording, which callers of `settingsSchema` itself see.
 */
export function refuse(
  ctx: z.RefinementCtx,
  say: (n: Naming) => string,
  where: { path?: (string | number)[]; example?: string } = {},
): void {
  const params: IssueParams = { say, ...(where.example === undefined ? {} : { example: where.example }) };
  ctx.addIssue({ code: "custom", message: say(STACK_CONFIG), params, ...(where.path ? { path: where.path } : {}) });
}

/** `workers[0].count` from a zod path. */
export function pathOf(path: PropertyKey[]): string {
  return path.map(String).reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
}

/** A zod issue as refusals (several for unknown keys), each naming its setting. */
export function describeIssue(issue: Issue, n: Naming): string[] {
  const path = pathOf(issue.path);
  if (issue.code === "unrecognized_keys" && issue.keys)
    return issue.keys.map((key) => `${n.name(path ? `${path}.${key}` : key)} ${n.unknown}`);
  if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) {
    // Only `version` has neither a default nor a message of its own for a missing value.
    const what =
      path === "version"
        ? `: the Utilitarian release to run, like 1.2.0; set it with ${n.set("version", "1.2.0")}`
        : "";
    return [`${n.name(path)} is required${what}`];
  }
  if (issue.code === "invalid_key" && issue.issues?.[0]) return [`${n.name(path)} ${issue.issues[0].message}`];
  const message =
    issue.params?.say?.(n) ??
    (issue.code === "invalid_type" && !/must/.test(issue.message)
      ? `has the wrong type (${issue.message})`
      : issue.message);
  const example = issue.params?.example;
  return [`${n.name(path)} ${message}${example === undefined ? "" : n.suggest(path, example)}`];
}
