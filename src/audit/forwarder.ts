/**
 * Forwarding: each destination reads each of its categories' log (CIEventsAudit /
 * CIEventsOperational in the organisation's database) from its cursor, in commit order,
 * and moves the cursor only once the destination has stored the records: at least once,
 * each record carrying its eventId for consumers to drop repeats.
 *
 * Commit order without gaps: a row's `transactionid` is the id of the transaction that
 * inserted it, and rows are read only below the oldest transaction still running
 * (`pg_snapshot_xmin`), so a transaction that commits late can never slip behind a cursor
 * that has passed it. A destination that is down holds nothing up: its records wait in
 * the tables, its retries back off, and the others go on. Failures and recoveries are
 * logged as WorkflowEvents (`Forwarding.TaskCompleted`).
 *
 * Each step runs in a transaction on the control database holding the destination's
 * advisory lock, so two servers on one database do not forward the same records twice.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { withTransaction } from "../db/transactions.js";
import { LOG_TABLES } from "../model/tables.js";
import { type ApiEventOptions, workflowEvent } from "./api-event.js";
import type { AuditLogger } from "./audit-log.js";
import type { LogCategory, WorkflowEventRecord } from "./azure-monitor.js";
import { type DestinationType, type OpenDestination, openDestination } from "./destinations/index.js";

const CURSORS = "cif_control.log_cursor";
const DESTINATIONS = "cif_control.log_destination";

interface DestinationRow {
  id: string;
  organization_id: string;
  name: string;
  resource_type: DestinationType;
  settings: Record<string, unknown>;
  categories: LogCategory[];
}

export interface ForwarderOptions extends ApiEventOptions {
  /** The main database's pool (the control schema), for short reads. */
  control(): pg.Pool;
  /** The pool forwarding steps hold a transaction on while a destination stores a batch. */
  forwardingPool(): pg.Pool;
  /** The pool of an organisation's database. */
  poolOf(organizationId: string): Promise<pg.Pool>;
  /** Where a WorkflowEvent goes (the operational log of the organisation). */
  emit(organizationId: string, record: WorkflowEventRecord): void;
  intervalMs: number;
  batchSize: number;
  log: AuditLogger;
}

interface Health {
  failures: number;
  retryAt: number;
  failingSince?: Date;
}

/** The first cursor of a new destination: the log's end, records of transactions still running included. */
export async function initialCursor(pool: pg.Pool): Promise<{ transactionId: string; versionNumber: string }> {
  const { rows } = await pool.query<{ horizon: string }>(
    "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1)::text AS horizon",
  );
  return { transactionId: rows[0]!.horizon, versionNumber: "9223372036854775807" };
}

export class Forwarder {
  private readonly open = new Map<string, { key: string; destination: OpenDestination }>();
  private readonly health = new Map<string, Health>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly options: ForwarderOptions) {}

  start(): void {
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(loop, this.options.intervalMs).unref();
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await Promise.all([...this.open.values()].map(({ destination }) => destination.close().catch(() => {})));
    this.open.clear();
  }

  /** One pass over every destination and category; each drains up to a few batches. */
  async tick(): Promise<void> {
    let destinations: DestinationRow[];
    try {
      ({ rows: destinations } = await this.options
        .control()
        .query<DestinationRow>(`SELECT id, organization_id, name, resource_type, settings, categories FROM ${DESTINATIONS}`));
    } catch (error) {
      this.options.log.warn({ err: error }, "log forwarding: the destinations could not be read");
      return;
    }
    this.closeRemoved(new Set(destinations.map((d) => d.id)));
    await Promise.all(destinations.map((row) => this.forwardDestination(row)));
  }

  private closeRemoved(present: Set<string>): void {
    for (const [id, { destination }] of this.open) {
      if (present.has(id)) continue;
      this.open.delete(id);
      this.health.delete(id);
      void destination.close().catch(() => {});
    }
  }

  private destinationOf(row: DestinationRow): OpenDestination {
    const key = JSON.stringify([row.resource_type, row.settings]);
    const current = this.open.get(row.id);
    if (current?.key === key) return current.destination;
    if (current) void current.destination.close().catch(() => {});
    const destination = openDestination(row.resource_type, row.settings);
    this.open.set(row.id, { key, destination });
    return destination;
  }

  private async forwardDestination(row: DestinationRow): Promise<void> {
    const health = this.health.get(row.id) ?? { failures: 0, retryAt: 0 };
    this.health.set(row.id, health);
    if (Date.now() < health.retryAt) return;
    const started = new Date();
    try {
      const destination = this.destinationOf(row);
      let forwarded = 0;
      for (const category of row.categories) {
        // A few batches per pass: a backlog drains quickly, and one destination cannot hog the loop.
        for (let batch = 0; batch < 10; batch++) {
          const sent = await this.forwardBatch(row, category, destination);
          forwarded += sent;
          if (sent < this.options.batchSize) break;
        }
      }
      if (health.failingSince) this.recovered(row, health, started, forwarded);
      health.failures = 0;
      health.retryAt = 0;
    } catch (error) {
      this.failed(row, health, started, error);
    }
  }

  /** Sends the next batch of one category, moving the cursor once it is stored; returns how many. */
  private async forwardBatch(row: DestinationRow, category: LogCategory, destination: OpenDestination): Promise<number> {
    const pool = await this.options.poolOf(row.organization_id);
    return withTransaction(this.options.forwardingPool(), async (client) => {
      const { rows: locked } = await client.query<{ locked: boolean }>(
        "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked",
        [`log-forwarding ${row.id} ${category}`],
      );
      // Another server forwards this one now.
      if (!locked[0]!.locked) return 0;
      const cursor = await this.cursorOf(client, row.id, category, pool);
      const table = LOG_TABLES[category];
      // The text copies get names of their own: ORDER BY a name of the select list sorts by
      // that (text) value, and "1000" < "999" would send a later transaction first, then
      // move the cursor past earlier ones never sent.
      const { rows } = await pool.query<{ transaction: string; version: string; id: string; record: string }>(
        `SELECT transactionid::text AS transaction, versionnumber::text AS version, ${table.primaryKey}::text AS id, record
           FROM ${table.logicalName}
          WHERE (transactionid, versionnumber) > ($1::bigint, $2::bigint)
            AND transactionid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
          ORDER BY transactionid, versionnumber LIMIT $3`,
        [cursor.transactionId, cursor.versionNumber, this.options.batchSize],
      );
      if (rows.length === 0) return 0;
      await destination.send(
        category,
        rows.map((r) => ({ eventId: r.id, json: r.record })),
      );
      const last = rows.at(-1)!;
      await client.query(
        `UPDATE ${CURSORS} SET transaction_id = $3, version_number = $4, forwarded = forwarded + $5,
           last_success_on = now(), failing_since = NULL, last_error = NULL
         WHERE destination_id = $1 AND category = $2`,
        [row.id, category, last.transaction, last.version, rows.length],
      );
      return rows.length;
    });
  }

  private async cursorOf(
    client: pg.PoolClient,
    destinationId: string,
    category: LogCategory,
    pool: pg.Pool,
  ): Promise<{ transactionId: string; versionNumber: string }> {
    const { rows } = await client.query<{ transactionId: string; versionNumber: string }>(
      `SELECT transaction_id::text AS "transactionId", version_number::text AS "versionNumber" FROM ${CURSORS}
        WHERE destination_id = $1 AND category = $2`,
      [destinationId, category],
    );
    if (rows[0]) return rows[0];
    // A destination added by an older version, or a category added later: from the log's end.
    const start = await initialCursor(pool);
    await client.query(
      `INSERT INTO ${CURSORS} (destination_id, category, transaction_id, version_number) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING`,
      [destinationId, category, start.transactionId, start.versionNumber],
    );
    return start;
  }

  private failed(row: DestinationRow, health: Health, started: Date, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    health.failures++;
    // 1 s, 2 s, 4 s … up to a minute between tries.
    health.retryAt = Date.now() + Math.min(60_000, 1000 * 2 ** Math.min(health.failures - 1, 6));
    void this.options
      .control()
      .query(
        `UPDATE ${CURSORS} SET last_error = left($2, 2000), failing_since = coalesce(failing_since, now()) WHERE destination_id = $1`,
        [row.id, message],
      )
      .catch(() => {});
    if (health.failingSince) return;
    health.failingSince = started;
    this.options.log.warn({ destination: row.name, error: message }, "log forwarding: a destination failed; its records wait");
    this.workflow(row, started, new Date(), "Failure", { error: message });
  }

  private recovered(row: DestinationRow, health: Health, started: Date, forwarded: number): void {
    const since = health.failingSince!;
    health.failingSince = undefined;
    this.options.log.info(`log forwarding: destination ${row.name} works again`);
    this.workflow(row, since, new Date(), "Successful", {
      additionalInfo: { failedForMs: started.getTime() - since.getTime(), forwarded },
    });
  }

  private workflow(
    row: DestinationRow,
    started: Date,
    ended: Date,
    resultType: "Failure" | "Successful",
    extra: { error?: string; additionalInfo?: Record<string, unknown> },
  ): void {
    this.options.emit(
      row.organization_id,
      workflowEvent(
        {
          eventId: randomUUID(),
          operationType: "Forwarding",
          scope: "Task",
          phase: "Completed",
          resultType,
          workflowJobId: row.id,
          organizationId: row.organization_id,
          submitted: started,
          started,
          ended,
          identifier: row.id,
          friendlyName: row.name,
          ...extra,
        },
        this.options,
      ),
    );
  }
}
