/**
 * Export jobs (issue 15), Genesys' async details jobs over our data: submit, status,
 * results by cursor, cancel, data availability; and the work behind them, run from the
 * queue (queue.ts) one slice at a time (runner.ts). Generic over the kind of extract
 * (kinds.ts). Callers pass the caller's organisation database; a job is looked up there
 * only, so another organisation's job id is answered as not found.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { FastifyBaseLogger } from "fastify";
import { AnalyticsError, analyticsBadRequest, analyticsNotFound } from "../errors.js";
import type { AnalyticsSettings } from "../settings.js";
import { EXPORT_KINDS, type ExportKind } from "./kinds.js";
import { type CleanupRef, ExportQueue, type JobRef, SLICE_EXPIRY_SECONDS } from "./queue.js";
import { runSlice } from "./runner.js";
import {
  type JobRow,
  dataAvailability,
  deleteJob,
  deleteLongExpired,
  findJob,
  insertJob,
  markCancelled,
  markExpired,
  purgeKeys,
  purgeResults,
  readResults,
  UNFINISHED,
} from "./store.js";

export const RESULTS_DEFAULT_PAGE_SIZE = 100;
export const RESULTS_MAX_PAGE_SIZE = 1000;
/** Days an EXPIRED job's row is kept (its GET answers EXPIRED) before it goes (404). */
export const EXPIRED_JOB_DAYS = 7;
/** A slice stops at its next page after this long and queues its successor. */
const SLICE_MS = Math.min(60_000, (SLICE_EXPIRY_SECONDS * 1000) / 5);

/** What the audit log hears of a job (WorkflowEvents, wired in by the plugin). */
export interface ExportJobEvents {
  started(organizationId: string, job: JobRow): void;
  finished(organizationId: string, job: JobRow): void;
}

export interface ExportJobsOptions {
  settings: AnalyticsSettings;
  /** The main database's URL, where the queue is. */
  queueUrl: () => string;
  concurrency: number;
  pollMs: number;
  page: number;
  pauseMs: number;
  expirySeconds: number;
  /** An organisation's database, by id; undefined once the organisation is gone. */
  poolOf(organizationId: string): Promise<pg.Pool | undefined>;
  events: ExportJobEvents;
  log: FastifyBaseLogger;
}

/** AsyncQueryStatus, plus the progress: `rowsWritten` of `rowsExpected` (absent until the job has counted them). */
export function jobStatus(job: JobRow) {
  return {
    jobId: job.id,
    state: job.state,
    submissionDate: job.submittedOn.toISOString(),
    ...(job.startedOn && { startDate: job.startedOn.toISOString() }),
    ...(job.completedOn && { completionDate: job.completedOn.toISOString() }),
    ...(job.expiresOn && { expirationDate: job.expiresOn.toISOString() }),
    ...(job.errorMessage && { errorMessage: job.errorMessage }),
    rowsWritten: job.rowsWritten,
    ...(job.rowsExpected !== null && { rowsExpected: job.rowsExpected }),
  };
}

const CURSOR = /^v1:(\d{1,10})$/;
const encodeCursor = (seq: number) => Buffer.from(`v1:${seq}`).toString("base64url");

function decodeCursor(cursor: string): number {
  const match = CURSOR.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match)
    throw analyticsBadRequest("cursor: not a cursor of this job's results; pass the `cursor` a results page gave.", {
      field: "cursor",
    });
  return Number(match[1]);
}

export class ExportJobs {
  readonly queue: ExportQueue;
  private stopping = false;
  private startTimer?: NodeJS.Timeout;
  private starting?: Promise<void>;

  constructor(private readonly options: ExportJobsOptions) {
    this.queue = new ExportQueue({
      connectionString: options.queueUrl,
      concurrency: options.concurrency,
      pollMs: options.pollMs,
      log: options.log,
      run: (ref, attempt) => this.runSlice(ref, attempt.retryCount >= attempt.retryLimit),
      cleanup: (ref) => this.cleanup(ref),
    });
  }

  kind(name: string): ExportKind {
    const kind = EXPORT_KINDS[name];
    if (!kind) throw analyticsNotFound(`No export jobs of ${name.slice(0, 40)}.`);
    return kind;
  }

  private async job(pool: pg.Pool, kind: ExportKind, jobId: string): Promise<JobRow> {
    const job = await findJob(pool, jobId, kind.name);
    if (!job) throw analyticsNotFound(`No ${kind.name} details job with id ${jobId.slice(0, 100)} was found.`);
    return job;
  }

  async submit(pool: pg.Pool, organizationId: string, kindName: string, body: unknown, submittedBy?: string) {
    const kind = this.kind(kindName);
    kind.parse(body); // a 400 naming the field, before anything is queued
    const id = randomUUID();
    await insertJob(pool, { id, kind: kind.name, query: JSON.stringify(body), submittedBy });
    try {
      await this.queue.enqueue({ organizationId, jobId: id, kind: kind.name });
    } catch (error) {
      await deleteJob(pool, id).catch(() => {});
      throw error;
    }
    return { jobId: id };
  }

  async status(pool: pg.Pool, kindName: string, jobId: string) {
    return jobStatus(await this.job(pool, this.kind(kindName), jobId));
  }

  /**
   * A page of a FULFILLED job's results, as JSON text (the stored records are not parsed
   * again): `{<resultsField>: [...], cursor?, dataAvailabilityDate}`; no cursor on the last page.
   */
  async results(pool: pg.Pool, kindName: string, jobId: string, cursor?: string, pageSize?: number): Promise<string> {
    const kind = this.kind(kindName);
    const size = pageSize ?? RESULTS_DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(size) || size < 1 || size > RESULTS_MAX_PAGE_SIZE) {
      throw analyticsBadRequest(
        `pageSize: ${size} is out of range; a results page holds 1 to ${RESULTS_MAX_PAGE_SIZE} records.`,
        {
          field: "pageSize",
        },
      );
    }
    const after = cursor ? decodeCursor(cursor) : 0;
    const job = await this.job(pool, kind, jobId);
    if (job.state !== "FULFILLED") {
      throw new AnalyticsError(
        400,
        "bad.request",
        `The job is ${job.state}; its results can be read once it is FULFILLED${job.state === "EXPIRED" ? " (they have expired and were deleted)" : ""}.`,
        { field: "jobId", state: job.state },
      );
    }
    const rows = await readResults(pool, job.id, after, size + 1);
    const page = rows.slice(0, size);
    const next = rows.length > size ? encodeCursor(page[page.length - 1]!.seq) : undefined;
    const availability = (await dataAvailability(pool)).toISOString();
    return (
      `{${JSON.stringify(kind.resultsField)}:[${page.map((r) => r.body).join(",")}]` +
      `${next ? `,"cursor":${JSON.stringify(next)}` : ""},"dataAvailabilityDate":${JSON.stringify(availability)}}`
    );
  }

  /**
   * Cancels an unfinished job (CANCELLED, its partial results deleted); a finished one's
   * results are discarded at once (EXPIRED). An EXPIRED job stays so.
   */
  async cancel(pool: pg.Pool, organizationId: string, kindName: string, jobId: string): Promise<void> {
    const job = await this.job(pool, this.kind(kindName), jobId);
    const cancelled = await markCancelled(pool, job.id, this.options.expirySeconds);
    if (cancelled) {
      this.options.events.finished(organizationId, cancelled);
      await this.queue.cleanupAt({ organizationId, jobId: job.id, action: "purge" }, new Date());
      await this.queue.cleanupAt({ organizationId, jobId: job.id, action: "expire" }, cancelled.expiresOn!);
      return;
    }
    if (await markExpired(pool, job.id, true)) {
      await this.queue.cleanupAt({ organizationId, jobId: job.id, action: "purge" }, new Date());
    }
  }

  async availability(pool: pg.Pool) {
    return { dataAvailabilityDate: (await dataAvailability(pool)).toISOString() };
  }

  /** One slice of a job, from the queue. */
  private async runSlice(ref: JobRef, lastAttempt: boolean): Promise<void> {
    const kind = EXPORT_KINDS[ref.kind];
    const pool = await this.options.poolOf(ref.organizationId);
    if (!kind || !pool) {
      this.options.log.warn({ jobId: ref.jobId, kind: ref.kind }, "export job of an unknown kind or organisation dropped");
      return;
    }
    const result = await runSlice(pool, ref.jobId, kind, {
      settings: this.options.settings,
      page: this.options.page,
      pauseMs: this.options.pauseMs,
      expirySeconds: this.options.expirySeconds,
      deadline: Date.now() + SLICE_MS,
      stopping: () => this.stopping,
      lastAttempt,
      started: (job) => this.options.events.started(ref.organizationId, job),
    });
    if (result.outcome === "more") {
      await this.queue.enqueue(ref);
    } else if (result.outcome === "finished") {
      const { job } = result;
      this.options.events.finished(ref.organizationId, job);
      const purge: CleanupRef = { organizationId: ref.organizationId, jobId: job.id, action: "purge" };
      await this.queue.cleanupAt(purge, new Date());
      await this.queue.cleanupAt({ ...purge, action: "expire" }, job.expiresOn!);
    }
  }

  /** Deletes a job's snapshot (and, unless it was FULFILLED, its results); at expiry, its results. */
  private async cleanup(ref: CleanupRef): Promise<void> {
    const pool = await this.options.poolOf(ref.organizationId);
    if (!pool) return;
    if (ref.action === "expire") await markExpired(pool, ref.jobId);
    const job = await findJob(pool, ref.jobId);
    if (job?.state === "FULFILLED") await purgeKeys(pool, ref.jobId);
    else if (!job || !UNFINISHED.includes(job.state)) await purgeResults(pool, ref.jobId);
    if (ref.action === "expire") {
      for (const id of await deleteLongExpired(pool, EXPIRED_JOB_DAYS)) await purgeResults(pool, id);
    }
  }

  /**
   * At boot, shortly after (so that building the app touches no database): resumes the
   * queue if jobs were ever queued in the main database; tried again while that fails.
   */
  start(delayMs = Math.min(1000, this.options.pollMs)): void {
    this.stopping = false;
    this.startTimer = setTimeout(() => {
      this.starting = this.queue.startIfInstalled().catch((error: unknown) => {
        if (this.stopping) return;
        this.options.log.warn({ err: error }, "export job queue: could not start; trying again in 30 s");
        this.start(30_000);
      });
    }, delayMs);
    this.startTimer.unref();
  }

  /** Running slices stop at their next page (and queue their successor); then the queue stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.startTimer);
    await this.starting;
    await this.queue.stop();
  }
}
