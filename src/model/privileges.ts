/**
 * Dataverse record privileges, named `prv<Verb><table logical name>` (shared/reference/security.md §2),
 * from the table definitions, so a new table has its privileges with no other change.
 */
import { type TableDef, WEB_API_TABLES } from "./tables.js";

export const PRIVILEGE_VERBS = ["Create", "Read", "Write", "Delete", "Append", "AppendTo"] as const;
export type PrivilegeVerb = (typeof PRIVILEGE_VERBS)[number];

/** A privilege a request needs: a verb on a table. */
export interface PrivilegeNeed {
  verb: PrivilegeVerb;
  table: TableDef;
}

export const privilegeName = ({ verb, table }: PrivilegeNeed): string => `prv${verb}${table.logicalName}`;

/** Every record privilege of every table of the Web API (internal tables have none: no request reaches them). */
export const ALL_PRIVILEGES: readonly string[] = WEB_API_TABLES.flatMap((table) =>
  privilegeVerbsOf(table).map((verb) => privilegeName({ verb, table })),
);

/** The verbs a table has privileges for: a read-only table (the audit log) has only Read. */
export function privilegeVerbsOf(table: TableDef): readonly PrivilegeVerb[] {
  return table.readOnly ? ["Read"] : PRIVILEGE_VERBS;
}
