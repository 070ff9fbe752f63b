/**
 * Forwarding lag under the benchmark's load (issue 12): a JetStream log destination is
 * added before the first phase, so every call of every phase is forwarded while the load
 * runs; at the end the streams are read back, and for each record the lag is the stream's
 * own timestamp of the message minus the moment the call was answered (the record's
 * `time` plus its `durationMs`): "write acknowledged → visible in the destination".
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";

const LOG_TABLES = ["cieventsaudit", "cieventsoperational"] as const;
type Marks = Record<(typeof LOG_TABLES)[number], string>;

/** The highest versionnumber of each log table: rows above a mark were stored after it. */
async function marks(db: pg.Pool): Promise<Marks> {
  const out = {} as Marks;
  for (const table of LOG_TABLES) {
    const { rows } = await db.query<{ v: string }>(`SELECT coalesce(max(versionnumber), 0)::text AS v FROM ${table}`);
    out[table] = rows[0]!.v;
  }
  return out;
}

export interface ForwardingLag {
  /** Records read back from the streams, and how many distinct event ids among them. */
  messages: number;
  uniqueEvents: number;
  /** What the streams themselves hold (their message counts), read or not. */
  inStreams: number;
  /**
   * Records the database stored while the destination existed (between the marks taken
   * when it was added and once the load had drained), and how many of them are in no
   * stream: the completeness check (0 missing), independent of when counters were read.
   */
  stored: number;
  missing: number;
  /** What the server says it forwarded, and what was left when the reading began. */
  forwarded: number;
  backlog: number;
  /** Lag in milliseconds. */
  p50: number;
  p99: number;
  max: number;
  /** Seconds the backlog took to drain once the load had stopped. */
  drainSeconds: number;
}

interface DestinationView {
  id: string;
  status?: string;
  forwarding: Array<{ category: string; forwarded: number; backlog: number; lastError?: string }>;
}

const PATH = "/api/admin/log-destinations";

export class ForwardingLagProbe {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly origin: string,
    private readonly headers: Record<string, string>,
    private readonly id: string,
    private readonly streams: readonly string[],
    private readonly db: pg.Pool,
    private readonly start: Marks,
  ) {}

  /** Adds the destination; undefined (with the reason) when no NATS server answers at `servers`. */
  static async start(
    origin: string,
    headers: Record<string, string>,
    servers: string,
    tag: string,
    /** The organisation's database, whose log tables the streams are checked against. */
    db: pg.Pool,
  ): Promise<ForwardingLagProbe | { unavailable: string }> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, timeout: 2_000, reconnect: false });
    } catch (error) {
      return { unavailable: `no NATS server at ${servers}: ${error instanceof Error ? error.message : String(error)}` };
    }
    const streams = { Audit: `BENCH_${tag}_AUDIT`, Operational: `BENCH_${tag}_OPERATIONAL` };
    const res = await fetch(`${origin}${PATH}`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({
        name: `bench ${tag}`,
        resourceType: "JetStream",
        settings: { servers, streams, subjectPrefix: `bench-${tag}` },
        categories: ["Audit", "Operational"],
      }),
    });
    const text = await res.text();
    if (res.status !== 201) {
      await nc.close();
      throw new Error(`adding the JetStream log destination answered ${res.status}: ${text.slice(0, 500)}`);
    }
    const { id } = JSON.parse(text) as { id: string };
    // After the destination exists: every row stored from now on is forwarded to it.
    return new ForwardingLagProbe(nc, origin, headers, id, Object.values(streams), db, await marks(db));
  }

  private async view(): Promise<DestinationView> {
    const res = await fetch(`${this.origin}${PATH}`, { headers: this.headers });
    if (res.status !== 200) throw new Error(`listing log destinations answered ${res.status}: ${await res.text()}`);
    const { value } = (await res.json()) as { value: DestinationView[] };
    const mine = value.find((d) => d.id === this.id);
    if (!mine) throw new Error(`log destination ${this.id} is gone`);
    return mine;
  }

  /** Waits (at most `timeoutMs`) for the backlog to drain, then reads both streams whole. */
  async measure(timeoutMs: number): Promise<ForwardingLag> {
    const started = Date.now();
    let view = await this.view();
    const backlogOf = (v: DestinationView) => v.forwarding.reduce((n, f) => n + f.backlog, 0);
    while (backlogOf(view) > 0 && Date.now() - started < timeoutMs) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      view = await this.view();
    }
    const drainSeconds = (Date.now() - started) / 1000;
    // The end mark, then one more drained view: what was stored up to the mark is forwarded.
    const end = await marks(this.db);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    view = await this.view();
    while (backlogOf(view) > 0 && Date.now() - started < timeoutMs) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      view = await this.view();
    }
    const problems = view.forwarding.filter((f) => f.lastError).map((f) => `${f.category}: ${f.lastError}`);
    if (problems.length) throw new Error(`forwarding to JetStream failed: ${problems.join("; ")}`);

    const js = jetstream(this.nc);
    const jsm = await jetstreamManager(this.nc);
    const lags: number[] = [];
    const ids = new Set<string>();
    let inStreams = 0;
    for (const stream of this.streams) {
      const info = await jsm.streams.info(stream).catch(() => undefined);
      const total = info?.state.messages ?? 0;
      inStreams += total;
      if (total === 0) continue;
      const messages = await (await js.consumers.get(stream)).consume();
      let read = 0;
      // Bounded by the count the stream reported, and by time.
      const deadline = Date.now() + 600_000;
      for await (const message of messages) {
        const record = message.json<{ time: string; durationMs?: number; properties: { eventId: string } }>();
        ids.add(record.properties.eventId);
        const answered = Date.parse(record.time) + (record.durationMs ?? 0);
        lags.push(message.info.timestampNanos / 1e6 - answered);
        read++;
        if (message.info.pending === 0 || read >= total || Date.now() > deadline) break;
      }
      await messages.close();
    }
    let stored = 0;
    let missing = 0;
    for (const table of LOG_TABLES) {
      const { rows } = await this.db.query<{ id: string }>(
        `SELECT ${table}id::text AS id FROM ${table} WHERE versionnumber > $1 AND versionnumber <= $2`,
        [this.start[table], end[table]],
      );
      stored += rows.length;
      missing += rows.filter((row) => !ids.has(row.id)).length;
    }
    lags.sort((a, b) => a - b);
    const at = (q: number) => (lags.length ? Math.round(lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!) : NaN);
    return {
      messages: lags.length,
      uniqueEvents: ids.size,
      inStreams,
      stored,
      missing,
      forwarded: view.forwarding.reduce((n, f) => n + f.forwarded, 0),
      backlog: backlogOf(view),
      p50: at(0.5),
      p99: at(0.99),
      max: lags.length ? Math.round(lags.at(-1)!) : NaN,
      drainSeconds,
    };
  }

  private stopped = false;

  /** Removes the destination and its streams (once). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await fetch(`${this.origin}${PATH}/${this.id}`, { method: "DELETE", headers: this.headers }).catch(() => undefined);
      const jsm = await jetstreamManager(this.nc);
      for (const stream of this.streams) await jsm.streams.delete(stream).catch(() => false);
    } finally {
      await this.nc.close();
    }
  }
}
