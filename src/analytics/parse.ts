/**
 * Parse stage: a Genesys query body → a checked query, or a 400 in Genesys' shape that
 * names the field. Pure, so it is tested without a database.
 */
import { z } from "zod";
import { type AggregateDimension, CONVERSATION_DIMENSIONS, SEGMENT_DIMENSIONS, aggregateDimension } from "./dimensions.js";
import { ROUTING_STATUSES, SYSTEM_PRESENCES } from "./agents.js";
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

/** A details query's interval: at most DETAILS_MAX_INTERVAL_DAYS, longer extracts being an export job's. */
function detailsInterval(value: string, what: string, job: string): Interval {
  const interval = parseInterval(value);
  if (interval.end.getTime() - interval.start.getTime() > DETAILS_MAX_INTERVAL_DAYS * 86_400_000) {
    throw analyticsBadRequest(
      `interval: ${what} covers at most ${DETAILS_MAX_INTERVAL_DAYS} days; for longer extracts use an export job (${job}).`,
      { field: "interval" },
    );
  }
  return interval;
}

function pageSizeOf(paging: z.infer<typeof Paging> | undefined, what: string): number {
  const pageSize = paging?.pageSize ?? 25;
  if (pageSize < 1 || pageSize > DETAILS_MAX_PAGE_SIZE) {
    throw analyticsBadRequest(
      `paging.pageSize: ${pageSize} is out of range; a page holds 1 to ${DETAILS_MAX_PAGE_SIZE} ${what}.`,
      {
        field: "paging.pageSize",
      },
    );
  }
  return pageSize;
}

const CONVERSATION_DIMENSION_LIST = CONVERSATION_DIMENSIONS.map((d) => d.name).join(", ");
const SEGMENT_DIMENSION_LIST = SEGMENT_DIMENSIONS.map((d) => d.name).join(", ");

export function parseDetailsQuery(body: unknown): DetailsQuery {
  const parsed = DetailsQueryBody.safeParse(body);
  if (!parsed.success) zodProblem(parsed.error);
  const q = parsed.data;
  const interval = detailsInterval(q.interval, "a details query", "POST /api/v2/analytics/conversations/details/jobs");
  const pageSize = pageSizeOf(q.paging, "conversations");
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

// ---------------------------------------------------------------------------
// Users (agents) and queue observations (issue 15).

const UserDetailsQueryBody = z
  .object({
    interval: z.string(),
    order: z.enum(["asc", "desc", "unordered"]).optional(),
    paging: Paging.optional(),
    userFilters: z.array(Filter).max(50).optional(),
    presenceFilters: z.array(Filter).max(50).optional(),
    routingStatusFilters: z.array(Filter).max(50).optional(),
    presenceAggregations: z
      .array(z.unknown())
      .max(0, "presence aggregations are not supported; use the users aggregates query")
      .optional(),
    routingStatusAggregations: z
      .array(z.unknown())
      .max(0, "routing status aggregations are not supported; use the users aggregates query")
      .optional(),
  })
  .strict();

export const USER_AGGREGATE_METRICS = ["tSystemPresence", "tOrganizationPresence", "tAgentRoutingStatus"] as const;
export type UserAggregateMetric = (typeof USER_AGGREGATE_METRICS)[number];

const UserAggregatesQueryBody = z
  .object({
    interval: z.string(),
    granularity: z.string().optional(),
    timeZone: z.string().optional(),
    groupBy: z.array(z.literal("userId")).max(1).optional(),
    filter: Filter.optional(),
    metrics: z.array(z.enum(USER_AGGREGATE_METRICS)).min(1).max(3),
    flattenMultivaluedDimensions: z.boolean().optional(),
  })
  .strict();

export const OBSERVATION_METRICS = [
  "oWaiting",
  "oAlerting",
  "oInteracting",
  "oOnQueueUsers",
  "oOffQueueUsers",
  "oActiveUsers",
] as const;
export type ObservationMetric = (typeof OBSERVATION_METRICS)[number];
export const OBSERVATION_DETAIL_METRICS = ["oWaiting", "oAlerting", "oInteracting"] as const;

const ObservationQueryBody = z
  .object({
    filter: Filter.optional(),
    metrics: z.array(z.enum(OBSERVATION_METRICS)).min(1).max(OBSERVATION_METRICS.length),
    detailMetrics: z.array(z.enum(OBSERVATION_DETAIL_METRICS)).max(OBSERVATION_DETAIL_METRICS.length).optional(),
  })
  .strict();

export interface UserDetailsQuery {
  interval: Interval;
  order: "asc" | "desc" | "unordered";
  pageSize: number;
  pageNumber: number;
  userFilters: CheckedFilter[];
  presenceFilters: CheckedFilter[];
  routingStatusFilters: CheckedFilter[];
}

export interface UserAggregatesQuery {
  interval: Interval;
  granularity?: Granularity;
  timeZone: string;
  groupByUser: boolean;
  filter?: CheckedFilter;
  metrics: UserAggregateMetric[];
}

export interface ObservationQuery {
  filter?: CheckedFilter;
  metrics: ObservationMetric[];
  detailMetrics: (typeof OBSERVATION_DETAIL_METRICS)[number][];
}

export const USERS_MAX_USER_PREDICATES = 100;

/** Dimension predicates only, of the dimensions `known` lists, values checked by `checkValue`. */
function dimensionFilter(
  filter: z.infer<typeof Filter>,
  field: string,
  known: readonly string[],
  checkValue: (dimension: string, value: string, at: string) => void = () => {},
): CheckedFilter {
  return checkFilter(filter, field, (p, at) => {
    if (p.type === "metric" || p.metric)
      throw analyticsBadRequest(`${at}: only dimension predicates filter here.`, { field: at });
    const checked = dimensionPredicate(p, at, (n) => known.includes(n), known.join(", "));
    if (checked.kind === "dimension" && checked.value !== undefined) checkValue(checked.dimension, checked.value, `${at}.value`);
    return checked;
  });
}

const predicatesOf = (filter: CheckedFilter) => [...filter.predicates, ...filter.clauses.flatMap((c) => c.predicates)];

function checkState(list: readonly string[], what: string) {
  return (dimension: string, value: string, at: string) => {
    if ((dimension === "systemPresence" || dimension === "routingStatus") && !list.includes(value)) {
      throw analyticsBadRequest(`${at}: '${value.slice(0, 64)}' is not a ${what}; use one of ${list.join(", ")}.`, { field: at });
    }
  };
}

/** At most USERS_MAX_USER_PREDICATES user predicates over all of `filters`. */
function checkUserPredicates(filters: readonly CheckedFilter[], field: string) {
  const n = filters.reduce((sum, f) => sum + predicatesOf(f).length, 0);
  if (n > USERS_MAX_USER_PREDICATES) {
    throw analyticsBadRequest(`${field}: at most ${USERS_MAX_USER_PREDICATES} user predicates (got ${n}).`, { field });
  }
}

export function parseUserDetailsQuery(body: unknown): UserDetailsQuery {
  const parsed = UserDetailsQueryBody.safeParse(body);
  if (!parsed.success) zodProblem(parsed.error);
  const q = parsed.data;
  const interval = detailsInterval(q.interval, "a users details query", "POST /api/v2/analytics/users/details/jobs");
  const pageSize = pageSizeOf(q.paging, "users");
  const userFilters = (q.userFilters ?? []).map((f, i) => dimensionFilter(f, `userFilters[${i}]`, ["userId"]));
  checkUserPredicates(userFilters, "userFilters");
  return {
    interval,
    order: q.order ?? "asc",
    pageSize,
    pageNumber: q.paging?.pageNumber ?? 1,
    userFilters,
    presenceFilters: (q.presenceFilters ?? []).map((f, i) =>
      dimensionFilter(
        f,
        `presenceFilters[${i}]`,
        ["systemPresence", "organizationPresenceId"],
        checkState(SYSTEM_PRESENCES, "system presence"),
      ),
    ),
    routingStatusFilters: (q.routingStatusFilters ?? []).map((f, i) =>
      dimensionFilter(f, `routingStatusFilters[${i}]`, ["routingStatus"], checkState(ROUTING_STATUSES, "routing status")),
    ),
  };
}

export function parseUserAggregatesQuery(body: unknown): UserAggregatesQuery {
  const parsed = UserAggregatesQueryBody.safeParse(body);
  if (!parsed.success) zodProblem(parsed.error);
  const q = parsed.data;
  const filter = q.filter ? dimensionFilter(q.filter, "filter", ["userId"]) : undefined;
  if (filter) checkUserPredicates([filter], "filter");
  const granularity = parseGranularity(q.granularity);
  return {
    interval: parseInterval(q.interval),
    ...(granularity && { granularity }),
    timeZone: parseTimeZone(q.timeZone),
    groupByUser: (q.groupBy ?? []).length > 0,
    ...(filter && { filter }),
    metrics: [...new Set(q.metrics)],
  };
}

export function parseObservationQuery(body: unknown): ObservationQuery {
  const parsed = ObservationQueryBody.safeParse(body);
  if (!parsed.success) zodProblem(parsed.error);
  const q = parsed.data;
  return {
    ...(q.filter && { filter: dimensionFilter(q.filter, "filter", ["queueId", "mediaType"]) }),
    metrics: [...new Set(q.metrics)],
    detailMetrics: [...new Set(q.detailMetrics ?? [])],
  };
}

/** Whether `values` (a dimension's values on one record) satisfy `filter`. */
export function matchesFilter(filter: CheckedFilter, valueOf: (dimension: string) => string | undefined): boolean {
  const test = (p: CheckedPredicate) => {
    if (p.kind !== "dimension") return false;
    const value = valueOf(p.dimension);
    if (p.operator === "exists") return value !== undefined && value !== "";
    if (p.operator === "notExists") return value === undefined || value === "";
    return value === p.value;
  };
  const combine = (type: "and" | "or", results: boolean[]) => (type === "and" ? results.every(Boolean) : results.some(Boolean));
  return combine(filter.type, [
    ...filter.predicates.map(test),
    ...filter.clauses.map((c) => combine(c.type, c.predicates.map(test))),
  ]);
}

/** Ids given comma-separated, repeated, or both (`?id=a,b&id=c`), each once, in order. */
export const idList = (value: string | readonly string[] | undefined): string[] => [
  ...new Set(
    (Array.isArray(value) ? value : [value ?? ""])
      .flatMap((v: string) => v.split(","))
      .map((v) => v.trim())
      .filter(Boolean),
  ),
];

/** Whether `userId` satisfies every one of `filters` (userFilters, a users aggregates filter). */
export const keepsUser = (filters: readonly CheckedFilter[], userId: string) =>
  filters.every((f) => matchesFilter(f, (d) => (d === "userId" ? userId : undefined)));

/** Whether any predicate of `filter` names `dimension`. */
export const namesDimension = (filter: CheckedFilter | undefined, dimension: string) =>
  !!filter && predicatesOf(filter).some((p) => p.kind === "dimension" && p.dimension === dimension);

/** `filter` without the predicates on `dimension` (an emptied part matches everything). */
export function withoutDimension(filter: CheckedFilter, dimension: string): CheckedFilter | undefined {
  const keep = (ps: CheckedFilter["predicates"]) => ps.filter((p) => p.kind !== "dimension" || p.dimension !== dimension);
  const clauses = filter.clauses.map((c) => ({ ...c, predicates: keep(c.predicates) })).filter((c) => c.predicates.length > 0);
  const predicates = keep(filter.predicates);
  if (predicates.length === 0 && clauses.length === 0) return undefined;
  return { type: filter.type, predicates, clauses };
}

/** The values a filter's `matches` predicates name for `dimension` (to narrow a read), or undefined when it is not narrowed. */
export function matchedValues(filter: CheckedFilter | undefined, dimension: string): string[] | undefined {
  if (!filter) return undefined;
  const preds = predicatesOf(filter);
  // Narrowing is safe for an 'or' of matches on this dimension only, or an 'and' with such a predicate.
  const mine = preds.filter((p) => p.kind === "dimension" && p.dimension === dimension && p.operator === "matches");
  if (filter.clauses.length > 0 || mine.length === 0) return undefined;
  if (filter.type === "or" && mine.length !== preds.length) return undefined;
  if (filter.type === "and" && mine.length !== 1) return undefined;
  return mine.map((p) => (p as { value: string }).value);
}
