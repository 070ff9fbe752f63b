/**
 * Genesys Cloud's own JavaScript SDK (npm purecloud-platform-client-v2), unmodified, its
 * AnalyticsApi pointed at the app listening on loopback with a bearer token from our
 * issuer: the details and aggregates calls over the hand-computed day, and an error.
 */
import type { AddressInfo } from "node:net";
import platformClient from "purecloud-platform-client-v2";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures } from "../helpers/analytics.js";
import { testDataDir, tokenFor } from "../helpers/identity.js";
import { ANSWERED, DAY, DAY_INTERVAL, Q1, TRANSFERRED } from "../analytics/day-fixture.js";

describe("Genesys' purecloud-platform-client-v2 SDK against the analytics API", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let analytics: platformClient.AnalyticsApi;

  beforeAll(async () => {
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = t.app.server.address() as AddressInfo;
    const token = await tokenFor(t.app, ["Analyst"], { resource: `http://127.0.0.1:${port}` });
    // The fixtures go in as an administrator; the SDK reads as an analyst.
    const adminToken = await tokenFor(t.app, ["Administrator"]);
    const f = analyticsFixtures(t, { authorization: `Bearer ${adminToken}` });
    for (const c of DAY) await f.conversation(c);
    await f.refresh();

    const client = platformClient.ApiClient.instance;
    client.setGateway({ host: "127.0.0.1", protocol: "http", port });
    client.setAccessToken(token);
    analytics = new platformClient.AnalyticsApi();
  });

  it("queries conversation details", async () => {
    const page = await analytics.postAnalyticsConversationsDetailsQuery({
      interval: DAY_INTERVAL,
      order: "asc",
      orderBy: "conversationStart",
      paging: { pageSize: 2, pageNumber: 1 },
      segmentFilters: [
        { type: "and", predicates: [{ type: "dimension", dimension: "queueId", operator: "matches", value: Q1 }] },
      ],
    });
    expect(page.totalHits).toBe(3);
    expect(page.conversations!.map((c) => c.conversationId)).toEqual([ANSWERED.id, "day-abandoned"]);
    const agent = page.conversations![0]!.participants!.find((p) => p.purpose === "agent")!;
    expect(agent.sessions![0]!.metrics!.find((m) => m.name === "tHandle")).toEqual({
      name: "tHandle",
      value: 335_000,
      emitDate: "2024-03-10T14:06:00.000Z",
    });
  });

  it("gets one conversation and several by id", async () => {
    const one = await analytics.getAnalyticsConversationDetails(TRANSFERRED.id);
    expect(one.conversationId).toBe(TRANSFERRED.id);
    expect(one.participants!.map((p) => p.purpose).sort()).toEqual(["acd", "acd", "agent", "agent", "agent"]);
    const several = await analytics.getAnalyticsConversationsDetails({ id: [TRANSFERRED.id, ANSWERED.id] });
    expect(several.conversations!.map((c) => c.conversationId)).toEqual([TRANSFERRED.id, ANSWERED.id]);
  });

  it("queries conversation aggregates", async () => {
    const result = await analytics.postAnalyticsConversationsAggregatesQuery({
      interval: DAY_INTERVAL,
      granularity: "P1D",
      timeZone: "UTC",
      groupBy: ["queueId"],
      filter: { type: "and", predicates: [{ type: "dimension", dimension: "queueId", operator: "matches", value: Q1 }] },
      metrics: ["nOffered", "tAnswered", "oServiceLevel"],
    });
    expect(result.results).toEqual([
      {
        group: { queueId: Q1 },
        data: [
          {
            interval: DAY_INTERVAL,
            metrics: [
              { metric: "nOffered", stats: { count: 2 } },
              { metric: "tAnswered", stats: { max: 20_000, min: 8_000, count: 2, sum: 28_000 } },
              { metric: "oServiceLevel", stats: { ratio: 2 / 3, numerator: 2, denominator: 3, target: 0.8 } },
            ],
          },
        ],
      },
    ]);
  });

  it("surfaces our errors as the SDK surfaces Genesys' errors", async () => {
    const failure = await analytics
      .postAnalyticsConversationsAggregatesQuery({ interval: DAY_INTERVAL, metrics: ["nBogus"] })
      .then(
        () => undefined,
        (error: unknown) => error as { status: number; code: string; message: string; contextId: string },
      );
    expect(failure?.status).toBe(400);
    // The SDK rejects with the error body itself, as it does for Genesys Cloud.
    expect(failure?.code).toBe("bad.request");
    expect(failure?.message).toContain("nBogus");
    expect(failure?.contextId).toEqual(expect.any(String));
  });
});
