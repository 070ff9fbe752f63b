/**
 * Create, retrieve, update/upsert and delete rows of the six tables under the domain
 * rules of DESIGN.md. This is the one place those rules run: the entity-set routes use
 * it, and so must $batch, the bulk actions and the logging actions.
 */
import type pg from "pg";
import { ErrorCodes, ODataError, badRequest } from "../http/errors.js";
import type { ColumnDef, TableDef } from "../model/tables.js";
import type { RecordKey } from "../odata/resource-path.js";
import { randomUUID } from "node:crypto";
import { explainDatabaseError, findRefusedRow } from "./integrity-errors.js";
import { KpiEventRuleError, applyKpiEventRules, applyKpiEventRulesToMany, insertKpiEvent } from "./kpi-event-rules.js";
import {
  type ColumnValues,
  assertRequiredForCreate,
  assertWritable,
  convertValue,
  parseRecordBody,
  reconcileState,
} from "./record-input.js";
import {
  type Queryable,
  type Row,
  deleteRow,
  findRow,
  insertRow,
  columnSqlType,
  insertRows,
  updateRow,
  withTransaction,
} from "./record-store.js";

/** Who is writing: recorded as owner / created by / modified by. */
export interface Caller {
  userId: string;
  businessUnitId: string;
  organizationId: string;
}

/** Conditional-request headers (shared/reference/dataverse-webapi.md §4). */
export interface Preconditions {
  ifMatch?: string;
  ifNoneMatch?: string;
}

export const etagOf = (row: Row) => `W/"${String(row.versionnumber)}"`;

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
    if (ifMatch !== "*" && !ifMatch.split(",").map((t) => t.trim()).includes(etagOf(row))) throw versionMismatch();
  }
  // Browsers' cache-busting `If-None-Match: null` is not an ETag (reference §0).
  if (ifNoneMatch && ifNoneMatch !== "null" && row) {
    if (ifNoneMatch === "*" || ifNoneMatch.split(",").map((t) => t.trim()).includes(etagOf(row))) {
      throw new ODataError(412, ErrorCodes.duplicateRecord, "A record with matching key values already exists.");
    }
  }
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === "23505";

/**
 * The write operations, bound to one connection. Outside a transaction (`db` is the pool)
 * each write is one autocommitted statement; inside one (`$batch` change sets, bulk and
 * logging actions) each write runs under a savepoint, so a refusal can be explained on
 * the same connection, seeing the transaction's own rows, and an upsert that loses a race
 * can turn into an update.
 */
export class RecordWriter {
  constructor(
    private readonly db: Queryable,
    private readonly caller: Caller,
    private readonly inTransaction: boolean,
  ) {}

  async retrieve(table: TableDef, key: RecordKey): Promise<Row> {
    const row = await findRow(this.db, table, key);
    if (!row) throw notFound(table, key);
    return row;
  }

  /** POST {set}: creates a row from a JSON body. */
  /** `keyOnly`: the caller needs only the new row's primary key (no representation asked for). */
  async create(table: TableDef, body: unknown, { keyOnly = false } = {}): Promise<Row> {
    const values = parseRecordBody(table, body);
    assertWritable(table, values, "create");
    return this.guard(table, values, undefined, async () => {
      if (table.logicalName === "msdyn_kpieventdata") {
        // The ingestion hot path: rules and INSERT in one statement, one round trip.
        this.fillServerColumns(table, values);
        assertRequiredForCreate(table, values, ["msdyn_kpieventid"]);
        return insertKpiEvent(this.db, values, (name) => columnSqlType(table, name), keyOnly);
      }
      await this.completeForCreate(table, values);
      return insertRow(this.db, table, values);
    });
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
      checkPreconditions(table, key, current, pre);
      if (current) return { row: await this.updateExisting(table, current, new Map(values)), created: false };
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
        return { row, created: true };
      } catch (error) {
        // Another upsert of the same missing row won the race: now it is an update.
        if (attempt > 0 || !isUniqueViolation(error)) throw error;
      }
    }
  }

  /** PUT {set}(key)/{property}, and DELETE of a property (value null): update only. */
  async setProperty(table: TableDef, key: RecordKey, column: ColumnDef, value: unknown): Promise<Row> {
    this.requireTransaction("setProperty");
    if (column.type === "lookup") {
      throw badRequest(`'${column.name}' is a lookup; set it with "${column.name}@odata.bind" in a PATCH.`, ErrorCodes.invalidArgument);
    }
    const values: ColumnValues = new Map([[column.name, convertValue(table, column, value)]]);
    const current = await findRow(this.db, table, key, true);
    if (!current) throw notFound(table, key);
    return this.updateExisting(table, current, values);
  }

  /** DELETE {set}(key): cascades to children as the foreign keys say. */
  async remove(table: TableDef, key: RecordKey, pre: Preconditions = {}): Promise<void> {
    this.requireTransaction("remove");
    const current = await findRow(this.db, table, key, true);
    if (!current) throw notFound(table, key);
    checkPreconditions(table, key, current, { ifMatch: pre.ifMatch });
    await this.guard(table, new Map(), current, () => deleteRow(this.db, table, current[table.primaryKey] as string));
  }

  private async updateExisting(table: TableDef, current: Row, values: ColumnValues): Promise<Row> {
    assertWritable(table, values, "update");
    reconcileState(table, values, current.statecode as number);
    return this.guard(table, values, current, async () => {
      if (table.logicalName === "msdyn_kpieventdata") await applyKpiEventRules(this.db, values, current, false);
      values.set("modifiedby", this.caller.userId);
      return updateRow(this.db, table, current[table.primaryKey] as string, values);
    });
  }

  /**
   * Creates many rows of one table in one statement (CreateMultiple, logged events) and
   * returns their ids in order: the
   * same validation and rules as `create`, checked for all rows with one lookup, then one
   * INSERT. A refusal names its row with `label(index)`; nothing is written then.
   */
  async createMany(table: TableDef, bodies: readonly unknown[], label: (index: number) => string): Promise<string[]> {
    // Outside a transaction this is still all or nothing: the rows go in with one INSERT.
    const named = (index: number, error: unknown) =>
      error instanceof ODataError ? error.at(label(index)) : error;
    const rows = bodies.map((body, index) => {
      try {
        const values = parseRecordBody(table, body);
        assertWritable(table, values, "create");
        this.fillServerColumns(table, values);
        // Known ids let the rows come back in order, and let a refusal be traced to its row.
        if (!values.has(table.primaryKey)) values.set(table.primaryKey, randomUUID());
        return values;
      } catch (error) {
        throw named(index, error);
      }
    });
    if (table.logicalName === "msdyn_kpieventdata") {
      try {
        await applyKpiEventRulesToMany(this.db, rows.map((values) => ({ values, creating: true })));
      } catch (error) {
        throw error instanceof KpiEventRuleError ? named(error.index, error.error) : error;
      }
    }
    rows.forEach((values, index) => {
      try {
        assertRequiredForCreate(table, values, []);
      } catch (error) {
        throw named(index, error);
      }
    });
    if (rows.length === 0) return [];
    if (this.inTransaction) await this.db.query("SAVEPOINT record_write");
    try {
      await insertRows(this.db, table, rows);
      if (this.inTransaction) await this.db.query("RELEASE SAVEPOINT record_write");
      return rows.map((values) => values.get(table.primaryKey) as string);
    } catch (error) {
      if (this.inTransaction) await this.db.query("ROLLBACK TO SAVEPOINT record_write");
      const culprit = await findRefusedRow(error, table, rows, this.db);
      if (culprit === undefined) throw error;
      const explained = await explainDatabaseError(error, table, rows[culprit]!, this.db);
      throw named(culprit, explained ?? error);
    }
  }

  /** Owner, creator and the overridden creation date of a new row. */
  private fillServerColumns(table: TableDef, values: ColumnValues): void {
    reconcileState(table, values, 0);
    const { userId, businessUnitId, organizationId } = this.caller;
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
    if (table.logicalName === "msdyn_kpieventdata") await applyKpiEventRules(this.db, values, undefined, true);
    assertRequiredForCreate(table, values, []);
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
    if (this.inTransaction) await this.db.query("SAVEPOINT record_write");
    try {
      const result = await write();
      if (this.inTransaction) await this.db.query("RELEASE SAVEPOINT record_write");
      return result;
    } catch (error) {
      if (this.inTransaction) await this.db.query("ROLLBACK TO SAVEPOINT record_write");
      if (error instanceof ODataError) throw error;
      if (rethrowUniqueViolation && isUniqueViolation(error)) throw error;
      const explained = await explainDatabaseError(error, table, values, this.db, current);
      throw explained ?? error;
    }
  }
}

/** The pool-level entry point: one transaction per operation, or one for many. */
export class RecordService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly caller: Caller,
  ) {}

  retrieve(table: TableDef, key: RecordKey): Promise<Row> {
    return new RecordWriter(this.pool, this.caller, false).retrieve(table, key);
  }

  /** A single INSERT needs no explicit transaction. */
  create(table: TableDef, body: unknown, options: { keyOnly?: boolean } = {}): Promise<Row> {
    return new RecordWriter(this.pool, this.caller, false).create(table, body, options);
  }

  /** Many rows with one INSERT: atomic without an explicit transaction. */
  createMany(table: TableDef, bodies: readonly unknown[], label: (index: number) => string): Promise<string[]> {
    return new RecordWriter(this.pool, this.caller, false).createMany(table, bodies, label);
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

  /** Runs `fn` in one transaction: all its writes commit together or not at all. */
  transaction<T>(fn: (writer: RecordWriter, client: Queryable) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, (client) => fn(new RecordWriter(client, this.caller, true), client));
  }
}
