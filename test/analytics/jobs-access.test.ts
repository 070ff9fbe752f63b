/**
 * Who may use export jobs (analysts and administrators; a provider writer gets 403, no
 * token 401, in Genesys' shape), and organisations: a job runs in, and is seen from, the
 * organisation that submitted it only; its id from another organisation answers 404.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { expectGenesysError } from "../helpers/analytics.js";
import { withAdminClient } from "../helpers/database.js";
import { JOBS, JOB_INTERVAL, type JobStatus } from "../helpers/export-jobs.js";
import { bearer, testDataDir, testPrincipal, tokenFor, tokenOf } from "../helpers/identity.js";
import { type ApiClient, apiClient, organizationResource } from "../helpers/tenancy.js";
import type { OrganizationDirectory } from "../../src/service/organizations.js";

const B_NAME = "jobs-b";
const B_PREFIX = `/org/${B_NAME}`;

async function logConversation(api: ApiClient, id: string): Promise<void> {
  const provider = await api.post("msdyn_ciproviders", { msdyn_name: `p-${id}` });
  expect(provider.statusCode, provider.body).toBe(204);
  const providerId = /\(([^)]+)\)$/.exec(String(provider.headers["odata-entityid"]))![1]!;
  const c = await api.post("msdyn_conversationsdata", {
    msdyn_conversationid: id,
    msdyn_name: id,
    msdyn_conversationtimestamp: "2024-02-01T09:00:00Z",
    msdyn_providerid: providerId,
  });
  expect(c.statusCode, c.body).toBe(204);
}

async function fulfilled(api: ApiClient, jobId: string): Promise<JobStatus> {
  let last: JobStatus | undefined;
  for (let i = 0; i < 400; i++) {
    const res = await api.inject("GET", `${JOBS}/${jobId}`);
    expect(res.statusCode, res.body).toBe(200);
    last = res.json<JobStatus>();
    if (last.state === "FULFILLED") break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return last!;
}

describe("export jobs: roles and organisations", () => {
  const t = useTestApp({
    AUTH_MODE: "builtin",
    DATA_DIR: testDataDir(),
    ANALYTICS_REFRESH_MS: "50",
    ANALYTICS_JOB_POLL_MS: "500",
  });
  let admin: ApiClient;
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
    const b = apiClient(t, await tokenOf(t.app, bAdmin, organizationResource(B_PREFIX)), { prefix: B_PREFIX });
    const analystOfB = await testPrincipal(t.app, ["Analyst"], { organizationId: body.organization.id });
    bAnalyst = apiClient(t, await tokenOf(t.app, analystOfB, organizationResource(B_PREFIX)), { prefix: B_PREFIX });
    await logConversation(admin, "job-conv-of-a");
    await logConversation(b, "job-conv-of-b");
    await t.app.analytics!.refreshNow(t.db.pool);
    await t.app.analytics!.refreshNow((await directory.databaseOf((await directory.byId(body.organization.id))!)).pool);
  });

  afterAll(async () => {
    await directory?.close();
    if (bDatabase) {
      const name = bDatabase;
      await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    }
  });

  it("runs a job in the submitting organisation only, and answers another organisation's job id with 404", async () => {
    const submitted = await bAnalyst.inject("POST", JOBS, { interval: JOB_INTERVAL });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const { jobId } = submitted.json<{ jobId: string }>();
    expect(await fulfilled(bAnalyst, jobId)).toMatchObject({ state: "FULFILLED", rowsExpected: 1 });
    const results = await bAnalyst.inject("GET", `${JOBS}/${jobId}/results`);
    expect(results.json<{ conversations: { conversationId: string }[] }>().conversations.map((c) => c.conversationId)).toEqual([
      "job-conv-of-b",
    ]);

    // The default organisation's administrator cannot see, read or cancel it.
    for (const [method, url] of [
      ["GET", `${JOBS}/${jobId}`],
      ["GET", `${JOBS}/${jobId}/results`],
      ["DELETE", `${JOBS}/${jobId}`],
    ] as const) {
      expectGenesysError(await admin.inject(method, url), 404, "not.found");
    }
    expect((await bAnalyst.inject("GET", `${JOBS}/${jobId}`)).json<JobStatus>().state).toBe("FULFILLED");

    // And A's own job holds A's conversation only.
    const own = (await admin.inject("POST", JOBS, { interval: JOB_INTERVAL })).json<{ jobId: string }>().jobId;
    await fulfilled(admin, own);
    const ownResults = await admin.inject("GET", `${JOBS}/${own}/results`);
    expect(ownResults.json<{ conversations: { conversationId: string }[] }>().conversations.map((c) => c.conversationId)).toEqual(
      ["job-conv-of-a"],
    );
    expectGenesysError(await bAnalyst.inject("GET", `${JOBS}/${own}`), 404, "not.found");
  });

  it("refuses channel providers (403) and callers without a token (401) on every job path", async () => {
    const job = (await admin.inject("POST", JOBS, { interval: JOB_INTERVAL })).json<{ jobId: string }>().jobId;
    const providerToken = await tokenFor(t.app, ["ChannelProvider"], { providerId: "5b3cf0f4-0000-4000-8000-000000000002" });
    const calls = [
      ["POST", JOBS],
      ["GET", `${JOBS}/availability`],
      ["GET", `${JOBS}/${job}`],
      ["GET", `${JOBS}/${job}/results`],
      ["DELETE", `${JOBS}/${job}`],
    ] as const;
    for (const [method, url] of calls) {
      const payload = method === "POST" ? { interval: JOB_INTERVAL } : undefined;
      expectGenesysError(
        await t.app.inject({ method, url, payload, headers: bearer(providerToken) }),
        403,
        "missing.any.permissions",
        "Analyst",
      );
      expectGenesysError(await t.app.inject({ method, url, payload }), 401, "authentication.required");
    }
    // The refused DELETE cancelled nothing.
    expect((await fulfilled(admin, job)).state).toBe("FULFILLED");
  });
});
