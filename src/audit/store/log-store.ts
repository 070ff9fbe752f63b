/** The audit log's tables in an organisation's database: appending records. */
import { rowsSource } from "../../channel-analytics/store/record-store.js";
import { ident, prepared } from "../../db/sql.js";
import type { Queryable } from "../../db/transactions.js";
import { LOG_TABLES } from "../../model/tables.js";
import { logRow } from "../api-event.js";
import { LOG_CATEGORIES, type LogRecord } from "../azure-monitor.js";

/**
 * Appends records, one statement per category. A record already there (its write's
 * transaction committed it, and a retry brings it again) is left as it is.
 */
export async function appendLogRecords(db: Queryable, records: readonly LogRecord[]): Promise<void> {
  for (const category of LOG_CATEGORIES) {
    const rows = records.filter((r) => r.category === category).map(logRow);
    if (rows.length === 0) continue;
    const table = LOG_TABLES[category];
    const { names, expressions, from, values } = rowsSource(table, rows);
    await db.query(
      prepared(
        `INSERT INTO ${ident(table.logicalName)} (${names.map(ident).join(", ")}) SELECT ${expressions.join(", ")} FROM ${from} ` +
          `ON CONFLICT (${ident(table.primaryKey)}) DO NOTHING`,
        values,
      ),
    );
  }
}
