/**
 * Group commit in the service: jobs that arrive while earlier batches are in the database
 * wait, and then run together, one statement and one commit for the batch instead of one
 * each. Under load a batch holds about as many jobs as arrived during the previous one,
 * so nothing waits for a timer; alone, a job runs at once.
 *
 * `runBatch` gets the jobs of one batch and settles each job on its own (a batch that the
 * database refuses as a whole is for it to split).
 */
export type Settled<Result> = { value: Result } | { error: unknown };

/** A promise's outcome as data, so one job's failure settles only that job. */
export const settle = <Result>(promise: Promise<Result>): Promise<Settled<Result>> =>
  promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

export interface GroupCommitLimits<Job> {
  /** How many batches may run at once; while they all do, new jobs wait for the next. */
  batchesInFlight: number;
  /** The size beyond which a batch takes no more jobs (a bigger job still runs, alone). */
  maxBatchSize: number;
  /** A job's size (rows, say); 1 when not given. */
  sizeOf?: (job: Job) => number;
}

interface Waiting<Job, Result> {
  job: Job;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<Job, Result> {
  private readonly waiting: Array<Waiting<Job, Result>> = [];
  private inFlight = 0;

  constructor(
    private readonly runBatch: (jobs: Job[]) => Promise<Array<Settled<Result>>>,
    private readonly limits: GroupCommitLimits<Job>,
  ) {}

  submit(job: Job): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.startBatches();
    });
  }

  private startBatches(): void {
    const sizeOf = this.limits.sizeOf ?? (() => 1);
    while (this.inFlight < this.limits.batchesInFlight && this.waiting.length > 0) {
      const batch = [this.waiting.shift()!];
      let size = sizeOf(batch[0]!.job);
      while (this.waiting.length > 0 && size + sizeOf(this.waiting[0]!.job) <= this.limits.maxBatchSize) {
        const next = this.waiting.shift()!;
        batch.push(next);
        size += sizeOf(next.job);
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
