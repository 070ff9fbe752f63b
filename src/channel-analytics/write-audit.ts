/**
 * The audit record a request's write commits with (issue 12: no acknowledged write
 * without its record, no record of a write rolled back). src/audit/ builds it; the write
 * paths here only carry it: whatever commits the write (a transaction, a group commit's
 * batch) inserts the record's row in the same transaction, and says whether it committed.
 */
import { ident, prepared } from "../db/sql.js";
import { LOG_TABLES, type TableDef } from "../model/tables.js";
import { type Queryable, recordsSource } from "./store/record-store.js";

export interface WriteAudit {
  /** Ids a write of this request stored (before its commit). */
  stored(table: TableDef, ids: readonly string[]): void;
  /**
   * The record as JSON, as of now; called just before the commit. `storing`: ids the same
   * statement stores, named in the record as if already stored.
   */
  recordText(storing?: { table: TableDef; ids: readonly string[] }): string;
  /** Whether the commit that held the row happened (false: rolled back, or unknown). */
  settled(committed: boolean): void;
}

/**
 * The INSERT of JSON records (one parameter, `$param`: their JSON array) into a log table;
 * `join` and `where` restrict which are inserted (rows numbered by `r.n`). A record
 * already stored (a retry brings it again) is left as it is.
 */
export function logInsertSql(table: TableDef, param: number, join = "", where = ""): string {
  const { names, expressions, from } = recordsSource(table, param);
  return (
    `INSERT INTO ${ident(table.logicalName)} (${names.map(ident).join(", ")}) ` +
    `SELECT ${expressions.join(", ")} FROM ${from}${join ? ` ${join}` : ""}${where ? ` WHERE ${where}` : ""} ` +
    `ON CONFLICT (${ident(table.primaryKey)}) DO NOTHING`
  );
}

/** The records' texts as the JSON array `logInsertSql` takes. */
export const recordsParam = (texts: readonly string[]) => `[${texts.join(",")}]`;

/** Inserts records (their JSON texts) into a log table, with one statement. */
export async function insertLogRecords(db: Queryable, table: TableDef, texts: readonly string[]): Promise<void> {
  if (texts.length === 0) return;
  await db.query(prepared(logInsertSql(table, 1), [recordsParam(texts)]));
}

/** Inserts the audit rows of the writes a transaction commits, with one statement. */
export const insertAuditRows = (db: Queryable, audits: readonly WriteAudit[]): Promise<void> =>
  insertLogRecords(
    db,
    LOG_TABLES.Audit,
    audits.map((audit) => audit.recordText()),
  );

/** Settles each audit once `commit` has run: committed if it resolved. */
export async function settleAudits<T>(audits: readonly WriteAudit[], commit: Promise<T>): Promise<T> {
  try {
    const result = await commit;
    for (const audit of audits) audit.settled(true);
    return result;
  } catch (error) {
    for (const audit of audits) audit.settled(false);
    throw error;
  }
}
