/**
 * Create, retrieve, update/upsert and delete rows of the six tables under the domain
 * rules of DESIGN.md. This is the one place those rules run: the entity-set routes use
 * it, and so must $batch, the bulk actions and the logging actions.
 *
 * A channel provider's caller (Caller.providerId) is confined to its own conversation
 * trees on every operation here (provider-scope.ts): it retrieves and deletes only those
 * rows (others are missing to it), and writing anything else is refused with 403.
 */
import type pg from "pg";
import type { RowAdmission } from "../db/admission.js";
import { GroupCommit, type Settled, settle } from "../db/group-commit.js";
import { prepared } from "../db/sql.js";
import { type Queryable, withSavepoint, withTransaction } from "../db/transactions.js";
import type { Caller } from "../model/caller.js";
import { isDistributed } from "../model/distribution.js";
import type { RecordKey } from "../model/keys.js";
import { newRowId } from "../model/row-ids.js";
import { type ColumnDef, TABLES, type TableDef } from "../model/tables.js";
import { ErrorCodes, ODataError, badRequest } from "../odata/errors.js";
import { etagListIncludes, etagOf } from "../odata/etag.js";
import { explainDatabaseError, explainRefusedRows } from "./integrity-errors.js";
import { KpiEventBatcher, type KpiEventSink, writeKpiEventGroup } from "./kpi-event-ingest.js";
import {
  type RowScope,
  assertChangeInScope,
  checkNewRowsInScope,
  confineProviderColumn,
  fillProviderColumn,
  foreignConversationSql,
  isScopedTable,
  rowScope,
} from "./provider-scope.js";
import {
  FILLED_BY_KPI_RULES,
  KpiEventRuleError,
  type Returning,
  applyKpiEventRules,
  assertDefinitionNamed,
} from "./kpi-event-rules.js";
import {
  type ColumnValues,
  assertRequiredForCreate,
  assertWritable,
  convertValue,
  parseRecordBody,
  reconcileState,
} from "./record-input.js";
import { copyRowsOn } from "./store/copy-rows.js";
import { type Row, deleteRow, existingIds, findRow, insertRow, updateRow, upsertRowsSql } from "./store/record-store.js";
import { type WriteAudit, insertAuditRows, settleAudits } from "./write-audit.js";

export type { Caller };

/** One row of `upsertByNaturalKeys`. */
export interface NaturalKeyUpsert {
  table: TableDef;
  /** The natural key's values. */
  key: Readonly<Record<string, string>>;
  /** The columns to write, as in a PATCH body. */
  body: unknown;
  /** Columns written only when the row is created. */
  createOnly?: Readonly<Record<string, unknown>>;
  /** Who writes it, when not the writer's caller (calls of several callers share one group commit). */
  caller?: Caller;
}

/** Per item of `upsertByNaturalKeys`, in order: the row's id and whether it was created. */
export type UpsertedRows = Array<{ id: string; created: boolean }>;

/** Conditional-request headers (shared/reference/dataverse-webapi.md §4). */
export interface Preconditions {
  ifMatch?: string;
  ifNoneMatch?: string;
}

export function notFound(table: TableDef, key: RecordKey): ODataError {
  if (key.kind === "id") {
    return new ODataError(404, ErrorCodes.objectDoesNotExist, `${table.logicalName} With Id = ${key.id} Does Not Exist`);
  }
  const described = Object.entries(key.values)
    .map(([name, value]) => `${name}='${value}'`)
    .join(", ");
  return new ODataError(
    404,
    ErrorCodes.objectDoesNotExist,
    `A record with the specified key values does not exist in ${table.logicalName} entity (${described}).`,
  );
}

const versionMismatch = () =>
  new ODataError(
    412,
    ErrorCodes.concurrencyVersionMismatch,
    "The version of the existing record doesn't match the RowVersion property provided.",
  );

/** Checks If-Match / If-None-Match against the row (undefined when it does not exist). */
function checkPreconditions(table: TableDef, key: RecordKey, row: Row | undefined, pre: Preconditions): void {
  const ifMatch = pre.ifMatch?.trim();
  const ifNoneMatch = pre.ifNoneMatch?.trim();
  if (ifMatch) {
    if (!row) throw notFound(table, key);
    if (ifMatch !== "*" && !etagListIncludes(ifMatch, etagOf(row))) throw versionMismatch();
  }
  // Browsers' cache-busting `If-None-Match: null` is not an ETag (reference §0).
  if (ifNoneMatch && ifNoneMatch !== "null" && row) {
    if (ifNoneMatch === "*" || etagListIncludes(ifNoneMatch, etagOf(row))) {
      throw new ODataError(412, ErrorCodes.duplicateRecord, "A record with matching key values already exists.");
    }
  }
}

/** The record operations; RecordService (one transaction each) and RecordWriter (a shared one) both fit. */
export interface RecordOperations {
  retrieve(table: TableDef, key: RecordKey): Promise<Row>;
  /** `keyOnly`: only the new row's primary key is needed (no representation asked for). */
  /** `signal`: the request's; queued work of a client that has gone is dropped before it runs. */
  create(table: TableDef, body: unknown, options?: { keyOnly?: boolean; signal?: AbortSignal }): Promise<Row>;
  /** Creates all rows or none; a refusal names its row with `label(index)`. */
  createMany(
    table: TableDef,
    bodies: readonly unknown[],
    label: (index: number) => string,
    signal?: AbortSignal,
  ): Promise<string[]>;
  upsert(table: TableDef, key: RecordKey, body: unknown, pre?: Preconditions): Promise<{ row: Row; created: boolean }>;
  /** Upserts by natural keys in one statement; undefined (nothing written) when `upsert` is needed instead. */
  upsertByNaturalKeys(items: readonly NaturalKeyUpsert[], signal?: AbortSignal): Promise<UpsertedRows | undefined>;
  setProperty(table: TableDef, key: RecordKey, column: ColumnDef, value: unknown): Promise<Row>;
  /** Returns the deleted row's primary key. */
  remove(table: TableDef, key: RecordKey, pre?: Preconditions): Promise<string>;
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === "23505";

const isKpiEvent = (table: TableDef) => table.logicalName === "msdyn_kpieventdata";

/**
 * The write operations, bound to one connection. Outside a transaction (`db` is the pool)
 * each write is one autocommitted statement; inside one (`$batch` change sets, bulk and
 * logging actions) each write runs under a savepoint, so a refusal can be explained on
 * the same connection, seeing the transaction's own rows, and an upsert that loses a race
 * can turn into an update.
 */
export class RecordWriter implements RecordOperations {
  /** The caller's row scope, when it is a channel provider's (provider-scope.ts). */
  private readonly scope: RowScope | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly caller: Caller,
    private readonly inTransaction: boolean,
    /** Where new KPI events go outside a transaction (group commit); inside one, they go on `db`. */
    private readonly kpiEvents?: KpiEventSink,
    /** The request's audit record: told what each write stores (src/channel-analytics/write-audit.ts). */
    private readonly audit?: WriteAudit,
  ) {
    this.scope = rowScope(caller);
  }

  private report(table: TableDef, ids: readonly string[]): void {
    if (ids.length) this.audit?.stored(table, ids);
  }

  private reportRow<T extends Row>(table: TableDef, row: T): T {
    this.report(table, [String(row[table.primaryKey])]);
    return row;
  }

  /** Another provider's row is missing to a provider's caller. */
  async retrieve(table: TableDef, key: RecordKey): Promise<Row> {
    const row = await findRow(this.db, table, key, false, this.scope);
    if (!row) throw notFound(table, key);
    return row;
  }

  /**
   * POST {set}: creates a row from a JSON body. `keyOnly`: the caller needs only the new
   * row's primary key (no representation asked for).
   */
  async create(
    table: TableDef,
    body: unknown,
    { keyOnly = false, signal }: { keyOnly?: boolean; signal?: AbortSignal } = {},
  ): Promise<Row> {
    const values = parseRecordBody(table, body);
    assertWritable(table, values, "create");
    await this.assertNewIds(table, [values]);
    if (isKpiEvent(table)) {
      // The ingestion hot path: rules and INSERT in one statement, shared by concurrent requests.
      this.completeNewKpiEvent(table, values);
      try {
        const [row] = await this.storeKpiEvents([values], keyOnly ? "key" : "row", signal);
        // Outside a transaction the group commit has told the audit already.
        return this.inTransaction ? this.reportRow(table, row!) : row!;
      } catch (error) {
        throw error instanceof KpiEventRuleError ? error.error : error;
      }
    }
    const row = await this.guard(table, values, undefined, async () => {
      await this.completeForCreate(table, values);
      return insertRow(this.db, table, values);
    });
    return this.reportRow(table, row);
  }

  /**
   * PATCH {set}(key): updates the given columns, or creates the row when it is missing
   * (unless `If-Match` says update only). Returns the row and whether it was created.
   */
  async upsert(table: TableDef, key: RecordKey, body: unknown, pre: Preconditions = {}): Promise<{ row: Row; created: boolean }> {
    this.requireTransaction("upsert");
    const values = parseRecordBody(table, body);
    if (key.kind === "id" && values.has(table.primaryKey) && values.get(table.primaryKey) !== key.id) {
      throw badRequest(`The ${table.primaryKey} in the body differs from the key in the URL.`, ErrorCodes.invalidArgument);
    }
    values.delete(table.primaryKey);
    for (let attempt = 0; ; attempt++) {
      const current = await findRow(this.db, table, key, true);
      // Before the preconditions: another provider's row is refused whatever the request's ETag.
      if (current && this.scope) await assertChangeInScope(this.db, table, this.scope, current, values);
      checkPreconditions(table, key, current, pre);
      if (current)
        return { row: this.reportRow(table, await this.updateExisting(table, current, new Map(values))), created: false };
      const created = new Map(values);
      if (key.kind === "id") created.set(table.primaryKey, key.id);
      else for (const [name, value] of Object.entries(key.values)) if (!created.has(name)) created.set(name, value);
      assertWritable(table, created, "create");
      try {
        const row = await this.guard(
          table,
          created,
          undefined,
          async () => {
            await this.completeForCreate(table, created);
            return insertRow(this.db, table, created);
          },
          attempt === 0,
        );
        return { row: this.reportRow(table, row), created: true };
      } catch (error) {
        // Another upsert of the same missing row won the race: now it is an update.
        if (attempt > 0 || !isUniqueViolation(error)) throw error;
      }
    }
  }

  /**
   * Upserts rows by their natural keys in ONE statement, atomic without a transaction:
   * each row is updated with `body` when its key exists, else created from `body` and
   * `createOnly`. It returns undefined, having written nothing, when a row needs more
   * than this (state columns, a column that only one of create and update may write, two
   * items for one row, a KPI event) or the database refuses: the caller then runs
   * `upsert` per row, which has every rule and explains every refusal.
   */
  async upsertByNaturalKeys(items: readonly NaturalKeyUpsert[]): Promise<UpsertedRows | undefined> {
    const planned: Array<{ item: NaturalKeyUpsert; created: ColumnValues; updateColumns: string[]; key: string }> = [];
    // Provider scopes: each scoped item's conversation, and the provider it must belong to.
    const scoped: Array<{ conversationId: string; providerId: string; conversation: boolean }> = [];
    // The conversations this statement writes, and for which provider's caller (undefined: an unscoped one).
    const conversationItems = new Map<string, string | undefined>();
    try {
      for (const item of items) {
        const { table, key, body, createOnly = {} } = item;
        const naturalKey = table.naturalKey;
        if (!naturalKey || isKpiEvent(table) || naturalKey.some((c) => !(c in key))) return undefined;
        const values = parseRecordBody(table, body);
        const touchesKeyOrState = [...naturalKey, table.primaryKey, "statecode", "statuscode"].some((c) => values.has(c));
        if (touchesKeyOrState || Object.keys(createOnly).some((c) => c in (body as object))) return undefined;
        assertWritable(table, values, "update");
        const scope = rowScope(item.caller ?? this.caller);
        const conversationId = key.msdyn_conversationid!;
        // What the scope refuses is declined here, and refused with its reason by `upsert`.
        if (scope) confineProviderColumn(table, values, scope, "update", conversationId);
        const created = parseRecordBody(table, { ...(body as object), ...createOnly });
        for (const column of naturalKey) created.set(column, key[column]);
        assertWritable(table, created, "create");
        this.fillServerColumns(table, created, item.caller);
        const conversation = table.logicalName === "msdyn_conversationdata";
        if (scope) {
          confineProviderColumn(table, created, scope, "create");
          fillProviderColumn(table, created, scope);
          if (isScopedTable(table)) scoped.push({ conversationId, providerId: scope.providerId, conversation });
        }
        if (conversation) conversationItems.set(conversationId, scope?.providerId);
        assertRequiredForCreate(table, created, []);
        planned.push({
          item,
          created,
          updateColumns: [...values.keys(), "modifiedby"],
          key: JSON.stringify(naturalKey.map((c) => key[c])),
        });
      }
    } catch (error) {
      if (error instanceof ODataError) return undefined;
      throw error;
    }
    const rowKeys = planned.map((p) => `${p.item.table.logicalName} ${p.key}`);
    if (new Set(rowKeys).size !== rowKeys.length) return undefined;
    // A conversation this statement writes is invisible to its own scope check: a scoped
    // item under a conversation that another caller's item writes goes on its own.
    if (scoped.some((s) => conversationItems.has(s.conversationId) && conversationItems.get(s.conversationId) !== s.providerId)) {
      return undefined;
    }

    // One INSERT per table and set of columns; rows in key order, so concurrent calls lock alike.
    const groups = new Map<string, typeof planned>();
    for (const entry of [...planned].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
      const shape = `${entry.item.table.logicalName}|${[...entry.created.keys()].sort().join(",")}|${entry.updateColumns.join(",")}`;
      const group = groups.get(shape);
      if (group) group.push(entry);
      else groups.set(shape, [entry]);
    }
    const params: unknown[] = [];
    // With provider scopes, nothing is written when one of their conversations is another
    // provider's, or is missing (unless this statement writes it for the same provider).
    const guards: string[] = [];
    if (scoped.length) {
      const checks = new Map(
        scoped.map(({ conversationId, providerId, conversation }) => {
          const mustExist = !conversation && !conversationItems.has(conversationId);
          return [JSON.stringify([conversationId, providerId, mustExist]), { conversationId, providerId, mustExist }];
        }),
      );
      const list = [...checks.values()];
      params.push(
        list.map((c) => c.conversationId),
        list.map((c) => c.providerId),
        list.map((c) => c.mustExist),
      );
      guards.push(`scope_violation AS (${foreignConversationSql("$1", "$2", "$3")})`);
    }
    const condition = guards.length ? "NOT EXISTS (SELECT 1 FROM scope_violation)" : undefined;
    // Parents' statements first: Citus runs each data-modifying CTE on its own, in order, so a
    // child's foreign key must find the parent that an earlier CTE wrote (on plain PostgreSQL
    // the keys are checked at the end of the statement, and the order changes nothing).
    const depth = (table: TableDef) => TABLES.indexOf(table);
    const ordered = [...groups.values()].sort((a, b) => depth(a[0]!.item.table) - depth(b[0]!.item.table));
    const parts = ordered.map((entries, g) => {
      const first = entries[0]!;
      const { sql, values } = upsertRowsSql(
        first.item.table,
        entries.map((e) => e.created),
        first.updateColumns,
        params.length + 1,
        condition,
      );
      params.push(...values);
      return { name: `u${g}`, sql, entries };
    });
    const sql =
      `WITH ${[...guards, ...parts.map((p) => `${p.name} AS (${p.sql})`)].join(", ")} ` +
      parts.map((p, g) => `SELECT ${g} AS part, id, created, key FROM ${p.name}`).join(" UNION ALL ");
    let rows: Array<{ part: number; id: string; created: boolean; key: string }>;
    try {
      ({ rows } = await withSavepoint(this.db, this.inTransaction, () => this.db.query(prepared(sql, params))));
    } catch {
      return undefined;
    }
    if (condition && rows.length !== planned.length) return undefined;
    const found = new Map(
      rows.map((r) => [`${parts[r.part]!.entries[0]!.item.table.logicalName} ${JSON.stringify(JSON.parse(r.key))}`, r]),
    );
    return planned.map((p, i) => {
      const row = found.get(rowKeys[i]!)!;
      this.report(p.item.table, [row.id]);
      return { id: row.id, created: row.created };
    });
  }

  /** PUT {set}(key)/{property}, and DELETE of a property (value null): update only. */
  async setProperty(table: TableDef, key: RecordKey, column: ColumnDef, value: unknown): Promise<Row> {
    this.requireTransaction("setProperty");
    if (column.type === "lookup") {
      throw badRequest(
        `'${column.name}' is a lookup; set it with "${column.name}@odata.bind" in a PATCH.`,
        ErrorCodes.invalidArgument,
      );
    }
    const values: ColumnValues = new Map([[column.name, convertValue(table, column, value)]]);
    const current = await findRow(this.db, table, key, true);
    if (!current) throw notFound(table, key);
    if (this.scope) await assertChangeInScope(this.db, table, this.scope, current, values);
    return this.reportRow(table, await this.updateExisting(table, current, values));
  }

  /** DELETE {set}(key): cascades to children as the foreign keys say. Another provider's row is missing to a provider's caller. */
  async remove(table: TableDef, key: RecordKey, pre: Preconditions = {}): Promise<string> {
    this.requireTransaction("remove");
    const current = await findRow(this.db, table, key, true, this.scope);
    if (!current) throw notFound(table, key);
    checkPreconditions(table, key, current, { ifMatch: pre.ifMatch });
    const id = current[table.primaryKey] as string;
    await this.guard(table, new Map(), current, () => deleteRow(this.db, table, current));
    this.report(table, [id]);
    return id;
  }

  private async updateExisting(table: TableDef, current: Row, values: ColumnValues): Promise<Row> {
    assertWritable(table, values, "update");
    reconcileState(table, values, current.statecode as number);
    return this.guard(table, values, current, async () => {
      if (isKpiEvent(table)) await applyKpiEventRules(this.db, values, current, false);
      values.set("modifiedby", this.caller.userId);
      return updateRow(this.db, table, current, values);
    });
  }

  /**
   * Creates many rows of one table in one statement (CreateMultiple, logged events) and
   * returns their ids in order: the same validation and rules as `create`, then one COPY
   * for all (KPI events: see kpi-event-ingest.ts, which COPYs groups of 100 or more). A refusal names its row with `label(index)`; nothing is written then.
   */
  async createMany(
    table: TableDef,
    bodies: readonly unknown[],
    label: (index: number) => string,
    signal?: AbortSignal,
  ): Promise<string[]> {
    const named = (index: number, error: unknown) => (error instanceof ODataError ? error.at(label(index)) : error);
    // The rows whose GUID the caller chose (undefined for the others), for assertNewIds.
    const parsedWithIds: Array<ColumnValues | undefined> = [];
    const rows = bodies.map((body, index) => {
      try {
        const values = parseRecordBody(table, body);
        parsedWithIds.push(values.has(table.primaryKey) ? new Map(values) : undefined);
        assertWritable(table, values, "create");
        if (isKpiEvent(table)) this.completeNewKpiEvent(table, values);
        else {
          this.fillServerColumns(table, values);
          assertRequiredForCreate(table, values, []);
        }
        // Known ids (fillServerColumns) let the rows come back in order, and let a refusal be traced to its row.
        return values;
      } catch (error) {
        throw named(index, error);
      }
    });
    const ids = rows.map((values) => values.get(table.primaryKey) as string);
    if (rows.length === 0) return [];
    const taken = await this.assertNewIds(table, parsedWithIds, label);
    if (taken) throw taken;
    const scope = this.scope;
    if (scope && !isKpiEvent(table)) {
      const missingConversation = await checkNewRowsInScope(this.db, table, scope, rows, label);
      if (missingConversation) throw missingConversation;
      for (const values of rows) fillProviderColumn(table, values, scope);
    }
    if (isKpiEvent(table)) {
      try {
        await this.storeKpiEvents(rows, "key", signal);
        if (this.inTransaction) this.report(table, ids);
        return ids;
      } catch (error) {
        throw error instanceof KpiEventRuleError ? named(error.index, error.error) : error;
      }
    }
    // Outside a transaction this is still all or nothing: the rows go in with one COPY.
    try {
      await withSavepoint(this.db, this.inTransaction, () => copyRowsOn(this.db, table, rows));
      this.report(table, ids);
      return ids;
    } catch (error) {
      const refusal = await explainRefusedRows(error, table, rows, this.db);
      throw refusal ? named(refusal.index, refusal.error) : error;
    }
  }

  /**
   * A distributed table's primary key includes msdyn_conversationid (src/model/distribution.ts),
   * so the database alone keeps a GUID unique only within its conversation: a GUID the caller
   * chose is checked here against every conversation's rows. With one row it throws the
   * refusal; with many it returns the first one's, labelled. (Two concurrent creates of one
   * new GUID in two conversations can both pass; GUIDs the server makes cannot collide.)
   */
  private async assertNewIds(
    table: TableDef,
    rows: ReadonlyArray<ColumnValues | undefined>,
    label?: (index: number) => string,
  ): Promise<ODataError | undefined> {
    if (!isDistributed(table)) return undefined;
    const chosen = rows.flatMap((values, index) => {
      const id = values?.get(table.primaryKey);
      return typeof id === "string" ? [{ id: id.toLowerCase(), index }] : [];
    });
    if (!chosen.length) return undefined;
    const taken = await existingIds(this.db, table, [...new Set(chosen.map((c) => c.id))]);
    const first = chosen.find((c) => taken.has(c.id));
    if (!first) return undefined;
    const refusal = new ODataError(412, ErrorCodes.duplicateRecord, "A record with matching key values already exists.");
    if (!label) throw refusal;
    return refusal.at(label(first.index));
  }

  /** Server columns, a known primary key and the checks that need no lookup, for a new KPI event. */
  private completeNewKpiEvent(table: TableDef, values: ColumnValues): void {
    this.fillServerColumns(table, values);
    // The conversation's provider is checked with the other rules, in the INSERT (kpi-event-rules.ts).
    if (this.scope) confineProviderColumn(table, values, this.scope, "create");
    assertDefinitionNamed(values);
    assertRequiredForCreate(table, values, FILLED_BY_KPI_RULES);
  }

  private storeKpiEvents(rows: ColumnValues[], returning: Returning, signal?: AbortSignal): Promise<Row[]> {
    return this.kpiEvents && !this.inTransaction
      ? this.kpiEvents.write(rows, returning, signal, this.scope, this.audit)
      : writeKpiEventGroup(this.db, rows, returning, this.inTransaction, this.scope);
  }

  /** Primary key, owner, creator and the overridden creation date of a new row. */
  private fillServerColumns(table: TableDef, values: ColumnValues, caller: Caller = this.caller): void {
    if (!values.has(table.primaryKey)) values.set(table.primaryKey, newRowId());
    reconcileState(table, values, 0);
    const { userId, businessUnitId, organizationId } = caller;
    if (table.ownership === "user") {
      if (!values.has("ownerid")) values.set("ownerid", userId);
      values.set("owningbusinessunit", businessUnitId);
    } else {
      values.set("organizationid", organizationId);
    }
    values.set("createdby", userId);
    values.set("modifiedby", userId);
    // Dataverse semantics: createdon takes the overridden date, which records when the row really came.
    const overridden = values.get("overriddencreatedon");
    if (overridden instanceof Date) {
      values.set("createdon", overridden);
      values.set("overriddencreatedon", new Date());
    }
  }

  /** Server-filled columns and table rules for a new row. */
  private async completeForCreate(table: TableDef, values: ColumnValues): Promise<void> {
    this.fillServerColumns(table, values);
    // A provider's row under another provider's conversation is refused first.
    const missingConversation = this.scope && (await checkNewRowsInScope(this.db, table, this.scope, [values]));
    if (isKpiEvent(table)) await applyKpiEventRules(this.db, values, undefined, true);
    assertRequiredForCreate(table, values, []);
    // Where the foreign keys would refuse it, and after the KPI event rules, which read the provider the event names.
    if (missingConversation) throw missingConversation;
    if (this.scope) fillProviderColumn(table, values, this.scope);
  }

  private requireTransaction(operation: string): void {
    // Read-then-write operations need FOR UPDATE, which only holds inside a transaction.
    if (!this.inTransaction) throw new Error(`RecordWriter.${operation} must run inside a transaction`);
  }

  /**
   * Runs a write and explains the database's refusal, if any. `rethrowUniqueViolation`
   * hands a unique-key violation back unexplained (for the upsert race).
   */
  private async guard<T>(
    table: TableDef,
    values: ColumnValues,
    current: Row | undefined,
    write: () => Promise<T>,
    rethrowUniqueViolation = false,
  ): Promise<T> {
    try {
      return await withSavepoint(this.db, this.inTransaction, write);
    } catch (error) {
      if (error instanceof ODataError) throw error;
      if (rethrowUniqueViolation && isUniqueViolation(error)) throw error;
      const explained = await explainDatabaseError(error, table, values, this.db, current);
      throw explained ?? error;
    }
  }
}

/** A natural-key upsert call waiting for its group commit, with its request's audit record. */
interface UpsertCall {
  items: readonly NaturalKeyUpsert[];
  audit?: WriteAudit;
}

/**
 * The pool-level entry point of one database: its group commits, shared by every caller,
 * and `as(caller)`, the record operations of one caller (one transaction per operation,
 * or one for many).
 */
export class RecordService {
  private readonly kpiEvents?: KpiEventBatcher;
  private readonly upserts?: GroupCommit<UpsertCall, UpsertedRows | undefined>;

  /**
   * `groupCommit`: concurrent requests' new KPI events, and their natural-key upserts
   * (msdyn_InitLogAnalytics), go into the database together, `batchesInFlight` batches
   * at a time (src/db/group-commit.ts), whoever their callers are (each row carries its
   * own). Without it each request has its own statements. `rowAdmission`: the bound on
   * rows of bulk writes in flight (src/db/admission.ts) that `createMany` is admitted by.
   */
  private readonly rowAdmission?: RowAdmission;

  constructor(
    private readonly pool: pg.Pool,
    groupCommit?: { batchesInFlight: number; maxQueued?: number; rowAdmission?: RowAdmission },
  ) {
    this.rowAdmission = groupCommit?.rowAdmission;
    if (groupCommit) {
      const { batchesInFlight, maxQueued } = groupCommit;
      this.kpiEvents = new KpiEventBatcher(pool, { batchesInFlight, maxQueued });
      this.upserts = new GroupCommit((calls) => this.upsertTogether(calls), {
        batchesInFlight,
        maxQueued,
        maxBatchSize: 500,
        sizeOf: (call) => call.items.length,
      });
    }
  }

  /** The record operations of `caller`: what it creates and changes is recorded as its own. */
  as(caller: Caller): CallerRecords {
    return new CallerRecords(this.pool, caller, this.kpiEvents, this.upserts, undefined, this.rowAdmission);
  }

  /**
   * The upserts of several calls as one statement. When that is declined (one call needs
   * the row-by-row path, or two calls name the same row) each call runs on its own, so a
   * call's verdict never depends on the others in its batch. With audit records, each
   * statement and the records of the calls it served commit in one transaction.
   */
  private async upsertTogether(calls: UpsertCall[]): Promise<Array<Settled<UpsertedRows | undefined>>> {
    const run = (group: UpsertCall[]): Promise<UpsertedRows | undefined> => {
      const items = group.flatMap((call) => call.items);
      const caller = items[0]!.caller!;
      const audits = group.flatMap((call) => (call.audit ? [call.audit] : []));
      if (audits.length === 0) return new RecordWriter(this.pool, caller, false).upsertByNaturalKeys(items);
      const committing: WriteAudit[] = [];
      const upserted = withTransaction(this.pool, async (client) => {
        const rows = await new RecordWriter(client, caller, true).upsertByNaturalKeys(items);
        // Declined, nothing was written: the call goes on another path, which commits its record.
        if (!rows) return undefined;
        let first = 0;
        for (const call of group) {
          const own = rows.slice(first, (first += call.items.length));
          if (!call.audit) continue;
          call.items.forEach((item, i) => call.audit!.stored(item.table, [own[i]!.id]));
          committing.push(call.audit);
        }
        await insertAuditRows(client, committing);
        return rows;
      });
      return settleAudits(committing, upserted);
    };
    if (calls.length > 1) {
      const together = await run(calls);
      if (together) {
        let first = 0;
        return calls.map((call) => ({ value: together.slice(first, (first += call.items.length)) }));
      }
    }
    return Promise.all(calls.map((call) => settle(run([call]))));
  }
}

/** One caller's record operations on one database (RecordService.as). */
export class CallerRecords implements RecordOperations {
  private readonly standalone: RecordWriter;

  constructor(
    private readonly pool: pg.Pool,
    readonly caller: Caller,
    private readonly kpiEvents: KpiEventBatcher | undefined,
    private readonly upserts: GroupCommit<UpsertCall, UpsertedRows | undefined> | undefined,
    /** The request's audit record (write-audit.ts): every write here commits it. */
    private readonly audit?: WriteAudit,
    /** The bound on rows of bulk writes in flight (src/db/admission.ts), when there is one. */
    private readonly rowAdmission?: RowAdmission,
  ) {
    this.standalone = new RecordWriter(pool, caller, false, kpiEvents, audit);
  }

  /** The same operations, each write committing `audit` with it. */
  withAudit(audit: WriteAudit | undefined): CallerRecords {
    return audit ? new CallerRecords(this.pool, this.caller, this.kpiEvents, this.upserts, audit, this.rowAdmission) : this;
  }

  retrieve(table: TableDef, key: RecordKey): Promise<Row> {
    return this.standalone.retrieve(table, key);
  }

  /**
   * Without an audit record a single INSERT needs no explicit transaction; with one, the
   * group commit (KPI events) or a transaction commits both.
   */
  create(table: TableDef, body: unknown, options: { keyOnly?: boolean; signal?: AbortSignal } = {}): Promise<Row> {
    if (!this.audit || (isKpiEvent(table) && this.kpiEvents)) return this.standalone.create(table, body, options);
    return this.transaction((writer) => writer.create(table, body, options));
  }

  /**
   * Many rows with one INSERT: atomic without an explicit transaction (see `create` for the
   * audit record). Admitted by its rows (src/db/admission.ts) before any is validated: beyond
   * the bound it is refused at once (503), and a call whose client has gone is not started.
   */
  createMany(
    table: TableDef,
    bodies: readonly unknown[],
    label: (index: number) => string,
    signal?: AbortSignal,
  ): Promise<string[]> {
    return this.admitRows(bodies.length, signal, () => this.createManyAdmitted(table, bodies, label, signal));
  }

  /**
   * Runs `fn`, which writes `rows` rows, admitted by the bound on rows in flight
   * (src/db/admission.ts) when there is one: beyond it RowsInFlightError (503), and not
   * started when `signal` says the client has gone.
   */
  admitRows<T>(rows: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    if (!this.rowAdmission || rows === 0) return fn();
    return this.rowAdmission.run(rows, signal, fn);
  }

  private createManyAdmitted(
    table: TableDef,
    bodies: readonly unknown[],
    label: (index: number) => string,
    signal?: AbortSignal,
  ): Promise<string[]> {
    if (!this.audit || (isKpiEvent(table) && this.kpiEvents)) return this.standalone.createMany(table, bodies, label, signal);
    return this.transaction((writer) => writer.createMany(table, bodies, label, signal));
  }

  /** One statement, atomic without an explicit transaction; shared with concurrent calls. */
  upsertByNaturalKeys(items: readonly NaturalKeyUpsert[], signal?: AbortSignal): Promise<UpsertedRows | undefined> {
    if (!this.upserts || items.length === 0) {
      return this.audit
        ? this.transaction((writer) => writer.upsertByNaturalKeys(items))
        : this.standalone.upsertByNaturalKeys(items);
    }
    const caller = this.caller;
    return this.upserts.submit({ items: items.map((item) => ({ ...item, caller })), audit: this.audit }, signal);
  }

  upsert(table: TableDef, key: RecordKey, body: unknown, pre: Preconditions = {}) {
    return this.transaction((writer) => writer.upsert(table, key, body, pre));
  }

  setProperty(table: TableDef, key: RecordKey, column: ColumnDef, value: unknown) {
    return this.transaction((writer) => writer.setProperty(table, key, column, value));
  }

  remove(table: TableDef, key: RecordKey, pre: Preconditions = {}) {
    return this.transaction((writer) => writer.remove(table, key, pre));
  }

  /**
   * Runs `fn` in one transaction: all its writes commit together or not at all, and with
   * them the request's audit record when they stored anything.
   */
  transaction<T>(fn: (writer: RecordWriter, client: Queryable) => Promise<T>): Promise<T> {
    const { audit } = this;
    if (!audit) return withTransaction(this.pool, (client) => fn(new RecordWriter(client, this.caller, true), client));
    let wrote = false;
    const tracking: WriteAudit = {
      stored: (table, ids) => {
        wrote = true;
        audit.stored(table, ids);
      },
      recordText: (storing) => audit.recordText(storing),
      settled: (committed) => audit.settled(committed),
    };
    const committing: WriteAudit[] = [];
    const result = withTransaction(this.pool, async (client) => {
      const value = await fn(new RecordWriter(client, this.caller, true, undefined, tracking), client);
      if (wrote) committing.push(audit);
      await insertAuditRows(client, committing);
      return value;
    });
    return settleAudits(committing, result);
  }
}
