/**
 * The export jobs' rows in an organisation's database (src/model/tables.ts
 * ANALYTICS_EXPORT_TABLES): the job (state, progress, dates), its snapshot of keys, its
 * results. Every statement names the job by id in the organisation's own database, so a
 * job id from another organisation finds nothing.
 */
import type pg from "pg";
import type { Queryable } from "../../db/transactions.js";
import type { Statement } from "../sql.js";

export const JOB_STATES = ["QUEUED", "PENDING", "FULFILLED", "FAILED", "CANCELLED", "EXPIRED"] as const;
export type JobState = (typeof JOB_STATES)[number];
/** States of a job that has not finished: it may still run. */
export const UNFINISHED: readonly JobState[] = ["QUEUED", "PENDING"];

export interface JobRow {
  id: string;
  kind: string;
  query: string;
  state: JobState;
  submittedBy: string | null;
  submittedOn: Date;
  startedOn: Date | null;
  completedOn: Date | null;
  expiresOn: Date | null;
  errorMessage: string | null;
  rowsExpected: number | null;
  rowsWritten: number;
}

const JOB_COLUMNS = `cif_analytics_exportjobid AS id, kind, query, state, submittedby AS "submittedBy",
  submittedon AS "submittedOn", startedon AS "startedOn", completedon AS "completedOn", expireson AS "expiresOn",
  errormessage AS "errorMessage", rowsexpected AS "rowsExpected", rowswritten AS "rowsWritten"`;

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function insertJob(db: Queryable, job: { id: string; kind: string; query: string; submittedBy?: string }) {
  const { rows } = await db.query<JobRow>(
    `INSERT INTO cif_analytics_exportjob (cif_analytics_exportjobid, kind, query, state, submittedby)
     VALUES ($1, $2, $3, 'QUEUED', $4) RETURNING ${JOB_COLUMNS}`,
    [job.id, job.kind, job.query, job.submittedBy ?? null],
  );
  return rows[0]!;
}

export async function deleteJob(db: Queryable, id: string): Promise<void> {
  await db.query("DELETE FROM cif_analytics_exportjob WHERE cif_analytics_exportjobid = $1", [id]);
}

/** The job of `kind` with this id, or undefined (also for a string that is not a job id). */
export async function findJob(db: Queryable, id: string, kind?: string): Promise<JobRow | undefined> {
  if (!UUID.test(id)) return undefined;
  const { rows } = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM cif_analytics_exportjob WHERE cif_analytics_exportjobid = $1${kind ? " AND kind = $2" : ""}`,
    kind ? [id, kind] : [id],
  );
  return rows[0];
}

/** QUEUED → PENDING, when a worker first takes the job; false when it is no longer QUEUED. */
export async function markStarted(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    "UPDATE cif_analytics_exportjob SET state = 'PENDING', startedon = now() WHERE cif_analytics_exportjobid = $1 AND state = 'QUEUED'",
    [id],
  );
  return rowCount === 1;
}

/**
 * Takes the job's snapshot: the keys of `keys` numbered 1… in their order, and their
 * count as rowsExpected, in the caller's transaction. False when the job is no longer PENDING.
 */
export async function takeSnapshot(client: pg.ClientBase, id: string, keys: Statement): Promise<number | undefined> {
  const jobParam = `$${keys.values.length + 1}`;
  // A snapshot of millions of keys takes longer than a request's statement may.
  await client.query("SET LOCAL statement_timeout = 0");
  await client.query("DELETE FROM cif_analytics_exportkey WHERE jobid = $1", [id]);
  // row_number() over the listing numbers the keys in the listing's order.
  const inserted = await client.query({
    text: `INSERT INTO cif_analytics_exportkey (jobid, seq, key)
           SELECT ${jobParam}::uuid, row_number() OVER (), listing.key FROM (${keys.text}) AS listing`,
    values: [...keys.values, id],
    // pg reads 0 as "the client's own bound": an hour instead.
    query_timeout: 3_600_000,
  } as pg.QueryConfig);
  const { rowCount } = await client.query(
    "UPDATE cif_analytics_exportjob SET rowsexpected = $2 WHERE cif_analytics_exportjobid = $1 AND state = 'PENDING'",
    [id, inserted.rowCount ?? 0],
  );
  return rowCount === 1 ? (inserted.rowCount ?? 0) : undefined;
}

/** The next keys after position `after`, in order. */
export async function nextKeys(db: Queryable, id: string, after: number, limit: number) {
  const { rows } = await db.query<{ seq: number; key: string }>(
    "SELECT seq, key FROM cif_analytics_exportkey WHERE jobid = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    [id, after, limit],
  );
  return rows;
}

/**
 * Writes a page of results and moves the checkpoint from `from` to `to`, in the caller's
 * transaction; false (and the caller rolls back) when the job was cancelled, or another
 * runner moved the checkpoint, meanwhile.
 */
export async function writePage(
  db: Queryable,
  id: string,
  from: number,
  to: number,
  results: { seq: number; body: string }[],
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE cif_analytics_exportjob SET rowswritten = $3
      WHERE cif_analytics_exportjobid = $1 AND state = 'PENDING' AND rowswritten = $2`,
    [id, from, to],
  );
  if (rowCount !== 1) return false;
  if (results.length > 0) {
    await db.query(
      `INSERT INTO cif_analytics_exportresult (jobid, seq, body)
       SELECT $1, s.seq, s.body FROM unnest($2::int[], $3::text[]) AS s(seq, body)`,
      [id, results.map((r) => r.seq), results.map((r) => r.body)],
    );
  }
  return true;
}

/** PENDING → FULFILLED / FAILED (a finished job expires `expirySeconds` later). */
export async function markFinished(
  db: Queryable,
  id: string,
  state: "FULFILLED" | "FAILED",
  expirySeconds: number,
  errorMessage?: string,
): Promise<JobRow | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE cif_analytics_exportjob
        SET state = $2, completedon = now(), expireson = now() + make_interval(secs => $3), errormessage = $4
      WHERE cif_analytics_exportjobid = $1 AND state IN ('QUEUED', 'PENDING') RETURNING ${JOB_COLUMNS}`,
    [id, state, expirySeconds, errorMessage?.slice(0, 2000) ?? null],
  );
  return rows[0];
}

/** QUEUED / PENDING → CANCELLED; undefined when the job had finished already. */
export async function markCancelled(db: Queryable, id: string, expirySeconds: number): Promise<JobRow | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE cif_analytics_exportjob
        SET state = 'CANCELLED', completedon = now(), expireson = now() + make_interval(secs => $2)
      WHERE cif_analytics_exportjobid = $1 AND state IN ('QUEUED', 'PENDING') RETURNING ${JOB_COLUMNS}`,
    [id, expirySeconds],
  );
  return rows[0];
}

/**
 * A finished job whose time is up (or, `now`, one whose results are discarded on request)
 * becomes EXPIRED; returns whether it did.
 */
export async function markExpired(db: Queryable, id: string, now = false): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE cif_analytics_exportjob SET state = 'EXPIRED', expireson = LEAST(expireson, now())
      WHERE cif_analytics_exportjobid = $1 AND state IN ('FULFILLED', 'FAILED', 'CANCELLED')
        ${now ? "" : "AND expireson <= now()"}`,
    [id],
  );
  return rowCount === 1;
}

/** Deletes rows of `table` of the job in batches of `batch`, each its own statement; returns how many. */
async function deleteInBatches(db: Queryable, table: string, id: string, batch: number): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < 100_000; i++) {
    const { rowCount } = await db.query(
      `DELETE FROM ${table} WHERE jobid = $1 AND seq IN (SELECT seq FROM ${table} WHERE jobid = $1 ORDER BY seq LIMIT $2)`,
      [id, batch],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) break;
  }
  return deleted;
}

/** The job's snapshot (once it has finished with it). */
export const purgeKeys = (db: Queryable, id: string, batch = 10_000) => deleteInBatches(db, "cif_analytics_exportkey", id, batch);

/** The job's results and snapshot. */
export async function purgeResults(db: Queryable, id: string, batch = 10_000): Promise<number> {
  await purgeKeys(db, id, batch);
  return deleteInBatches(db, "cif_analytics_exportresult", id, batch);
}

/** Jobs EXPIRED more than `days` ago go altogether (a GET then answers 404); returns their ids. */
export async function deleteLongExpired(db: Queryable, days: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `DELETE FROM cif_analytics_exportjob
      WHERE state = 'EXPIRED' AND expireson < now() - make_interval(days => $1)
      RETURNING cif_analytics_exportjobid AS id`,
    [days],
  );
  return rows.map((r) => r.id);
}

/** A page of results after position `after`: the records' JSON, and the last position read. */
export async function readResults(db: Queryable, id: string, after: number, limit: number) {
  const { rows } = await db.query<{ seq: number; body: string }>(
    "SELECT seq, body FROM cif_analytics_exportresult WHERE jobid = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    [id, after, limit],
  );
  return rows;
}

/**
 * How far the derived data is complete: the queueing time of the oldest conversation still
 * waiting for the refresher, or now when none waits.
 */
export async function dataAvailability(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ at: Date }>("SELECT COALESCE(min(createdon), now()) AS at FROM cif_analytics_dirty");
  return rows[0]!.at;
}
