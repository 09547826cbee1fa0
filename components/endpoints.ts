import type { Settings } from "../config/schema";
import type { DatabaseEndpoints } from "./database";
import { KINDS } from "./kinds";

/** Where a managed PostgreSQL is published on the Docker host's 127.0.0.1 unless `database.operatorPort` says. */
export const MANAGED_DATABASE_OPERATOR_PORT = 15432;

/**
 * How the containers and this machine reach PostgreSQL: a managed server by its alias on the
 * private network and on loopback; an external one at its host, unless the operator reaches it
 * elsewhere (a tunnel, a pooler's other port).
 */
export function databaseEndpoints(
  db: Pick<Settings["database"], "mode" | "host" | "port" | "operatorHost" | "operatorPort">,
): DatabaseEndpoints {
  const postgres = KINDS.postgres;
  return db.mode === "managed"
    ? {
        containerHost: postgres.alias,
        containerPort: postgres.port.number,
        operatorHost: db.operatorHost ?? "127.0.0.1",
        operatorPort: db.operatorPort ?? MANAGED_DATABASE_OPERATOR_PORT,
      }
    : {
        containerHost: db.host!,
        containerPort: db.port,
        operatorHost: db.operatorHost ?? db.host!,
        operatorPort: db.operatorPort ?? db.port,
      };
}
