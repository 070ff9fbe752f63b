/**
 * Parse stage: a Genesys query body → a checked query, or a 400 in Genesys' shape that
 * names the field. Pure, so it is tested without a database.
 */
import { z } from "zod";
import { type AggregateDimension, CONVERSATION_DIMENSIONS, SEGMENT_DIMENSIONS, aggregateDimension } from "./dimensions.js";
import { analyticsBadRequest } from "./errors.js";
import { METRIC_NAMES, metricDef } from "./metrics.js";
import { type Granularity, type Interval, parseGranularity, parseInterval, parseTimeZone } from "./time.js";

const Range = z
  .object({ gt: z.number().optional(), gte: z.number().optional(), lt: z.number().optional(), lte: z.number().optional() })
  .strict();

const Predicate = z
  .object({
    type: z.enum(["dimension", "metric", "property"]).optional(),
    dimension: z.string().optional(),
    metric: z.string().optional(),
    property: z.string().optional(),
    propertyType: z.string().optional(),
    operator: z.enum(["matches", "exists", "notExists"]).optional(),
    value: z.string().optional(),
    range: Range.optional(),
  })
  .strict();

const Clause = z.object({ type: z.enum(["and", "or"]), predicates: z.array(Predicate).max(100) }).strict();

const Filter = z
  .object({
    type: z.enum(["and", "or"]),
    predicates: z.array(Predicate).max(100).optional(),
    clauses: z.array(Clause).max(100).optional(),
  })
  .strict();

const View = z
  .object({ target: z.string(), name: z.string().min(1).max(100), function: z.literal("rangeBound"), range: Range })
  .strict();

const AggregationQueryBody = z
  .object({
    interval: z.string(),
    granularity: z.string().optional(),
    timeZone: z.string().optional(),
    groupBy: z.array(z.string()).max(10).optional(),
    filter: Filter.optional(),
    metrics: z.array(z.string()).min(1).max(50),
    flattenMultivaluedDimensions: z.boolean().optional(),
    views: z.array(View).max(10).optional(),
    alternateTimeDimension: z.literal("eventTime").optional(),
    queryType: z.enum(["groupBy", "topN", "bottomN"]).optional(),
    sortMetric: z
      .object({ name: z.string(), function: z.enum(["average", "count", "max", "min", "sum"]) })
      .strict()
      .optional(),
    limit: z.number().int().min(1).max(1000).optional(),
  })
  .strict();

const Paging = z.object({ pageSize: z.number().int().optional(), pageNumber: z.number().int().min(1).optional() }).strict();

const DetailsQueryBody = z
  .object({
    interval: z.string(),
    order: z.enum(["asc", "desc", "unordered"]).optional(),
    orderBy: z.enum(["conversationStart", "conversationEnd", "segmentStart", "segmentEnd"]).optional(),
    paging: Paging.optional(),
    conversationFilters: z.array(Filter).max(50).optional(),
    segmentFilters: z.array(Filter).max(50).optional(),
    evaluationFilters: z.array(Filter).max(0, "evaluation data is not kept for CIF conversations").optional(),
    surveyFilters: z.array(Filter).max(0, "survey data is not kept for CIF conversations").optional(),
    resolutionFilters: z.array(Filter).max(0, "resolution data is not kept for CIF conversations").optional(),
  })
  .strict();

export type RangeSpec = z.infer<typeof Range>;

/** A checked predicate: a dimension (matches / exists / notExists) or a metric range. */
export type CheckedPredicate =
  | { kind: "dimension"; dimension: string; operator: "matches" | "exists" | "notExists"; value?: string }
  | { kind: "metric"; metric: string; operator: "matches" | "exists" | "notExists"; range?: RangeSpec };

export interface CheckedFilter {
  type: "and" | "or";
  predicates: CheckedPredicate[];
  clauses: { type: "and" | "or"; predicates: CheckedPredicate[] }[];
}

export interface AggregationQuery {
  interval: Interval;
  granularity?: Granularity;
  timeZone: string;
  groupBy: AggregateDimension[];
  filter?: CheckedFilter;
  metrics: string[];
  views: z.infer<typeof View>[];
  queryType: "groupBy" | "topN" | "bottomN";
  sortMetric?: { name: string; function: "average" | "count" | "max" | "min" | "sum" };
  limit?: number;
}

export interface DetailsQuery {
  interval: Interval;
  order: "asc" | "desc" | "unordered";
  orderBy: "conversationStart" | "conversationEnd";
  pageSize: number;
  pageNumber: number;
  conversationFilters: CheckedFilter[];
  segmentFilters: CheckedFilter[];
}

export const DETAILS_MAX_PAGE_SIZE = 100;
export const DETAILS_MAX_INTERVAL_DAYS = 31;

/** The first problem zod found, as `field.path: what is wrong`. */
function zodProblem(error: z.ZodError): never {
  const issue = error.issues[0]!;
  const path =
    issue.path
      .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
      .join("")
      .replace(/^\./, "") || "(body)";
  const message =
    issue.code === "unrecognized_keys"
      ? `${path === "(body)" ? "" : `${path}: `}unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`
      : `${path}: ${issue.message}`;
  throw analyticsBadRequest(message, { field: path });
}

function checkFilter(
  filter: z.infer<typeof Filter>,
  field: string,
  check: (p: z.infer<typeof Predicate>, at: string) => CheckedPredicate,
): CheckedFilter {
  const predicates = (filter.predicates ?? []).map((p, i) => check(p, `${field}.predicates[${i}]`));
  const clauses = (filter.clauses ?? []).map((c, i) => ({
    type: c.type,
    predicates: c.predicates.map((p, j) => check(p, `${field}.clauses[${i}].predicates[${j}]`)),
  }));
  if (predicates.length === 0 && clauses.length === 0) {
    throw analyticsBadRequest(`${field}: a filter needs at least one predicate or clause.`, { field });
  }
  return { type: filter.type, predicates, clauses };
}

function dimensionPredicate(
  p: z.infer<typeof Predicate>,
  at: string,
  known: (name: string) => boolean,
  list: string,
): CheckedPredicate {
  if (p.type === "property" || p.property)
    throw analyticsBadRequest(`${at}: property predicates are not supported.`, { field: at });
  if (!p.dimension) throw analyticsBadRequest(`${at}: a dimension predicate names its 'dimension'.`, { field: at });
  if (!known(p.dimension)) {
    throw analyticsBadRequest(`${at}.dimension: '${p.dimension.slice(0, 64)}' is not a dimension here; use one of ${list}.`, {
      field: `${at}.dimension`,
    });
  }
  const operator = p.operator ?? "matches";
  if (operator === "matches" && p.value === undefined) {
    throw analyticsBadRequest(`${at}.value: 'matches' needs a value.`, { field: `${at}.value` });
  }
  return { kind: "dimension", dimension: p.dimension, operator, ...(p.value !== undefined && { value: p.value }) };
}

const METRIC_LIST = METRIC_NAMES.join(", ");

function checkMetricName(name: string, field: string) {
  if (!metricDef(name))
    throw analyticsBadRequest(`${field}: '${name.slice(0, 64)}' is not a metric; use one of ${METRIC_LIST}.`, { field });
}

export function parseAggregationQuery(body: unknown): AggregationQuery {
  const parsed = AggregationQueryBody.safeParse(body);
  if (!parsed.success) zodProblem(parsed.error);
  const q = parsed.data;
  const interval = parseInterval(q.interval);
  const timeZone = parseTimeZone(q.timeZone);
  const granularity = parseGranularity(q.granularity);
  const names = AGGREGATE_DIMENSION_LIST;
  const groupBy = (q.groupBy ?? []).map((name, i) => {
    const dimension = aggregateDimension(name);
    if (!dimension)
      throw analyticsBadRequest(`groupBy[${i}]: '${name.slice(0, 64)}' is not a dimension; use one of ${names}.`, {
        field: `groupBy[${i}]`,
      });
    return dimension;
  });
  if (new Set(groupBy).size !== groupBy.length)
    throw analyticsBadRequest("groupBy: a dimension is named twice.", { field: "groupBy" });
  q.metrics.forEach((m, i) => checkMetricName(m, `metrics[${i}]`));
  q.views?.forEach((v, i) => {
    checkMetricName(v.target, `views[${i}].target`);
    if (metricDef(v.target)?.kind !== "duration") {
      throw analyticsBadRequest(`views[${i}].target: rangeBound views count durations; '${v.target}' is not a t* metric.`, {
        field: `views[${i}].target`,
      });
    }
  });
  const filter = q.filter
    ? checkFilter(q.filter, "filter", (p, at) => {
        if (p.type === "metric" || p.metric) {
          throw analyticsBadRequest(
            `${at}: the aggregates filter takes dimension predicates only (metric predicates are for the details query).`,
            {
              field: at,
            },
          );
        }
        return dimensionPredicate(p, at, (n) => aggregateDimension(n) !== undefined, names);
      })
    : undefined;
  const queryType = q.queryType ?? "groupBy";
  if (queryType !== "groupBy") {
    if (!q.sortMetric)
      throw analyticsBadRequest(`sortMetric: a ${queryType} query names the metric to rank by.`, { field: "sortMetric" });
    if (!q.metrics.includes(q.sortMetric.name)) {
      throw analyticsBadRequest(`sortMetric.name: '${q.sortMetric.name.slice(0, 64)}' must be one of the query's metrics.`, {
        field: "sortMetric.name",
      });
    }
    if (groupBy.length === 0)
      throw analyticsBadRequest(`groupBy: a ${queryType} query ranks groups, so it needs a groupBy.`, { field: "groupBy" });
  }
  return {
    interval,
    ...(granularity && { granularity }),
    timeZone,
    groupBy,
    ...(filter && { filter }),
    metrics: q.metrics,
    views: q.views ?? [],
    queryType,
    ...(q.sortMetric && { sortMetric: q.sortMetric }),
    ...(q.limit !== undefined && { limit: q.limit }),
  };
}

const AGGREGATE_DIMENSION_LIST = [
  "queueId",
  "mediaType",
  "providerId",
  "userId",
  "direction",
  "originatingDirection",
  "conversationId",
  "sessionId",
  "kpiEventName",
  "queueName",
  "sessionCreationReason",
  "purpose",
  "customerCountry",
  "customerState",
  "customerCity",
  "externalCorrelationId",
  "customAttribute1..5",
].join(", ");

const CONVERSATION_DIMENSION_LIST = CONVERSATION_DIMENSIONS.map((d) => d.name).join(", ");
const SEGMENT_DIMENSION_LIST = SEGMENT_DIMENSIONS.map((d) => d.name).join(", ");

export function parseDetailsQuery(body: unknown): DetailsQuery {
  const parsed = DetailsQueryBody.safeParse(body);
  if (!parsed.success) zodProblem(parsed.error);
  const q = parsed.data;
  const interval = parseInterval(q.interval);
  if (interval.end.getTime() - interval.start.getTime() > DETAILS_MAX_INTERVAL_DAYS * 86_400_000) {
    throw analyticsBadRequest(
      `interval: a details query covers at most ${DETAILS_MAX_INTERVAL_DAYS} days; for longer extracts use an export job (POST /api/v2/analytics/conversations/details/jobs).`,
      { field: "interval" },
    );
  }
  const pageSize = q.paging?.pageSize ?? 25;
  if (pageSize < 1 || pageSize > DETAILS_MAX_PAGE_SIZE) {
    throw analyticsBadRequest(
      `paging.pageSize: ${pageSize} is out of range; a page holds 1 to ${DETAILS_MAX_PAGE_SIZE} conversations.`,
      {
        field: "paging.pageSize",
      },
    );
  }
  const conversationFilters = (q.conversationFilters ?? []).map((f, i) =>
    checkFilter(f, `conversationFilters[${i}]`, (p, at) => {
      if (p.type === "metric" || p.metric) {
        if (!p.metric) throw analyticsBadRequest(`${at}: a metric predicate names its 'metric'.`, { field: at });
        checkMetricName(p.metric, `${at}.metric`);
        if (metricDef(p.metric)!.kind === "ratio" || metricDef(p.metric)!.kind === "target") {
          throw analyticsBadRequest(`${at}.metric: '${p.metric}' is an aggregate ratio, not a conversation metric.`, {
            field: `${at}.metric`,
          });
        }
        const operator = p.operator ?? "matches";
        if (operator === "matches" && !p.range)
          throw analyticsBadRequest(`${at}.range: a metric predicate that matches needs a range.`, { field: `${at}.range` });
        return { kind: "metric", metric: p.metric, operator, ...(p.range && { range: p.range }) };
      }
      return dimensionPredicate(p, at, (n) => CONVERSATION_DIMENSIONS.some((d) => d.name === n), CONVERSATION_DIMENSION_LIST);
    }),
  );
  const segmentFilters = (q.segmentFilters ?? []).map((f, i) =>
    checkFilter(f, `segmentFilters[${i}]`, (p, at) => {
      if (p.type === "metric" || p.metric) {
        throw analyticsBadRequest(
          `${at}: segment metric predicates (tSegmentDuration) are not supported; filter conversations by metric instead.`,
          {
            field: at,
          },
        );
      }
      return dimensionPredicate(p, at, (n) => SEGMENT_DIMENSIONS.some((d) => d.name === n), SEGMENT_DIMENSION_LIST);
    }),
  );
  const orderBy = q.orderBy === "conversationEnd" || q.orderBy === "segmentEnd" ? "conversationEnd" : "conversationStart";
  return {
    interval,
    order: q.order ?? "asc",
    orderBy,
    pageSize,
    pageNumber: q.paging?.pageNumber ?? 1,
    conversationFilters,
    segmentFilters,
  };
}
