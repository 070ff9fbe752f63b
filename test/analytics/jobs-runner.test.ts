/**
 * One slice of an export job (src/analytics/jobs/runner.ts) against the database, without
 * the queue: a slice that dies mid-job leaves a checkpoint the next one resumes from, with
 * no record written twice; two slices of one job never run at once; a failure on the
 * queue's last try, or a query that no longer parses, fails the job.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { JOB_INTERVAL, seedConversations } from "../helpers/export-jobs.js";
import { type ExportKind, conversationsKind } from "../../src/analytics/jobs/kinds.js";
import { type SliceOptions, runSlice } from "../../src/analytics/jobs/runner.js";
import { findJob, insertJob } from "../../src/analytics/jobs/store.js";

describe("an export job's slices", () => {
  // No worker: the tests run the slices themselves.
  const t = useTestApp({ ANALYTICS_JOB_CONCURRENCY: "0" });
  let ids: string[] = [];
  const options = (overrides: Partial<SliceOptions> = {}): SliceOptions => ({
    settings: t.app.analytics!.settings,
    page: 3,
    pauseMs: 0,
    expirySeconds: 60,
    deadline: Date.now() + 60_000,
    stopping: () => false,
    lastAttempt: false,
    started: () => {},
    ...overrides,
  });
  const newJob = async (body: unknown = { interval: JOB_INTERVAL }) => {
    const id = randomUUID();
    await insertJob(t.db.pool, { id, kind: "conversations", query: JSON.stringify(body) });
    return id;
  };
  const results = async (id: string) =>
    (
      await t.db.pool.query<{ seq: number; body: string }>(
        "SELECT seq, body FROM cif_analytics_exportresult WHERE jobid = $1 ORDER BY seq",
        [id],
      )
    ).rows.map((r) => (JSON.parse(r.body) as { conversationId: string }).conversationId);

  beforeAll(async () => {
    ids = await seedConversations(t, 10, "slice");
  });

  it("resumes from the last written page after a slice died, writing every record once", async () => {
    const id = await newJob();
    let pages = 0;
    // Dies while rendering its third page.
    const dying: ExportKind = {
      ...(conversationsKind as ExportKind),
      render: async (db, keys, settings, query) => {
        if (++pages === 3) throw new Error("the process died");
        return (conversationsKind as ExportKind).render(db, keys, settings, query);
      },
    };
    await expect(runSlice(t.db.pool, id, dying, options())).rejects.toThrow("the process died");
    expect(await findJob(t.db.pool, id)).toMatchObject({ state: "PENDING", rowsWritten: 6, rowsExpected: 10 });
    expect(await results(id)).toEqual(ids.slice(0, 6));

    const started: string[] = [];
    const outcome = await runSlice(t.db.pool, id, conversationsKind, options({ started: (j) => started.push(j.id) }));
    expect(outcome).toMatchObject({ outcome: "finished", job: { state: "FULFILLED", rowsWritten: 10 } });
    expect(started).toEqual([]); // it had started before
    expect(await results(id)).toEqual(ids);
  });

  it("stops at its deadline or when the server stops, to be continued", async () => {
    const id = await newJob();
    const first = await runSlice(t.db.pool, id, conversationsKind, options({ deadline: 0 }));
    expect(first).toEqual({ outcome: "more", rowsWritten: 0 });
    let calls = 0;
    const second = await runSlice(t.db.pool, id, conversationsKind, options({ stopping: () => ++calls > 2 }));
    expect(second).toEqual({ outcome: "more", rowsWritten: 6 });
    expect(await runSlice(t.db.pool, id, conversationsKind as ExportKind, options())).toMatchObject({ outcome: "finished" });
    expect(await results(id)).toEqual(ids);
  });

  it("leaves a job another slice holds alone", async () => {
    const id = await newJob();
    const holder = await t.db.pool.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [`analytics-export:${id}`]);
      expect(await runSlice(t.db.pool, id, conversationsKind as ExportKind, options())).toEqual({ outcome: "skipped" });
      expect(await findJob(t.db.pool, id)).toMatchObject({ state: "QUEUED", rowsWritten: 0 });
    } finally {
      await holder.query("SELECT pg_advisory_unlock_all()");
      holder.release();
    }
    expect(await runSlice(t.db.pool, id, conversationsKind as ExportKind, options())).toMatchObject({ outcome: "finished" });
  });

  it("fails the job on the queue's last try, and at once for a query that no longer parses", async () => {
    const id = await newJob();
    const broken: ExportKind = {
      ...(conversationsKind as ExportKind),
      render: () => Promise.reject(new Error("disk full")),
    };
    await expect(runSlice(t.db.pool, id, broken, options())).rejects.toThrow("disk full");
    expect((await findJob(t.db.pool, id))!.state).toBe("PENDING");
    expect(await runSlice(t.db.pool, id, broken, options({ lastAttempt: true }))).toMatchObject({
      outcome: "finished",
      job: { state: "FAILED", errorMessage: "disk full" },
    });

    const stale = await newJob({ interval: JOB_INTERVAL, orderBy: "noSuchOrder" });
    expect(await runSlice(t.db.pool, stale, conversationsKind as ExportKind, options())).toMatchObject({
      outcome: "finished",
      job: { state: "FAILED", errorMessage: expect.stringContaining("orderBy") },
    });
  });
});
