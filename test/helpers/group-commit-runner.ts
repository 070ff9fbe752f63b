/** A GroupCommit runner whose batches finish when told to, recording what each held. */
import type { Settled } from "../../src/db/group-commit.js";

export function manualRunner(settle: (job: number) => Settled<number> = (job) => ({ value: job })) {
  const batches: number[][] = [];
  const pending: Array<() => void> = [];
  const run = (jobs: number[]) =>
    new Promise<Array<Settled<number>>>((resolve) => {
      batches.push(jobs);
      pending.push(() => resolve(jobs.map(settle)));
    });
  /** Finishes the oldest running batch and lets its jobs settle. */
  const finishNext = async () => {
    pending.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { batches, run, finishNext };
}
