/**
 * Queue observations now, through HTTP: a conversation waiting, then alerting an agent,
 * answered, and closed, with the agents' routing status counted per queue; the SSE stream
 * seeing a change; stale states left out; the errors.
 */
import type { AddressInfo } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures, expectGenesysError } from "../helpers/analytics.js";

const Q = "8c3f1e20-0000-4000-8000-000000000001";
const OTHER_Q = "8c3f1e20-0000-4000-8000-000000000002";
const ALL = ["oWaiting", "oAlerting", "oInteracting", "oOnQueueUsers", "oOffQueueUsers", "oActiveUsers"];

type Observation = {
  group: Record<string, string>;
  data: { metric: string; qualifier?: string; stats: { count: number }; observations?: Record<string, string>[] }[];
};

const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

/** `metric` or `metric:qualifier` → count, for the group of `queueId`. */
function counts(results: Observation[], queueId: string): Record<string, number> {
  const group = results.find((r) => r.group.queueId === queueId);
  return Object.fromEntries(
    (group?.data ?? []).map((d) => [d.qualifier ? `${d.metric}:${d.qualifier}` : d.metric, d.stats.count]),
  );
}

describe("queue observations", () => {
  const t = useTestApp();
  const f = analyticsFixtures(t);
  const query = async (body: Record<string, unknown> = {}) => {
    const res = await f.observations({
      filter: { type: "or", predicates: [{ dimension: "queueId", value: Q }] },
      metrics: ALL,
      detailMetrics: ["oWaiting"],
      ...body,
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ results: Observation[] }>().results;
  };

  beforeAll(async () => {
    // The agent signed in a minute ago, and worked this queue yesterday... an hour ago.
    await f.conversation({
      id: "obs-cif",
      at: ago(3_600_000),
      sessions: [{ id: "default", participants: [{ id: "eve" }] }],
      events: [{ name: "CifSessionStart", at: ago(60_000), session: "default", participant: "eve", cifSession: "eve-1" }],
    });
    await f.conversation({
      id: "obs-earlier",
      at: ago(3_600_000),
      sessions: [{ id: "s1", queueId: Q, participants: [{ id: "eve" }] }],
      events: [
        { name: "NotificationReceived", at: ago(3_590_000), session: "s1", participant: "eve" },
        { name: "NotificationAccepted", at: ago(3_580_000), session: "s1", participant: "eve" },
        { name: "SessionClosed", at: ago(3_500_000), session: "s1", participant: "eve" },
      ],
    });
    // A call queued 30 s ago.
    await f.conversation({
      id: "obs-call",
      at: ago(30_000),
      channel: "Voice",
      sessions: [{ id: "s1", queueId: Q, channel: "Voice", queueAssigned: ago(30_000), participants: [{ id: "eve" }] }],
      events: [],
    });
    // A call "waiting" since two days ago, untouched since: stale, not counted.
    await f.conversation({
      id: "obs-stale",
      at: ago(2 * 86_400_000),
      sessions: [{ id: "s1", queueId: Q, queueAssigned: ago(2 * 86_400_000) }],
      events: [],
    });
    await f.refresh();
  });

  it("follows a call from waiting to alerting, answered and closed, with the agent's status", async () => {
    let results = await query();
    expect(results.map((r) => r.group)).toEqual([{ queueId: Q }]);
    expect(counts(results, Q)).toEqual({
      oWaiting: 1,
      oAlerting: 0,
      oInteracting: 0,
      "oOnQueueUsers:IDLE": 1,
      "oOnQueueUsers:INTERACTING": 0,
      "oOnQueueUsers:COMMUNICATING": 0,
      "oOnQueueUsers:NOT_RESPONDING": 0,
      oOffQueueUsers: 0,
      oActiveUsers: 1,
    });
    const waiting = results[0]!.data.find((d) => d.metric === "oWaiting")!;
    expect(waiting.observations).toEqual([
      { observationDate: expect.any(String), conversationId: "obs-call", sessionId: "s1", mediaType: "voice" },
    ]);
    expect(Date.now() - Date.parse(waiting.observations![0]!.observationDate!)).toBeGreaterThanOrEqual(30_000);

    await f.postEvents("obs-call", [{ name: "NotificationReceived", at: ago(0), session: "s1", participant: "eve" }]);
    await f.refresh();
    results = await query();
    expect(counts(results, Q)).toMatchObject({
      oWaiting: 1,
      oAlerting: 1,
      "oOnQueueUsers:COMMUNICATING": 1,
      "oOnQueueUsers:IDLE": 0,
    });

    await f.postEvents("obs-call", [{ name: "NotificationAccepted", at: ago(0), session: "s1", participant: "eve" }]);
    await f.refresh();
    results = await query();
    expect(counts(results, Q)).toMatchObject({ oWaiting: 0, oAlerting: 0, oInteracting: 1, "oOnQueueUsers:INTERACTING": 1 });
    expect(results[0]!.data.find((d) => d.metric === "oWaiting")!.observations).toEqual([]);

    await f.postEvents("obs-call", [{ name: "SessionClosed", at: ago(0), session: "s1", participant: "eve" }]);
    await f.refresh();
    results = await query();
    expect(counts(results, Q)).toMatchObject({ oWaiting: 0, oInteracting: 0, "oOnQueueUsers:IDLE": 1, oActiveUsers: 1 });
  });

  it("answers every queue it is asked about, and groups by media type when the filter names one", async () => {
    const results = await query({
      filter: {
        type: "or",
        predicates: [
          { dimension: "queueId", value: Q },
          { dimension: "queueId", value: OTHER_Q },
        ],
      },
      metrics: ["oWaiting"],
    });
    expect(results.map((r) => r.group.queueId)).toEqual([Q, OTHER_Q]);
    const byMedia = await query({
      filter: { type: "and", predicates: [{ dimension: "mediaType", value: "voice" }] },
      metrics: ["oInteracting"],
    });
    for (const r of byMedia) expect(r.group).toMatchObject({ mediaType: "voice" });
  });

  it("refuses unknown metrics and dimensions, naming the field", async () => {
    expectGenesysError(await f.observations({ metrics: ["oLonely"] }), 400, "bad.request", "metrics[0]");
    expectGenesysError(
      await f.observations({ metrics: ["oWaiting"], filter: { type: "or", predicates: [{ dimension: "userId", value: "x" }] } }),
      400,
      "bad.request",
      "filter.predicates[0].dimension",
    );
  });

  it("pushes a change over Server-Sent Events", async () => {
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/api/v2/analytics/queues/observations/stream?queueId=${Q}`, {
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    /** The next `observations` event's data (waits at most 10 s). */
    const next = async (): Promise<{ results: Observation[] }> => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^event: observations\ndata: (.*)$/m.exec(message);
          if (data) return JSON.parse(data[1]!);
          continue;
        }
        if (Date.now() > deadline) throw new Error("no observations event within 10 s");
        const chunk = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error("stream stalled")), 10_000)),
        ]);
        if (chunk.done) throw new Error("stream ended");
        buffer += decoder.decode(chunk.value, { stream: true });
      }
    };
    try {
      const first = await next();
      expect(counts(first.results, Q).oWaiting).toBe(0);
      await f.conversation({
        id: "obs-pushed",
        at: ago(5_000),
        sessions: [{ id: "s1", queueId: Q, queueAssigned: ago(5_000) }],
        events: [],
      });
      await f.refresh();
      const second = await next();
      expect(counts(second.results, Q).oWaiting).toBe(1);
      expect(second.results[0]!.data.find((d) => d.metric === "oWaiting")!.observations![0]).toMatchObject({
        conversationId: "obs-pushed",
      });
    } finally {
      controller.abort();
    }
  });
});

describe("observation streams when the server closes", () => {
  const t = useTestApp();

  it("are ended, so closing is not held up by an open stream", async () => {
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/api/v2/analytics/queues/observations/stream`);
    expect(res.status).toBe(200);
    expect(t.app.analytics!.streams.size).toBe(1);
    const reader = res.body!.getReader();
    const closed = t.app.close().then(() => "closed");
    const bounded = new Promise((resolve) => setTimeout(() => resolve("still open after 10 s"), 10_000));
    expect(await Promise.race([closed, bounded])).toBe("closed");
    // The client sees the end of the stream.
    for (let i = 0; i < 100; i++) if ((await reader.read()).done) break;
    expect(t.app.analytics!.streams.size).toBe(0);
  });
});
