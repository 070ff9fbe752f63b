/**
 * The rollups always equal a direct computation over the raw rows: random conversation
 * trees are written straight into the tables, derived by the refresher, changed (late
 * events, deleted events, moved timestamps, a deleted conversation) and derived again; after
 * each round, random aggregates queries through HTTP (rollup grains and the metric-row path
 * alike) must equal a reference that derives the trees in memory and buckets them itself.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { DateTime, Duration } from "luxon";
import { describe, expect, it } from "vitest";
import { rebuildAll } from "../../src/analytics/refresher.js";
import { deriveConversation, type ConversationTree, type Fact } from "../../src/analytics/derive.js";
import { METRICS, metricDef, sourceMetric } from "../../src/analytics/metrics.js";
import {
  ANALYTICS_KPI_EVENT_DEFINITIONS,
  ROLLUP_GRAINS,
  SYSTEM_KPI_EVENT_DEFINITIONS,
  SYSTEM_USER_ID,
} from "../../src/model/tables.js";
import { useTestApp } from "../helpers/app.js";

const EVENT_NAMES = [
  "NotificationReceived",
  "NotificationAccepted",
  "NotificationRejected",
  "NotificationTimedOut",
  "SessionStarted",
  "SessionClosed",
  "CallHold",
  "CallUnhold",
  "WrapUpStarted",
  "ConversationAbandoned",
  "ConversationTransferred",
  // Read by nothing: derived as if absent, and the trigger does not mark them.
  "SessionFocusIn",
  "SessionFocusOut",
];
const DEFINITION = new Map([...SYSTEM_KPI_EVENT_DEFINITIONS, ...ANALYTICS_KPI_EVENT_DEFINITIONS].map((d) => [d.name, d.id]));
const DAY0 = Date.parse("2024-11-02T20:00:00Z"); // Two days around a DST end in New York.
const SPAN = 36 * 3_600_000;
const QUEUES = ["q-a", "q-b", "q-c"];
const AGENTS = ["ag-1", "ag-2", "ag-3", "ag-4"];
const CHANNELS = ["Voice", "Chat", "SMS"];

interface GenEvent {
  name: string;
  offset: number;
  session: number;
  agent: number;
}
interface GenConversation {
  start: number;
  sessions: { queue: number; channel: number; queueDelay: number | null; reason: string | null }[];
  events: GenEvent[];
}

const conversationArb: fc.Arbitrary<GenConversation> = fc.record({
  start: fc.integer({ min: 0, max: SPAN }),
  sessions: fc.array(
    fc.record({
      queue: fc.nat({ max: QUEUES.length - 1 }),
      channel: fc.nat({ max: CHANNELS.length - 1 }),
      queueDelay: fc.option(fc.integer({ min: -5_000, max: 60_000 }), { nil: null }),
      reason: fc.constantFrom(null, "Transfer", "inbound", "outbound"),
    }),
    { minLength: 1, maxLength: 2 },
  ),
  events: fc.array(
    fc.record({
      name: fc.constantFrom(...EVENT_NAMES),
      // Some before the conversation's timestamp (clock skew), most after.
      offset: fc.integer({ min: -30_000, max: 3_600_000 }),
      session: fc.nat({ max: 1 }),
      agent: fc.nat({ max: AGENTS.length }),
    }),
    { maxLength: 14 },
  ),
});

interface Stored {
  id: string;
  tree: ConversationTree;
  eventIds: string[];
}

const settings = {
  serviceLevelOf: () => ({ target: 0.8, thresholdMs: 20_000 }),
  serviceLevelCountsAbandons: true,
};

function toTree(id: string, g: GenConversation): { tree: ConversationTree; eventIds: string[] } {
  const at = (offset: number) => new Date(DAY0 + g.start + offset);
  const createdOn = new Date("2030-01-01T00:00:00Z");
  const sessions = g.sessions.map((s, i) => ({
    providerSessionId: `s${i}`,
    channel: CHANNELS[s.channel]!,
    creationReason: s.reason,
    queueId: QUEUES[s.queue]!,
    queueName: null,
    createdTimestamp: at(i * 1000),
    agentAssignedTimestamp: null,
    queueAssignedTimestamp: s.queueDelay === null ? null : at(s.queueDelay),
    createdOn,
    directionSource: s.reason,
  }));
  const participants = sessions.flatMap((s) =>
    AGENTS.map((a) => ({
      providerSessionId: s.providerSessionId,
      participantId: a,
      name: null,
      type: "Agent",
      addedTimestamp: null,
    })),
  );
  const eventIds: string[] = [];
  const events = g.events.map((e) => {
    const id = randomUUID();
    eventIds.push(id);
    return {
      id,
      name: e.name,
      reason: null,
      timestamp: at(e.offset),
      providerSessionId: `s${Math.min(e.session, sessions.length - 1)}`,
      participantId: e.agent < AGENTS.length ? AGENTS[e.agent]! : null,
      providerId: null,
      cifSessionId: null,
      createdOn,
    };
  });
  return {
    tree: {
      conversation: {
        conversationId: id,
        timestamp: at(0),
        channel: CHANNELS[0]!,
        providerId: "prov-1",
        createdOn,
        directionSource: null,
      },
      sessions,
      participants,
      events,
    },
    eventIds,
  };
}

/** What the service should answer, computed from the trees alone. */
function reference(trees: readonly ConversationTree[], query: Query, boundaries: Date[]) {
  const facts: Fact[] = trees.flatMap((t) => deriveConversation(t, settings).facts);
  const out = new Map<string, Map<number, Map<string, { n: number; sum: number; min: number; max: number }>>>();
  for (const f of facts) {
    const t = f.emittedOn.getTime();
    if (t < boundaries[0]!.getTime() || t >= boundaries[boundaries.length - 1]!.getTime()) continue;
    let b = 0;
    while (boundaries[b + 1]!.getTime() <= t) b++;
    const key = JSON.stringify(query.groupBy.map((d) => (f as unknown as Record<string, string>)[d] ?? ""));
    const byBucket = out.get(key) ?? new Map();
    out.set(key, byBucket);
    const byMetric = byBucket.get(b) ?? new Map();
    byBucket.set(b, byMetric);
    const s = byMetric.get(f.metric) ?? { n: 0, sum: 0, min: Infinity, max: -Infinity };
    byMetric.set(f.metric, { n: s.n + 1, sum: s.sum + f.value, min: Math.min(s.min, f.value), max: Math.max(s.max, f.value) });
  }
  const results: unknown[] = [];
  for (const [key, byBucket] of out) {
    const values = JSON.parse(key) as string[];
    const group = Object.fromEntries(query.groupBy.flatMap((d, i) => (values[i] ? [[d, values[i]]] : [])));
    const data = [...byBucket.entries()]
      .sort(([a], [b]) => a - b)
      .flatMap(([b, byMetric]) => {
        const metrics = query.metrics.flatMap((name) => {
          const s = byMetric.get(sourceMetric(name));
          if (!s) return [];
          const kind = metricDef(name)!.kind;
          const stats =
            kind === "count"
              ? { count: s.sum }
              : kind === "duration"
                ? { max: s.max, min: s.min, count: s.n, sum: s.sum }
                : kind === "ratio"
                  ? { ratio: s.n ? s.sum / s.n : 0, numerator: s.sum, denominator: s.n, target: 0.8 }
                  : { target: 0.8 };
          return [{ metric: name, stats }];
        });
        return metrics.length
          ? [{ interval: `${boundaries[b]!.toISOString()}/${boundaries[b + 1]!.toISOString()}`, metrics }]
          : [];
      });
    if (data.length) results.push({ group, data });
  }
  return results;
}

interface Query {
  interval: string;
  granularity: string;
  timeZone: string;
  groupBy: string[];
  metrics: string[];
}

const canonical = (results: unknown[]) =>
  [...(results as { group: unknown }[])].sort((a, b) => JSON.stringify(a.group).localeCompare(JSON.stringify(b.group)));

const queryArb: fc.Arbitrary<Query> = fc
  .record({
    zoneAndStart: fc.constantFrom<[string, string]>(
      ["UTC", "2024-11-02T00:00:00Z"],
      ["America/New_York", "2024-11-02T00:00:00-04:00"],
      ["Asia/Kolkata", "2024-11-02T00:00:00+05:30"],
      ["Europe/Paris", "2024-11-02T00:00:00+01:00"],
    ),
    granularity: fc.constantFrom("PT15M", "PT30M", "PT1H", "P1D"),
    groupBy: fc.subarray(["queueId", "mediaType", "userId", "direction", "providerId", "kpiEventName"], { maxLength: 2 }),
    metrics: fc.subarray(
      METRICS.map((m) => m.name),
      { minLength: 1, maxLength: 6 },
    ),
  })
  .map(({ zoneAndStart: [zone, start], granularity, groupBy, metrics }) => {
    const from = DateTime.fromISO(start, { zone });
    const to = from.plus(Duration.fromISO("P3D"));
    return { interval: `${from.toISO()}/${to.toISO()}`, granularity, timeZone: zone, groupBy, metrics };
  });

describe("rollups equal a direct computation over the raw rows", () => {
  const t = useTestApp({ ANALYTICS_REFRESH_MS: "60000" });

  async function insert(stored: Stored) {
    const { tree } = stored;
    const c = tree.conversation;
    await t.db.pool.query(
      `INSERT INTO msdyn_conversationdata (msdyn_conversationid, msdyn_name, msdyn_conversationtimestamp, msdyn_channel, msdyn_providerid, ownerid, createdon)
       VALUES ($1, $1, $2, $3, $4, $5, $6)`,
      [c.conversationId, c.timestamp, c.channel, c.providerId, SYSTEM_USER_ID, c.createdOn],
    );
    for (const s of tree.sessions) {
      await t.db.pool.query(
        `INSERT INTO msdyn_sessiondata (msdyn_conversationid, msdyn_providersessionid, msdyn_sessionchannel, msdyn_sessioncreationreason, msdyn_queueid,
                                        msdyn_sessioncreatedtimestamp, msdyn_sessionqueueassignedtimestamp, ownerid, createdon)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          c.conversationId,
          s.providerSessionId,
          s.channel,
          s.creationReason,
          s.queueId,
          s.createdTimestamp,
          s.queueAssignedTimestamp,
          SYSTEM_USER_ID,
          s.createdOn,
        ],
      );
    }
    for (const p of tree.participants) {
      await t.db.pool.query(
        `INSERT INTO msdyn_sessionparticipantdata (msdyn_conversationid, msdyn_providersessionid, msdyn_participantid, msdyn_participanttype, ownerid)
         VALUES ($1, $2, $3, $4, $5)`,
        [c.conversationId, p.providerSessionId, p.participantId, p.type, SYSTEM_USER_ID],
      );
    }
    for (const e of tree.events) await insertEvent(c.conversationId, e);
  }

  async function insertEvent(conversationId: string, e: ConversationTree["events"][number]) {
    await t.db.pool.query(
      `INSERT INTO msdyn_kpieventdata (msdyn_kpieventdataid, msdyn_name, msdyn_kpieventid, msdyn_kpieventname, msdyn_eventtimestamp, msdyn_conversationid,
                                       msdyn_providersessionid, msdyn_participantid, ownerid, createdon)
       VALUES ($1, $2, $3, $2, $4, $5, $6, $7, $8, $9)`,
      [
        e.id,
        e.name,
        DEFINITION.get(e.name!)!,
        e.timestamp,
        conversationId,
        e.providerSessionId,
        e.participantId,
        SYSTEM_USER_ID,
        e.createdOn,
      ],
    );
  }

  /** Every rollup row equals its cell aggregated from the metric rows, at every grain. */
  async function rollupsMatchMetricRows() {
    const { rows } = await t.db.pool.query(`
      WITH grains(grain, minutes, keeps_user) AS (VALUES ${ROLLUP_GRAINS.map((g) => `(${g.grain}, ${g.minutes}, ${g.keepsUser})`).join(", ")}),
      expected AS (
        SELECT g.grain, f.metric, to_timestamp(floor(extract(epoch FROM f.emittedon) / (g.minutes * 60)) * g.minutes * 60) AS bucketstart,
               f.queueid, f.mediatype, f.providerid, CASE WHEN g.keeps_user THEN f.userid ELSE '' END AS userid, f.direction,
               count(*) AS statcount, sum(f.value) AS statsum, min(f.value) AS statmin, max(f.value) AS statmax
          FROM cif_analytics_metric f CROSS JOIN grains g
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8),
      actual AS (
        SELECT grain, metric, bucketstart, queueid, mediatype, providerid, userid, direction, statcount, statsum, statmin, statmax
          FROM cif_analytics_rollup)
      SELECT 'missing' AS problem, * FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) m
      UNION ALL SELECT 'extra', * FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) x
      LIMIT 5`);
    expect(rows).toEqual([]);
  }

  async function compare(trees: ConversationTree[], queries: Query[]) {
    await rollupsMatchMetricRows();
    for (const query of queries) {
      const res = await t.app.inject({ method: "POST", url: "/api/v2/analytics/conversations/aggregates/query", payload: query });
      expect(res.statusCode, res.body).toBe(200);
      const [start, end] = query.interval.split("/");
      // The reference's own boundaries: local steps of the granularity from the start.
      const step = Duration.fromISO(query.granularity);
      const from = DateTime.fromISO(start!, { zone: query.timeZone });
      const boundaries: Date[] = [];
      for (let i = 0; from.plus(step.mapUnits((x) => x * i)).toMillis() <= Date.parse(end!); i++) {
        boundaries.push(from.plus(step.mapUnits((x) => x * i)).toJSDate());
      }
      expect(canonical(res.json().results), JSON.stringify(query)).toEqual(canonical(reference(trees, query, boundaries)));
    }
  }

  it("after inserts, late events, deletions and moved timestamps", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(conversationArb, { minLength: 5, maxLength: 25 }),
        fc.array(queryArb, { minLength: 3, maxLength: 3 }),
        fc.array(
          fc.record({
            name: fc.constantFrom(...EVENT_NAMES),
            offset: fc.integer({ min: 0, max: 3_600_000 }),
            agent: fc.nat({ max: 3 }),
          }),
          { maxLength: 8 },
        ),
        async (generated, queries, late) => {
          await t.db.pool.query("TRUNCATE msdyn_conversationdata CASCADE");
          await t.db.pool.query(
            "TRUNCATE cif_analytics_dirty, cif_analytics_metric, cif_analytics_rollup, cif_analytics_conversation, cif_analytics_segment",
          );
          const stored: Stored[] = generated.map((g) => {
            const id = `prop-${randomUUID()}`;
            return { id, ...toTree(id, g) };
          });
          for (const s of stored) await insert(s);
          await t.app.analytics!.refreshNow(t.db.pool);
          await compare(
            stored.map((s) => s.tree),
            queries,
          );

          // Late events into random conversations, a deleted event, a moved timestamp, a deleted conversation.
          late.forEach((l, i) => {
            const target = stored[i % stored.length]!;
            const event = {
              id: randomUUID(),
              name: l.name,
              reason: null,
              timestamp: new Date(target.tree.conversation.timestamp!.getTime() + l.offset),
              providerSessionId: "s0",
              participantId: AGENTS[l.agent]!,
              providerId: null,
              cifSessionId: null,
              createdOn: new Date("2030-01-01T00:00:00Z"),
            };
            (target.tree.events as unknown[]).push(event);
          });
          for (const s of stored) {
            for (const e of s.tree.events) {
              if (
                !(
                  await t.db.pool.query(
                    "SELECT 1 FROM msdyn_kpieventdata WHERE msdyn_kpieventdataid = $1 AND msdyn_conversationid = $2",
                    [e.id, s.id],
                  )
                ).rowCount
              ) {
                await insertEvent(s.id, e);
              }
            }
          }
          const withEvents = stored.filter((s) => s.tree.events.length > 1);
          if (withEvents[0]) {
            const [gone] = (withEvents[0].tree.events as unknown as { id: string }[]).splice(0, 1);
            await t.db.pool.query(
              "DELETE FROM msdyn_kpieventdata WHERE msdyn_kpieventdataid = $1 AND msdyn_conversationid = $2",
              [gone!.id, withEvents[0].id],
            );
          }
          if (withEvents[1]) {
            const moved = withEvents[1].tree.events[0] as { id: string; timestamp: Date };
            moved.timestamp = new Date(moved.timestamp.getTime() + 45 * 60_000);
            await t.db.pool.query(
              "UPDATE msdyn_kpieventdata SET msdyn_eventtimestamp = $2 WHERE msdyn_kpieventdataid = $1 AND msdyn_conversationid = $3",
              [moved.id, moved.timestamp, withEvents[1].id],
            );
          }
          const removed = stored.pop()!;
          await t.db.pool.query("DELETE FROM msdyn_conversationdata WHERE msdyn_conversationid = $1", [removed.id]);
          await t.app.analytics!.refreshNow(t.db.pool);
          await compare(
            stored.map((s) => s.tree),
            queries,
          );

          // The bulk path (a backlog re-derived without moving cells, then rebuilt) ends where the incremental one did.
          const snapshot = async () =>
            (
              await t.db.pool.query(
                "SELECT grain, metric, bucketstart, queueid, mediatype, providerid, userid, direction, statcount, statsum, statmin, statmax FROM cif_analytics_rollup ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
              )
            ).rows;
          const incremental = await snapshot();
          await t.db.pool.query(
            "INSERT INTO cif_analytics_dirty (conversationid) SELECT msdyn_conversationid FROM msdyn_conversationdata",
          );
          await rebuildAll(t.db.pool, t.app.analytics!.settings);
          expect(await snapshot()).toEqual(incremental);
        },
      ),
      { numRuns: 6, endOnFailure: true },
    );
  }, 120_000);
});
