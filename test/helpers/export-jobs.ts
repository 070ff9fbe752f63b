/** Export job fixtures: conversations spread over two months, and polling a job through its states. */
import { expect } from "vitest";
import type { FastifyInstance } from "fastify";
import type { TestApp } from "./app.js";
import { analyticsFixtures } from "./analytics.js";

export const JOBS = "/api/v2/analytics/conversations/details/jobs";
/** Longer than the details query's 31 days: a job has no such bound. */
export const JOB_INTERVAL = "2024-01-01T00:00:00.000Z/2024-03-15T00:00:00.000Z";

/** `count` conversations, one every two days from 2024-01-01 09:00 Z, each with a queued session; derived. */
export async function seedConversations(t: TestApp, count: number, prefix = "job-conv", headers: Record<string, string> = {}) {
  const f = analyticsFixtures(t, headers);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${String(i).padStart(3, "0")}`;
    const at = new Date(Date.UTC(2024, 0, 1 + 2 * i, 9)).toISOString();
    await f.conversation({ id, at, sessions: [{ id: "s1", queueId: "q-jobs", created: at }], events: [] });
    ids.push(id);
  }
  await f.refresh();
  return ids;
}

export interface JobStatus {
  jobId: string;
  state: string;
  submissionDate: string;
  completionDate?: string;
  expirationDate?: string;
  errorMessage?: string;
  rowsWritten: number;
  rowsExpected?: number;
}

type Inject = (
  method: "GET" | "POST" | "DELETE",
  url: string,
  body?: unknown,
) => Promise<{ statusCode: number; body: string; json<T = unknown>(): T }>;

export const injector =
  (app: () => FastifyInstance, headers: Record<string, string> = {}): Inject =>
  (method, url, body) =>
    app().inject({ method, url, headers, ...(body !== undefined && { payload: body as object }) });

export async function submit(inject: Inject, body: unknown, jobs = JOBS): Promise<string> {
  const res = await inject("POST", jobs, body);
  expect(res.statusCode, res.body).toBe(202);
  const { jobId } = res.json<{ jobId: string }>();
  expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
  return jobId;
}

export async function status(inject: Inject, jobId: string, jobs = JOBS): Promise<JobStatus> {
  const res = await inject("GET", `${jobs}/${jobId}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<JobStatus>();
}

/** Polls (at most ~20 s) until the job's status satisfies `done`; returns the last status. */
export async function waitFor(inject: Inject, jobId: string, done: (s: JobStatus) => boolean, jobs = JOBS): Promise<JobStatus> {
  let last = await status(inject, jobId, jobs);
  for (let i = 0; i < 400 && !done(last); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await status(inject, jobId, jobs);
  }
  return last;
}

/** Every page of a FULFILLED job's results, following the cursor (at most 1,000 pages). */
export async function allResults(inject: Inject, jobId: string, pageSize: number, jobs = JOBS) {
  const pages: {
    conversations: { conversationId: string; conversationStart: string }[];
    userDetails?: { userId: string }[];
    cursor?: string;
  }[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const query = new URLSearchParams({ pageSize: String(pageSize), ...(cursor && { cursor }) });
    const res = await inject("GET", `${jobs}/${jobId}/results?${query.toString()}`);
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json<(typeof pages)[number] & { dataAvailabilityDate: string }>();
    expect(page.dataAvailabilityDate).toEqual(expect.any(String));
    pages.push(page);
    cursor = page.cursor;
    if (!cursor) break;
  }
  return pages;
}
