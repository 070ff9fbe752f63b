/**
 * Keeps each open organisation database's metrics and rollups up to date: every
 * ANALYTICS_REFRESH_MS it takes a batch of changed conversations off the queue the triggers
 * fill, re-derives them and stores the result, in one transaction (a crash loses nothing:
 * the queue entries come back with the rollback). While a backlog remains it goes on at once.
 */
import type pg from "pg";
import type { FastifyBaseLogger } from "fastify";
import { withTransaction } from "../db/transactions.js";
import { deriveConversation } from "./derive.js";
import type { AnalyticsSettings } from "./settings.js";
import {
  REFRESH_LOCK_KEY,
  countDirty,
  loadTrees,
  slicesByEvents,
  rebuildRollups,
  replaceConversations,
  takeDirty,
  tryRefreshLock,
} from "./store/refresh-store.js";

export interface RefreshResult {
  conversations: number;
  facts: number;
  cells: number;
  /** Another refresher held the database's lock. */
  busy: boolean;
}

/** The most KPI events one slice of a refresher batch loads (about 20 MB of trees). */
export const EVENTS_PER_SLICE = 50_000;

/** Re-derives one batch of changed conversations of `pool`'s database. */
export async function refreshBatch(
  pool: pg.Pool,
  settings: AnalyticsSettings,
  limit = settings.refreshBatch,
  rollups: "maintain" | "skip" = "maintain",
  eventsPerSlice = EVENTS_PER_SLICE,
): Promise<RefreshResult> {
  return withTransaction(pool, async (client) => {
    if (!(await tryRefreshLock(client))) return { conversations: 0, facts: 0, cells: 0, busy: true };
    const ids = await takeDirty(client, limit);
    if (ids.length === 0) return { conversations: 0, facts: 0, cells: 0, busy: false };
    // In slices of a bounded number of events, so a batch of huge conversations (thousands
    // of events each) is never held in memory at once; most batches are one slice.
    let facts = 0;
    let cells = 0;
    for (const slice of await slicesByEvents(client, ids, eventsPerSlice)) {
      const trees = await loadTrees(client, slice, settings.direction);
      const derived = trees.map((tree) => deriveConversation(tree, settings));
      const done = await replaceConversations(client, slice, derived, rollups);
      facts += done.facts;
      cells += done.cells;
    }
    return { conversations: ids.length, facts, cells, busy: false };
  });
}

/** Re-derives until the queue is empty (or `maxBatches` ran): tests and the benchmark's backfill. */
export async function refreshAll(
  pool: pg.Pool,
  settings: AnalyticsSettings,
  maxBatches = 1_000_000,
  limit?: number,
): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const result = await refreshBatch(pool, settings, limit);
    if (result.busy) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    if (result.conversations === 0) break;
    total += result.conversations;
  }
  return total;
}

/**
 * Re-derives a whole backlog (after a migration or a bulk load): the metric rows in big
 * batches without touching the rollups, then every rollup rebuilt from them in one pass,
 * far cheaper than moving cells batch by batch when the batches are spread over months.
 * Until the rebuild commits, aggregates lag the derived rows; nothing is lost, since the
 * rebuild reads every metric row.
 */
export async function rebuildAll(
  pool: pg.Pool,
  settings: AnalyticsSettings,
  progress: (derived: number, remaining: number) => void = () => {},
  batch = 5000,
): Promise<{ conversations: number; cells: number }> {
  let conversations = 0;
  for (let i = 0; i < 100_000; i++) {
    const result = await refreshBatch(pool, settings, batch, "skip");
    if (result.busy) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    if (result.conversations === 0) break;
    conversations += result.conversations;
    if (i % 20 === 0) progress(conversations, await countDirty(pool));
  }
  const cells = await withTransaction(pool, async (client) => {
    // Taken blocking: the incremental refresher must not move cells while they are rebuilt.
    await client.query("SELECT pg_advisory_xact_lock($1)", [REFRESH_LOCK_KEY]);
    return rebuildRollups(client);
  });
  return { conversations, cells };
}

export class Refresher {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly pools: () => pg.Pool[],
    private readonly settings: AnalyticsSettings,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(this.settings.refreshMs);
  }

  private schedule(ms: number) {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => (this.running = undefined));
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    let backlog = false;
    for (const pool of this.pools()) {
      if (this.stopped) return;
      try {
        const result = await refreshBatch(pool, this.settings);
        if (result.conversations >= this.settings.refreshBatch) backlog = true;
      } catch (error) {
        // The queue entries came back with the rollback; the next tick tries again.
        this.log.warn({ err: error }, "analytics refresh failed; retrying");
      }
    }
    this.schedule(backlog ? 0 : this.settings.refreshMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
