/**
 * Runs a FetchXML plan (odata/fetchxml.ts): joins over the parent links, filters, orders,
 * aggregates with date grouping, and paging. Names come from the table definitions and
 * every value is bound.
 *
 * Paging: with a paging cookie the next page is read by keyset, as `$skiptoken` pages are
 * (record-query.ts), so it costs the same at any depth. Queries whose rows are not one per
 * root row (distinct, aggregates, links to children) or that sort on a link have no cookie,
 * as in Dataverse, and fall back to simple paging: an OFFSET bounded at 50,000 rows, the
 * limit Dataverse sets on simple paging.
 *
 * `scope`: a channel provider's row scope (src/channel-analytics/provider-scope.ts): the
 * root and every linked entity of the conversation tree then hold only its rows (a link's
 * condition joins in ON, so an outer link to another provider's row finds nothing).
 */
import { SqlParams, ident } from "../../db/sql.js";
import type { ColumnDef } from "../../model/tables.js";
import { filterToSql } from "./filter-sql.js";
import { type FetchEntity, type FetchFilter, type FetchPlan, allLinks, fetchError, pagesByCookie } from "../../odata/fetchxml.js";
import type { OrderBy } from "../../odata/query-options.js";
import { type RowScope, scopeCondition } from "../provider-scope.js";
import { afterSql, decodeToken, encodeToken, nullsOrder, orderDirection, sortKeys } from "./record-query.js";
import type { Queryable, Row } from "./record-store.js";

/** One value of a result row. */
export interface FetchOutput {
  /** The key in the response. */
  key: string;
  /** The column of the SQL result row. */
  sqlName: string;
  column: ColumnDef;
  /** A grouped date part, or an aggregate: the value is a number (min/max keep the column's type). */
  kind: "value" | "datepart" | "count" | "number";
  /** Never null in a result row: it sorts with plain ASC/DESC (record-query.ts orderDirection). */
  notNull: boolean;
}

export interface FetchResult {
  rows: Row[];
  outputs: FetchOutput[];
  moreRecords: boolean;
  /** The inner paging cookie for the next page, when the query supports one. */
  nextCookie?: string;
  /** True when rows are records of the root entity (they get @odata.etag and the primary key). */
  records: boolean;
}

const DATE_PARTS = { day: "DAY", week: "WEEK", month: "MONTH", year: "YEAR" } as const;

const column = (entity: FetchEntity, c: ColumnDef) => `${entity.sqlAlias}.${ident(c.name)}`;

/** The entities an outer link may leave unmatched, whose columns are then null, NOT NULL or not. */
function unmatchable(entity: FetchEntity, parentUnmatchable = false, into = new Set<FetchEntity>()): Set<FetchEntity> {
  for (const link of entity.links) {
    const maybe = parentUnmatchable || link.outer;
    if (maybe) into.add(link);
    unmatchable(link, maybe, into);
  }
  return into;
}

function filterSql(filter: FetchFilter, params: SqlParams): string {
  const parts = filter.items.map((item) => {
    if ("items" in item) return filterSql(item, params);
    if (item.kind === "like") {
      // Case-insensitive with % and _ wildcards, as in Dataverse.
      const like = `${column(item.entity, item.column)} ILIKE ${params.add(item.pattern)}`;
      return item.negated ? `NOT (${like})` : like;
    }
    return filterToSql(item.entity.table, item.expr, params, item.entity.sqlAlias);
  });
  return `(${parts.join(filter.kind === "and" ? " AND " : " OR ")})`;
}

/** The FROM clause with its joins; link filters join in ON, so an outer link keeps rows without a match. */
function fromSql(plan: FetchPlan, params: SqlParams, scope: RowScope | undefined): string {
  const joins = (parent: FetchEntity): string[] =>
    parent.links.flatMap((link) => {
      const on = link.navigation.columns.map(
        (c, i) => `${link.sqlAlias}.${ident(link.navigation.targetColumns[i]!)} = ${parent.sqlAlias}.${ident(c)}`,
      );
      if (link.filter) on.push(filterSql(link.filter, params));
      const scoped = scopeCondition(link.table, scope, params, link.sqlAlias);
      if (scoped) on.push(scoped);
      const join = `${link.outer ? "LEFT" : "INNER"} JOIN ${ident(link.table.logicalName)} ${link.sqlAlias} ON ${on.join(" AND ")}`;
      return [join, ...joins(link)];
    });
  return [`${ident(plan.root.table.logicalName)} t0`, ...joins(plan.root)].join(" ");
}

const linkKey = (entity: FetchEntity, c: ColumnDef) => (entity.alias ? `${entity.alias}_x002e_${c.name}` : c.name);

export async function runFetchXml(
  db: Queryable,
  plan: FetchPlan,
  propertyKey: (c: ColumnDef) => string,
  scope?: RowScope,
): Promise<FetchResult> {
  const params = new SqlParams();
  const entities = [plan.root, ...allLinks(plan.root)];
  const from = fromSql(plan, params, scope);
  const rootConditions = plan.root.filter ? [filterSql(plan.root.filter, params)] : [];
  const scoped = scopeCondition(plan.root.table, scope, params, plan.root.sqlAlias);
  if (scoped) rootConditions.push(scoped);
  const where = rootConditions.length ? `WHERE ${rootConditions.join(" AND ")}` : "";
  const pageSize = plan.top ?? plan.count;
  const outputs: FetchOutput[] = [];
  let select: string[];
  let tail: string;
  let keys: OrderBy[] | undefined;
  let sqlName = 0;
  const name = () => `c${sqlName++}`;
  // Orders follow the rule of root-column orders: plain ASC/DESC on values that are never
  // null (so an index can give the order), nulls first ascending and last descending otherwise.
  const optional = unmatchable(plan.root);
  const notNull = (entity: FetchEntity, c: ColumnDef) => c.notNull && !optional.has(entity);

  if (plan.aggregate) {
    select = [];
    const groups: Array<{ expr: string; notNull: boolean }> = [];
    for (const entity of entities) {
      for (const a of entity.attributes ?? []) {
        const key = a.alias!;
        const sql = column(entity, a.column);
        let expr: string;
        let kind: FetchOutput["kind"] = "value";
        if (a.groupBy) {
          // Date parts of UTC date-times, as numbers (week: the ISO 8601 week of the year).
          expr = a.dateGrouping ? `EXTRACT(${DATE_PARTS[a.dateGrouping]} FROM ${sql} AT TIME ZONE 'UTC')::int` : sql;
          if (a.dateGrouping) kind = "datepart";
          groups.push({ expr, notNull: notNull(entity, a.column) });
        } else if (a.aggregate === "count") {
          expr = "count(*)::int";
          kind = "count";
        } else if (a.aggregate === "countcolumn") {
          expr = `count(${a.distinct ? "DISTINCT " : ""}${sql})::int`;
          kind = "count";
        } else {
          expr = `${a.aggregate}(${sql})`;
          if (a.aggregate === "sum" || a.aggregate === "avg") kind = "number";
        }
        const sqlAlias = name();
        select.push(`${expr} AS ${ident(sqlAlias)}`);
        // A count is never null; min, max, sum and avg of a group are null only if a value of it can be.
        const never = kind === "count" || notNull(entity, a.column);
        outputs.push({ key, sqlName: sqlAlias, column: a.column, kind, notNull: never });
      }
    }
    const orders = entities
      .flatMap((e) => e.orders)
      .map((o) => {
        // parseFetchXml checked that every order alias names an attribute.
        const output = outputs.find((out) => out.key === o.alias)!;
        return `${ident(output.sqlName)} ${nullsOrder(output.notNull, o.descending)}`;
      });
    const groupBy = groups.length ? `GROUP BY ${groups.map((g) => g.expr).join(", ")}` : "";
    // Then every group key, so pages are stable.
    const order = [...orders, ...groups.map((g) => `${g.expr} ${nullsOrder(g.notNull, false)}`)];
    tail = `${groupBy} ${order.length ? `ORDER BY ${order.join(", ")}` : ""}`;
  } else {
    const rootOrders: OrderBy[] = plan.root.orders.map((o) => ({ column: o.column!, descending: o.descending }));
    const linkOrders = allLinks(plan.root).flatMap((link) =>
      link.orders.map((o) => `${column(link, o.column!)} ${nullsOrder(notNull(link, o.column!), o.descending)}`),
    );
    const chosen = (entity: FetchEntity) =>
      entity.attributes?.map((a) => ({ c: a.column, key: a.alias })) ?? entity.table.columns.map((c) => ({ c, key: undefined }));
    if (plan.distinct) {
      select = [];
      for (const entity of entities) {
        for (const { c, key } of chosen(entity)) {
          const sqlAlias = name();
          select.push(`${column(entity, c)} AS ${ident(sqlAlias)}`);
          outputs.push({
            key: key ?? (entity === plan.root ? propertyKey(c) : linkKey(entity, c)),
            sqlName: sqlAlias,
            column: c,
            kind: "value",
            notNull: notNull(entity, c),
          });
        }
      }
      const order = entities.flatMap((entity) =>
        entity.orders.map((o) => {
          // parseFetchXml checked that with distinct every order names a selected attribute.
          const output = outputs.find((out, i) => out.column === o.column && select[i]!.startsWith(`${entity.sqlAlias}.`))!;
          return `${ident(output.sqlName)} ${nullsOrder(output.notNull, o.descending)}`;
        }),
      );
      order.push(...outputs.map((o) => `${ident(o.sqlName)} ${nullsOrder(o.notNull, false)}`));
      select[0] = `DISTINCT ${select[0]}`;
      tail = `ORDER BY ${order.join(", ")}`;
    } else {
      select = ["t0.*"];
      for (const { c, key } of chosen(plan.root))
        outputs.push({ key: key ?? propertyKey(c), sqlName: c.name, column: c, kind: "value", notNull: c.notNull });
      for (const link of allLinks(plan.root)) {
        for (const { c, key } of chosen(link)) {
          const sqlAlias = name();
          select.push(`${column(link, c)} AS ${ident(sqlAlias)}`);
          outputs.push({ key: key ?? linkKey(link, c), sqlName: sqlAlias, column: c, kind: "value", notNull: notNull(link, c) });
        }
      }
      const sorted = sortKeys(plan.root.table, rootOrders);
      // The root's order, then the links', then the root key and (for child rows) the link keys, so the order is total.
      const order = [
        ...sorted.slice(0, -1).map((k) => `${column(plan.root, k.column)} ${orderDirection(k)}`),
        ...linkOrders,
        `${column(plan.root, sorted.at(-1)!.column)} ${orderDirection(sorted.at(-1)!)}`,
        ...allLinks(plan.root).map(
          (link) => `${link.sqlAlias}.${ident(link.table.primaryKey)} ${nullsOrder(!optional.has(link), false)}`,
        ),
      ];
      tail = `ORDER BY ${order.join(", ")}`;
      if (pagesByCookie(plan)) keys = sorted;
    }
  }

  let conditions = where;
  let offset = 0;
  if (plan.top === undefined) {
    const cookie = plan.pagingCookie;
    if (keys && cookie && cookie.page === plan.page - 1) {
      let last: unknown[];
      try {
        last = decodeToken(plan.root.table, keys, cookie.last);
      } catch {
        throw fetchError(
          "The paging-cookie does not belong to this query: pass the pagingcookie of the previous page's response unchanged.",
        );
      }
      const after = afterSql(plan.root.table, keys, last, params, "t0.");
      conditions = conditions ? `${conditions} AND ${after}` : `WHERE ${after}`;
    } else {
      // Without a cookie for the page before (or none at all): simple paging, bounded by parseFetchXml.
      offset = (plan.page - 1) * plan.count;
    }
  }
  const limit = `LIMIT ${pageSize + (plan.top === undefined ? 1 : 0)}${offset ? ` OFFSET ${offset}` : ""}`;
  const sql = `SELECT ${select.join(", ")} FROM ${from} ${conditions} ${tail} ${limit}`;
  const { rows } = await db.query<Row>(sql, params.values);
  const moreRecords = plan.top === undefined && rows.length > pageSize;
  const page = rows.slice(0, pageSize);
  const result: FetchResult = { rows: page, outputs, moreRecords, records: !plan.aggregate && !plan.distinct };
  if (moreRecords && keys) {
    result.nextCookie = `<cookie page="${plan.page}"><keyset last="${encodeToken(keys, page.at(-1)!)}" /></cookie>`;
  }
  return result;
}
