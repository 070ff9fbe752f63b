/**
 * Create, retrieve, update/upsert and delete rows of the six tables under the domain
 * rules of DESIGN.md. This is the one place those rules run: the entity-set routes use
 * it, and so must $batch, the bulk actions and the logging actions.
 */
import type pg from "pg";
import { ErrorCodes, ODataError, badRequest } from "../http/errors.js";
import type { ColumnDef, TableDef } from "../model/tables.js";
import type { RecordKey } from "../odata/resource-path.js";
import { explainDatabaseError } from "./integrity-errors.js";
import { applyKpiEventRules } from "./kpi-event-rules.js";
import {
  type ColumnValues,
  assertRequiredForCreate,
  assertWritable,
  convertValue,
  parseRecordBody,
  reconcileState,
} from "./record-input.js";
import { type Queryable, type Row, deleteRow, findRow, insertRow, updateRow, withTransaction } from "./record-store.js";

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

export class RecordService {
  constructor(
    private readonly pool: pg.Pool,
    private readonly caller: Caller,
  ) {}

  async retrieve(table: TableDef, key: RecordKey): Promise<Row> {
    const row = await findRow(this.pool, table, key);
    if (!row) throw notFound(table, key);
    return row;
  }

  /** POST {set}: creates a row from a JSON body. */
  async create(table: TableDef, body: unknown): Promise<Row> {
    const values = parseRecordBody(table, body);
    assertWritable(table, values, "create");
    return this.guard(table, values, undefined, async () => {
      await this.completeForCreate(this.pool, table, values);
      return insertRow(this.pool, table, values);
    });
  }

  /**
   * PATCH {set}(key): updates the given columns, or creates the row when it is missing
   * (unless `If-Match` says update only). Returns the row and whether it was created.
   */
  async upsert(table: TableDef, key: RecordKey, body: unknown, pre: Preconditions = {}): Promise<{ row: Row; created: boolean }> {
    const values = parseRecordBody(table, body);
    if (key.kind === "id" && values.has(table.primaryKey) && values.get(table.primaryKey) !== key.id) {
      throw badRequest(`The ${table.primaryKey} in the body differs from the key in the URL.`, ErrorCodes.invalidArgument);
    }
    values.delete(table.primaryKey);
    try {
      return await this.upsertOnce(table, key, values, pre, true);
    } catch (error) {
      // Two upserts of one missing row raced and the other created it: now it is an update.
      if (!isUniqueViolation(error)) throw error;
      return this.upsertOnce(table, key, values, pre, false);
    }
  }

  private upsertOnce(table: TableDef, key: RecordKey, body: ColumnValues, pre: Preconditions, firstTry: boolean) {
    return withTransaction(this.pool, async (client) => {
      const values = new Map(body);
      const current = await findRow(client, table, key, true);
      checkPreconditions(table, key, current, pre);
      if (current) {
        const row = await this.updateExisting(client, table, current, values);
        return { row, created: false };
      }
      if (key.kind === "id") values.set(table.primaryKey, key.id);
      else for (const [name, value] of Object.entries(key.values)) if (!values.has(name)) values.set(name, value);
      assertWritable(table, values, "create");
      const row = await this.guard(
        table,
        values,
        undefined,
        async () => {
          await this.completeForCreate(client, table, values);
          return insertRow(client, table, values);
        },
        firstTry,
      );
      return { row, created: true };
    });
  }

  private async updateExisting(client: pg.PoolClient, table: TableDef, current: Row, values: ColumnValues): Promise<Row> {
    assertWritable(table, values, "update");
    reconcileState(table, values, current.statecode as number);
    return this.guard(table, values, current, async () => {
      if (table.logicalName === "msdyn_kpieventdata") await applyKpiEventRules(client, values, current, false);
      values.set("modifiedby", this.caller.userId);
      return updateRow(client, table, current[table.primaryKey] as string, values);
    });
  }

  /** PUT {set}(key)/{property} and DELETE {set}(key)/{property} (value null): update only. */
  async setProperty(table: TableDef, key: RecordKey, column: ColumnDef, value: unknown): Promise<Row> {
    if (column.type === "lookup") {
      throw badRequest(`'${column.name}' is a lookup; set it with "${column.name}@odata.bind" in a PATCH.`, ErrorCodes.invalidArgument);
    }
    const values: ColumnValues = new Map([[column.name, convertValue(table, column, value)]]);
    return withTransaction(this.pool, async (client) => {
      const current = await findRow(client, table, key, true);
      if (!current) throw notFound(table, key);
      return this.updateExisting(client, table, current, values);
    });
  }

  /** DELETE {set}(key): cascades to children as the foreign keys say. */
  async remove(table: TableDef, key: RecordKey, pre: Preconditions = {}): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      const current = await findRow(client, table, key, true);
      if (!current) throw notFound(table, key);
      checkPreconditions(table, key, current, { ifMatch: pre.ifMatch });
      await this.guard(table, new Map(), current, () => deleteRow(client, table, current[table.primaryKey] as string));
    });
  }

  /** Server-filled columns and table rules for a new row. */
  private async completeForCreate(db: Queryable, table: TableDef, values: ColumnValues): Promise<void> {
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
    if (table.logicalName === "msdyn_kpieventdata") await applyKpiEventRules(db, values, undefined, true);
    assertRequiredForCreate(table, values, []);
  }

  /**
   * Runs a write and explains the database's refusal, if any. Inside a transaction the
   * explanation's own queries must wait for the rollback, so they use the pool.
   */
  private async guard<T>(
    table: TableDef,
    values: ColumnValues,
    current: Row | undefined,
    write: () => Promise<T>,
    rethrowUniqueViolation = false,
  ): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (rethrowUniqueViolation && isUniqueViolation(error)) throw error;
      const explained = await explainDatabaseError(error, table, values, this.pool, current);
      throw explained ?? error;
    }
  }
}
