/** The audit log's tables in an organisation's database: appending records. */
import { insertLogRecords } from "../../channel-analytics/write-audit.js";
import type { Queryable } from "../../db/transactions.js";
import { LOG_TABLES } from "../../model/tables.js";
import { LOG_CATEGORIES, type LogRecord } from "../azure-monitor.js";

/**
 * Appends records, one statement per category. A record already there (its write's
 * transaction committed it, and a retry brings it again) is left as it is.
 */
export async function appendLogRecords(db: Queryable, records: readonly LogRecord[]): Promise<void> {
  for (const category of LOG_CATEGORIES) {
    const texts = records.filter((r) => r.category === category).map((r) => JSON.stringify(r));
    await insertLogRecords(db, LOG_TABLES[category], texts);
  }
}
