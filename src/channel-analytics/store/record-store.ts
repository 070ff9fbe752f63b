/**
 * SQL for single rows of any of the six tables, through the pg driver: values are always
 * bound parameters and names come only from the table definitions. (Prisma owns the
 * schema and migrations; its per-row cost is too high for the ingestion hot path.)
 */
import { ident, prepared } from "../../db/sql.js";
import type { Queryable } from "../../db/transactions.js";
import { DISTRIBUTION_COLUMN, isDistributed } from "../../model/distribution.js";
import type { RecordKey } from "../../model/keys.js";
import { sqlType } from "../../model/sql-types.js";
import { type TableDef, columnOf } from "../../model/tables.js";
import { type RowScope, arrayBinder, scopeCondition } from "../provider-scope.js";
import type { ColumnValues } from "../record-input.js";

export type Row = Record<string, unknown>;
export type { Queryable };

function keyCondition(table: TableDef, key: RecordKey, params: unknown[]): string {
  if (key.kind === "id") {
    params.push(key.id);
    return `${ident(table.primaryKey)} = $${params.length}`;
  }
  return Object.entries(key.values)
    .map(([name, value]) => {
      params.push(value);
      return `${ident(name)} = $${params.length}`;
    })
    .join(" AND ");
}

/**
 * The distribution column's value of the row with the GUID `id` of a distributed table
 * (src/model/distribution.ts), or undefined when there is none: the one statement by GUID
 * alone, which Citus sends to every shard, so that the statements after it (locks,
 * writes) name their shard.
 */
export async function locateRow(db: Queryable, table: TableDef, id: string): Promise<string | undefined> {
  const sql = `SELECT ${ident(DISTRIBUTION_COLUMN)} AS shard_key FROM ${ident(table.logicalName)} WHERE ${ident(table.primaryKey)} = $1`;
  const { rows } = await db.query<{ shard_key: string }>(prepared(sql, [id]));
  return rows[0]?.shard_key;
}

/** Which of `ids` a row of `table` has as its GUID (by GUID alone: on Citus, every shard). */
export async function existingIds(db: Queryable, table: TableDef, ids: readonly string[]): Promise<Set<string>> {
  const sql = `SELECT ${ident(table.primaryKey)}::text AS id FROM ${ident(table.logicalName)} WHERE ${ident(table.primaryKey)} = ANY($1::uuid[])`;
  const { rows } = await db.query<{ id: string }>(prepared(sql, [ids]));
  return new Set(rows.map((r) => r.id));
}

/**
 * The row with `key`; with a provider's `scope`, only when it is one of the scope's rows
 * (src/channel-analytics/provider-scope.ts). `forUpdate` locks it: on a distributed table
 * by GUID, after finding its distribution column, since Citus locks rows of one shard only.
 */
export async function findRow(
  db: Queryable,
  table: TableDef,
  key: RecordKey,
  forUpdate = false,
  scope?: RowScope,
): Promise<Row | undefined> {
  const params: unknown[] = [];
  let where = keyCondition(table, key, params);
  if (forUpdate && key.kind === "id" && isDistributed(table)) {
    const shardKey = await locateRow(db, table, key.id);
    if (shardKey === undefined) return undefined;
    params.push(shardKey);
    where = `${where} AND ${ident(DISTRIBUTION_COLUMN)} = $${params.length}`;
  }
  const scoped = scope && scopeCondition(table, scope, arrayBinder(params));
  if (scoped) where = `${where} AND ${scoped}`;
  const sql = `SELECT * FROM ${ident(table.logicalName)} WHERE ${where}${forUpdate ? " FOR UPDATE" : ""}`;
  const { rows } = await db.query<Row>(prepared(sql, params));
  return rows[0];
}

/** The condition that finds the stored row `current` by its primary key (and, on a distributed table, its shard), from parameter `first`. */
function rowCondition(table: TableDef, current: Row, first: number): { where: string; values: unknown[] } {
  const where = `${ident(table.primaryKey)} = $${first}`;
  if (!isDistributed(table)) return { where, values: [current[table.primaryKey]] };
  return {
    where: `${where} AND ${ident(DISTRIBUTION_COLUMN)} = $${first + 1}`,
    values: [current[table.primaryKey], current[DISTRIBUTION_COLUMN]],
  };
}

export async function insertRow(db: Queryable, table: TableDef, values: ColumnValues): Promise<Row> {
  const names = [...values.keys()];
  const sql =
    `INSERT INTO ${ident(table.logicalName)} (${names.map(ident).join(", ")}) ` +
    `VALUES (${names.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING *`;
  const { rows } = await db.query<Row>(prepared(sql, [...values.values()]));
  return rows[0]!;
}

/** The PostgreSQL array type that carries a column's values through unnest(). */
const arrayType = (table: TableDef, name: string) => `${columnSqlType(table, name)}[]`;

/** The PostgreSQL type of a column, by name. */
export const columnSqlType = (table: TableDef, name: string) => sqlType(table, columnOf(table, name));

/** What a row gets for a column it does not name: the column's default, as the database would give it. */
export function defaultFor(table: TableDef, name: string, now: Date): unknown {
  const value = columnOf(table, name).defaultValue;
  if (value === undefined) return null;
  if (value === "now()") return now;
  if (value === "true" || value === "false") return value === "true";
  return Number(value);
}

/** Many rows as a source for `INSERT … SELECT`: see `rowsSource`. */
export interface RowsSource {
  /** The columns any row names, in the table's column order (so statement texts repeat). */
  names: string[];
  /** Per column of `names`, its SQL expression: `r."column"`, or one parameter when every row has the same value. */
  expressions: string[];
  /** `FROM` this: one row `r` per input row, numbered from 1 by `r.n`. */
  from: string;
  values: unknown[];
}

/**
 * The rows as `unnest(…)` of one array per column, parameters numbered from `firstParam`.
 * A row that leaves a column out gets its default. A column with one value in every row
 * (the owner, the creator, the state…) is bound once, not once per row: that halves what
 * a bulk insert sends and what the driver must escape.
 */
export function rowsSource(
  table: TableDef,
  rows: readonly ColumnValues[],
  firstParam = 1,
  except: readonly string[] = [],
): RowsSource {
  const named = new Set(rows.flatMap((values) => [...values.keys()]));
  const names = table.columns.map((c) => c.name).filter((name) => named.has(name) && !except.includes(name));
  const now = new Date();
  const values: unknown[] = [];
  const bind = (value: unknown) => `$${firstParam + values.push(value) - 1}`;
  const unnested: Array<{ name: string; placeholder: string }> = [];
  const expressions = names.map((name) => {
    // toISOString() is exact and cheaper than the driver's own Date formatting.
    const column = rows.map((values) => {
      const value = values.has(name) ? values.get(name) : defaultFor(table, name, now);
      return value instanceof Date ? value.toISOString() : value;
    });
    if (column.every((value) => value === column[0])) return `${bind(column[0])}::${columnSqlType(table, name)}`;
    unnested.push({ name, placeholder: `${bind(column)}::${arrayType(table, name)}` });
    return `r.${ident(name)}`;
  });
  const from = unnested.length
    ? `unnest(${unnested.map((u) => u.placeholder).join(", ")}) WITH ORDINALITY AS r(${unnested.map((u) => ident(u.name)).join(", ")}, n)`
    : `generate_series(1, ${bind(rows.length)}::int) AS r(n)`;
  return { names, expressions, from, values };
}

/**
 * Rows made in SQL from JSON records, for a table whose columns say where in its record
 * each value is (`fromRecord`: the audit log): parameter `param` is a JSON array of the
 * records. The driver then sends one string, where `rowsSource` would send (and escape) an
 * array per column, and each record is parsed once (OFFSET 0 keeps PostgreSQL from parsing
 * it again for every column). A text longer than its column is cut to fit: a log value
 * never fails the write it records. `r.n` numbers the records from 1.
 */
export function recordsSource(table: TableDef, param: number): Omit<RowsSource, "values"> {
  const filled = table.columns.filter((c) => c.fromRecord);
  const expressions = filled.map((column) => {
    const path = column.fromRecord!;
    if (path.length === 0) return "r.j::text";
    const value = `d.b #>> '{${path.join(",")}}'`;
    const type = sqlType(table, column);
    return type === "text" && column.maxLength ? `left(${value}, ${column.maxLength})` : `(${value})::${type}`;
  });
  return {
    names: filled.map((c) => c.name),
    expressions,
    from: `json_array_elements($${param}::json) WITH ORDINALITY AS r(j, n) CROSS JOIN LATERAL (SELECT r.j::jsonb AS b OFFSET 0) AS d`,
  };
}

/**
 * An `INSERT … ON CONFLICT (natural key) DO UPDATE` of many rows, for use as a CTE: each
 * row is inserted with its values, or, when its natural key exists, the stored row gets
 * `updateColumns` from those values. Every row must name the same columns. It returns
 * `id` (the primary key as text), `created` and `key` (the natural key as a JSON array).
 * `condition`: a SQL condition without which no row is written.
 */
export function upsertRowsSql(
  table: TableDef,
  rows: readonly ColumnValues[],
  updateColumns: readonly string[],
  firstParam: number,
  condition?: string,
): { sql: string; values: unknown[] } {
  const { names, expressions, from, values } = rowsSource(table, rows, firstParam);
  const naturalKey = table.naturalKey!;
  const sql =
    `INSERT INTO ${ident(table.logicalName)} (${names.map(ident).join(", ")}) SELECT ${expressions.join(", ")} FROM ${from} ` +
    (condition ? `WHERE ${condition} ` : "") +
    `ON CONFLICT (${naturalKey.map(ident).join(", ")}) DO UPDATE SET ` +
    updateColumns.map((name) => `${ident(name)} = EXCLUDED.${ident(name)}`).join(", ") +
    ` RETURNING ${ident(table.primaryKey)}::text AS id, (xmax = 0) AS created, ` +
    `json_build_array(${naturalKey.map(ident).join(", ")})::text AS key`;
  return { sql, values };
}

/**
 * Updates the stored row `current` with `values`. modifiedon is set here (the trigger gives
 * the new version): Citus evaluates `now()` once, so every copy of a reference table's row
 * gets the same value.
 */
export async function updateRow(db: Queryable, table: TableDef, current: Row, values: ColumnValues): Promise<Row> {
  const { where, values: keyValues } = rowCondition(table, current, 1);
  const names = [...values.keys()];
  // An empty PATCH still counts as a write: the row gets a new version and modifiedon.
  const assignments = [
    ...names.map((name, i) => `${ident(name)} = $${i + 1 + keyValues.length}`),
    `${ident("modifiedon")} = now()`,
  ].join(", ");
  const sql = `UPDATE ${ident(table.logicalName)} SET ${assignments} WHERE ${where} RETURNING *`;
  const { rows } = await db.query<Row>(prepared(sql, [...keyValues, ...values.values()]));
  return rows[0]!;
}

/** Deletes the stored row `current` (its children go as the foreign keys say). */
export async function deleteRow(db: Queryable, table: TableDef, current: Row): Promise<boolean> {
  const { where, values } = rowCondition(table, current, 1);
  const { rowCount } = await db.query(`DELETE FROM ${ident(table.logicalName)} WHERE ${where}`, values);
  return (rowCount ?? 0) > 0;
}
