/**
 * Who may call the analytics API (analysts and administrators; provider writers get 403,
 * no token 401, both in Genesys' shape), and organisations: one organisation's analytics
 * never count or show another's conversations. Also the background refresher: a write is
 * reflected without anyone asking for a refresh.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { expectGenesysError } from "../helpers/analytics.js";
import { withAdminClient } from "../helpers/database.js";
import { bearer, testDataDir, testPrincipal, tokenFor, tokenOf } from "../helpers/identity.js";
import { type ApiClient, apiClient, organizationResource } from "../helpers/tenancy.js";
import type { OrganizationDirectory } from "../../src/service/organizations.js";

const B_NAME = "analytics-b";
const B_PREFIX = `/org/${B_NAME}`;
const INTERVAL = "2024-05-01T00:00:00.000Z/2024-05-02T00:00:00.000Z";
const AGGREGATES = "/api/v2/analytics/conversations/aggregates/query";
const DETAILS = "/api/v2/analytics/conversations/details/query";

async function logConversation(api: ApiClient, id: string): Promise<void> {
  const provider = await api.post("msdyn_ciproviders", { msdyn_name: `p-${id}` });
  expect(provider.statusCode, provider.body).toBe(204);
  const providerId = /\(([^)]+)\)$/.exec(String(provider.headers["odata-entityid"]))![1]!;
  expect((await api.patch(`msdyn_ciproviders(${providerId})`, { msdyn_enableanalytics: true })).statusCode).toBe(204);
  const c = await api.post("msdyn_conversationsdata", {
    msdyn_conversationid: id,
    msdyn_name: id,
    msdyn_conversationtimestamp: "2024-05-01T09:00:00Z",
    msdyn_providerid: providerId,
  });
  expect(c.statusCode, c.body).toBe(204);
  const s = await api.post("msdyn_sessionsdata", { msdyn_conversationid: id, msdyn_providersessionid: "s1", msdyn_queueid: "q" });
  expect(s.statusCode, s.body).toBe(204);
  const agent = `agent-${id}`;
  const p = await api.post("msdyn_sessionparticipantsdata", {
    msdyn_conversationid: id,
    msdyn_providersessionid: "s1",
    msdyn_participantid: agent,
    msdyn_name: agent,
  });
  expect(p.statusCode, p.body).toBe(204);
  const e = await api.post("msdyn_kpieventsdata", {
    msdyn_name: "NotificationReceived",
    msdyn_kpieventname: "NotificationReceived",
    msdyn_eventtimestamp: "2024-05-01T09:00:05Z",
    msdyn_conversationid: id,
    msdyn_providersessionid: "s1",
    msdyn_participantid: agent,
  });
  expect(e.statusCode, e.body).toBe(204);
}

describe("analytics access", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir(), ANALYTICS_REFRESH_MS: "50" });
  let admin: ApiClient;
  let b: ApiClient;
  let bAnalyst: ApiClient;
  let directory: OrganizationDirectory | undefined;
  let bDatabase: string | undefined;

  beforeAll(async () => {
    directory = t.app.identity.organizations;
    admin = apiClient(t, await tokenFor(t.app, ["Administrator"]));
    const created = await admin.inject("POST", "/api/admin/organizations", { name: B_NAME });
    expect(created.statusCode, created.body).toBe(201);
    const body = created.json();
    bDatabase = (await t.app.identity.store.organizationById(body.organization.id))!.databaseName!;
    const bAdmin = {
      id: body.administrator.id,
      clientId: body.administrator.clientId,
      clientSecret: body.clientSecret,
      tenant: body.organization.id,
    };
    b = apiClient(t, await tokenOf(t.app, bAdmin, organizationResource(B_PREFIX)), { prefix: B_PREFIX });
    const analystOfB = await testPrincipal(t.app, ["Analyst"], { organizationId: body.organization.id });
    bAnalyst = apiClient(t, await tokenOf(t.app, analystOfB, organizationResource(B_PREFIX)), { prefix: B_PREFIX });
    await logConversation(admin, "conv-of-a");
    await logConversation(b, "conv-of-b");
  });

  afterAll(async () => {
    await directory?.close();
    if (bDatabase) {
      const name = bDatabase;
      await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    }
  });

  /** Polls (at most 5 s) until the background refresher has derived what was written. */
  async function eventually(api: ApiClient, expected: number): Promise<unknown> {
    let last: unknown;
    for (let i = 0; i < 100; i++) {
      const res = await api.inject("POST", DETAILS, { interval: INTERVAL });
      last = res.json();
      if (res.statusCode === 200 && (last as { totalHits: number }).totalHits === expected) return last;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return last;
  }

  it("lets administrators and analysts in, and sees writes within a few refresher ticks", async () => {
    expect(await eventually(admin, 1)).toMatchObject({ totalHits: 1, conversations: [{ conversationId: "conv-of-a" }] });
    const analyst = apiClient(t, await tokenFor(t.app, ["Analyst"]));
    const res = await analyst.inject("POST", AGGREGATES, { interval: INTERVAL, metrics: ["nConversations"] });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().results[0].data[0].metrics).toEqual([{ metric: "nConversations", stats: { count: 1 } }]);
  });

  it("refuses channel providers (403) and callers without a token (401) in Genesys' shape", async () => {
    const providerToken = await tokenFor(t.app, ["ChannelProvider"], { providerId: "5b3cf0f4-0000-4000-8000-000000000001" });
    const refused = await t.app.inject({
      method: "POST",
      url: AGGREGATES,
      payload: { interval: INTERVAL, metrics: ["nOffered"] },
      headers: bearer(providerToken),
    });
    expectGenesysError(refused, 403, "missing.any.permissions", "Analyst");
    for (const url of [DETAILS, "/api/v2/analytics/conversations/conv-of-a/details"]) {
      const res = await t.app.inject({
        method: url.endsWith("details") ? "GET" : "POST",
        url,
        payload: url.endsWith("details") ? undefined : { interval: INTERVAL },
        headers: bearer(providerToken),
      });
      expectGenesysError(res, 403, "missing.any.permissions");
    }
    for (const [url, payload] of [
      ["/api/v2/analytics/users/details/query", { interval: INTERVAL }],
      ["/api/v2/analytics/users/aggregates/query", { interval: INTERVAL, metrics: ["tSystemPresence"] }],
      ["/api/v2/analytics/queues/observations/query", { metrics: ["oWaiting"] }],
    ] as const) {
      const res = await t.app.inject({ method: "POST", url, payload, headers: bearer(providerToken) });
      expectGenesysError(res, 403, "missing.any.permissions");
      expectGenesysError(await t.app.inject({ method: "POST", url, payload }), 401, "authentication.required");
    }
    const stream = "/api/v2/analytics/queues/observations/stream";
    expectGenesysError(
      await t.app.inject({ method: "GET", url: stream, headers: bearer(providerToken) }),
      403,
      "missing.any.permissions",
    );
    expectGenesysError(await t.app.inject({ method: "GET", url: stream }), 401, "authentication.required");
    const anonymous = await t.app.inject({
      method: "POST",
      url: AGGREGATES,
      payload: { interval: INTERVAL, metrics: ["nOffered"] },
    });
    expectGenesysError(anonymous, 401, "authentication.required");
    expect(anonymous.json().contextId).toEqual(expect.any(String));
  });

  it("keeps each organisation's analytics to its own conversations", async () => {
    expect(await eventually(bAnalyst, 1)).toMatchObject({ totalHits: 1, conversations: [{ conversationId: "conv-of-b" }] });
    expectGenesysError(await bAnalyst.inject("GET", "/api/v2/analytics/conversations/conv-of-a/details"), 404, "not.found");
    const byId = await bAnalyst.inject("GET", "/api/v2/analytics/conversations/details?id=conv-of-a,conv-of-b");
    expect(byId.json().conversations.map((c: { conversationId: string }) => c.conversationId)).toEqual(["conv-of-b"]);
    const counted = await bAnalyst.inject("POST", AGGREGATES, {
      interval: INTERVAL,
      metrics: ["nConversations"],
      groupBy: ["conversationId"],
    });
    expect(counted.json().results.map((r: { group: { conversationId: string } }) => r.group.conversationId)).toEqual([
      "conv-of-b",
    ]);
    const agents = await bAnalyst.inject("POST", "/api/v2/analytics/users/details/query", { interval: INTERVAL });
    expect(agents.json().userDetails.map((u: { userId: string }) => u.userId)).toEqual(["agent-conv-of-b"]);
    const agentsOfA = await admin.inject("POST", "/api/v2/analytics/users/details/query", { interval: INTERVAL });
    expect(agentsOfA.json().userDetails.map((u: { userId: string }) => u.userId)).toEqual(["agent-conv-of-a"]);
    // A's analyst does not see B's.
    const inA = await admin.inject("GET", "/api/v2/analytics/conversations/conv-of-b/details");
    expectGenesysError(inA, 404, "not.found");
  });
});
