/**
 * Group commit in the service: jobs that arrive while earlier batches are in the database
 * wait, and then run together, one statement and one commit for the batch instead of one
 * each. Under load a batch holds about as many jobs as arrived during the previous one,
 * so nothing waits for a timer; alone, a job runs at once.
 *
 * `runBatch` gets the jobs of one batch and settles each job on its own (a batch that the
 * database refuses as a whole is for it to split).
 */
import { ClientGoneError } from "./request-signal.js";

export type Settled<Result> = { value: Result } | { error: unknown };

/** A promise's outcome as data, so one job's failure settles only that job. */
export const settle = <Result>(promise: Promise<Result>): Promise<Settled<Result>> =>
  promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

/** The queue is full: the job was refused without waiting (the caller answers 503). */
export class GroupCommitQueueFullError extends Error {
  override name = "GroupCommitQueueFullError";
  constructor(readonly queued: number) {
    super(`${queued} rows are already waiting to be written`);
  }
}

export interface GroupCommitLimits<Job> {
  /** How many batches may run at once; while they all do, new jobs wait for the next. */
  batchesInFlight: number;
  /** The size beyond which a batch takes no more jobs (a bigger job still runs, alone). */
  maxBatchSize: number;
  /** A job's size (rows, say); 1 when not given. */
  sizeOf?: (job: Job) => number;
  /**
   * The most that may wait (in `sizeOf` units): beyond it `submit` rejects at once with a
   * GroupCommitQueueFullError, so that overload sheds work instead of holding memory.
   */
  maxQueued?: number;
}

interface Waiting<Job, Result> {
  job: Job;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
  size: number;
  /** The submitting request's signal: a job whose client has gone is dropped before it runs. */
  signal?: AbortSignal;
}

export class GroupCommit<Job, Result> {
  private readonly waiting: Array<Waiting<Job, Result>> = [];
  private inFlight = 0;
  private queued = 0;

  constructor(
    private readonly runBatch: (jobs: Job[]) => Promise<Array<Settled<Result>>>,
    private readonly limits: GroupCommitLimits<Job>,
  ) {}

  /** How much waits now, in `sizeOf` units. */
  get queuedSize(): number {
    return this.queued;
  }

  /** `signal`: the submitting request's; aborted (its client gone), the job is dropped before it runs. */
  submit(job: Job, signal?: AbortSignal): Promise<Result> {
    const size = (this.limits.sizeOf ?? (() => 1))(job);
    const { maxQueued } = this.limits;
    // A job arriving at an empty queue always waits, however big: it would run alone.
    if (maxQueued !== undefined && this.queued > 0 && this.queued + size > maxQueued) {
      return Promise.reject(new GroupCommitQueueFullError(this.queued));
    }
    if (signal?.aborted) return Promise.reject(new ClientGoneError());
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject, size, signal });
      this.queued += size;
      this.startBatches();
    });
  }

  /** The next waiting job whose client is still there; the others are dropped unrun. */
  private takeNext(): Waiting<Job, Result> | undefined {
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) {
      this.queued -= next.size;
      if (!next.signal?.aborted) return next;
      next.reject(new ClientGoneError());
    }
    return undefined;
  }

  private startBatches(): void {
    while (this.inFlight < this.limits.batchesInFlight && this.waiting.length > 0) {
      const first = this.takeNext();
      if (!first) return;
      const batch = [first];
      let size = first.size;
      while (this.waiting.length > 0 && size + this.waiting[0]!.size <= this.limits.maxBatchSize) {
        const next = this.takeNext();
        if (!next) break;
        batch.push(next);
        size += next.size;
      }
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.startBatches();
      });
    }
  }

  private async run(batch: Array<Waiting<Job, Result>>): Promise<void> {
    let outcomes: Array<Settled<Result>>;
    try {
      outcomes = await this.runBatch(batch.map((w) => w.job));
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => {
      const outcome = outcomes[i]!;
      if ("value" in outcome) w.resolve(outcome.value);
      else w.reject(outcome.error);
    });
  }
}
