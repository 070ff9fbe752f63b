/**
 * SQL stage: a plan → one parameterised statement. Values are always bound; names come
 * from the dimension catalogue only.
 */
import { SqlParams } from "../db/sql.js";
import {
  type AggregateDimension,
  CONVERSATION_DIMENSIONS,
  FACT_JOINS,
  type FactJoin,
  MULTI_VALUED,
  SEGMENT_DIMENSIONS,
} from "./dimensions.js";
import type { AggregatesPlan } from "./plan.js";
import type { CheckedFilter, CheckedPredicate, DetailsQuery, RangeSpec } from "./parse.js";

export interface Statement {
  text: string;
  values: unknown[];
}

function filterSql(filter: CheckedFilter, predicate: (p: CheckedPredicate) => string): string {
  const parts = [
    ...filter.predicates.map(predicate),
    ...filter.clauses.map((c) => `(${c.predicates.map(predicate).join(c.type === "and" ? " AND " : " OR ")})`),
  ];
  return `(${parts.join(filter.type === "and" ? " AND " : " OR ")})`;
}

/** A text dimension predicate; '' and NULL both mean "absent". */
function dimensionSql(
  expr: string,
  p: Extract<CheckedPredicate, { kind: "dimension" }>,
  params: SqlParams,
  multiValued = false,
): string {
  if (p.operator === "exists") return `COALESCE(${expr}, '') <> ''`;
  if (p.operator === "notExists") return `COALESCE(${expr}, '') = ''`;
  if (multiValued) {
    const escaped = p.value!.replace(/[\\%_]/g, (c) => `\\${c}`);
    return `${expr} LIKE ${params.add(`%,${escaped},%`)}`;
  }
  return `${expr} = ${params.add(p.value)}`;
}

function rangeSql(expr: string, range: RangeSpec | undefined, params: SqlParams): string[] {
  if (!range) return [];
  const out: string[] = [];
  if (range.gt !== undefined) out.push(`${expr} > ${params.add(range.gt)}`);
  if (range.gte !== undefined) out.push(`${expr} >= ${params.add(range.gte)}`);
  if (range.lt !== undefined) out.push(`${expr} < ${params.add(range.lt)}`);
  if (range.lte !== undefined) out.push(`${expr} <= ${params.add(range.lte)}`);
  return out;
}

/** Column aliases of the group dimensions in an aggregates result: d0, d1, … */
export const groupAlias = (i: number) => `d${i}`;
/** Column alias of view i's count. */
export const viewAlias = (i: number) => `v${i}`;

export function aggregatesSql(plan: AggregatesPlan, dimensionOf: (name: string) => AggregateDimension | undefined): Statement {
  const params = new SqlParams();
  const bucketOf = (column: string) => `width_bucket(${column}, ${params.add(plan.boundaries.slice(0, -1))}::timestamptz[]) AS b`;
  const start = params.add(plan.boundaries[0]);
  const end = params.add(plan.boundaries[plan.boundaries.length - 1]);
  const metrics = params.add(plan.metrics);
  const rollup = plan.source.kind === "rollup";
  const exprOf = (d: AggregateDimension) => (rollup ? `r.${d.rollup}` : d.fact);
  const joins = new Set<FactJoin>();
  const use = (d: AggregateDimension) => {
    if (!rollup) for (const j of d.joins ?? []) joins.add(j);
    return exprOf(d);
  };
  const groups = plan.groupBy.map((d, i) => `${use(d)} AS ${groupAlias(i)}`);
  const where: string[] = [];
  if (plan.filter) {
    where.push(
      filterSql(plan.filter, (p) => (p.kind === "dimension" ? dimensionSql(use(dimensionOf(p.dimension)!), p, params) : "TRUE")),
    );
  }
  const groupBy = ["2", "1", ...plan.groupBy.map((_, i) => String(i + 3))].join(", ");
  if (plan.source.kind === "rollup") {
    const grain = params.add(plan.source.grain);
    return {
      // Buckets that are the grain's own cells group by the cell's start: in the index's
      // order when the groups are its leading dimensions, so no sort is needed.
      text: `SELECT ${plan.source.exactCells ? "r.bucketstart AS bt" : bucketOf("r.bucketstart")}, r.metric${groups.map((g) => `, ${g}`).join("")},
                    sum(r.statcount)::float8 AS n, sum(r.statsum)::float8 AS total, min(r.statmin)::float8 AS mn, max(r.statmax)::float8 AS mx
               FROM cif_analytics_rollup r
              WHERE r.grain = ${grain} AND r.metric = ANY(${metrics}::text[])
                AND r.bucketstart >= ${start}::timestamptz AND r.bucketstart < ${end}::timestamptz${where.map((w) => ` AND ${w}`).join("")}
              GROUP BY ${groupBy}`,
      values: params.values,
    };
  }
  const views = plan.views.map((v, i) => {
    const conditions = [`f.metric = ${params.add(v.target)}`, ...rangeSql("f.value", v.range, params)];
    return `, count(*) FILTER (WHERE ${conditions.join(" AND ")})::float8 AS ${viewAlias(i)}`;
  });
  return {
    text: `SELECT ${bucketOf("f.emittedon")}, f.metric${groups.map((g) => `, ${g}`).join("")},
                  count(*)::float8 AS n, sum(f.value)::float8 AS total, min(f.value)::float8 AS mn, max(f.value)::float8 AS mx${views.join("")}
             FROM cif_analytics_metric f ${[...joins].map((j) => FACT_JOINS[j]).join(" ")}
            WHERE f.metric = ANY(${metrics}::text[])
              AND f.emittedon >= ${start}::timestamptz AND f.emittedon < ${end}::timestamptz${where.map((w) => ` AND ${w}`).join("")}
            GROUP BY ${groupBy}`,
    values: params.values,
  };
}

/** The details query: the page of conversation ids, and the count of all that match. */
export function detailsSql(query: DetailsQuery): { page: Statement; count: Statement } {
  const params = new SqlParams();
  const start = params.add(query.interval.start);
  const end = params.add(query.interval.end);
  const where = [`a.conversationstart >= ${start}`, `a.conversationstart < ${end}`];
  let joinsConversation = false;
  const conversationPredicate = (p: CheckedPredicate): string => {
    if (p.kind === "metric") {
      const conditions = [
        `f.conversationid = a.conversationid`,
        `f.metric = ${params.add(p.metric)}`,
        ...rangeSql("f.value", p.range, params),
      ];
      const exists = `EXISTS (SELECT 1 FROM cif_analytics_metric f WHERE ${conditions.join(" AND ")})`;
      return p.operator === "notExists" ? `NOT ${exists}` : exists;
    }
    const dimension = CONVERSATION_DIMENSIONS.find((d) => d.name === p.dimension)!;
    if (dimension.joinsConversation) joinsConversation = true;
    return dimensionSql(dimension.sql, p, params);
  };
  for (const filter of query.conversationFilters) where.push(filterSql(filter, conversationPredicate));
  for (const filter of query.segmentFilters) {
    const condition = filterSql(filter, (p) => {
      const dimension = SEGMENT_DIMENSIONS.find((d) => d.name === (p as { dimension: string }).dimension)!;
      return dimensionSql(
        dimension.sql,
        p as Extract<CheckedPredicate, { kind: "dimension" }>,
        params,
        MULTI_VALUED.has(dimension.name),
      );
    });
    // The interval again on the segment rows: with a queue or agent filter, their own index
    // (queueid / userid, conversationstart) finds the few rows of the interval.
    where.push(
      `EXISTS (SELECT 1 FROM cif_analytics_segment g WHERE g.conversationid = a.conversationid ` +
        `AND g.conversationstart >= ${start} AND g.conversationstart < ${end} AND ${condition})`,
    );
  }
  const from = `cif_analytics_conversation a${joinsConversation ? " LEFT JOIN msdyn_conversationdata c ON c.msdyn_conversationid = a.conversationid" : ""}`;
  const whereSql = where.join(" AND ");
  const countValues = [...params.values];
  const column = query.orderBy === "conversationEnd" ? "a.conversationend" : "a.conversationstart";
  const direction = query.order === "desc" ? "DESC NULLS LAST" : "ASC NULLS LAST";
  const order =
    query.order === "unordered"
      ? ""
      : `ORDER BY ${column} ${direction}, a.conversationid ${query.order === "desc" ? "DESC" : "ASC"}`;
  const limit = params.add(query.pageSize);
  const offset = params.add((query.pageNumber - 1) * query.pageSize);
  return {
    page: {
      text: `SELECT a.conversationid FROM ${from} WHERE ${whereSql} ${order} LIMIT ${limit} OFFSET ${offset}`,
      values: params.values,
    },
    count: { text: `SELECT count(*)::int AS total FROM ${from} WHERE ${whereSql}`, values: countValues },
  };
}
