/**
 * Genesys Cloud's own JavaScript SDK (npm purecloud-platform-client-v2), unmodified, for
 * the export job flow: submit, poll until FULFILLED, page the results by cursor to the
 * end, availability, delete; and an unknown job as the SDK sees it.
 */
import type { AddressInfo } from "node:net";
import platformClient from "purecloud-platform-client-v2";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { testDataDir, tokenFor } from "../helpers/identity.js";
import { JOB_INTERVAL, seedConversations } from "../helpers/export-jobs.js";

describe("Genesys' purecloud-platform-client-v2 SDK through an export job", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir(), ANALYTICS_JOB_POLL_MS: "500" });
  let analytics: platformClient.AnalyticsApi;
  let ids: string[] = [];

  beforeAll(async () => {
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = t.app.server.address() as AddressInfo;
    const token = await tokenFor(t.app, ["Analyst"], { resource: `http://127.0.0.1:${port}` });
    const adminToken = await tokenFor(t.app, ["Administrator"]);
    ids = await seedConversations(t, 5, "sdk-job", { authorization: `Bearer ${adminToken}` });
    const client = platformClient.ApiClient.instance;
    client.setGateway({ host: "127.0.0.1", protocol: "http", port });
    client.setAccessToken(token);
    analytics = new platformClient.AnalyticsApi();
  });

  it("submits a job, polls it to FULFILLED and pages its results to the end", async () => {
    const { jobId } = await analytics.postAnalyticsConversationsDetailsJobs({
      interval: JOB_INTERVAL,
      order: "asc",
      orderBy: "conversationStart",
      segmentFilters: [
        { type: "and", predicates: [{ type: "dimension", dimension: "queueId", operator: "matches", value: "q-jobs" }] },
      ],
    });
    expect(jobId).toEqual(expect.any(String));
    let status = await analytics.getAnalyticsConversationsDetailsJob(jobId!);
    for (let i = 0; i < 400 && status.state !== "FULFILLED"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = await analytics.getAnalyticsConversationsDetailsJob(jobId!);
    }
    expect(status).toMatchObject({ state: "FULFILLED", submissionDate: expect.any(String), completionDate: expect.any(String) });

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await analytics.getAnalyticsConversationsDetailsJobResults(jobId!, { pageSize: 2, ...(cursor && { cursor }) });
      expect(page.dataAvailabilityDate).toEqual(expect.any(String));
      seen.push(...page.conversations!.map((c) => c.conversationId!));
      cursor = page.cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(ids);

    const { dataAvailabilityDate } = await analytics.getAnalyticsConversationsDetailsJobsAvailability();
    expect(new Date(dataAvailabilityDate!).getTime()).toBeGreaterThan(0);

    await analytics.deleteAnalyticsConversationsDetailsJob(jobId!);
    expect((await analytics.getAnalyticsConversationsDetailsJob(jobId!)).state).toBe("EXPIRED");
  });

  it("gets a Genesys-shaped 404 for a job it does not have", async () => {
    const error = await analytics.getAnalyticsConversationsDetailsJob("00000000-0000-4000-8000-000000000000").then(
      () => undefined,
      (e: unknown) => e as { status: number; code: string },
    );
    // The SDK rejects with the error body itself, as it does for Genesys Cloud.
    expect(error).toMatchObject({ status: 404, code: "not.found" });
  });
});
