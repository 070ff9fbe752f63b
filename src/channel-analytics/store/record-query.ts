/**
 * Reads collections: filtered, ordered, keyset-paged pages (no OFFSET: every page costs
 * the same, and following the links returns each row once even while rows arrive),
 * counts, aggregations and expansions. All SQL is built from the table definitions with
 * bound values.
 *
 * `scope`: a channel provider's row scope (src/channel-analytics/provider-scope.ts); its
 * rows are then the only ones read, expanded, counted and aggregated. Without it the
 * statements are exactly those of an unscoped caller.
 */
import { SqlParams, ident } from "../../db/sql.js";
import { hasNulCharacter, parseIsoDateTime } from "../../model/date-time.js";
import { DISTRIBUTION_COLUMN, isDistributed } from "../../model/distribution.js";
import { isGuid } from "../../model/keys.js";
import type { NavigationProperty } from "../../model/navigation.js";
import { sqlType } from "../../model/sql-types.js";
import type { ColumnDef, TableDef } from "../../model/tables.js";
import { ErrorCodes, badRequest } from "../../odata/errors.js";
import {
  type ApplyPlan,
  type CollectionQuery,
  type ExpandOption,
  MAX_PAGE_SIZE,
  type OrderBy,
} from "../../odata/query-options.js";
import { type RowScope, scopeCondition } from "../provider-scope.js";
import { filterToSql } from "./filter-sql.js";
import type { Queryable, Row } from "./record-store.js";

export interface Page {
  rows: Row[];
  /** Set when more rows match: the opaque $skiptoken of the next page. */
  nextSkipToken?: string;
  /** Matching rows, capped at 5,000 (when $count=true). */
  count?: number;
  countLimitExceeded?: boolean;
  /** Expanded rows per navigation property name, per row index. */
  expanded: Map<string, Array<Row | Row[] | null>>;
}

/** The sort keys of a page: the requested order, then the primary key to make it total. */
export function sortKeys(table: TableDef, orderBy: readonly OrderBy[]): OrderBy[] {
  const primaryKey = table.columns.find((c) => c.name === table.primaryKey)!;
  const keys = orderBy.filter((o) => o.column !== primaryKey);
  const own = orderBy.find((o) => o.column === primaryKey);
  return [...keys, own ?? { column: primaryKey, descending: false }];
}

// OData and Dataverse: nulls sort first ascending and last descending (PostgreSQL's default is the opposite).
const orderSql = (keys: readonly OrderBy[], alias = "") =>
  keys.map((k) => `${alias}${ident(k.column.name)} ${orderDirection(k)}`).join(", ");

/**
 * A NOT NULL column (the primary key that ends every sort) keeps plain ASC / DESC: its
 * nulls clause would change nothing but would stop PostgreSQL from reading the order
 * from the column's index (a full sort of the table under an unfiltered `$top`).
 */
export const orderDirection = (k: OrderBy) => nullsOrder(k.column.notNull, k.descending);

/** The same rule for any sorted value: plain when it is never null, else nulls first ascending and last descending. */
export const nullsOrder = (notNull: boolean, descending: boolean) =>
  notNull ? (descending ? "DESC" : "ASC") : descending ? "DESC NULLS LAST" : "ASC NULLS FIRST";

interface SkipToken {
  /** The sort key values of the last row of the previous page. */
  v: unknown[];
  /** The sort it belongs to. */
  o: string;
}

const sortSignature = (keys: readonly OrderBy[]) =>
  keys.map((k) => `${k.column.name} ${k.descending ? "desc" : "asc"}`).join(",");

export function encodeToken(keys: readonly OrderBy[], row: Row): string {
  const token: SkipToken = {
    v: keys.map((k) => {
      const value = row[k.column.name];
      return value instanceof Date ? value.toISOString() : value;
    }),
    o: sortSignature(keys),
  };
  return Buffer.from(JSON.stringify(token)).toString("base64url");
}

export function decodeToken(table: TableDef, keys: readonly OrderBy[], text: string): unknown[] {
  let token: SkipToken;
  try {
    token = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as SkipToken;
  } catch {
    throw badRequest("The $skiptoken is not valid: pass the @odata.nextLink unchanged.", ErrorCodes.badRequest);
  }
  if (!token || !Array.isArray(token.v) || token.v.length !== keys.length || token.o !== sortSignature(keys)) {
    throw badRequest("The $skiptoken does not belong to this query: pass the @odata.nextLink unchanged.", ErrorCodes.badRequest);
  }
  // The token came from the client: each value must fit its column before it reaches SQL.
  token.v.forEach((value, i) => {
    if (value !== null && !fitsColumn(table, keys[i]!.column, value)) {
      throw badRequest("The $skiptoken is not valid: pass the @odata.nextLink unchanged.", ErrorCodes.badRequest);
    }
  });
  return token.v;
}

/** Whether a value from a client's $skiptoken can stand for the column, so it is bound safely. */
function fitsColumn(table: TableDef, column: ColumnDef, value: unknown): boolean {
  switch (sqlType(table, column)) {
    case "uuid":
      return typeof value === "string" && isGuid(value);
    case "timestamptz":
      return typeof value === "string" && parseIsoDateTime(value) !== undefined;
    case "boolean":
      return typeof value === "boolean";
    case "text":
      return typeof value === "string" && !hasNulCharacter(value);
    case "bigint":
      // pg hands bigints over as text.
      return (
        (typeof value === "number" && Number.isSafeInteger(value)) || (typeof value === "string" && /^-?\d{1,19}$/.test(value))
      );
    case "int":
      return typeof value === "number" && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647;
  }
}

/** Rows strictly after `values` in the order of `keys` (nulls first ascending, last descending). */
export function afterSql(
  table: TableDef,
  keys: readonly OrderBy[],
  values: readonly unknown[],
  params: SqlParams,
  alias = "",
): string {
  const typed = (k: OrderBy, v: unknown) => `${params.add(v)}::${sqlType(table, k.column)}`;
  const disjuncts = keys.map((key, i) => {
    const equalities = keys.slice(0, i).map((k, j) => {
      const col = alias + ident(k.column.name);
      return values[j] === null ? `${col} IS NULL` : `${col} = ${typed(k, values[j])}`;
    });
    const col = alias + ident(key.column.name);
    const value = values[i];
    let after: string;
    if (!key.descending) after = value === null ? `${col} IS NOT NULL` : `${col} > ${typed(key, value)}`;
    else after = value === null ? "FALSE" : `(${col} < ${typed(key, value)} OR ${col} IS NULL)`;
    return `(${[...equalities, after].join(" AND ")})`;
  });
  return `(${disjuncts.join(" OR ")})`;
}

export async function queryPage(
  db: Queryable,
  table: TableDef,
  query: CollectionQuery,
  maxPageSize: number,
  scope?: RowScope,
): Promise<Page> {
  const params = new SqlParams();
  const conditions: string[] = [];
  if (query.filter) conditions.push(filterToSql(table, query.filter, params));
  const scoped = scopeCondition(table, scope, params);
  if (scoped) conditions.push(scoped);
  const filterParamCount = params.values.length;
  const filterConditions = [...conditions];

  const keys = sortKeys(table, query.orderBy);
  // $top bounds the whole result, so it is served as one page.
  const pageSize = query.top !== undefined ? Math.min(query.top, MAX_PAGE_SIZE) : Math.min(maxPageSize, MAX_PAGE_SIZE);
  if (query.skipToken !== undefined && query.top === undefined) {
    conditions.push(afterSql(table, keys, decodeToken(table, keys, query.skipToken), params));
  }
  const where = conditions.length ? `WHERE ${conditions.join(" AND ")}` : "";
  const sql = `SELECT * FROM ${ident(table.logicalName)} ${where} ORDER BY ${orderSql(keys)} LIMIT ${pageSize + 1}`;
  const { rows } = await db.query<Row>(sql, params.values);

  const page: Page = { rows: rows.slice(0, pageSize), expanded: new Map() };
  if (rows.length > pageSize && query.top === undefined) page.nextSkipToken = encodeToken(keys, page.rows[page.rows.length - 1]!);

  if (query.count) {
    const countWhere = filterConditions.length ? `WHERE ${filterConditions.join(" AND ")}` : "";
    const countSql = `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${ident(table.logicalName)} ${countWhere} LIMIT ${MAX_PAGE_SIZE + 1}) matching`;
    const { rows: counted } = await db.query<{ n: number }>(countSql, params.values.slice(0, filterParamCount));
    page.count = Math.min(counted[0]!.n, MAX_PAGE_SIZE);
    page.countLimitExceeded = counted[0]!.n > MAX_PAGE_SIZE;
  }
  for (const expand of query.expand) page.expanded.set(expand.navigation.name, await expandRows(db, page.rows, expand, scope));
  return page;
}

/** `GET {set}/$count`, capped at 5,000 like @odata.count. */
export async function countRows(db: Queryable, table: TableDef, scope?: RowScope): Promise<number> {
  const params = new SqlParams();
  const scoped = scopeCondition(table, scope, params);
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${ident(table.logicalName)}${scoped ? ` WHERE ${scoped}` : ""} LIMIT ${MAX_PAGE_SIZE}) matching`,
    scoped ? params.values : undefined,
  );
  return rows[0]!.n;
}

/** Related rows for each of `rows`: one query per navigation property, not one per row. */
export async function expandRows(
  db: Queryable,
  rows: readonly Row[],
  expand: ExpandOption,
  scope?: RowScope,
): Promise<Array<Row | Row[] | null>> {
  const nav: NavigationProperty = expand.navigation;
  const target = nav.target;
  const keyOf = (row: Row, columns: readonly string[]) => JSON.stringify(columns.map((c) => row[c]));
  const tuples = new Map<string, unknown[]>();
  for (const row of rows) {
    const values = nav.columns.map((c) => row[c]);
    if (values.some((v) => v === null || v === undefined)) continue;
    tuples.set(keyOf(row, nav.columns), values);
  }
  if (tuples.size === 0) return rows.map(() => (nav.collection ? [] : null));

  const params = new SqlParams();
  const keys = sortKeys(target, expand.orderBy);
  let sql: string;
  if (nav.collection) {
    // Up to $top (else 5,000) children per parent row: the children of the listed parents,
    // ranked per parent. (A LATERAL … LIMIT per parent reads less when $top is small, but
    // Citus cannot run a LIMIT correlated to a list of parents; ranked by a partition that
    // holds the distribution column, it runs on each shard, and `= ANY` names the shards.)
    const limit = expand.top ?? MAX_PAGE_SIZE;
    const columnOf = (name: string) => target.columns.find((c) => c.name === name)!;
    const parentTuples = [...tuples.values()];
    const parents = parentTuples
      .map(
        (values) =>
          `(${values.map((v, i) => `${params.add(v)}::${sqlType(target, columnOf(nav.targetColumns[i]!))}`).join(", ")})`,
      )
      .join(", ");
    const conditions = [`(${nav.targetColumns.map((c) => `t.${ident(c)}`).join(", ")}) IN (${parents})`];
    const shardColumn = nav.targetColumns.indexOf(DISTRIBUTION_COLUMN);
    if (shardColumn >= 0 && isDistributed(target)) {
      const shards = [...new Set(parentTuples.map((values) => String(values[shardColumn])))];
      conditions.push(`t.${ident(DISTRIBUTION_COLUMN)} = ANY(${params.add(shards)}::text[])`);
    }
    if (expand.filter) conditions.push(filterToSql(target, expand.filter, params));
    const scoped = scopeCondition(target, scope, params, "t");
    if (scoped) conditions.push(scoped);
    sql =
      `SELECT * FROM (SELECT t.*, row_number() OVER (PARTITION BY ${nav.targetColumns.map((c) => `t.${ident(c)}`).join(", ")} ` +
      `ORDER BY ${orderSql(keys, "t.")}) AS expand_rank FROM ${ident(target.logicalName)} t WHERE ${conditions.join(" AND ")}) children ` +
      `WHERE expand_rank <= ${limit} ORDER BY ${orderSql(keys)}`;
  } else {
    const keyList = [...tuples.values()].map((values) => `(${values.map((v) => params.add(v)).join(", ")})`).join(", ");
    const targetKey = `(${nav.targetColumns.map(ident).join(", ")})`;
    const conditions = [`${targetKey} IN (${keyList})`];
    if (expand.filter) conditions.push(filterToSql(target, expand.filter, params));
    const scoped = scopeCondition(target, scope, params);
    if (scoped) conditions.push(scoped);
    sql = `SELECT * FROM ${ident(target.logicalName)} WHERE ${conditions.join(" AND ")}`;
  }
  const { rows: related } = await db.query<Row>(sql, params.values);
  const byKey = new Map<string, Row[]>();
  for (const row of related) {
    delete row.expand_rank;
    const key = keyOf(row, nav.targetColumns);
    byKey.set(key, [...(byKey.get(key) ?? []), row]);
  }
  return rows.map((row) => {
    const found = byKey.get(keyOf(row, nav.columns)) ?? [];
    return nav.collection ? found : (found[0] ?? null);
  });
}

const SQL_AGGREGATE = { sum: "sum", average: "avg", min: "min", max: "max" } as const;

/** `$apply`: groups and aggregates; each result row is keyed by property names and aliases. */
export async function aggregateRows(
  db: Queryable,
  table: TableDef,
  plan: ApplyPlan,
  filter?: CollectionQuery["filter"],
  scope?: RowScope,
): Promise<Row[]> {
  const params = new SqlParams();
  const conditions = [plan.filter, filter].filter((f) => f !== undefined).map((f) => filterToSql(table, f, params));
  const scoped = scopeCondition(table, scope, params);
  if (scoped) conditions.push(scoped);
  const groups = plan.groupBy.map((c) => ident(c.name));
  const selects = [
    ...groups,
    ...plan.aggregates.map((a) =>
      a.fn === "count"
        ? `count(*)::int AS ${ident(a.alias)}`
        : `${SQL_AGGREGATE[a.fn]}(${ident(a.column!.name)}) AS ${ident(a.alias)}`,
    ),
  ];
  const where = conditions.length ? `WHERE ${conditions.join(" AND ")}` : "";
  const groupBy = groups.length ? `GROUP BY ${groups.join(", ")} ORDER BY ${groups.join(", ")}` : "";
  const { rows } = await db.query<Row>(
    `SELECT ${selects.join(", ")} FROM ${ident(table.logicalName)} ${where} ${groupBy}`,
    params.values,
  );
  return rows.map((row) => {
    const out: Row = {};
    for (const column of plan.groupBy) out[column.name] = row[column.name];
    for (const a of plan.aggregates) {
      const value = row[a.alias];
      // sum/avg come back as numeric text; min/max keep the column's type.
      out[a.alias] = typeof value === "string" && (a.fn === "sum" || a.fn === "average") ? Number(value) : value;
    }
    return out;
  });
}
