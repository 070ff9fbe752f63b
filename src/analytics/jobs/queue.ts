/**
 * The export jobs' queue: pg-boss (a PostgreSQL job queue) in the main database, schema
 * `pgboss`. It carries only references, `{organizationId, jobId, kind}`; what a job is and
 * how far it got is in the organisation's own database (store.ts). Two queues:
 *
 * - `analytics-export`: a slice of a job's work. A slice runs for a bounded time,
 *   checkpointing every page, then queues the next slice (also when the server stops); a
 *   slice that fails (the database went away) is retried, and one that was running when
 *   the process died is retried once pg-boss sees it expired. A retried slice resumes from
 *   the job's checkpoint; one job's slices never run at once (runner.ts takes a lock), so a
 *   slice queued twice after a crash only ends early.
 * - `analytics-export-cleanup`: deleting a finished job's snapshot and, at its
 *   expirationDate, its results (a job queued with `startAfter`, so it survives restarts).
 *
 * pg-boss starts lazily: at boot only when its schema exists (a job was ever submitted),
 * else at the first submission, so a server that never exports never polls for jobs.
 */
import PgBoss from "pg-boss";
import pg from "pg";
import type { FastifyBaseLogger } from "fastify";

export const EXPORT_QUEUE = "analytics-export";
export const CLEANUP_QUEUE = "analytics-export-cleanup";
const SCHEMA = "pgboss";

export interface JobRef {
  organizationId: string;
  jobId: string;
  kind: string;
}

export interface CleanupRef {
  organizationId: string;
  jobId: string;
  /** `purge`: the snapshot (and a cancelled or failed job's results); `expire`: the results, at expirationDate. */
  action: "purge" | "expire";
}

/** A slice is failed by pg-boss after this long; a slice stops itself well before (runner.ts). */
export const SLICE_EXPIRY_SECONDS = 300;

export interface QueueOptions {
  connectionString: () => string;
  /** Slices this server runs at once (0: it only queues). */
  concurrency: number;
  pollMs: number;
  log: FastifyBaseLogger;
  run(ref: JobRef, attempt: { retryCount: number; retryLimit: number }): Promise<void>;
  cleanup(ref: CleanupRef): Promise<void>;
}

export class ExportQueue {
  private starting?: Promise<PgBoss>;
  private stopped = false;
  private readonly workers: string[] = [];

  constructor(private readonly options: QueueOptions) {}

  /**
   * At boot: starts the queue if a job was ever queued in this database (its schema
   * exists). Asked on a connection of its own, never one the requests wait for.
   */
  async startIfInstalled(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString(),
      connectionTimeoutMillis: 5_000,
      query_timeout: 5_000,
    });
    let installed: boolean;
    try {
      await client.connect();
      const { rows } = await client.query<{ installed: boolean }>("SELECT to_regclass($1) IS NOT NULL AS installed", [
        `${SCHEMA}.job`,
      ]);
      installed = rows[0]!.installed;
    } finally {
      await client.end().catch(() => {});
    }
    if (installed) await this.started();
  }

  private started(): Promise<PgBoss> {
    // Once stopped, nothing starts; a slice that ends while the queue stops still queues its successor.
    if (this.stopped && !this.starting) return Promise.reject(new Error("the export job queue is stopped"));
    this.starting ??= this.start().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  private async start(): Promise<PgBoss> {
    const { options } = this;
    const boss = new PgBoss({
      connectionString: options.connectionString(),
      schema: SCHEMA,
      max: 2 + options.concurrency,
      application_name: "cif-analytics-export-queue",
      // Slices and cleanups are kept a day once done, for looking into; then pg-boss deletes them.
      deleteAfterDays: 1,
    });
    boss.on("error", (error) => options.log.warn({ err: error }, "export job queue error"));
    await boss.start();
    await boss.createQueue(EXPORT_QUEUE, {
      name: EXPORT_QUEUE,
      retryLimit: 5,
      retryDelay: 1,
      retryBackoff: true,
      expireInSeconds: SLICE_EXPIRY_SECONDS,
    });
    await boss.createQueue(CLEANUP_QUEUE, { name: CLEANUP_QUEUE, retryLimit: 10, retryDelay: 30, expireInSeconds: 900 });
    const pollingIntervalSeconds = options.pollMs / 1000;
    for (let i = 0; i < options.concurrency; i++) {
      this.workers.push(
        await boss.work<JobRef>(EXPORT_QUEUE, { includeMetadata: true, batchSize: 1, pollingIntervalSeconds }, async ([job]) => {
          if (job) await options.run(job.data, { retryCount: job.retryCount, retryLimit: job.retryLimit });
        }),
      );
    }
    if (options.concurrency > 0) {
      this.workers.push(
        await boss.work<CleanupRef>(CLEANUP_QUEUE, { batchSize: 1, pollingIntervalSeconds }, async ([job]) => {
          if (job) await options.cleanup(job.data);
        }),
      );
    }
    return boss;
  }

  /** Queues (the next slice of) a job. */
  async enqueue(ref: JobRef): Promise<void> {
    const boss = await this.started();
    await boss.send(EXPORT_QUEUE, ref);
    // An idle worker of this server need not wait for its next poll.
    for (const id of this.workers) boss.notifyWorker(id);
  }

  async cleanupAt(ref: CleanupRef, at: Date): Promise<void> {
    const boss = await this.started();
    await boss.send(CLEANUP_QUEUE, ref, { startAfter: at });
  }

  /** Stops fetching; waits (at most `timeoutMs`) for the slices running here, which end at their next page. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.stopped = true;
    const boss = await this.starting?.catch(() => undefined);
    await boss?.stop({ graceful: true, wait: true, timeout: timeoutMs });
  }
}
