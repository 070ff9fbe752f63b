/**
 * Agent timelines through HTTP over a hand-computed day (agent-day-fixture.ts): the users
 * details query's presence and routing records, its filters and paging, the users
 * aggregates' time per state split across buckets, and the errors.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures, expectGenesysError } from "../helpers/analytics.js";
import { ADA_PRESENCE, ADA_ROUTING, AGENT_DAY, AGENT_DAY_CONVERSATIONS, BO_PRESENCE, BO_ROUTING } from "./agent-day-fixture.js";

type UserDetail = { userId: string; primaryPresence: unknown[]; routingStatus: unknown[] };

describe("users details and aggregates over a hand-computed agent day", () => {
  const t = useTestApp();
  const f = analyticsFixtures(t);

  beforeAll(async () => {
    for (const c of AGENT_DAY_CONVERSATIONS) await f.conversation(c);
    await f.refresh();
  });

  it("replays each agent's presence and routing status, as computed by hand", async () => {
    const res = await f.usersDetails({ interval: AGENT_DAY });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ userDetails: UserDetail[]; totalHits: number }>();
    expect(body.totalHits).toBe(2);
    expect(body.userDetails).toEqual([
      { userId: "ada", primaryPresence: ADA_PRESENCE, routingStatus: ADA_ROUTING },
      { userId: "bo", primaryPresence: BO_PRESENCE, routingStatus: BO_ROUTING },
    ]);
  });

  it("keeps the records that overlap the interval, with their own start times", async () => {
    const res = await f.usersDetails({
      interval: "2024-03-10T10:02:00.000Z/2024-03-10T10:06:00.000Z",
      userFilters: [{ type: "or", predicates: [{ dimension: "userId", value: "ada" }] }],
    });
    expect(res.statusCode, res.body).toBe(200);
    const [ada] = res.json<{ userDetails: UserDetail[] }>().userDetails;
    expect(ada!.routingStatus).toEqual(ADA_ROUTING.slice(5, 8));
    expect(ada!.primaryPresence).toEqual([ADA_PRESENCE[1]]);
  });

  it("filters by user, presence and routing status, orders and pages", async () => {
    const only = async (body: Record<string, unknown>) => {
      const res = await f.usersDetails({ interval: AGENT_DAY, ...body });
      expect(res.statusCode, res.body).toBe(200);
      const json = res.json<{ userDetails: UserDetail[]; totalHits: number }>();
      return { ids: json.userDetails.map((u) => u.userId), totalHits: json.totalHits };
    };
    expect(await only({ userFilters: [{ type: "or", predicates: [{ dimension: "userId", value: "bo" }] }] })).toEqual({
      ids: ["bo"],
      totalHits: 1,
    });
    expect(
      await only({ presenceFilters: [{ type: "or", predicates: [{ dimension: "systemPresence", value: "MEAL" }] }] }),
    ).toEqual({ ids: ["ada"], totalHits: 1 });
    expect(
      await only({ presenceFilters: [{ type: "or", predicates: [{ dimension: "organizationPresenceId", value: "ONLINE" }] }] }),
    ).toEqual({ ids: ["ada", "bo"], totalHits: 2 });
    expect(
      await only({
        routingStatusFilters: [{ type: "or", predicates: [{ dimension: "routingStatus", value: "NOT_RESPONDING" }] }],
      }),
    ).toEqual({ ids: ["ada"], totalHits: 1 });
    expect(await only({ order: "desc" })).toEqual({ ids: ["bo", "ada"], totalHits: 2 });
    expect(await only({ paging: { pageSize: 1, pageNumber: 2 } })).toEqual({ ids: ["bo"], totalHits: 2 });
    expect(
      await only({
        paging: { pageSize: 1, pageNumber: 2 },
        presenceFilters: [{ type: "or", predicates: [{ dimension: "systemPresence", value: "ONLINE" }] }],
      }),
    ).toEqual({ ids: ["bo"], totalHits: 2 });
  });

  it("splits the time in each state across buckets", async () => {
    const res = await f.usersAggregates({
      interval: "2024-03-10T08:00:00.000Z/2024-03-10T14:00:00.000Z",
      granularity: "PT1H",
      groupBy: ["userId"],
      filter: { type: "or", predicates: [{ dimension: "userId", value: "ada" }] },
      metrics: ["tAgentRoutingStatus", "tSystemPresence"],
    });
    expect(res.statusCode, res.body).toBe(200);
    const { results } = res.json<{
      results: {
        group: Record<string, string>;
        data: { interval: string; metrics: { metric: string; qualifier: string; stats: { sum: number } }[] }[];
      }[];
    }>();
    expect(results.map((r) => r.group)).toEqual([{ userId: "ada" }]);
    const bucket = (hour: number) => {
      const data = results[0]!.data.find((d) =>
        d.interval.startsWith(`2024-03-10T${String(hour).padStart(2, "0")}:00:00.000Z/`),
      )!;
      return Object.fromEntries(data.metrics.map((m) => [`${m.metric}:${m.qualifier}`, m.stats.sum]));
    };
    expect(bucket(8)).toEqual({
      "tAgentRoutingStatus:IDLE": 3_600_000,
      "tSystemPresence:AVAILABLE": 3_300_000,
      "tSystemPresence:ONLINE": 300_000,
    });
    expect(bucket(9)).toEqual({
      "tAgentRoutingStatus:COMMUNICATING": 10_000,
      "tAgentRoutingStatus:IDLE": 3_000_000,
      "tAgentRoutingStatus:INTERACTING": 590_000,
      "tSystemPresence:AVAILABLE": 3_600_000,
    });
    expect(bucket(10)).toEqual({
      "tAgentRoutingStatus:COMMUNICATING": 35_000,
      "tAgentRoutingStatus:IDLE": 2_400_000,
      "tAgentRoutingStatus:INTERACTING": 895_000,
      "tAgentRoutingStatus:NOT_RESPONDING": 270_000,
      "tSystemPresence:AVAILABLE": 3_600_000,
    });
    expect(bucket(12)).toEqual({
      "tAgentRoutingStatus:IDLE": 1_800_000,
      "tAgentRoutingStatus:OFF_QUEUE": 1_800_000,
      "tSystemPresence:AVAILABLE": 1_800_000,
      "tSystemPresence:MEAL": 1_800_000,
    });
    // Signed out at her last event (13:00:20); the open OFFLINE state runs to the bucket's end.
    expect(bucket(13)).toEqual({
      "tAgentRoutingStatus:COMMUNICATING": 20_000,
      "tAgentRoutingStatus:OFF_QUEUE": 3_580_000,
      "tSystemPresence:AVAILABLE": 20_000,
      "tSystemPresence:OFFLINE": 3_580_000,
    });
  });

  it("sums over agents without a groupBy, and gives organisation presences", async () => {
    const res = await f.usersAggregates({
      interval: "2024-03-10T09:00:00.000Z/2024-03-10T10:00:00.000Z",
      metrics: ["tOrganizationPresence"],
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().results).toEqual([
      {
        group: {},
        data: [
          {
            interval: "2024-03-10T09:00:00.000Z/2024-03-10T10:00:00.000Z",
            metrics: [
              { metric: "tOrganizationPresence", qualifier: "Available", stats: { sum: 3_600_000 } },
              { metric: "tOrganizationPresence", qualifier: "ONLINE", stats: { sum: 1_800_000 } },
            ],
          },
        ],
      },
    ]);
  });

  it("refuses unknown state names, too many user predicates and unknown metrics, naming the field", async () => {
    expectGenesysError(
      await f.usersDetails({
        interval: AGENT_DAY,
        presenceFilters: [{ type: "or", predicates: [{ dimension: "systemPresence", value: "SLEEPING" }] }],
      }),
      400,
      "bad.request",
      "presenceFilters[0].predicates[0].value",
      "SLEEPING",
    );
    expectGenesysError(
      await f.usersDetails({
        interval: AGENT_DAY,
        routingStatusFilters: [{ type: "or", predicates: [{ dimension: "routingStatus", value: "ON_BREAK" }] }],
      }),
      400,
      "bad.request",
      "routingStatusFilters[0].predicates[0].value",
    );
    const many = Array.from({ length: 101 }, (_, i) => ({ dimension: "userId", value: `u${i}` }));
    expectGenesysError(
      await f.usersDetails({
        interval: AGENT_DAY,
        userFilters: [
          { type: "or", predicates: many.slice(0, 100) },
          { type: "or", predicates: many.slice(100) },
        ],
      }),
      400,
      "bad.request",
      "at most 100 user predicates",
    );
    expectGenesysError(
      await f.usersAggregates({
        interval: AGENT_DAY,
        metrics: ["tSystemPresence"],
        filter: { type: "or", predicates: many.slice(0, 100), clauses: [{ type: "or", predicates: many.slice(100) }] },
      }),
      400,
      "bad.request",
      "at most 100 user predicates",
    );
    expectGenesysError(await f.usersAggregates({ interval: AGENT_DAY, metrics: ["tHandle"] }), 400, "bad.request", "metrics[0]");
    expectGenesysError(
      await f.usersDetails({ interval: "2024-01-01T00:00:00Z/2024-03-01T00:00:00Z" }),
      400,
      "bad.request",
      "at most 31 days",
    );
  });
});
