/**
 * Conversation detail records over the hand-computed day: the record of each kind of
 * conversation, the filters (conversation, segment, metric ranges), ordering, paging,
 * totalHits, the by-id routes, and the errors.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures, expectGenesysError } from "../helpers/analytics.js";
import { ABANDONED, ANSWERED, DAY, DAY_INTERVAL, OUT_OF_ORDER, Q1, Q2, SKEWED, TRANSFERRED } from "./day-fixture.js";

interface Segment {
  segmentStart: string;
  segmentEnd?: string;
  segmentType: string;
  queueId?: string;
  disconnectType?: string;
}
interface Session {
  sessionId: string;
  mediaType?: string;
  metrics?: { name: string; value: number; emitDate: string }[];
  segments: Segment[];
}
interface Participant {
  participantId: string;
  participantName?: string;
  purpose: string;
  userId?: string;
  sessions: Session[];
}
interface Conversation {
  conversationId: string;
  conversationStart: string;
  conversationEnd?: string;
  participants: Participant[];
}

const ids = (res: { json<T>(): T }) => res.json<{ conversations: Conversation[] }>().conversations.map((c) => c.conversationId);

describe("conversation detail records", () => {
  const t = useTestApp();
  const f = analyticsFixtures(t);

  beforeAll(async () => {
    for (const c of DAY) await f.conversation(c);
    await f.refresh();
  });

  it("gives one conversation's participants, sessions, metrics and segments", async () => {
    const res = await t.app.inject({ method: "GET", url: `/api/v2/analytics/conversations/${ANSWERED.id}/details` });
    expect(res.statusCode, res.body).toBe(200);
    const record = res.json<Conversation>();
    expect(record).toMatchObject({
      conversationId: ANSWERED.id,
      conversationStart: "2024-03-10T14:00:00.000Z",
      conversationEnd: "2024-03-10T14:06:00.000Z",
    });
    const acd = record.participants.find((p: Participant) => p.purpose === "acd")!;
    expect(acd).toMatchObject({ participantName: "Support" });
    expect(acd.sessions[0]!.metrics).toEqual([{ name: "tAcd", value: 10_000, emitDate: "2024-03-10T14:00:15.000Z" }]);
    expect(acd.sessions[0]!.segments).toEqual([
      {
        segmentStart: "2024-03-10T14:00:05.000Z",
        segmentEnd: "2024-03-10T14:00:25.000Z",
        segmentType: "interact",
        queueId: Q1,
        disconnectType: "transfer",
      },
    ]);
    const agent = record.participants.find((p: Participant) => p.purpose === "agent")!;
    expect(agent).toMatchObject({ participantId: "agent-1", participantName: "Ada", userId: "agent-1" });
    const session = agent.sessions[0]!;
    expect(session).toMatchObject({ sessionId: "s1", mediaType: "voice" });
    expect(
      session.segments.map((s: Segment) => [s.segmentType, s.segmentStart.slice(11, 19), s.segmentEnd?.slice(11, 19)]),
    ).toEqual([
      ["alert", "14:00:15", "14:00:25"],
      ["interact", "14:00:25", "14:02:00"],
      ["hold", "14:02:00", "14:03:00"],
      ["interact", "14:03:00", "14:05:00"],
      ["wrapup", "14:05:00", "14:06:00"],
    ]);
    const metrics = Object.fromEntries(
      session.metrics!.map((m: { name: string; value: number; emitDate: string }) => [
        m.name,
        [m.value, m.emitDate.slice(11, 19)],
      ]),
    );
    expect(metrics).toEqual({
      nOffered: [1, "14:00:15"],
      tAlert: [10_000, "14:00:25"],
      nConnected: [1, "14:00:25"],
      nAnswered: [1, "14:00:25"],
      tAnswered: [20_000, "14:00:25"],
      tWait: [20_000, "14:00:25"],
      oServiceLevel: [1, "14:00:25"],
      tFirstWait: [25_000, "14:00:25"],
      tHeld: [60_000, "14:03:00"],
      tTalk: [215_000, "14:05:00"],
      tAcw: [60_000, "14:06:00"],
      tHandle: [335_000, "14:06:00"],
    });
  });

  it("marks timeouts and abandons on their segments; an open conversation has no end", async () => {
    const transferred = (
      await t.app.inject({ method: "GET", url: `/api/v2/analytics/conversations/${TRANSFERRED.id}/details` })
    ).json();
    const first = transferred.participants.find((p: Participant) => p.participantId === "agent-1");
    expect(first.sessions[0].segments).toEqual([
      expect.objectContaining({ segmentType: "alert", queueId: Q2, disconnectType: "timeout" }),
    ]);
    const abandoned = (
      await t.app.inject({ method: "GET", url: `/api/v2/analytics/conversations/${ABANDONED.id}/details` })
    ).json();
    expect(abandoned.conversationEnd).toBe("2024-03-10T14:10:45.000Z");
    const acd = abandoned.participants.find((p: Participant) => p.purpose === "acd");
    expect(acd.sessions[0]).toMatchObject({ mediaType: "chat", segments: [expect.objectContaining({ disconnectType: "peer" })] });
    const open = (
      await t.app.inject({ method: "GET", url: `/api/v2/analytics/conversations/${OUT_OF_ORDER.id}/details` })
    ).json();
    expect(open.conversationEnd).toBeUndefined();
  });

  it("pages the day's conversations in conversationStart order, with totalHits", async () => {
    const all = await f.details({ interval: DAY_INTERVAL });
    expect(all.statusCode, all.body).toBe(200);
    expect(all.json().totalHits).toBe(5);
    expect(ids(all)).toEqual(DAY.map((c) => c.id));
    const page2 = await f.details({ interval: DAY_INTERVAL, order: "desc", paging: { pageSize: 2, pageNumber: 2 } });
    expect(ids(page2)).toEqual([TRANSFERRED.id, ABANDONED.id]);
    expect(page2.json().totalHits).toBe(5);
    const byEnd = await f.details({ interval: DAY_INTERVAL, orderBy: "conversationEnd", order: "asc" });
    expect(ids(byEnd).slice(0, 2)).toEqual([ANSWERED.id, ABANDONED.id]);
  });

  it("filters by segment dimensions, conversation dimensions and metric ranges", async () => {
    const inQ1 = await f.details({
      interval: DAY_INTERVAL,
      segmentFilters: [{ type: "and", predicates: [{ dimension: "queueId", value: Q1 }] }],
    });
    expect(ids(inQ1)).toEqual([ANSWERED.id, ABANDONED.id, TRANSFERRED.id]);
    const voiceQ2 = await f.details({
      interval: DAY_INTERVAL,
      segmentFilters: [
        {
          type: "and",
          predicates: [{ type: "dimension", dimension: "mediaType", operator: "matches", value: "voice" }],
          clauses: [{ type: "or", predicates: [{ dimension: "queueId", value: Q2 }] }],
        },
      ],
    });
    expect(ids(voiceQ2)).toEqual([TRANSFERRED.id, OUT_OF_ORDER.id, SKEWED.id]);
    const held = await f.details({
      interval: DAY_INTERVAL,
      segmentFilters: [{ type: "or", predicates: [{ dimension: "segmentType", value: "hold" }] }],
    });
    expect(ids(held)).toEqual([ANSWERED.id]);
    const abandoned = await f.details({
      interval: DAY_INTERVAL,
      conversationFilters: [{ type: "or", predicates: [{ type: "metric", metric: "tAbandon", range: { gte: 1 } }] }],
    });
    expect(ids(abandoned)).toEqual([ABANDONED.id]);
    const slowAnswers = await f.details({
      interval: DAY_INTERVAL,
      conversationFilters: [{ type: "and", predicates: [{ metric: "tAnswered", range: { gt: 20_000 } }] }],
    });
    expect(ids(slowAnswers)).toEqual([TRANSFERRED.id]);
    const ended = await f.details({
      interval: DAY_INTERVAL,
      conversationFilters: [{ type: "and", predicates: [{ dimension: "conversationEnd", operator: "notExists" }] }],
    });
    expect(ids(ended)).toEqual([OUT_OF_ORDER.id]);
    const agent3 = await f.details({
      interval: DAY_INTERVAL,
      segmentFilters: [
        {
          type: "and",
          predicates: [
            { dimension: "userId", value: "agent-3" },
            { dimension: "purpose", value: "agent" },
          ],
        },
      ],
    });
    expect(ids(agent3)).toEqual([TRANSFERRED.id]);
  });

  it("gets up to 100 conversations by id, repeated or comma-separated", async () => {
    const res = await t.app.inject({
      method: "GET",
      url: `/api/v2/analytics/conversations/details?id=${SKEWED.id},${ANSWERED.id}&id=missing`,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(ids(res)).toEqual([SKEWED.id, ANSWERED.id]);
    const tooMany = Array.from({ length: 101 }, (_, i) => `c${i}`).join(",");
    expectGenesysError(
      await t.app.inject({ method: "GET", url: `/api/v2/analytics/conversations/details?id=${tooMany}` }),
      400,
      "bad.request",
      "at most 100",
    );
    expectGenesysError(
      await t.app.inject({ method: "GET", url: "/api/v2/analytics/conversations/nope/details" }),
      404,
      "not.found",
      "nope",
    );
  });

  it("refuses bad queries with Genesys errors that name the field", async () => {
    expectGenesysError(
      await f.details({ interval: DAY_INTERVAL, paging: { pageSize: 101 } }),
      400,
      "bad.request",
      "paging.pageSize",
    );
    expectGenesysError(
      await f.details({ interval: "2024-01-01T00:00:00Z/2024-03-01T00:00:00Z" }),
      400,
      "bad.request",
      "31 days",
      "details/jobs",
    );
    expectGenesysError(
      await f.details({
        interval: DAY_INTERVAL,
        segmentFilters: [{ type: "and", predicates: [{ dimension: "colour", value: "x" }] }],
      }),
      400,
      "bad.request",
      "segmentFilters[0].predicates[0].dimension",
    );
    expectGenesysError(
      await f.details({
        interval: DAY_INTERVAL,
        conversationFilters: [{ type: "and", predicates: [{ metric: "tNope", range: { gt: 1 } }] }],
      }),
      400,
      "bad.request",
      "conversationFilters[0].predicates[0].metric",
    );
    expectGenesysError(await f.details({ interval: DAY_INTERVAL, order: "sideways" }), 400, "bad.request", "order");
    expectGenesysError(await f.details({}), 400, "bad.request", "interval");
  });
});
