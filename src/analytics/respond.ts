/**
 * Respond stage: rows and derived conversations → Genesys' response shapes.
 */
import type { DerivedConversation, DetailParticipant } from "./derive.js";
import { metricDef, sourceMetric } from "./metrics.js";
import type { AggregationQuery } from "./parse.js";
import { checkCells } from "./plan.js";
import { groupAlias, viewAlias } from "./sql.js";
import { formatInterval } from "./time.js";

export interface Stats {
  count?: number;
  sum?: number;
  min?: number;
  max?: number;
  ratio?: number;
  numerator?: number;
  denominator?: number;
  target?: number;
}

export interface AggregateResult {
  group: Record<string, string>;
  data: { interval: string; metrics: { metric: string; stats: Stats }[]; views?: { name: string; stats: { count: number } }[] }[];
}

interface Accumulated {
  n: number;
  total: number;
  mn: number;
  mx: number;
}

export function aggregatesResponse(
  query: AggregationQuery,
  boundaries: readonly Date[],
  rows: readonly Record<string, unknown>[],
  targetOf: (group: Record<string, string>) => number,
): { results: AggregateResult[] } {
  const groups = new Map<
    string,
    { group: Record<string, string>; buckets: Map<number, { metrics: Map<string, Accumulated>; views: number[] }> }
  >();
  const bucketOf = new Map(boundaries.map((d, i) => [d.getTime(), i + 1]));
  for (const row of rows) {
    const b = row.bt instanceof Date ? (bucketOf.get(row.bt.getTime()) ?? 0) : Number(row.b);
    if (b < 1 || b >= boundaries.length) continue;
    const group: Record<string, string> = {};
    query.groupBy.forEach((d, i) => {
      const value = row[groupAlias(i)];
      if (typeof value === "string" && value !== "") group[d.name] = value;
    });
    const key = query.groupBy.map((_, i) => row[groupAlias(i)] as string | null).join("\u0001");
    let entry = groups.get(key);
    if (!entry) groups.set(key, (entry = { group, buckets: new Map() }));
    let bucket = entry.buckets.get(b);
    if (!bucket) entry.buckets.set(b, (bucket = { metrics: new Map(), views: query.views.map(() => 0) }));
    const metric = String(row.metric);
    const found = bucket.metrics.get(metric);
    const n = Number(row.n);
    const total = Number(row.total);
    const mn = Number(row.mn);
    const mx = Number(row.mx);
    bucket.metrics.set(
      metric,
      found
        ? { n: found.n + n, total: found.total + total, mn: Math.min(found.mn, mn), mx: Math.max(found.mx, mx) }
        : { n, total, mn, mx },
    );
    query.views.forEach((_, i) => (bucket.views[i]! += Number(row[viewAlias(i)] ?? 0)));
  }
  checkCells(groups.size, boundaries.length - 1);

  let results: AggregateResult[] = [...groups.values()].map(({ group, buckets }) => ({
    group,
    data: [...buckets.entries()]
      .sort(([a], [b]) => a - b)
      .flatMap(([b, bucket]) => {
        const metrics = query.metrics.flatMap((name) => {
          const stored = bucket.metrics.get(sourceMetric(name));
          if (!stored) return [];
          return [{ metric: name, stats: statsOf(name, stored, targetOf(group)) }];
        });
        if (metrics.length === 0 && query.views.length === 0) return [];
        return [
          {
            interval: formatInterval(boundaries[b - 1]!, boundaries[b]!),
            metrics,
            ...(query.views.length > 0 && {
              views: query.views.map((v, i) => ({ name: v.name, stats: { count: bucket.views[i]! } })),
            }),
          },
        ];
      }),
  }));
  results = results.filter((r) => r.data.length > 0);
  if (query.queryType !== "groupBy" && query.sortMetric) {
    const { name, function: fn } = query.sortMetric;
    const score = (r: AggregateResult) => {
      let count = 0;
      let sum = 0;
      let min = Infinity;
      let max = -Infinity;
      for (const d of r.data) {
        const stats = d.metrics.find((m) => m.metric === name)?.stats;
        if (!stats) continue;
        const c = stats.denominator ?? stats.count ?? 0;
        count += c;
        sum += stats.numerator ?? stats.sum ?? stats.count ?? 0;
        min = Math.min(min, stats.min ?? stats.ratio ?? stats.count ?? Infinity);
        max = Math.max(max, stats.max ?? stats.ratio ?? stats.count ?? -Infinity);
      }
      if (fn === "count") return count;
      if (fn === "sum") return sum;
      if (fn === "average") return count ? sum / count : 0;
      if (fn === "min") return min === Infinity ? 0 : min;
      return max === -Infinity ? 0 : max;
    };
    const sign = query.queryType === "topN" ? -1 : 1;
    results = results
      .map((r) => ({ r, s: score(r) }))
      .sort((a, b) => sign * (a.s - b.s))
      .slice(0, query.limit ?? 10)
      .map((x) => x.r);
  }
  return { results };
}

function statsOf(name: string, a: Accumulated, target: number): Stats {
  switch (metricDef(name)!.kind) {
    case "count":
      return { count: a.total };
    case "duration":
      return { max: a.mx, min: a.mn, count: a.n, sum: a.total };
    case "ratio":
      return { ratio: a.n ? a.total / a.n : 0, numerator: a.total, denominator: a.n, target };
    case "target":
      return { target };
  }
}

const iso = (d: Date) => d.toISOString();

/** A conversation detail record (AnalyticsConversationWithoutAttributes). */
export function conversationDetail(d: DerivedConversation) {
  return {
    conversationId: d.summary.conversationId,
    conversationStart: iso(d.summary.conversationStart),
    ...(d.summary.conversationEnd && { conversationEnd: iso(d.summary.conversationEnd) }),
    ...(d.summary.originatingDirection && { originatingDirection: d.summary.originatingDirection }),
    participants: d.participants.map(participantDetail),
  };
}

function participantDetail(p: DetailParticipant) {
  return {
    participantId: p.participantId,
    ...(p.participantName && { participantName: p.participantName }),
    purpose: p.purpose,
    ...(p.userId && { userId: p.userId }),
    sessions: p.sessions.map((s) => ({
      sessionId: s.sessionId,
      ...(s.mediaType && { mediaType: s.mediaType }),
      ...(s.direction && { direction: s.direction }),
      ...(s.provider && { provider: s.provider }),
      ...(s.metrics.length > 0 && {
        metrics: s.metrics.map((m) => ({ name: m.name, value: m.value, emitDate: iso(m.emitDate) })),
      }),
      segments: s.segments.map((x) => ({
        segmentStart: iso(x.segmentStart),
        ...(x.segmentEnd && { segmentEnd: iso(x.segmentEnd) }),
        segmentType: x.segmentType,
        ...(x.queueId && { queueId: x.queueId }),
        ...(x.disconnectType && { disconnectType: x.disconnectType }),
      })),
    })),
  };
}
