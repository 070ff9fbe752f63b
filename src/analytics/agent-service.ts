/**
 * The agent views (issue 15): users details and aggregates from each agent's replayed
 * timeline, and the queues' real-time observations from the open session states and the
 * timelines of the agents active now. parse → read → replay → respond, per query.
 */
import type pg from "pg";
import type { Queryable } from "../db/transactions.js";
import { type AgentTimeline, type RoutingStatus, overlapping, replayAgent, splitIntoBuckets } from "./agents.js";
import {
  type CheckedFilter,
  type ObservationMetric,
  type UserDetailsQuery,
  keepsUser,
  matchedValues,
  matchesFilter,
  namesDimension,
  parseObservationQuery,
  parseUserAggregatesQuery,
  parseUserDetailsQuery,
  withoutDimension,
} from "./parse.js";
import { MAX_CELLS, checkCells } from "./plan.js";
import type { AnalyticsSettings } from "./settings.js";
import { activeAgents, agentEvents, agentVersions, latestAgentVersion, openStates } from "./store/agent-store.js";
import { bucketBoundaries, formatInterval } from "./time.js";

/** Agent-days replayed per read: bounds the events held at once (an agent-day is some hundreds). */
const AGENT_DAYS_PER_READ = 100;

const iso = (d: Date | undefined) => d?.toISOString();

/** The agents with events in [from − lookback, to), narrowed by the filters that name userId. */
async function candidateAgents(pool: pg.Pool, settings: AnalyticsSettings, from: Date, to: Date, filters: CheckedFilter[]) {
  const agents = await activeAgents(pool, new Date(from.getTime() - settings.agentLookbackMs), to);
  return agents.filter((userId) => keepsUser(filters, userId));
}

/** Replays `userIds` over [from − lookback, to + lookback] (never past now), AGENT_DAYS_PER_READ agent-days at a time. */
async function* timelines(
  pool: Queryable,
  settings: AnalyticsSettings,
  userIds: readonly string[],
  from: Date,
  to: Date,
  now: Date,
): AsyncGenerator<AgentTimeline> {
  const start = new Date(from.getTime() - settings.agentLookbackMs);
  const end = new Date(Math.min(to.getTime() + settings.agentLookbackMs, now.getTime()));
  const days = Math.max(1, (end.getTime() - start.getTime()) / 86_400_000);
  const perRead = Math.max(1, Math.floor(AGENT_DAYS_PER_READ / days));
  for (let i = 0; i < userIds.length; i += perRead) {
    const chunk = userIds.slice(i, i + perRead);
    const events = await agentEvents(pool, chunk, start, end);
    for (const userId of chunk) {
      yield replayAgent(userId, events.get(userId) ?? [], { now, idleCloseMs: settings.agentIdleCloseMs });
    }
  }
}

/**
 * Agents' timelines as of now, for the observations, which are asked for every second: an
 * agent is replayed again when the refresher moved their version (an event of theirs changed),
 * and otherwise once their timeline is older than NOW_TIMELINE_MS (so states closed by
 * inactivity, and events leaving the lookback, show soon), at most AGED_PER_CALL of those a
 * call, oldest first, so that a whole floor of agents never ages out in one answer.
 */
const NOW_TIMELINE_MS = 30_000;
const AGED_PER_CALL = 25;
type NowTimelines = Map<string, { version: string | undefined; at: number; timeline: AgentTimeline }>;
const nowTimelines = new WeakMap<pg.Pool, NowTimelines>();

async function currentTimelines(pool: pg.Pool, settings: AnalyticsSettings, users: readonly string[], now: Date) {
  let cache = nowTimelines.get(pool);
  if (!cache) nowTimelines.set(pool, (cache = new Map() as NowTimelines));
  const versions = await agentVersions(pool, users);
  const changed = users.filter((u) => {
    const cached = cache.get(u);
    return !cached || cached.version !== versions.get(u);
  });
  const aged = users
    .filter((u) => {
      const cached = cache.get(u);
      return cached && cached.version === versions.get(u) && now.getTime() - cached.at > NOW_TIMELINE_MS;
    })
    .sort((a, b) => cache.get(a)!.at - cache.get(b)!.at)
    .slice(0, AGED_PER_CALL);
  const stale = [...changed, ...aged];
  for await (const timeline of timelines(pool, settings, stale, now, now, now)) {
    cache.set(timeline.userId, { version: versions.get(timeline.userId), at: now.getTime(), timeline });
  }
  // Agents no longer active leave the cache.
  const active = new Set(users);
  for (const u of cache.keys()) if (!active.has(u)) cache.delete(u);
  return users.map((u) => cache.get(u)!.timeline);
}

/**
 * The timelines of the agents active now, shared by the observations asked within a second
 * of each other while no agent's events changed (the version sequence did not move): a
 * dashboard wall asking every second costs one replay, not one per screen.
 */
const SHARED_NOW_MS = 1000;
const agentsNowShared = new WeakMap<pg.Pool, { at: number; version: string; timelines: Promise<AgentTimeline[]> }>();

async function agentsNow(pool: pg.Pool, settings: AnalyticsSettings, now: Date): Promise<AgentTimeline[]> {
  const version = await latestAgentVersion(pool);
  const shared = agentsNowShared.get(pool);
  if (shared && shared.version === version && now.getTime() - shared.at < SHARED_NOW_MS) return shared.timelines;
  const timelines = (async () => {
    const activeSince = new Date(now.getTime() - settings.agentIdleCloseMs);
    const users = await activeAgents(pool, activeSince, new Date(now.getTime() + 1));
    return currentTimelines(pool, settings, users, now);
  })();
  agentsNowShared.set(pool, { at: now.getTime(), version, timelines });
  // A failed read is not shared: the next call tries again.
  timelines.catch(() => agentsNowShared.delete(pool));
  return timelines;
}

/** A user detail record of `timeline` over [from, to), or undefined when the query's state filters keep it out. */
export function userDetailOf(
  timeline: AgentTimeline,
  q: Pick<UserDetailsQuery, "interval" | "presenceFilters" | "routingStatusFilters">,
) {
  const { start: from, end: to } = q.interval;
  const presence = overlapping(timeline.primaryPresence, from, to);
  const routing = overlapping(timeline.routingStatus, from, to);
  const presenceOk = q.presenceFilters.every((f) =>
    presence.some((r) =>
      matchesFilter(f, (d) =>
        d === "systemPresence" ? r.systemPresence : d === "organizationPresenceId" ? r.organizationPresenceId : undefined,
      ),
    ),
  );
  const routingOk = q.routingStatusFilters.every((f) =>
    routing.some((r) => matchesFilter(f, (d) => (d === "routingStatus" ? r.routingStatus : undefined))),
  );
  if (!presenceOk || !routingOk) return undefined;
  return {
    userId: timeline.userId,
    primaryPresence: presence.map((r) => ({
      startTime: iso(r.startTime),
      ...(r.endTime && { endTime: iso(r.endTime) }),
      systemPresence: r.systemPresence,
      organizationPresenceId: r.organizationPresenceId,
    })),
    routingStatus: routing.map((r) => ({
      startTime: iso(r.startTime),
      ...(r.endTime && { endTime: iso(r.endTime) }),
      routingStatus: r.routingStatus,
    })),
  };
}

/** The detail records of `userIds` (in that order) that the query's state filters keep. */
export async function* userDetailsOf(
  pool: Queryable,
  settings: AnalyticsSettings,
  userIds: readonly string[],
  q: Pick<UserDetailsQuery, "interval" | "presenceFilters" | "routingStatusFilters">,
  now = new Date(),
) {
  for await (const timeline of timelines(pool, settings, userIds, q.interval.start, q.interval.end, now)) {
    const record = userDetailOf(timeline, q);
    if (record) yield record;
  }
}

export async function usersDetails(pool: pg.Pool, body: unknown, settings: AnalyticsSettings, now = new Date()) {
  const q = parseUserDetailsQuery(body);
  let users = await candidateAgents(pool, settings, q.interval.start, q.interval.end, q.userFilters);
  if (q.order === "desc") users = users.reverse();
  const first = (q.pageNumber - 1) * q.pageSize;
  // Without state filters every candidate is a hit (a signed-out agent has an open OFFLINE
  // record), so only the page is replayed; with them, every candidate is.
  if (q.presenceFilters.length === 0 && q.routingStatusFilters.length === 0) {
    const page = [];
    for await (const record of userDetailsOf(pool, settings, users.slice(first, first + q.pageSize), q, now)) page.push(record);
    return { userDetails: page, totalHits: users.length };
  }
  const page = [];
  let hits = 0;
  for await (const record of userDetailsOf(pool, settings, users, q, now)) {
    hits++;
    if (hits > first && hits <= first + q.pageSize) page.push(record);
  }
  return { userDetails: page, totalHits: hits };
}

export async function usersAggregates(pool: pg.Pool, body: unknown, settings: AnalyticsSettings, now = new Date()) {
  const q = parseUserAggregatesQuery(body);
  const boundaries = bucketBoundaries(q.interval, q.granularity, q.timeZone, MAX_CELLS);
  const buckets = boundaries.length - 1;
  const users = await candidateAgents(pool, settings, q.interval.start, q.interval.end, q.filter ? [q.filter] : []);
  if (q.groupByUser) checkCells(users.length, buckets);
  // group → bucket → "metric\u0001qualifier" → ms
  const sums = new Map<string, Map<number, Map<string, number>>>();
  const add = (group: string, bucket: number, metric: string, qualifier: string, ms: number) => {
    let byBucket = sums.get(group);
    if (!byBucket) sums.set(group, (byBucket = new Map<number, Map<string, number>>()));
    let cell = byBucket.get(bucket);
    if (!cell) byBucket.set(bucket, (cell = new Map<string, number>()));
    const key = `${metric}\u0001${qualifier}`;
    cell.set(key, (cell.get(key) ?? 0) + ms);
  };
  for await (const timeline of timelines(pool, settings, users, q.interval.start, q.interval.end, now)) {
    const group = q.groupByUser ? timeline.userId : "";
    for (const metric of q.metrics) {
      const records =
        metric === "tAgentRoutingStatus"
          ? timeline.routingStatus.map((r) => ({ ...r, qualifier: r.routingStatus }))
          : timeline.primaryPresence.map((r) => ({
              ...r,
              qualifier: metric === "tSystemPresence" ? r.systemPresence : r.organizationPresenceId,
            }));
      for (const record of records) {
        for (const [bucket, ms] of splitIntoBuckets(record, boundaries, now)) add(group, bucket, metric, record.qualifier, ms);
      }
    }
  }
  const metricRank = (key: string) => q.metrics.indexOf(key.split("\u0001")[0] as (typeof q.metrics)[number]);
  return {
    results: [...sums.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([group, byBucket]) => ({
        group: q.groupByUser ? { userId: group } : {},
        data: [...byBucket.entries()]
          .sort(([a], [b]) => a - b)
          .map(([bucket, cell]) => ({
            interval: formatInterval(boundaries[bucket]!, boundaries[bucket + 1]!),
            metrics: [...cell.entries()]
              .sort(([a], [b]) => metricRank(a) - metricRank(b) || (a < b ? -1 : 1))
              .map(([key, sum]) => {
                const [metric, qualifier] = key.split("\u0001") as [string, string];
                return { metric, qualifier, stats: { sum } };
              }),
          })),
      })),
  };
}

const ON_QUEUE_STATUSES: readonly RoutingStatus[] = ["IDLE", "INTERACTING", "COMMUNICATING", "NOT_RESPONDING"];

export interface ObservationResult {
  group: Record<string, string>;
  data: {
    metric: ObservationMetric;
    qualifier?: string;
    stats: { count: number };
    observations?: { observationDate: string; conversationId: string; sessionId: string; mediaType?: string; userId?: string }[];
  }[];
}

/** The current state of queues (Genesys' queue observations). */
export async function queueObservations(pool: pg.Pool, body: unknown, settings: AnalyticsSettings, now = new Date()) {
  const q = parseObservationQuery(body);
  const activeSince = new Date(now.getTime() - settings.agentIdleCloseMs);
  const namedQueues = matchedValues(q.filter, "queueId");
  const byMedia = namesDimension(q.filter, "mediaType");
  const passes = (queueId: string, mediaType?: string) =>
    !q.filter || matchesFilter(q.filter, (d) => (d === "queueId" ? queueId : d === "mediaType" ? mediaType : undefined));
  // Agents belong to queues, not to media types: their counts take the queue predicates only.
  const agentFilter = q.filter && withoutDimension(q.filter, "mediaType");
  const passing = new Map<string, boolean>();
  const agentPasses = (queueId: string) => {
    let ok = passing.get(queueId);
    if (ok === undefined) {
      ok = !agentFilter || matchesFilter(agentFilter, (d) => (d === "queueId" ? queueId : undefined));
      passing.set(queueId, ok);
    }
    return ok;
  };

  interface Group {
    group: Record<string, string>;
    sessions: Map<string, { since: Date; conversationId: string; sessionId: string; mediaType: string; userId: string }[]>;
    users: Map<string, number>;
  }
  const groups = new Map<string, Group>();
  const groupOf = (queueId: string, mediaType?: string) => {
    const key = `${queueId}\u0001${mediaType ?? ""}`;
    let g = groups.get(key);
    if (!g) {
      const group: Record<string, string> = { queueId };
      if (mediaType) group.mediaType = mediaType;
      groups.set(key, (g = { group, sessions: new Map(), users: new Map() }));
    }
    return g;
  };
  for (const queueId of namedQueues ?? []) if (!byMedia) groupOf(queueId);

  const stateMetric = { waiting: "oWaiting", alerting: "oAlerting", interacting: "oInteracting" } as const;
  for (const row of await openStates(pool, activeSince, namedQueues)) {
    if (!row.queueId || !passes(row.queueId, row.mediaType)) continue;
    const g = groupOf(row.queueId, byMedia ? row.mediaType : undefined);
    const metric = stateMetric[row.state];
    let list = g.sessions.get(metric);
    if (!list) g.sessions.set(metric, (list = []));
    list.push({
      since: row.since,
      conversationId: row.conversationId,
      sessionId: row.sessionId,
      mediaType: row.mediaType,
      userId: row.userId,
    });
  }

  if (q.metrics.some((m) => m === "oOnQueueUsers" || m === "oOffQueueUsers" || m === "oActiveUsers")) {
    for (const timeline of await agentsNow(pool, settings, now)) {
      const presence = timeline.primaryPresence[timeline.primaryPresence.length - 1];
      const routing = timeline.routingStatus[timeline.routingStatus.length - 1];
      if (!presence || presence.endTime || presence.systemPresence === "OFFLINE" || !routing || routing.endTime) continue;
      const key = routing.routingStatus === "OFF_QUEUE" ? "oOffQueueUsers" : `oOnQueueUsers\u0001${routing.routingStatus}`;
      for (const queueId of timeline.queues) {
        if (!agentPasses(queueId)) continue;
        const g = groupOf(queueId);
        g.users.set(key, (g.users.get(key) ?? 0) + 1);
        g.users.set("oActiveUsers", (g.users.get("oActiveUsers") ?? 0) + 1);
      }
    }
  }

  const results: ObservationResult[] = [...groups.values()]
    .sort((a, b) => (a.group.queueId! < b.group.queueId! ? -1 : a.group.queueId! > b.group.queueId! ? 1 : 0))
    .map((g) => ({
      group: g.group,
      data: q.metrics.flatMap((metric): ObservationResult["data"] => {
        if (metric === "oOnQueueUsers") {
          return ON_QUEUE_STATUSES.map((status) => ({
            metric,
            qualifier: status,
            stats: { count: g.users.get(`oOnQueueUsers\u0001${status}`) ?? 0 },
          }));
        }
        if (metric === "oOffQueueUsers" || metric === "oActiveUsers")
          return [{ metric, stats: { count: g.users.get(metric) ?? 0 } }];
        const list = g.sessions.get(metric) ?? [];
        const detail = (q.detailMetrics as readonly string[]).includes(metric);
        return [
          {
            metric,
            stats: { count: list.length },
            ...(detail && {
              observations: list.map((o) => ({
                observationDate: o.since.toISOString(),
                conversationId: o.conversationId,
                sessionId: o.sessionId,
                ...(o.mediaType && { mediaType: o.mediaType }),
                ...(o.userId && { userId: o.userId }),
              })),
            }),
          },
        ];
      }),
    }));
  return { results };
}
