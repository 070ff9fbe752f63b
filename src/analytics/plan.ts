/**
 * Plan stage: a checked query → what to read. Aggregates read the coarsest rollup grain
 * whose buckets line up with the query's bucket boundaries and that keeps every dimension
 * the query uses; otherwise (another dimension, a view, boundaries off the 15-minute grid)
 * they read the metric rows. Pure, so it is tested without a database.
 */
import { ROLLUP_GRAINS } from "../model/tables.js";
import type { AggregateDimension } from "./dimensions.js";
import { analyticsBadRequest } from "./errors.js";
import { sourceMetric } from "./metrics.js";
import type { AggregationQuery, CheckedFilter } from "./parse.js";
import { alignedTo, bucketBoundaries } from "./time.js";

/** Most buckets × groups one aggregates response may hold. */
export const MAX_CELLS = 10_000;

export interface AggregatesPlan {
  /** `exactCells`: each bucket is one cell of the grain, so rows group by the cell's own start. */
  source: { kind: "rollup"; grain: number; exactCells: boolean } | { kind: "facts" };
  boundaries: Date[];
  /** The stored metrics to read. */
  metrics: string[];
  groupBy: AggregateDimension[];
  filter?: CheckedFilter;
  views: AggregationQuery["views"];
}

const filterDimensions = (filter: CheckedFilter | undefined): string[] =>
  filter
    ? [...filter.predicates, ...filter.clauses.flatMap((c) => c.predicates)].flatMap((p) =>
        p.kind === "dimension" ? [p.dimension] : [],
      )
    : [];

export function planAggregates(
  query: AggregationQuery,
  dimensionOf: (name: string) => AggregateDimension | undefined,
): AggregatesPlan {
  const boundaries = bucketBoundaries(query.interval, query.granularity, query.timeZone, MAX_CELLS);
  const metrics = [...new Set([...query.metrics, ...query.views.map((v) => v.target)].map(sourceMetric))];
  const used = [...query.groupBy.map((d) => d.name), ...filterDimensions(query.filter)];
  const dims = used.map((name) => dimensionOf(name)!);
  const inRollup = dims.every((d) => d.rollup !== undefined) && query.views.length === 0;
  const needsUser = dims.some((d) => d.rollup === "userid");
  const grain = inRollup
    ? [...ROLLUP_GRAINS]
        .filter((g) => g.keepsUser || !needsUser)
        .sort((a, b) => b.minutes - a.minutes || Number(a.keepsUser) - Number(b.keepsUser))
        .find((g) => alignedTo(boundaries, g.minutes))
    : undefined;
  return {
    source: grain ? { kind: "rollup", grain: grain.grain, exactCells: eachStep(boundaries, grain.minutes) } : { kind: "facts" },
    boundaries,
    metrics,
    groupBy: query.groupBy,
    ...(query.filter && { filter: query.filter }),
    views: query.views,
  };
}

const eachStep = (boundaries: readonly Date[], minutes: number) =>
  boundaries.every((b, i) => i === 0 || b.getTime() - boundaries[i - 1]!.getTime() === minutes * 60_000);

/** The response cap, checked on what the query found. */
export function checkCells(groups: number, buckets: number): void {
  if (groups * buckets > MAX_CELLS) {
    throw analyticsBadRequest(
      `The query gives ${groups} groups × ${buckets} buckets, more than ${MAX_CELLS}; narrow the filter, group by fewer dimensions or use a coarser granularity.`,
      { field: "groupBy" },
    );
  }
}
