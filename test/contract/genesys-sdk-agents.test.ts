/**
 * Genesys' JavaScript SDK (purecloud-platform-client-v2), unmodified, against the agent views:
 * users details and aggregates over the hand-computed agent day, and queue observations.
 */
import type { AddressInfo } from "node:net";
import platformClient from "purecloud-platform-client-v2";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { analyticsFixtures } from "../helpers/analytics.js";
import { testDataDir, tokenFor } from "../helpers/identity.js";
import { ADA_ROUTING, AGENT_DAY, AGENT_DAY_CONVERSATIONS, AQ1 } from "../analytics/agent-day-fixture.js";

describe("Genesys' SDK against the users and observations queries", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let analytics: platformClient.AnalyticsApi;

  beforeAll(async () => {
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = t.app.server.address() as AddressInfo;
    const token = await tokenFor(t.app, ["Analyst"], { resource: `http://127.0.0.1:${port}` });
    const adminToken = await tokenFor(t.app, ["Administrator"]);
    const f = analyticsFixtures(t, { authorization: `Bearer ${adminToken}` });
    for (const c of AGENT_DAY_CONVERSATIONS) await f.conversation(c);
    // A call waiting now in the day's first queue.
    await f.conversation({
      id: "sdk-waiting",
      at: new Date(Date.now() - 20_000).toISOString(),
      sessions: [{ id: "s1", queueId: AQ1, queueAssigned: new Date(Date.now() - 20_000).toISOString() }],
      events: [],
    });
    await f.refresh();
    const client = platformClient.ApiClient.instance;
    client.setGateway({ host: "127.0.0.1", protocol: "http", port });
    client.setAccessToken(token);
    analytics = new platformClient.AnalyticsApi();
  });

  it("queries users details", async () => {
    const page = await analytics.postAnalyticsUsersDetailsQuery({
      interval: AGENT_DAY,
      order: "asc",
      paging: { pageSize: 1, pageNumber: 1 },
      routingStatusFilters: [
        {
          type: "or",
          predicates: [{ type: "dimension", dimension: "routingStatus", operator: "matches", value: "NOT_RESPONDING" }],
        },
      ],
    });
    expect(page.totalHits).toBe(1);
    expect(page.userDetails![0]!.userId).toBe("ada");
    expect(page.userDetails![0]!.routingStatus).toEqual(ADA_ROUTING);
  });

  it("queries users aggregates", async () => {
    const answer = await analytics.postAnalyticsUsersAggregatesQuery({
      interval: "2024-03-10T10:00:00.000Z/2024-03-10T11:00:00.000Z",
      groupBy: ["userId"],
      filter: { type: "or", predicates: [{ type: "dimension", dimension: "userId", operator: "matches", value: "ada" }] },
      metrics: ["tAgentRoutingStatus"],
    });
    const metrics = answer.results![0]!.data![0]!.metrics!;
    expect(metrics.find((m) => m.qualifier === "NOT_RESPONDING")!.stats!.sum).toBe(270_000);
  });

  it("queries queue observations", async () => {
    const answer = await analytics.postAnalyticsQueuesObservationsQuery({
      filter: { type: "or", predicates: [{ type: "dimension", dimension: "queueId", operator: "matches", value: AQ1 }] },
      metrics: ["oWaiting", "oOnQueueUsers"],
      detailMetrics: ["oWaiting"],
    });
    const waiting = answer.results![0]!.data!.find((d) => d.metric === "oWaiting")!;
    expect(waiting.stats!.count).toBe(1);
    expect(waiting.observations![0]!.conversationId).toBe("sdk-waiting");
  });
});
