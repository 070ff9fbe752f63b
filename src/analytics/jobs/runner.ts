/**
 * One slice of an export job's work, in the job's organisation database: take the job
 * (QUEUED → PENDING), take its snapshot of keys once, then page by page render the next
 * keys' records and write them with the checkpoint in one transaction, until the job is
 * done, the slice's time is up, or the server stops. Memory is bounded by one page; a
 * slice that dies loses at most its current page, which the next slice writes again.
 *
 * A session advisory lock per job keeps two slices of one job from running at once (after
 * a crash a slice may be queued twice); the checkpoint's compare-and-set (writePage) keeps
 * a cancelled job from being written to.
 */
import type pg from "pg";
import { AnalyticsError } from "../errors.js";
import type { AnalyticsSettings } from "../settings.js";
import type { ExportKind } from "./kinds.js";
import { type JobRow, UNFINISHED, findJob, markFinished, markStarted, nextKeys, takeSnapshot, writePage } from "./store.js";

export interface SliceOptions {
  settings: AnalyticsSettings;
  /** Records per page (transaction). */
  page: number;
  /** Pause between pages, in milliseconds. */
  pauseMs: number;
  expirySeconds: number;
  /** Date.now() after which the slice stops at its next page and asks for a successor. */
  deadline: number;
  stopping(): boolean;
  /** Whether this is the queue's last try of the slice: a failure then fails the job. */
  lastAttempt: boolean;
  started(job: JobRow): void;
}

export type SliceOutcome =
  /** Another slice holds the job, or it is no longer running (cancelled, finished). */
  | { outcome: "skipped" }
  /** Not done yet: queue the next slice. */
  | { outcome: "more"; rowsWritten: number }
  | { outcome: "finished"; job: JobRow };

async function inTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>, keep: (result: T) => boolean): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await fn();
    await client.query(keep(result) ? "COMMIT" : "ROLLBACK");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

const lockName = (jobId: string) => `analytics-export:${jobId}`;

export async function runSlice(pool: pg.Pool, jobId: string, kind: ExportKind, options: SliceOptions): Promise<SliceOutcome> {
  const client = await pool.connect();
  let locked = false;
  let broken: Error | undefined;
  try {
    locked = (
      await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok", [lockName(jobId)])
    ).rows[0]!.ok;
    if (!locked) return { outcome: "skipped" };
    let job = await findJob(client, jobId, kind.name);
    if (!job || !UNFINISHED.includes(job.state)) return { outcome: "skipped" };
    if (job.state === "QUEUED") {
      if (await markStarted(client, jobId)) options.started(job);
      job = await findJob(client, jobId, kind.name);
      if (!job || job.state !== "PENDING") return { outcome: "skipped" };
    }
    try {
      const query = kind.parse(JSON.parse(job.query));
      let expected = job.rowsExpected;
      if (expected === null) {
        const taken = await inTransaction(
          client,
          () => takeSnapshot(client, jobId, kind.keysSql(query, options.settings)),
          (n) => n !== undefined,
        );
        if (taken === undefined) return { outcome: "skipped" };
        expected = taken;
      }
      let written = job.rowsWritten;
      while (written < expected) {
        if (Date.now() >= options.deadline || options.stopping()) return { outcome: "more", rowsWritten: written };
        const keys = await nextKeys(client, jobId, written, options.page);
        if (keys.length === 0) break;
        const records = await kind.render(
          client,
          keys.map((k) => k.key),
          options.settings,
          query,
        );
        // A record erased since the snapshot is left out; its position still counts as done.
        const results = keys.flatMap((k, i) =>
          records[i] === undefined ? [] : [{ seq: k.seq, body: JSON.stringify(records[i]) }],
        );
        const last = keys[keys.length - 1]!.seq;
        const from = written;
        if (!(await inTransaction(client, () => writePage(client, jobId, from, last, results), Boolean))) {
          return { outcome: "skipped" };
        }
        written = last;
        if (options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
      }
      const finished = await markFinished(client, jobId, "FULFILLED", options.expirySeconds);
      return finished ? { outcome: "finished", job: finished } : { outcome: "skipped" };
    } catch (error) {
      // A query that no longer parses (the rules changed since it was submitted) never will.
      if (!(error instanceof AnalyticsError) && !options.lastAttempt) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const failed = await markFinished(client, jobId, "FAILED", options.expirySeconds, message);
      return failed ? { outcome: "finished", job: failed } : { outcome: "skipped" };
    }
  } catch (error) {
    broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    // The lock is given back on this connection even after a failure (a render that threw
    // leaves the connection sound): closing the connection would free it too, but only once
    // the server has ended that backend, and the queue's retry could come first and be skipped.
    let unusable: Error | undefined;
    if (broken) await client.query("ROLLBACK").catch((e: Error) => (unusable = e));
    if (locked && !unusable) {
      await client
        .query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockName(jobId)])
        .catch((e: Error) => (unusable = e));
    }
    // A connection that failed (or could not give its lock back) is closed, not reused.
    client.release(unusable ?? false);
  }
}
