/** GroupCommit (src/db/group-commit.ts): how jobs form batches and how each is settled. */
import { describe, expect, it } from "vitest";
import { manualRunner } from "../helpers/group-commit-runner.js";
import { GroupCommit } from "../../src/db/group-commit.js";
import { sharedBuffersMb } from "../../src/db/embedded-postgres.js";

const runner = () => manualRunner((job) => (job < 0 ? { error: new Error(`bad ${job}`) } : { value: job * 10 }));

describe("GroupCommit", () => {
  it("runs a lone job at once, and the jobs that arrive meanwhile as the next batch", async () => {
    const r = runner();
    const commit = new GroupCommit(r.run, { batchesInFlight: 1, maxBatchSize: 100 });
    const results = [1, 2, 3, 4].map((job) => commit.submit(job));
    expect(r.batches).toEqual([[1]]);
    await r.finishNext();
    expect(r.batches).toEqual([[1], [2, 3, 4]]);
    await r.finishNext();
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40]);
  });

  it("settles each job on its own: one job's error is not the others'", async () => {
    const r = runner();
    const commit = new GroupCommit(r.run, { batchesInFlight: 1, maxBatchSize: 100 });
    const results = [5, -1, 6].map((job) => commit.submit(job).then(String, (error: Error) => error.message));
    await r.finishNext();
    await r.finishNext();
    expect(await Promise.all(results)).toEqual(["50", "bad -1", "60"]);
  });

  it("keeps batches within maxBatchSize, by sizeOf, and runs batchesInFlight of them at once", async () => {
    const r = runner();
    const commit = new GroupCommit(r.run, { batchesInFlight: 2, maxBatchSize: 10, sizeOf: (job: number) => job });
    const results = [4, 4, 4, 4, 4, 12].map((job) => commit.submit(job));
    expect(r.batches).toEqual([[4], [4]]);
    await r.finishNext();
    expect(r.batches.at(-1)).toEqual([4, 4]);
    await r.finishNext();
    expect(r.batches.at(-1)).toEqual([4]);
    await r.finishNext();
    expect(r.batches.at(-1)).toEqual([12]);
    await r.finishNext();
    await r.finishNext();
    expect(await Promise.all(results)).toEqual([40, 40, 40, 40, 40, 120]);
  });

  it("rejects every job of a batch whose runner fails as a whole", async () => {
    const commit = new GroupCommit<number, number>(() => Promise.reject(new Error("connection lost")), {
      batchesInFlight: 1,
      maxBatchSize: 10,
    });
    const results = await Promise.allSettled([commit.submit(1), commit.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
  });
});

describe("the embedded PostgreSQL's shared_buffers", () => {
  it("is an eighth of the memory, between 128 MB and 1 GB", () => {
    const GB = 1024 ** 3;
    expect(sharedBuffersMb(0.5 * GB)).toBe(128);
    expect(sharedBuffersMb(4 * GB)).toBe(512);
    expect(sharedBuffersMb(64 * GB)).toBe(1024);
  });
});
