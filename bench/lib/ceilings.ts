/**
 * The database's own ceilings, with no HTTP and no service code: the KPI event INSERT
 * through `pg` (one prepared statement, by name), and COPY through pg-copy-streams.
 * Each worker starts its next statement while time is left; the rate is the rows
 * committed over the time until the last one finished.
 */
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { CpuUse } from "./processes.js";
import { COPY_KPI_SQL, INSERT_KPI_SQL, copyBatch, kpiRowValues } from "./workload.js";

export interface CeilingResult {
  workers: number;
  durationSeconds: number;
  statements: number;
  rows: number;
  rowsPerSecond: number;
  /**
   * The rate of each part: a ceiling is measured in two halves, one just before and one just
   * after the service's phase, so a change of the machine's pace shows.
   */
  parts: number[];
  /** Per statement, in ms. */
  latency: { p50: number; p99: number; max: number };
  cpu?: CpuUse;
}

/** Starts measuring CPU; the returned function ends it (see cpuMeter). */
export type StartMeter = () => Promise<() => Promise<CpuUse>>;

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

type Statement = (client: pg.PoolClient, worker: number, iteration: number) => Promise<void>;

/** One ceiling, run in parts; `result()` sums them up. */
export class Ceiling {
  private readonly latencies: number[] = [];
  private readonly parts: Array<{ seconds: number; rows: number; cpu?: CpuUse }> = [];

  constructor(
    private readonly url: string,
    private readonly workers: number,
    private readonly rowsPerStatement: number,
    private readonly statement: Statement,
    private readonly startMeter?: StartMeter,
  ) {}

  /**
   * Runs `workers` connections for `seconds`, or for exactly `statements` statements each
   * when given; returns this part's rows per second.
   */
  async run(seconds: number, statements?: number): Promise<number> {
    const pool = new pg.Pool({ connectionString: this.url, max: this.workers });
    const clients = await Promise.all(Array.from({ length: this.workers }, () => pool.connect()));
    let done = 0;
    try {
      // Measured while the connections are open: a backend that has exited but is not yet
      // reaped by the postmaster would be missing from the count.
      const stopMeter = await this.startMeter?.();
      const started = performance.now();
      const deadline = started + seconds * 1000;
      await Promise.all(
        clients.map(async (client, worker) => {
          for (let i = 0; statements === undefined ? performance.now() < deadline : i < statements; i++) {
            const t0 = performance.now();
            await this.statement(client, worker, i);
            this.latencies.push(performance.now() - t0);
            done++;
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const cpu = await stopMeter?.();
      const rows = done * this.rowsPerStatement;
      this.parts.push({ seconds: elapsed, rows, ...(cpu ? { cpu } : {}) });
      return rows / elapsed;
    } finally {
      for (const client of clients) client.release();
      await pool.end();
    }
  }

  result(): CeilingResult {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const durationSeconds = this.parts.reduce((sum, p) => sum + p.seconds, 0);
    const rows = this.parts.reduce((sum, p) => sum + p.rows, 0);
    // CPU: the parts' figures weighted by their length.
    const cpuOf = (key: keyof CpuUse) => {
      if (this.parts.some((p) => p.cpu?.[key] === undefined)) return undefined;
      return Math.round((this.parts.reduce((sum, p) => sum + p.cpu![key]! * p.seconds, 0) / durationSeconds) * 100) / 100;
    };
    const measuredCpu = this.parts.every((p) => p.cpu);
    return {
      workers: this.workers,
      durationSeconds,
      statements: sorted.length,
      rows,
      rowsPerSecond: rows / durationSeconds,
      parts: this.parts.map((p) => p.rows / p.seconds),
      latency: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 },
      ...(measuredCpu
        ? {
            cpu: {
              server: cpuOf("server"),
              postgres: cpuOf("postgres"),
              bench: cpuOf("bench"),
              machine: cpuOf("machine"),
              seconds: durationSeconds,
            },
          }
        : {}),
    };
  }
}

/** Single-row INSERTs, autocommitted, `workers` connections each in a loop. */
export function insertCeiling(
  url: string,
  conversations: readonly string[],
  workers: number,
  firstEvent: number,
  startMeter?: StartMeter,
) {
  let n = firstEvent;
  return new Ceiling(
    url,
    workers,
    1,
    async (client) => {
      await client.query({ name: "bench_insert_kpi_event", text: INSERT_KPI_SQL, values: kpiRowValues(conversations, n++) });
    },
    startMeter,
  );
}

/**
 * One COPY … FROM STDIN of `rows` rows per statement on one connection: the rate of one
 * long stream, where PostgreSQL's per-statement and per-commit costs vanish. The rows are
 * made 1,000 at a time as the stream is sent (the benchmark's CPU overlaps PostgreSQL's).
 */
export function oneStreamCopyCeiling(
  url: string,
  conversations: readonly string[],
  rows: number,
  firstEvent: number,
  startMeter?: StartMeter,
) {
  let next = firstEvent;
  return new Ceiling(
    url,
    1,
    rows,
    async (client) => {
      const first = next;
      next += rows;
      function* chunks() {
        for (let n = first; n < first + rows; n += 1000) yield copyBatch(conversations, n, Math.min(1000, first + rows - n));
      }
      await pipeline(Readable.from(chunks()), client.query(copyFrom(COPY_KPI_SQL)));
    },
    startMeter,
  );
}

/** COPY … FROM STDIN of `batchSize` rows per statement, `workers` concurrent streams. */
export function copyCeiling(
  url: string,
  conversations: readonly string[],
  workers: number,
  batchSize: number,
  firstEvent: number,
  startMeter?: StartMeter,
) {
  let next = firstEvent;
  return new Ceiling(
    url,
    workers,
    batchSize,
    async (client) => {
      // Made per batch, as each row needs a new id: about 1 ms of the benchmark's CPU per
      // 1,000 rows, where PostgreSQL spends tens of milliseconds on them.
      const text = copyBatch(conversations, next, batchSize);
      next += batchSize;
      await pipeline(Readable.from([text]), client.query(copyFrom(COPY_KPI_SQL)));
    },
    startMeter,
  );
}
