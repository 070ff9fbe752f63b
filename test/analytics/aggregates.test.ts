/**
 * The aggregates query over a hand-computed day (day-fixture.ts), through HTTP: every
 * metric's value, bucketing by emit time, DST days in New York, an out-of-order and a late
 * event, never a negative duration, and the errors.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures, expectGenesysError } from "../helpers/analytics.js";
import { DAY, DAY_INTERVAL, LATE_CLOSE, NEW_YORK_DAY, OUT_OF_ORDER, Q1, Q2 } from "./day-fixture.js";

const ALL = [
  "nConversations",
  "nOffered",
  "nConnected",
  "nAnswered",
  "nRejected",
  "nNotResponding",
  "nTransferred",
  "nOverSla",
  "tAlert",
  "tNotResponding",
  "tAnswered",
  "tAcd",
  "tWait",
  "tFirstWait",
  "tTalk",
  "tHeld",
  "tAcw",
  "tHandle",
  "tAbandon",
  "oServiceLevel",
  "oServiceTarget",
];

type Result = {
  group: Record<string, string>;
  data: { interval: string; metrics: { metric: string; stats: Record<string, number> }[] }[];
};

const statsOf = (results: Result[], group: Record<string, string>, metric: string, bucket = 0) =>
  results.find((r) => JSON.stringify(r.group) === JSON.stringify(group))?.data[bucket]?.metrics.find((m) => m.metric === metric)
    ?.stats;

describe("conversation aggregates over a hand-computed day", () => {
  const t = useTestApp();
  const f = analyticsFixtures(t);

  beforeAll(async () => {
    for (const c of DAY) await f.conversation(c);
    await f.refresh();
  });

  it("gives every metric per queue over the day, as computed by hand", async () => {
    const res = await f.aggregates({ interval: DAY_INTERVAL, groupBy: ["queueId"], metrics: ALL });
    expect(res.statusCode, res.body).toBe(200);
    const { results } = res.json<{ results: Result[] }>();
    expect(results.map((r) => r.group.queueId).sort()).toEqual([Q1, Q2]);
    const q1 = (m: string) => statsOf(results, { queueId: Q1 }, m);
    const q2 = (m: string) => statsOf(results, { queueId: Q2 }, m);
    expect(results[0]!.data[0]!.interval).toBe(DAY_INTERVAL);

    expect(q1("nConversations")).toEqual({ count: 2 });
    expect(q1("nOffered")).toEqual({ count: 2 });
    expect(q1("nAnswered")).toEqual({ count: 2 });
    expect(q1("tAnswered")).toEqual({ count: 2, sum: 28_000, min: 8_000, max: 20_000 });
    expect(q1("tHandle")).toEqual({ count: 2, sum: 447_000, min: 112_000, max: 335_000 });
    expect(q1("tTalk")).toEqual({ count: 2, sum: 327_000, min: 112_000, max: 215_000 });
    expect(q1("tHeld")).toEqual({ count: 1, sum: 60_000, min: 60_000, max: 60_000 });
    expect(q1("tAcw")).toEqual({ count: 1, sum: 60_000, min: 60_000, max: 60_000 });
    expect(q1("tAcd")).toEqual({ count: 1, sum: 10_000, min: 10_000, max: 10_000 });
    expect(q1("tAbandon")).toEqual({ count: 1, sum: 45_000, min: 45_000, max: 45_000 });
    expect(q1("tWait")).toEqual({ count: 3, sum: 73_000, min: 8_000, max: 45_000 });
    expect(q1("tFirstWait")).toEqual({ count: 1, sum: 25_000, min: 25_000, max: 25_000 });
    expect(q1("oServiceLevel")).toEqual({ ratio: 2 / 3, numerator: 2, denominator: 3, target: 0.8 });
    expect(q1("oServiceTarget")).toEqual({ target: 0.8 });
    expect(q1("nTransferred")).toBeUndefined();
    expect(q1("nOverSla")).toBeUndefined();

    expect(q2("nConversations")).toEqual({ count: 3 });
    expect(q2("nOffered")).toEqual({ count: 4 });
    expect(q2("nConnected")).toEqual({ count: 3 });
    expect(q2("nAnswered")).toEqual({ count: 3 });
    expect(q2("nRejected")).toEqual({ count: 1 });
    expect(q2("nNotResponding")).toEqual({ count: 1 });
    expect(q2("tNotResponding")).toEqual({ count: 1, sum: 30_000, min: 30_000, max: 30_000 });
    expect(q2("nTransferred")).toEqual({ count: 1 });
    expect(q2("nOverSla")).toEqual({ count: 1 });
    expect(q2("tAlert")).toEqual({ count: 4, sum: 52_000, min: 2_000, max: 30_000 });
    expect(q2("tAnswered")).toEqual({ count: 3, sum: 80_000, min: 10_000, max: 50_000 });
    // The skewed close (stamped before its acceptance) counts as 0, never negative; the
    // out-of-order conversation has no close yet.
    expect(q2("tHandle")).toEqual({ count: 2, sum: 80_000, min: 0, max: 80_000 });
    expect(q2("oServiceLevel")).toEqual({ ratio: 2 / 3, numerator: 2, denominator: 3, target: 0.8 });
  });

  it("puts each metric in the bucket of its emit time (PT30M)", async () => {
    const res = await f.aggregates({
      interval: DAY_INTERVAL,
      granularity: "PT30M",
      groupBy: ["queueId"],
      filter: { type: "and", predicates: [{ dimension: "queueId", value: Q1 }] },
      metrics: ["nOffered", "tHandle", "oServiceLevel"],
    });
    expect(res.statusCode, res.body).toBe(200);
    const [q1] = res.json<{ results: Result[] }>().results;
    expect(q1!.data.map((d) => d.interval)).toEqual([
      "2024-03-10T14:00:00.000Z/2024-03-10T14:30:00.000Z",
      "2024-03-10T15:00:00.000Z/2024-03-10T15:30:00.000Z",
    ]);
    expect(q1!.data[0]!.metrics).toEqual([
      { metric: "nOffered", stats: { count: 1 } },
      { metric: "tHandle", stats: { count: 1, sum: 335_000, min: 335_000, max: 335_000 } },
      { metric: "oServiceLevel", stats: { ratio: 0.5, numerator: 1, denominator: 2, target: 0.8 } },
    ]);
  });

  it("cuts New York's spring-forward day into 23 hourly buckets and one 23-hour day", async () => {
    const hourly = await f.aggregates({
      interval: NEW_YORK_DAY,
      granularity: "PT1H",
      timeZone: "America/New_York",
      metrics: ["nConversations"],
    });
    expect(hourly.statusCode, hourly.body).toBe(200);
    const [all] = hourly.json<{ results: Result[] }>().results;
    // Conversations at 14:00, 14:10 (10 a.m. EDT), 15:00, 16:00, 17:00 UTC.
    expect(all!.data.map((d) => [d.interval, d.metrics[0]!.stats.count])).toEqual([
      ["2024-03-10T14:00:00.000Z/2024-03-10T15:00:00.000Z", 2],
      ["2024-03-10T15:00:00.000Z/2024-03-10T16:00:00.000Z", 1],
      ["2024-03-10T16:00:00.000Z/2024-03-10T17:00:00.000Z", 1],
      ["2024-03-10T17:00:00.000Z/2024-03-10T18:00:00.000Z", 1],
    ]);
    const days = await f.aggregates({
      interval: "2024-03-09T00:00:00-05:00/2024-03-11T00:00:00-04:00",
      granularity: "P1D",
      timeZone: "America/New_York",
      metrics: ["nConversations"],
    });
    expect(days.statusCode, days.body).toBe(200);
    const [both] = days.json<{ results: Result[] }>().results;
    expect(both!.data).toEqual([
      {
        interval: "2024-03-10T05:00:00.000Z/2024-03-11T04:00:00.000Z",
        metrics: [{ metric: "nConversations", stats: { count: 5 } }],
      },
    ]);
  });

  it("uses local boundaries: an Asia/Kolkata day starts at 18:30 UTC", async () => {
    const res = await f.aggregates({
      interval: "2024-03-10T00:00:00+05:30/2024-03-11T00:00:00+05:30",
      granularity: "P1D",
      timeZone: "Asia/Kolkata",
      groupBy: ["mediaType"],
      metrics: ["nConversations"],
    });
    expect(res.statusCode, res.body).toBe(200);
    const results = res.json<{ results: Result[] }>().results;
    expect(results.map((r) => [r.group.mediaType, r.data[0]!.interval, r.data[0]!.metrics[0]!.stats.count]).sort()).toEqual([
      ["chat", "2024-03-09T18:30:00.000Z/2024-03-10T18:30:00.000Z", 1],
      ["voice", "2024-03-09T18:30:00.000Z/2024-03-10T18:30:00.000Z", 4],
    ]);
  });

  it("corrects the metrics when a late event arrives", async () => {
    await f.postEvents(OUT_OF_ORDER.id, [LATE_CLOSE]);
    await f.refresh();
    const res = await f.aggregates({ interval: DAY_INTERVAL, groupBy: ["queueId"], metrics: ["tHandle", "tTalk"] });
    const results = res.json<{ results: Result[] }>().results;
    expect(statsOf(results, { queueId: Q2 }, "tHandle")).toEqual({ count: 3, sum: 380_000, min: 0, max: 300_000 });
  });

  it("groups by agent, provider, direction and dimensions outside the rollups", async () => {
    const res = await f.aggregates({ interval: DAY_INTERVAL, groupBy: ["userId"], metrics: ["nAnswered"] });
    const byUser = Object.fromEntries(
      res.json<{ results: Result[] }>().results.map((r) => [r.group.userId, r.data[0]!.metrics[0]!.stats.count]),
    );
    expect(byUser).toEqual({ "agent-1": 2, "agent-2": 2, "agent-3": 1 });

    const byEvent = await f.aggregates({ interval: DAY_INTERVAL, groupBy: ["kpiEventName", "queueName"], metrics: ["tHandle"] });
    expect(byEvent.statusCode, byEvent.body).toBe(200);
    const groups = byEvent.json<{ results: Result[] }>().results.map((r) => r.group);
    expect(groups).toContainEqual({ kpiEventName: "SessionClosed", queueName: "Support" });
  });

  it("ranks groups (topN)", async () => {
    const res = await f.aggregates({
      interval: DAY_INTERVAL,
      groupBy: ["userId"],
      metrics: ["tAnswered"],
      queryType: "topN",
      sortMetric: { name: "tAnswered", function: "max" },
      limit: 1,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<{ results: Result[] }>().results.map((r) => r.group)).toEqual([{ userId: "agent-2" }]);
  });

  it("counts durations within a range as a view", async () => {
    const res = await f.aggregates({
      interval: DAY_INTERVAL,
      metrics: ["tAnswered"],
      views: [{ target: "tAnswered", name: "answeredWithin20s", function: "rangeBound", range: { lte: 20_000 } }],
    });
    expect(res.statusCode, res.body).toBe(200);
    const [all] = res.json().results;
    expect(all.data[0].views).toEqual([{ name: "answeredWithin20s", stats: { count: 4 } }]);
  });

  it("refuses bad queries with Genesys errors that name the field", async () => {
    const base = { interval: DAY_INTERVAL, metrics: ["nOffered"] };
    expectGenesysError(await f.aggregates({ ...base, interval: "yesterday" }), 400, "bad.request", "interval");
    expectGenesysError(
      await f.aggregates({ ...base, interval: "2024-03-11T00:00:00Z/2024-03-10T00:00:00Z" }),
      400,
      "bad.request",
      "interval: the end",
    );
    expectGenesysError(
      await f.aggregates({ ...base, interval: "2024-03-10T00:00:00Z/2024-03-10T01:10:00Z", granularity: "PT30M" }),
      400,
      "bad.request",
      "does not divide",
    );
    expectGenesysError(await f.aggregates({ ...base, granularity: "PT5M" }), 400, "bad.request", "granularity");
    expectGenesysError(await f.aggregates({ ...base, metrics: ["nBogus"] }), 400, "bad.request", "metrics[0]", "nBogus");
    expectGenesysError(await f.aggregates({ ...base, groupBy: ["colour"] }), 400, "bad.request", "groupBy[0]", "colour");
    expectGenesysError(await f.aggregates({ ...base, timeZone: "Mars/Olympus" }), 400, "bad.request", "timeZone", "Mars/Olympus");
    expectGenesysError(await f.aggregates({ ...base, metric: ["x"] }), 400, "bad.request", "'metric'");
    expectGenesysError(
      await f.aggregates({ ...base, interval: "2024-01-01T00:00:00Z/2024-12-31T00:00:00Z", granularity: "PT15M" }),
      400,
      "bad.request",
      "10000",
    );
    // 5 conversations × 2,976 quarter-hours of 31 days.
    expectGenesysError(
      await f.aggregates({
        interval: "2024-03-01T00:00:00Z/2024-04-01T00:00:00Z",
        metrics: ["nConversations"],
        groupBy: ["conversationId"],
        granularity: "PT15M",
      }),
      400,
      "bad.request",
      "5 groups × 2976 buckets, more than 10000",
    );
  });
});
