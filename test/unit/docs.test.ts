import * as fs from "fs";
import * as path from "path";
import { describe, expect, test } from "vitest";
import { z } from "zod";
import {
  describedProblem,
  descriptionProblems,
  END_MARKER,
  referenceMarkdown,
  referenceRows,
  referenceSection,
  START_MARKER,
  withReferenceSection,
} from "../../config/reference";
import { SECRET_KEYS, settingsSchema, type Settings } from "../../config/schema";
import { SECRET_VALUES } from "./support/fixtures";

const README = path.resolve(__dirname, "../../README.md");
const generated = () => referenceMarkdown(settingsSchema, SECRET_KEYS);

/** The assertion the README is held to; its message names the command that fixes a difference. */
function expectReferenceUpToDate(readme: string, markdown: string): void {
  expect(
    referenceSection(readme),
    "README.md's configuration reference differs from config/schema.ts: run `npm run docs`",
  ).toBe(markdown);
}

describe("the README's configuration reference", () => {
  test("is the one generated from config/schema.ts", () => {
    expectReferenceUpToDate(fs.readFileSync(README, "utf8"), generated());
  });

  test("a hand edit of the section fails, naming `npm run docs`", () => {
    const readme = withReferenceSection(`# x\n\n${START_MARKER}\n${END_MARKER}\n`, generated());
    expectReferenceUpToDate(readme, generated());
    const edited = readme.replace("| `database.port` | `5432` |", "| `database.port` | `5433` |");
    expect(edited).not.toBe(readme);
    expect(() => expectReferenceUpToDate(edited, generated())).toThrow(/npm run docs/);
  });

  test("a description changed in the schema, and not regenerated, fails the README", () => {
    const changed = z.strictObject({
      ...settingsSchema.shape,
      version: settingsSchema.shape.version.meta({ description: "The release: a tag." }),
    });
    expect(() =>
      expectReferenceUpToDate(fs.readFileSync(README, "utf8"), referenceMarkdown(changed, SECRET_KEYS)),
    ).toThrow(/npm run docs/);
  });

  test("rewriting keeps the prose around the markers and is idempotent", () => {
    const readme = `intro\n\n${START_MARKER}\nstale table\n${END_MARKER}\n\noutro\n`;
    const once = withReferenceSection(readme, "| new |\n");
    expect(once).toBe(`intro\n\n${START_MARKER}\n| new |\n${END_MARKER}\n\noutro\n`);
    expect(withReferenceSection(once, "| new |\n")).toBe(once);
    expect(referenceSection(once)).toBe("| new |\n");
  });

  test("a README without the markers, or with two, is refused rather than rewritten", () => {
    expect(() => withReferenceSection("no markers", "x")).toThrow(/config-reference:start/);
    expect(() => referenceSection(`${START_MARKER}\n${END_MARKER}\n${START_MARKER}\n`)).toThrow(/once each/);
    expect(() => referenceSection(`${END_MARKER}\n${START_MARKER}\n`)).toThrow(/config-reference:start/);
  });
});

describe("descriptions live in the schema", () => {
  test("every key has one sentence ending with what is allowed", () => {
    expect(descriptionProblems(settingsSchema)).toEqual([]);
  });

  test("a key added without a description is caught, nested and in a list too", () => {
    const schema = z.strictObject({
      described: z.string().meta({ description: "A described key: any text." }),
      nested: z
        .strictObject({ bare: z.number().default(1) })
        .default({ bare: 1 })
        .meta({ description: "A group: the keys below." }),
      list: z.array(z.strictObject({ name: z.string() })).meta({ description: "A list: objects with the keys below." }),
    });
    expect(descriptionProblems(schema)).toEqual([
      '`utilitarian:nested.bare` has no description: add `.meta({ description: "...: what is allowed." })` to it in config/schema.ts',
      '`utilitarian:list[].name` has no description: add `.meta({ description: "...: what is allowed." })` to it in config/schema.ts',
    ]);
    // The real schema with one more, undescribed key: exactly that key is reported.
    const grown = z.strictObject({ ...settingsSchema.shape, newKey: z.string().optional() });
    expect(descriptionProblems(grown)).toEqual([expect.stringMatching(/^`utilitarian:newKey` has no description/)]);
  });

  test("a description must be one sentence ending with what is allowed", () => {
    expect(describedProblem("Port of the API: a whole number from 1 to 65535.")).toBeUndefined();
    expect(describedProblem("Grace of `api. Beat`: seconds.")).toBeUndefined(); // a full stop inside code ends no sentence
    expect(describedProblem("Port of the API: a whole number")).toMatch(/full stop/);
    expect(describedProblem("Port of the API. It is published: 1-65535.")).toMatch(/more than one sentence/);
    expect(describedProblem("Port of the API.")).toMatch(/what is allowed/);
    expect(describedProblem(" ")).toMatch(/no description/);
  });

  test("every key of the schema is listed, as its JSON Schema has it, with the same description for editors", () => {
    const jsonSchema = z.toJSONSchema(settingsSchema, { io: "input", unrepresentable: "any" }) as JsonNode;
    const fromJson = new Map<string, string | undefined>();
    const walk = (node: JsonNode, key: string) => {
      for (const [name, child] of Object.entries(node.properties ?? {})) {
        const childKey = key ? `${key}.${name}` : name;
        fromJson.set(childKey, child.description);
        walk(child, childKey);
      }
      if (node.items?.properties) walk(node.items, `${key}[]`);
    };
    walk(jsonSchema, "");
    const rows = referenceRows(settingsSchema);
    expect(rows.map((r) => r.key)).toEqual([...fromJson.keys()]);
    for (const row of rows) expect(fromJson.get(row.key), row.key).toBe(row.description);
    expect(rows.length).toBeGreaterThan(60);
  });

  test("defaults are the schema's own; unset optional keys say what they mean", () => {
    const byKey = new Map(referenceRows(settingsSchema).map((r) => [r.key, r.default]));
    expect(byKey.get("version")).toBe("required");
    expect(byKey.get("database.port")).toBe("`5432`");
    expect(byKey.get("database.sslmode")).toBe("`prefer`");
    expect(byKey.get("api.allowedHosts")).toBe('`["localhost", "127.0.0.1"]`');
    expect(byKey.get("api.env")).toBe("`{}`");
    expect(byKey.get("workers")).toBe('`[{"name": "default", "queues": [], "concurrency": 2, "count": 1}]`');
    expect(byKey.get("workers[].name")).toBe("required");
    expect(byKey.get("udpServer.dependsOnApi")).toBe("`false`");
    expect(byKey.get("stopGraceSeconds.worker")).toBe("`60`");
    expect(byKey.get("prefix")).toBe("`utilitarian-<stack>`");
    expect(byKey.get("database")).toBe("its keys' defaults");

    // Read from the schema, not written down: a changed default shows; an object default that
    // differs from its keys' defaults is shown whole.
    const schema = z.strictObject({
      n: z.number().default(7).meta({ description: "N: a number." }),
      o: z
        .strictObject({ a: z.number().default(1).meta({ description: "A: a number." }) })
        .default({ a: 2 })
        .meta({ description: "O: the key below." }),
      u: z.string().optional().meta({ description: "U: text." }),
    });
    expect(referenceRows(schema).map((r) => [r.key, r.default])).toEqual([
      ["n", "`7`"],
      ["o", '`{"a": 2}`'],
      ["o.a", "`1`"],
      ["u", "unset"],
    ]);
  });
});

interface JsonNode {
  description?: string;
  properties?: Record<string, JsonNode>;
  items?: JsonNode;
}

/**
 * Where a text would give a secret's value away: one of the test secrets, a value after a
 * `pulumi config set --secret` key (only a `"$(...)"` command that makes one is fine), or a URL
 * with credentials other than the `user:password` placeholder.
 */
function secretValueProblems(text: string, secretValues: readonly string[]): string[] {
  const problems = secretValues
    .filter((value) => text.includes(value))
    .map((value) => `holds the secret value ${value.slice(0, 3)}...`);
  for (const [command, value] of text.matchAll(
    /pulumi config set --secret (?:--path )?'?utilitarian:[A-Za-z.\]_[0-9]+'?(?: ([^`|\n]+))?/g,
  )) {
    if (value !== undefined && !/^"\$\([^)]*\)"$/.test(value.trim())) problems.push(`sets a value in \`${command}\``);
  }
  for (const [url, credentials] of text.matchAll(/[a-z]+:\/\/([^@\s/`]+:[^@\s/`]+)@/gi)) {
    if (credentials !== "user:password") problems.push(`holds credentials in ${url}`);
  }
  return problems;
}

describe("secrets in the reference", () => {
  test("the secrets table lists every secret key with when it is required and how to set it", () => {
    const markdown = generated();
    for (const [key, secret] of Object.entries(SECRET_KEYS)) {
      expect(markdown).toContain(`| \`${key}\` | ${secret.required} | ${secret.description} |`);
      expect(describedProblem(secret.description), key).toBeUndefined();
    }
    expect(markdown).toContain(
      "| `databasePassword` | always | Password of the application's role `database.user`, which the services get inside `DATABASE_URL`: any text, not empty. | `pulumi config set --secret utilitarian:databasePassword` |",
    );
  });

  test("`required` says in words what `when` decides", () => {
    const base = {
      version: "1.0.0",
      processor: { version: "1.0.0" },
      poster: { version: "1.0.0" },
      udpServer: { version: "1.0.0" },
    };
    const variants: Settings[] = [
      base,
      { ...base, rabbitmq: { mode: "external" } },
      { ...base, processor: { enabled: false }, poster: { dependsOnApi: false, version: "1.0.0" } },
      { ...base, registry: { server: "quay.io", username: "pwit+acme_pull" } },
    ].map((values) => settingsSchema.parse(values));
    for (const [key, secret] of Object.entries(SECRET_KEYS)) {
      const required = variants.map((s) => secret.when(s));
      const expected =
        secret.required === "always"
          ? required.map(() => true)
          : secret.required === "no"
            ? required.map(() => false)
            : undefined;
      if (expected) expect(required, key).toEqual(expected);
      else
        expect(new Set(required), `${key}: "${secret.required}" should depend on the settings`).toEqual(
          new Set([true, false]),
        );
    }
  });

  test("no description mentions a secret's value", () => {
    const descriptions = [
      ...referenceRows(settingsSchema).map((r) => `${r.description} ${r.default}`),
      ...Object.values(SECRET_KEYS).map((s) => `${s.description} ${s.required}`),
    ];
    expect(secretValueProblems(descriptions.join("\n"), Object.values(SECRET_VALUES))).toEqual([]);
    expect(secretValueProblems(generated(), Object.values(SECRET_VALUES))).toEqual([]);
  });

  test("the secret-value check catches a leaked value, a value on a command line and credentials in a URL", () => {
    const leaked = `Password of the role, like ${SECRET_VALUES.databasePassword}: any text.`;
    expect(secretValueProblems(leaked, Object.values(SECRET_VALUES))).toEqual(["holds the secret value db-..."]);
    expect(secretValueProblems("`pulumi config set --secret utilitarian:databasePassword hunter2`", [])).toEqual([
      "sets a value in `pulumi config set --secret utilitarian:databasePassword hunter2`",
    ]);
    expect(
      secretValueProblems("`pulumi config set --secret --path 'utilitarian:apiSecretEnv.JWT_SIGNING_KEY' s3cr3t`", []),
    ).toHaveLength(1);
    expect(
      secretValueProblems('`pulumi config set --secret utilitarian:secretKey "$(openssl rand -base64 48)"`', []),
    ).toEqual([]);
    expect(secretValueProblems("URL: `amqp://app:Wq8x@rabbit:5672/`.", [])).toEqual([
      "holds credentials in amqp://app:Wq8x@",
    ]);
    expect(secretValueProblems("URL: `amqp://user:password@host:5672/vhost`.", [])).toEqual([]);
  });
});
