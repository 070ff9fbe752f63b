/**
 * Export jobs (issue 15) through HTTP: a job through completion, paged to the end with
 * every conversation exactly once; the body checked as the details query checks it;
 * results of an unfinished job refused; cancelled; a server restart in the middle of a
 * job (it resumes and finishes); expiry and clean-up; availability; WorkflowEvents.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.js";
import { type TestApp, createTestApp, useTestApp } from "../helpers/app.js";
import { expectGenesysError } from "../helpers/analytics.js";
import { JOBS, JOB_INTERVAL, allResults, injector, seedConversations, status, submit, waitFor } from "../helpers/export-jobs.js";

const settled = (s: { state: string }) => !["QUEUED", "PENDING"].includes(s.state);

async function rowsOf(t: TestApp, table: string, jobId: string): Promise<number> {
  const { rows } = await t.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE jobid = $1`, [jobId]);
  return rows[0]!.n;
}

describe("export jobs: completion, paging and checks", () => {
  const t = useTestApp({ ANALYTICS_JOB_POLL_MS: "500", ANALYTICS_JOB_PAGE: "4" });
  const inject = injector(() => t.app);
  let ids: string[] = [];

  beforeAll(async () => {
    ids = await seedConversations(t, 30);
  });

  it("extracts every matching conversation exactly once, in order, paged by cursor to the end", async () => {
    const jobId = await submit(inject, { interval: JOB_INTERVAL, order: "asc", orderBy: "conversationStart" });
    const done = await waitFor(inject, jobId, settled);
    expect(done).toMatchObject({ jobId, state: "FULFILLED", rowsWritten: 30, rowsExpected: 30 });
    expect(new Date(done.completionDate!).getTime()).toBeGreaterThanOrEqual(new Date(done.submissionDate).getTime());
    // The default expiry: a day after completion.
    expect(new Date(done.expirationDate!).getTime() - new Date(done.completionDate!).getTime()).toBe(86_400_000);

    const pages = await allResults(inject, jobId, 7);
    expect(pages.map((p) => p.conversations.length)).toEqual([7, 7, 7, 7, 2]);
    expect(pages.at(-1)!.cursor).toBeUndefined();
    const got = pages.flatMap((p) => p.conversations.map((c) => c.conversationId));
    expect(got).toEqual(ids);
    expect(new Set(got).size).toBe(30);
    // Detail records as the details query gives them.
    expect(pages[0]!.conversations[0]).toMatchObject({ conversationId: ids[0], conversationStart: "2024-01-01T09:00:00.000Z" });

    // The default page, and the bounds.
    expect((await allResults(inject, jobId, 1000)).map((p) => p.conversations.length)).toEqual([30]);
    const first = await inject("GET", `${JOBS}/${jobId}/results`);
    expect(first.json<{ conversations: unknown[]; cursor?: string }>().conversations).toHaveLength(30);
    expect(expectGenesysError(await inject("GET", `${JOBS}/${jobId}/results?pageSize=1001`), 400, "bad.request")).toContain(
      "pageSize",
    );
    expect(expectGenesysError(await inject("GET", `${JOBS}/${jobId}/results?pageSize=ten`), 400, "bad.request")).toContain(
      "pageSize",
    );
    expect(expectGenesysError(await inject("GET", `${JOBS}/${jobId}/results?cursor=nonsense`), 400, "bad.request")).toContain(
      "cursor",
    );
  });

  it("applies the details query's filters and order, and `limit`", async () => {
    const desc = await submit(inject, {
      interval: JOB_INTERVAL,
      order: "desc",
      segmentFilters: [{ type: "and", predicates: [{ dimension: "queueId", value: "q-jobs" }] }],
      limit: 5,
    });
    expect(await waitFor(inject, desc, settled)).toMatchObject({ state: "FULFILLED", rowsExpected: 5 });
    const got = (await allResults(inject, desc, 2)).flatMap((p) => p.conversations.map((c) => c.conversationId));
    expect(got).toEqual(ids.slice(-5).reverse());

    const none = await submit(inject, {
      interval: JOB_INTERVAL,
      segmentFilters: [{ type: "and", predicates: [{ dimension: "queueId", value: "no-such-queue" }] }],
    });
    expect(await waitFor(inject, none, settled)).toMatchObject({ state: "FULFILLED", rowsExpected: 0, rowsWritten: 0 });
    expect((await allResults(inject, none, 10)).map((p) => p.conversations)).toEqual([[]]);
  });

  it("refuses a bad body with a 400 naming the field, and queues nothing", async () => {
    const cases: [unknown, string][] = [
      [{}, "interval"],
      [{ interval: "yesterday" }, "interval"],
      [{ interval: JOB_INTERVAL, order: "sideways" }, "order"],
      [{ interval: JOB_INTERVAL, paging: { pageSize: 10 } }, "paging"],
      [{ interval: JOB_INTERVAL, limit: 0 }, "limit"],
      [
        { interval: JOB_INTERVAL, conversationFilters: [{ type: "and", predicates: [{ dimension: "nope", value: "x" }] }] },
        "conversationFilters[0].predicates[0].dimension",
      ],
      [{ interval: JOB_INTERVAL, surprise: true }, "(body)"],
    ];
    for (const [body, field] of cases) {
      const res = await inject("POST", JOBS, body);
      expectGenesysError(res, 400, "bad.request");
      expect(res.json<{ messageParams: { field: string } }>().messageParams.field, JSON.stringify(body)).toBe(field);
    }
    const { rows } = await t.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM cif_analytics_exportjob");
    expect(rows[0]!.n).toBe(3); // the three jobs of the tests above
  });

  it("answers 404 in Genesys' shape for a job id it does not know", async () => {
    for (const id of ["00000000-0000-4000-8000-000000000000", "not-a-job"]) {
      expectGenesysError(await inject("GET", `${JOBS}/${id}`), 404, "not.found");
      expectGenesysError(await inject("GET", `${JOBS}/${id}/results`), 404, "not.found");
      expectGenesysError(await inject("DELETE", `${JOBS}/${id}`), 404, "not.found");
    }
  });

  it("tells how far the derived data is complete", async () => {
    const before = Date.now();
    const res = await inject("GET", `${JOBS}/availability`);
    expect(res.statusCode, res.body).toBe(200);
    // Nothing waits for the refresher: complete up to now.
    expect(new Date(res.json<{ dataAvailabilityDate: string }>().dataAvailabilityDate).getTime()).toBeGreaterThanOrEqual(
      before - 1000,
    );
    // A conversation waiting to be re-derived holds it back to when it was queued.
    await t.db.pool.query(
      "INSERT INTO cif_analytics_dirty (conversationid, createdon) VALUES ('waiting', '2024-06-01T00:00:00Z')",
    );
    try {
      const held = await inject("GET", `${JOBS}/availability`);
      expect(held.json()).toEqual({ dataAvailabilityDate: "2024-06-01T00:00:00.000Z" });
    } finally {
      await t.db.pool.query("DELETE FROM cif_analytics_dirty WHERE conversationid = 'waiting'");
    }
  });
});

describe("export jobs: unfinished, cancelled, and a restart in the middle", () => {
  // One conversation a page, with a pause between pages: a job of 30 takes seconds.
  const env = { ANALYTICS_JOB_POLL_MS: "500", ANALYTICS_JOB_PAGE: "1", ANALYTICS_JOB_PAUSE_MS: "150", AUDIT_FLUSH_MS: "50" };
  let t: TestApp;
  let app: FastifyInstance;
  const inject = injector(() => app);
  let ids: string[] = [];

  beforeAll(async () => {
    t = await createTestApp(env);
    app = t.app;
    ids = await seedConversations(t, 30);
  });
  afterAll(async () => {
    if (!t) return;
    if (app === t.app) return t.close();
    // The first app closed mid-test.
    await app.close();
    await t.db.close();
    await t.testDb.drop();
  });

  it("refuses the results of a job that has not finished", async () => {
    const jobId = await submit(inject, { interval: JOB_INTERVAL });
    const res = await inject("GET", `${JOBS}/${jobId}/results`);
    expectGenesysError(res, 400, "bad.request", "FULFILLED");
    expect(["QUEUED", "PENDING"]).toContain(res.json<{ messageParams: { state: string } }>().messageParams.state);
    await inject("DELETE", `${JOBS}/${jobId}`);
  });

  it("cancels a running job: it stops, and what it wrote is deleted", async () => {
    const jobId = await submit(inject, { interval: JOB_INTERVAL });
    const running = await waitFor(inject, jobId, (s) => s.rowsWritten >= 2);
    expect(running.state).toBe("PENDING");
    const cancelled = await inject("DELETE", `${JOBS}/${jobId}`);
    expect(cancelled.statusCode, cancelled.body).toBe(204);
    const after = await status(inject, jobId);
    expect(after).toMatchObject({ state: "CANCELLED", completionDate: expect.any(String), expirationDate: expect.any(String) });
    expectGenesysError(await inject("GET", `${JOBS}/${jobId}/results`), 400, "bad.request", "CANCELLED");
    // The purge runs from the queue; the runner writes nothing more.
    for (
      let i = 0;
      i < 200 && (await rowsOf(t, "cif_analytics_exportresult", jobId)) + (await rowsOf(t, "cif_analytics_exportkey", jobId)) > 0;
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await rowsOf(t, "cif_analytics_exportresult", jobId)).toBe(0);
    expect(await rowsOf(t, "cif_analytics_exportkey", jobId)).toBe(0);
    expect((await status(inject, jobId)).state).toBe("CANCELLED");
    // Cancelling again changes nothing more than discarding (it is finished).
    expect((await inject("DELETE", `${JOBS}/${jobId}`)).statusCode).toBe(204);
    expect((await status(inject, jobId)).state).toBe("EXPIRED");
  });

  it("resumes a job after the server restarts in its middle, and finishes it with every conversation once", async () => {
    const jobId = await submit(inject, { interval: JOB_INTERVAL });
    const midway = await waitFor(inject, jobId, (s) => s.rowsWritten >= 3);
    expect(midway.state).toBe("PENDING");
    await app.close();
    const stopped = (
      await t.db.pool.query<{ rowswritten: number; state: string }>(
        "SELECT rowswritten, state FROM cif_analytics_exportjob WHERE cif_analytics_exportjobid = $1",
        [jobId],
      )
    ).rows[0]!;
    expect(stopped.state).toBe("PENDING");
    expect(stopped.rowswritten).toBeLessThan(30);

    // A new server on the same database, without the pause.
    app = await buildApp({ config: { ...t.config, ANALYTICS_JOB_PAUSE_MS: 0 }, db: t.db, logger: false });
    await app.ready();
    await app.identity.ready();
    const done = await waitFor(inject, jobId, settled);
    expect(done).toMatchObject({ state: "FULFILLED", rowsWritten: 30, rowsExpected: 30 });
    // Resumed, not restarted: the start it had before the restart.
    expect(done.submissionDate).toBe(midway.submissionDate);
    const got = (await allResults(inject, jobId, 8)).flatMap((p) => p.conversations.map((c) => c.conversationId));
    expect(got).toEqual(ids);

    // One workflow in the audit log: started once, completed once.
    let events: { operationname: string }[] = [];
    for (let i = 0; i < 100; i++) {
      events = (
        await t.db.pool.query<{ operationname: string }>(
          "SELECT operationname FROM cieventsoperational WHERE workflowjobid = $1 ORDER BY timegenerated",
          [jobId],
        )
      ).rows;
      if (events.length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(events.map((e) => e.operationname)).toEqual(["AnalyticsExport.WorkflowStarted", "AnalyticsExport.WorkflowCompleted"]);
  });
});

describe("export jobs: expiry and clean-up", () => {
  const t = useTestApp({ ANALYTICS_JOB_POLL_MS: "500", ANALYTICS_JOB_EXPIRY_SECONDS: "2" });
  const inject = injector(() => t.app);

  beforeAll(async () => {
    await seedConversations(t, 5, "exp");
  });

  it("expires a finished job at its expirationDate: results refused and deleted, the job gone a week later", async () => {
    const jobId = await submit(inject, { interval: JOB_INTERVAL });
    const done = await waitFor(inject, jobId, settled);
    expect(done.state).toBe("FULFILLED");
    expect(new Date(done.expirationDate!).getTime() - new Date(done.completionDate!).getTime()).toBe(2000);
    expect((await allResults(inject, jobId, 100))[0]!.conversations).toHaveLength(5);

    const expired = await waitFor(inject, jobId, (s) => s.state === "EXPIRED");
    expect(expired.state).toBe("EXPIRED");
    expectGenesysError(await inject("GET", `${JOBS}/${jobId}/results`), 400, "bad.request", "EXPIRED");
    // The clean-up deletes the results just after marking the job.
    for (let i = 0; i < 100 && (await rowsOf(t, "cif_analytics_exportresult", jobId)) > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await rowsOf(t, "cif_analytics_exportresult", jobId)).toBe(0);
    expect(await rowsOf(t, "cif_analytics_exportkey", jobId)).toBe(0);

    // Expired more than 7 days ago: the next clean-up deletes the job itself.
    await t.db.pool.query(
      "UPDATE cif_analytics_exportjob SET expireson = now() - interval '8 days' WHERE cif_analytics_exportjobid = $1",
      [jobId],
    );
    const next = await submit(inject, { interval: JOB_INTERVAL });
    expect((await waitFor(inject, next, (s) => s.state === "EXPIRED")).state).toBe("EXPIRED");
    let gone = await inject("GET", `${JOBS}/${jobId}`);
    for (let i = 0; i < 100 && gone.statusCode !== 404; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      gone = await inject("GET", `${JOBS}/${jobId}`);
    }
    expectGenesysError(gone, 404, "not.found");
  });
});
