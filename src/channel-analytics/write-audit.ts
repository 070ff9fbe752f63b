/**
 * The audit record a request's write commits with (issue 12: no acknowledged write
 * without its record, no record of a write rolled back). src/audit/ builds it; the write
 * paths here only carry it: whatever commits the write (a transaction, a group commit's
 * batch) inserts the record's row in the same transaction, and says whether it committed.
 */
import { LOG_TABLES, type TableDef } from "../model/tables.js";
import type { ColumnValues } from "./record-input.js";
import { type Queryable, insertRows } from "./store/record-store.js";

export interface WriteAudit {
  /** Ids a write of this request stored (before its commit). */
  stored(table: TableDef, ids: readonly string[]): void;
  /** The record's row of the audit table, as of now; called just before the commit. */
  row(): ColumnValues;
  /** Whether the commit that held the row happened (false: rolled back, or unknown). */
  settled(committed: boolean): void;
}

/** Inserts the audit rows of the writes a transaction commits, with one statement. */
export async function insertAuditRows(db: Queryable, audits: readonly WriteAudit[]): Promise<void> {
  if (audits.length === 0) return;
  await insertRows(
    db,
    LOG_TABLES.Audit,
    audits.map((audit) => audit.row()),
  );
}

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
