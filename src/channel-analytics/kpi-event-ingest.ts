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
 *
 * A group of 100 events or more (CreateMultiple, a big msdyn_LogAnalyticsEvent call) is a
 * batch on its own and goes in through COPY: the rules with one lookup, then one
 * `COPY … FROM STDIN` in a transaction with the request's audit record (COPY_FROM_ROWS).
 *
 * Each group carries its caller's row scope (provider-scope.ts) when that is a channel
 * provider's: the rules check it per group, in the same statement, so a group refused
 * for writing into another provider's conversation leaves the others of its batch alone.
 */
import pg from "pg";
import { GroupCommit, type Settled, settle } from "../db/group-commit.js";
import { ClientGoneError } from "../db/request-signal.js";
import { LOG_TABLES, tableByLogicalName } from "../model/tables.js";
import { explainRefusedRows } from "./integrity-errors.js";
import {
  type GroupRecords,
  type GroupOutcome,
  type GroupVerdict,
  KpiEventRuleError,
  type Returning,
  checkKpiEventGroups,
  insertKpiEventGroups,
} from "./kpi-event-rules.js";
import type { RowScope } from "./provider-scope.js";
import type { ColumnValues } from "./record-input.js";
import { type CopyClient, type PreparedCopy, onClient, prepareCopy, runCopy } from "./store/copy-rows.js";
import type { Queryable, Row } from "./store/record-store.js";
import { type WriteAudit, insertLogRecords } from "./write-audit.js";

const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");

/**
 * A group of this many events or more (a CreateMultiple, a msdyn_LogAnalyticsEvent call of
 * 100 events or more: a batch on its own) is stored through COPY (`copyKpiEventGroup`).
 * Smaller groups share the group commit's batches, each one statement (`insertKpiEventGroups`):
 * one round trip where COPY's transaction takes five (lookup, BEGIN, COPY, audit records,
 * COMMIT), and with one batch in the database at a time a batch's round trips are every
 * waiting request's latency. Measured with 10-event msdyn_LogAnalyticsEvent calls at 32
 * connections (2 cores), the same batches through COPY answered 0.6 × the calls per second
 * with 3 × the p99.
 */
export const COPY_FROM_ROWS = 100;

/** Stores a group of new events; a refusal is thrown as a KpiEventRuleError naming the event. */
export interface KpiEventSink {
  /**
   * `signal`: the request's; once its client is gone, queued rows are dropped unwritten.
   * `scope`: the caller's row scope, when it is a channel provider's.
   * `audit`: the request's audit record, committed with its events.
   */
  write(rows: ColumnValues[], returning: Returning, signal?: AbortSignal, scope?: RowScope, audit?: WriteAudit): Promise<Row[]>;
}

/** A database error explained as a refusal of one of `rows`, when it is one. */
async function explainRefusal(error: unknown, rows: readonly ColumnValues[], db: Queryable): Promise<unknown> {
  const refusal = await explainRefusedRows(error, KPI_EVENT, rows, db);
  return refusal ? new KpiEventRuleError(refusal.index, refusal.error) : error;
}

/**
 * Stores one group on `db`; inside a transaction under a savepoint, so a refusal leaves the
 * transaction usable. `audit` (outside a transaction only): the request's record, committed
 * with the group (by the same statement, or in the same transaction), and settled.
 */
export async function writeKpiEventGroup(
  db: Queryable,
  rows: ColumnValues[],
  returning: Returning,
  inTransaction: boolean,
  scope?: RowScope,
  audit?: WriteAudit,
  signal?: AbortSignal,
): Promise<Row[]> {
  // (Only keys come back from a COPY: the creates that want rows are single events.)
  if (rows.length >= COPY_FROM_ROWS && returning === "key") {
    return copyKpiEventGroup(db, rows, inTransaction, scope, audit, signal);
  }
  if (inTransaction) await db.query("SAVEPOINT kpi_events");
  let outcome: GroupOutcome;
  try {
    [outcome] = (await insertKpiEventGroups(db, [rows], returning, [scope], auditCompanions([rows], [audit]))) as [GroupOutcome];
  } catch (error) {
    audit?.settled(false);
    if (inTransaction) await db.query("ROLLBACK TO SAVEPOINT kpi_events");
    throw await explainRefusal(error, rows, db);
  }
  if (inTransaction) await db.query("RELEASE SAVEPOINT kpi_events");
  return storedOrThrow(outcome, rows, audit);
}

function storedOrThrow(outcome: GroupOutcome, rows: readonly ColumnValues[], audit: WriteAudit | undefined): Row[] {
  if ("refused" in outcome) throw outcome.refused;
  if ("failed" in outcome) throw outcome.failed;
  settleStored(audit, rows);
  return outcome.stored;
}

/**
 * One group through COPY: the rules first (one lookup, on `db`), then, for a group they
 * admit, in the caller's transaction under a savepoint, else in a transaction of its own
 * on `db` (a pool's connection, or the client given) with its audit record. A database's
 * refusal is explained on the same connection. `signal` (a transaction of its own only):
 * the request's; when its client has gone by the time the rows are in, the transaction is
 * rolled back instead of committed (ClientGoneError): nobody reads the answer, and the
 * client's retry would be a duplicate.
 */
async function copyKpiEventGroup(
  db: Queryable,
  rows: ColumnValues[],
  inTransaction: boolean,
  scope?: RowScope,
  audit?: WriteAudit,
  signal?: AbortSignal,
): Promise<Row[]> {
  const prepared = await prepareKpiEventCopy(db, [rows], [scope]);
  const [verdict] = prepared.verdicts as [GroupVerdict];
  if ("refused" in verdict) throw verdict.refused;
  if ("failed" in verdict) throw verdict.failed;
  return onClient(db, async (client) => {
    let outcome: GroupOutcome;
    try {
      await client.query(inTransaction ? "SAVEPOINT kpi_events" : "BEGIN");
      [outcome] = (await storeKpiEventCopy(client, prepared, [rows], [audit])) as [GroupOutcome];
      if (!inTransaction && signal?.aborted) throw new ClientGoneError();
      await client.query(inTransaction ? "RELEASE SAVEPOINT kpi_events" : "COMMIT");
    } catch (error) {
      audit?.settled(false);
      await client.query(inTransaction ? "ROLLBACK TO SAVEPOINT kpi_events" : "ROLLBACK").catch(() => {});
      if (error instanceof ClientGoneError) throw error;
      throw await explainRefusal(error, rows, client);
    }
    return storedOrThrow(outcome, rows, audit);
  });
}

/** Groups checked by the rules, and the COPY of the rows of those they admit. */
interface KpiEventCopy {
  verdicts: GroupVerdict[];
  copy: PreparedCopy | undefined;
}

/**
 * The first half of storing groups through COPY, before any connection is held: the rules
 * with ONE lookup (kpi-event-rules.ts `checkKpiEventGroups`; at READ COMMITTED a lookup
 * inside the transaction would see no more than this one), and the COPY's data for the rows
 * of the groups they admit. A group the rules refuse keeps its own verdict.
 */
async function prepareKpiEventCopy(
  db: Queryable,
  groups: ReadonlyArray<readonly ColumnValues[]>,
  scopes: ReadonlyArray<RowScope | undefined>,
): Promise<KpiEventCopy> {
  const verdicts = await checkKpiEventGroups(db, groups, scopes);
  const rows = groups.filter((_, g) => "admitted" in verdicts[g]!).flat();
  return { verdicts, copy: prepareCopy(KPI_EVENT, rows) };
}

/**
 * The second half, on `client` inside the caller's transaction: ONE COPY of the admitted
 * rows (the foreign keys check every parent) and the audit records of the admitted groups
 * (`audits`, per group). A refusal by the database (a missing parent, a taken key) fails
 * the whole COPY, and so the transaction. The stored rows are known by their keys.
 */
async function storeKpiEventCopy(
  client: CopyClient,
  { verdicts, copy }: KpiEventCopy,
  groups: ReadonlyArray<readonly ColumnValues[]>,
  audits: ReadonlyArray<WriteAudit | undefined>,
): Promise<GroupOutcome[]> {
  await runCopy(client, copy);
  const records = auditCompanions(
    groups,
    audits.map((audit, g) => ("admitted" in verdicts[g]! ? audit : undefined)),
  );
  if (records) await insertLogRecords(client, records.table, records.texts);
  return verdicts.map((verdict, g): GroupOutcome => {
    if (!("admitted" in verdict)) return verdict;
    return { stored: idsOf(groups[g]!).map((id): Row => ({ [KPI_EVENT.primaryKey]: id })) };
  });
}

interface Group {
  rows: ColumnValues[];
  returning: Returning;
  scope?: RowScope;
  audit?: WriteAudit;
}

/**
 * One group on the pool, its audit record in the same statement. `signal`: the request's;
 * a group whose client has gone while it waited for a connection is not written (under
 * overload the wait is long, and a client that gave up would retry: a duplicate), nor
 * committed when it has gone while its rows were copied (copyKpiEventGroup).
 */
async function writeGroupAlone(pool: pg.Pool, group: Group, signal?: AbortSignal): Promise<Row[]> {
  const { rows, returning, scope, audit } = group;
  if (!signal) return writeKpiEventGroup(pool, rows, returning, false, scope, audit);
  if (signal.aborted) throw new ClientGoneError();
  const client = await pool.connect();
  try {
    if (signal.aborted) throw new ClientGoneError();
    return await writeKpiEventGroup(client, rows, returning, false, scope, audit, signal);
  } finally {
    client.release();
  }
}

/** The audit records of the groups that have an audit, each naming its group's events as stored. */
function auditCompanions(
  groups: ReadonlyArray<readonly ColumnValues[]>,
  audits: ReadonlyArray<WriteAudit | undefined>,
): GroupRecords | undefined {
  const texts: string[] = [];
  const groupOf: number[] = [];
  audits.forEach((audit, g) => {
    if (!audit) return;
    texts.push(audit.recordText({ table: KPI_EVENT, ids: idsOf(groups[g]!) }));
    groupOf.push(g);
  });
  return texts.length ? { table: LOG_TABLES.Audit, texts, groups: groupOf } : undefined;
}

/** A stored group's audit: its events written, its record committed with them. */
function settleStored(audit: WriteAudit | undefined, rows: readonly ColumnValues[]): void {
  if (!audit) return;
  audit.stored(KPI_EVENT, idsOf(rows));
  audit.settled(true);
}

// Every new event carries its primary key before it is stored.
const idsOf = (rows: readonly ColumnValues[]) => rows.map((values) => String(values.get(KPI_EVENT.primaryKey)));

/** Group commit on the pool (see the top of this file and src/db/group-commit.ts). */
export class KpiEventBatcher implements KpiEventSink {
  private readonly groupCommit: GroupCommit<Group, Row[]>;

  /**
   * `batchesInFlight`: batches in the database at once. A batch takes groups up to 1,000
   * rows (such a batch takes tens of milliseconds; bigger ones only add latency); a group
   * of 100 rows or more is a batch already (it spreads a statement's and a commit's fixed
   * cost on its own) and goes straight to the pool.
   */
  constructor(
    private readonly pool: pg.Pool,
    { batchesInFlight, maxQueued }: { batchesInFlight: number; maxQueued?: number },
    private readonly aloneFromRows = 100,
  ) {
    this.groupCommit = new GroupCommit((groups) => this.store(groups), {
      batchesInFlight,
      maxBatchSize: 1000,
      maxQueued,
      sizeOf: (group) => group.rows.length,
    });
  }

  write(rows: ColumnValues[], returning: Returning, signal?: AbortSignal, scope?: RowScope, audit?: WriteAudit): Promise<Row[]> {
    if (rows.length === 0) return Promise.resolve([]);
    if (rows.length >= this.aloneFromRows) return writeGroupAlone(this.pool, { rows, returning, scope, audit }, signal);
    return this.groupCommit.submit({ rows, returning, scope, audit }, signal);
  }

  /**
   * The batch's statement, with the audit records of the groups it stores (a group the
   * rules refuse commits no record: the subscriber logs its refusal).
   */
  private async insertBatch(groups: Group[], returning: Returning): Promise<GroupOutcome[]> {
    const rows = groups.map((g) => g.rows);
    const audits = groups.map((g) => g.audit);
    let outcomes: GroupOutcome[];
    try {
      outcomes = await insertKpiEventGroups(
        this.pool,
        rows,
        returning,
        groups.map((g) => g.scope),
        auditCompanions(rows, audits),
      );
    } catch (error) {
      // Nothing of the statement committed (a group retried on its own settles again).
      for (const audit of audits) audit?.settled(false);
      throw error;
    }
    outcomes.forEach((outcome, i) => {
      if ("stored" in outcome) settleStored(groups[i]!.audit, groups[i]!.rows);
    });
    return outcomes;
  }

  private async store(groups: Group[]): Promise<Array<Settled<Row[]>>> {
    const returning = groups.some((g) => g.returning === "row") ? "row" : "key";
    let outcomes: GroupOutcome[];
    try {
      outcomes = await this.insertBatch(groups, returning);
    } catch (error) {
      // Not the database's refusal (a lost connection, a bug): whether the batch was
      // stored is unknown, so it must not be stored again.
      if (!(error instanceof pg.DatabaseError)) throw error;
      if (groups.length === 1) return [{ error: await explainRefusal(error, groups[0]!.rows, this.pool) }];
      // One group's refusal failed the statement for all: each group again, on its own.
      return Promise.all(groups.map((g) => settle(writeGroupAlone(this.pool, g))));
    }
    return outcomes.map((outcome) =>
      "stored" in outcome ? { value: outcome.stored } : { error: "refused" in outcome ? outcome.refused : outcome.failed },
    );
  }
}
