/**
 * Admission by rows: a bound on the rows being written at once (bulk writes, from their
 * validation to their commit), so that under overload the work already admitted finishes
 * within a client's timeout, and what does not fit is refused at once (503 with
 * Retry-After) instead of queueing until its client has gone.
 *
 * A bound on requests does not do this: 256 admitted CreateMultiple of 1,000 rows are
 * 256,000 rows, tens of seconds of database work on a small machine, and the last of them
 * finish after their clients gave up (issue 18). Rows are what the database spends its
 * time on, so rows are what is admitted.
 */
import { ClientGoneError } from "./request-signal.js";

/** The bound is reached: the work was refused before it started (the caller answers 503). */
export class RowsInFlightError extends Error {
  override name = "RowsInFlightError";
  constructor(
    readonly inFlight: number,
    readonly rows: number,
  ) {
    super(`${inFlight} rows being written`);
  }
}

export class RowAdmission {
  private rows = 0;

  /** `limit`: the most rows in flight; a call bigger than it still runs, alone. */
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  }

  /** Rows admitted and not yet settled. */
  get inFlight(): number {
    return this.rows;
  }

  /**
   * Runs `work` (which writes `rows` rows) once admitted, counting its rows until it settles.
   * Refused at once, without running it, when the bound would be passed (RowsInFlightError)
   * or when `signal` says the client has gone (ClientGoneError: nobody would read the answer).
   * With nothing in flight any call is admitted, however big: it would otherwise never run.
   */
  async run<T>(rows: number, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    if (signal?.aborted) throw new ClientGoneError();
    if (this.rows > 0 && this.rows + rows > this.limit) throw new RowsInFlightError(this.rows, rows);
    this.rows += rows;
    try {
      return await work();
    } finally {
      this.rows -= rows;
    }
  }
}
