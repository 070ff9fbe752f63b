/**
 * Storing new KPI events. A group of them (one POST, one msdyn_LogAnalyticsEvent call, one
 * CreateMultiple) is stored whole or not at all, under the rules of kpi-event-rules.ts.
 *
 * Outside a transaction the groups of concurrent requests are stored together (group
 * commit): while a batch is in the database, the groups that arrive wait, and then go in
 * with one statement and one commit instead of one each. This is what lets single-event
 * ingestion approach the database's own INSERT rate: the commit's WAL flush and the
 * per-statement work are shared. Nothing is weakened: every request is answered only
 * after the commit that holds its events, every event is checked by the same rules and
 * foreign keys, and every request gets its own verdict. When a database refusal (say, a
 * missing session) fails a batch, each of its groups is stored again on its own, so only
 * the group at fault is refused and it is told exactly why.
 */
import pg from "pg";
import { tableByLogicalName } from "../model/tables.js";
import { explainRefusedRows } from "./integrity-errors.js";
import { type GroupOutcome, KpiEventRuleError, type Returning, insertKpiEventGroups } from "./kpi-event-rules.js";
import type { ColumnValues } from "./record-input.js";
import type { Queryable, Row } from "./record-store.js";

const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");

/** Stores a group of new events; a refusal is thrown as a KpiEventRuleError naming the event. */
export interface KpiEventSink {
  write(rows: ColumnValues[], returning: Returning): Promise<Row[]>;
}

/** A database error explained as a refusal of one of `rows`, when it is one. */
async function explainRefusal(error: unknown, rows: readonly ColumnValues[], db: Queryable): Promise<unknown> {
  const refusal = await explainRefusedRows(error, KPI_EVENT, rows, db);
  return refusal ? new KpiEventRuleError(refusal.index, refusal.error) : error;
}

/** Stores one group on `db`; inside a transaction under a savepoint, so a refusal leaves the transaction usable. */
export async function writeKpiEventGroup(
  db: Queryable,
  rows: ColumnValues[],
  returning: Returning,
  inTransaction: boolean,
): Promise<Row[]> {
  if (inTransaction) await db.query("SAVEPOINT kpi_events");
  let outcome: GroupOutcome;
  try {
    [outcome] = (await insertKpiEventGroups(db, [rows], returning)) as [GroupOutcome];
  } catch (error) {
    if (inTransaction) await db.query("ROLLBACK TO SAVEPOINT kpi_events");
    throw await explainRefusal(error, rows, db);
  }
  if (inTransaction) await db.query("RELEASE SAVEPOINT kpi_events");
  if ("refused" in outcome) throw outcome.refused;
  return outcome.stored;
}

interface Waiting {
  rows: ColumnValues[];
  returning: Returning;
  resolve: (rows: Row[]) => void;
  reject: (error: unknown) => void;
}

export interface KpiEventBatchLimits {
  /** How many batches may be in the database at once; while they all are, new groups wait and form the next batch. */
  batchesInFlight: number;
  /**
   * Rows beyond which a batch takes no more groups. About 1,000 rows take tens of
   * milliseconds in the database; bigger batches only add latency.
   */
  maxBatchRows?: number;
  /**
   * A group this big is a batch already and goes straight to the pool: it spreads a
   * statement's and a commit's fixed cost on its own, and waiting gains it nothing.
   */
  aloneFromRows?: number;
}

/** Group commit on the pool (see the top of this file). */
export class KpiEventBatcher implements KpiEventSink {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;

  private readonly limits: Required<KpiEventBatchLimits>;

  constructor(
    private readonly pool: pg.Pool,
    limits: KpiEventBatchLimits,
  ) {
    this.limits = { maxBatchRows: 1000, aloneFromRows: 100, ...limits };
  }

  write(rows: ColumnValues[], returning: Returning): Promise<Row[]> {
    if (rows.length === 0) return Promise.resolve([]);
    if (rows.length >= this.limits.aloneFromRows) return writeKpiEventGroup(this.pool, rows, returning, false);
    return new Promise((resolve, reject) => {
      this.waiting.push({ rows, returning, resolve, reject });
      this.startBatches();
    });
  }

  private startBatches(): void {
    while (this.inFlight < this.limits.batchesInFlight && this.waiting.length > 0) {
      const batch = [this.waiting.shift()!];
      let rowCount = batch[0]!.rows.length;
      while (this.waiting.length > 0 && rowCount + this.waiting[0]!.rows.length <= this.limits.maxBatchRows) {
        const next = this.waiting.shift()!;
        batch.push(next);
        rowCount += next.rows.length;
      }
      this.inFlight++;
      void this.store(batch).finally(() => {
        this.inFlight--;
        this.startBatches();
      });
    }
  }

  private async store(batch: Waiting[]): Promise<void> {
    const returning = batch.some((w) => w.returning === "row") ? "row" : "key";
    let outcomes: GroupOutcome[];
    try {
      outcomes = await insertKpiEventGroups(this.pool, batch.map((w) => w.rows), returning);
    } catch (error) {
      // Not the database's refusal (a lost connection, a bug): whether the batch was
      // stored is unknown, so it must not be stored again.
      if (!(error instanceof pg.DatabaseError)) {
        for (const w of batch) w.reject(error);
        return;
      }
      if (batch.length === 1) {
        const only = batch[0]!;
        await explainRefusal(error, only.rows, this.pool).then(only.reject, only.reject);
        return;
      }
      // One group's refusal failed the statement for all: each group again, on its own.
      await Promise.all(batch.map((w) => writeKpiEventGroup(this.pool, w.rows, w.returning, false).then(w.resolve, w.reject)));
      return;
    }
    batch.forEach((w, i) => {
      const outcome = outcomes[i]!;
      if ("refused" in outcome) w.reject(outcome.refused);
      else w.resolve(outcome.stored);
    });
  }
}
