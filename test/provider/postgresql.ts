import { exec } from "../support/exec";
import { factsOf } from "../support/provider-facts";
import { unsupported, type Context, type Props, type ResourceType } from "./types";

/**
 * postgresql_role and postgresql_database (cyrilgdn/terraform-provider-postgresql as pulumi-postgresql
 * 3.18.1 bridges it), as SQL run by psql as the provider's administrator. Values reach psql as
 * variables from the environment, never on a command line.
 */
export function postgresqlResources(ctx: Context): Record<string, ResourceType> {
  async function psql(sql: string, vars: Record<string, string> = {}): Promise<string> {
    const c = ctx.config();
    const env = {
      ...process.env,
      PGHOST: c.host,
      PGPORT: String(c.port ?? 5432),
      PGUSER: c.username,
      PGPASSWORD: c.password ?? "",
      PGDATABASE: c.database ?? "postgres",
      PGSSLMODE: c.sslmode ?? "prefer",
      PGCONNECT_TIMEOUT: String(c.connectTimeout ?? 30),
    };
    const preamble = Object.keys(vars)
      .map((k) => `\\getenv ${k} STANDIN_${k}\n`)
      .join("");
    for (const [k, v] of Object.entries(vars)) (env as Record<string, string>)[`STANDIN_${k}`] = v;
    const result = await exec("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"], {
      env,
      input: preamble + sql,
    });
    if (result.code !== 0) throw new Error(`postgresql: ${result.stderr.trim()}`);
    return result.stdout.trim();
  }
  const flag = (on: unknown, name: string) => (on ? name : `NO${name}`);
  const roleOptions = (r: Props) =>
    [
      r.login ? "LOGIN" : "NOLOGIN",
      flag(r.superuser, "SUPERUSER"),
      flag(r.createDatabase, "CREATEDB"),
      flag(r.createRole, "CREATEROLE"),
      flag(r.inherit !== false, "INHERIT"),
      flag(r.replication, "REPLICATION"),
    ].join(" ");
  const ROLE = ["name", "login", "password", "superuser", "createDatabase", "createRole", "inherit", "replication"];

  return {
    "postgresql:index/role:Role": {
      facts: factsOf("postgresql:index/role:Role"),
      check: (inputs) => unsupported(inputs, ROLE),
      async create(_urn, r) {
        await psql(`CREATE ROLE :"name" ${roleOptions(r)} PASSWORD :'password';\n`, {
          name: r.name,
          password: r.password ?? "",
        });
        return { id: r.name };
      },
      async read(id, props, inputs) {
        return (await psql(`SELECT 1 FROM pg_roles WHERE rolname = :'name';\n`, { name: id }))
          ? { props, inputs }
          : undefined;
      },
      async update(_urn, id, olds, news) {
        if (olds.name !== news.name) await psql(`ALTER ROLE :"old" RENAME TO :"name";\n`, { old: id, name: news.name });
        await psql(`ALTER ROLE :"name" ${roleOptions(news)} PASSWORD :'password';\n`, {
          name: news.name,
          password: news.password ?? "",
        });
        return {};
      },
      delete: async (_urn, id) => void (await psql(`DROP ROLE :"name";\n`, { name: id })),
    },
    "postgresql:index/database:Database": {
      facts: factsOf("postgresql:index/database:Database"),
      check: (inputs) => unsupported(inputs, ["name", "owner", "encoding", "template"]),
      async create(_urn, d) {
        await psql(`CREATE DATABASE :"name" OWNER :"owner" ENCODING :'encoding' TEMPLATE :"template";\n`, {
          name: d.name,
          owner: d.owner,
          encoding: d.encoding ?? "UTF8",
          template: d.template ?? "template0",
        });
        return { id: d.name };
      },
      async read(id, props, inputs) {
        return (await psql(`SELECT 1 FROM pg_database WHERE datname = :'name';\n`, { name: id }))
          ? { props, inputs }
          : undefined;
      },
      async update(_urn, id, olds, news) {
        if (olds.owner !== news.owner)
          await psql(`ALTER DATABASE :"name" OWNER TO :"owner";\n`, { name: id, owner: news.owner });
        return {};
      },
      delete: async (_urn, id) => void (await psql(`DROP DATABASE :"name";\n`, { name: id })),
    },
  };
}
