/** GroupCommit under overload: a bound on what waits, and jobs of departed clients dropped unrun. */
import { describe, expect, it } from "vitest";
import { manualRunner } from "../helpers/group-commit-runner.js";
import { GroupCommit, GroupCommitQueueFullError } from "../../src/db/group-commit.js";
import { ClientGoneError } from "../../src/db/request-signal.js";

const runner = () => manualRunner();

describe("GroupCommit limits", () => {
  it("refuses a job at once when the queue holds maxQueued, and takes jobs again once it drains", async () => {
    const r = runner();
    const commit = new GroupCommit(r.run, { batchesInFlight: 1, maxBatchSize: 100, maxQueued: 3 });
    const running = commit.submit(1);
    const queued = [2, 3, 4].map((job) => commit.submit(job));
    expect(commit.queuedSize).toBe(3);
    await expect(commit.submit(5)).rejects.toBeInstanceOf(GroupCommitQueueFullError);
    await r.finishNext();
    await r.finishNext();
    expect(await running).toBe(1);
    expect(await Promise.all(queued)).toEqual([2, 3, 4]);
    expect(commit.queuedSize).toBe(0);
    const again = commit.submit(6);
    await r.finishNext();
    expect(await again).toBe(6);
  });

  it("drops the waiting jobs of requests whose client has gone, before they run", async () => {
    const r = runner();
    const commit = new GroupCommit(r.run, { batchesInFlight: 1, maxBatchSize: 100 });
    const first = commit.submit(1);
    const gone = new AbortController();
    const dropped = commit.submit(2, gone.signal);
    dropped.catch(() => {});
    const kept = commit.submit(3);
    gone.abort();
    await r.finishNext();
    await expect(dropped).rejects.toBeInstanceOf(ClientGoneError);
    expect(r.batches).toEqual([[1], [3]]);
    await r.finishNext();
    expect(await first).toBe(1);
    expect(await kept).toBe(3);
  });

  it("refuses at once a job whose client is already gone", async () => {
    const r = runner();
    const commit = new GroupCommit(r.run, { batchesInFlight: 1, maxBatchSize: 100 });
    const gone = new AbortController();
    gone.abort();
    await expect(commit.submit(1, gone.signal)).rejects.toBeInstanceOf(ClientGoneError);
    expect(r.batches).toEqual([]);
  });
});
