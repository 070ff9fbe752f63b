/**
 * Retention of the queryable log tables (issue 12): on a schedule, each organisation's
 * CIEventsAudit and CIEventsOperational rows older than the retention are deleted in
 * batches, each batch its own short transaction, so a purge never holds locks or a
 * snapshot for long. A run is a workflow with a task per table, told as WorkflowEvents
 * (`Retention.WorkflowStarted`, `Retention.TaskCompleted` ×2, `Retention.WorkflowCompleted`).
 * With several servers, one purges an organisation at a time (an advisory lock in its
 * database); the others skip it quietly.
 *
 * Records older than the retention go even if a failing destination never received them:
 * a destination down for the whole retention would otherwise keep the tables growing.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { LOG_TABLES } from "../model/tables.js";
import { type ApiEventOptions, type WorkflowStep, workflowEvent } from "./api-event.js";
import type { AuditLogger } from "./audit-log.js";
import type { LogRecord } from "./azure-monitor.js";

export interface RetentionOptions extends ApiEventOptions {
  /** The ids of every organisation, read at each run (organisations come and go). */
  organizations(): Promise<readonly string[]>;
  poolOf(organizationId: string): Promise<pg.Pool>;
  emit(organizationId: string, record: LogRecord): void;
  retentionDays: number;
  /** Between runs; the first runs this long after start. */
  intervalMs: number;
  /** Rows deleted per statement. */
  batchSize: number;
  /** Batches per table per run: what is left goes at the next run. */
  maxBatches: number;
  log: AuditLogger;
}

/** What one run did in one organisation. */
export interface RetentionOutcome {
  organizationId: string;
  /** False when another server held the organisation's purge. */
  ran: boolean;
  deleted: Record<string, number>;
  error?: string;
}

export class Retention {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  /** Set by stop(): a scheduled run ends after its current batch. */
  private closing = false;

  constructor(private readonly options: RetentionOptions) {}

  start(): void {
    this.closing = false;
    const schedule = () => {
      if (this.closing) return;
      this.timer = setTimeout(() => {
        this.running = this.run("Scheduled").finally(() => {
          this.running = undefined;
          schedule();
        });
      }, this.options.intervalMs).unref();
    };
    schedule();
  }

  async stop(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One run over every organisation; never throws (a failure is told as the workflow's Failure). */
  async run(kind: "Scheduled" | "OnDemand", now = new Date()): Promise<RetentionOutcome[]> {
    let organizations: readonly string[];
    try {
      organizations = await this.options.organizations();
    } catch (error) {
      this.options.log.warn({ err: error }, "log retention: the organisations could not be read");
      return [];
    }
    const outcomes: RetentionOutcome[] = [];
    // One at a time: a purge is background work, not worth the requests' connections.
    for (const organizationId of organizations) {
      if (this.closing) break;
      outcomes.push(await this.purge(organizationId, kind, now));
    }
    return outcomes;
  }

  private async purge(organizationId: string, kind: "Scheduled" | "OnDemand", now: Date): Promise<RetentionOutcome> {
    const outcome: RetentionOutcome = { organizationId, ran: false, deleted: {} };
    const cutoff = new Date(now.getTime() - this.options.retentionDays * 86_400_000);
    let client: pg.PoolClient | undefined;
    let locked = false;
    const workflowJobId = randomUUID();
    const submitted = new Date();
    try {
      client = await (await this.options.poolOf(organizationId)).connect();
      locked = (await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended('log-retention', 0)) AS ok"))
        .rows[0]!.ok;
      if (!locked) return outcome;
      outcome.ran = true;
      const step = (s: Omit<WorkflowStep, "eventId" | "operationType" | "workflowJobId" | "organizationId" | "submitted">) =>
        this.options.emit(
          organizationId,
          workflowEvent(
            { eventId: randomUUID(), operationType: "Retention", workflowJobId, organizationId, submitted, ...s },
            this.options,
          ),
        );
      const workflow = { workflowSubmissionKind: kind, workflowType: "full", tasksCount: 2 } as const;
      step({
        scope: "Workflow",
        phase: "Started",
        resultType: "Running",
        started: submitted,
        workflow: { ...workflow, workflowStatus: "Running" },
      });
      for (const table of Object.values(LOG_TABLES)) {
        const started = new Date();
        let deleted = 0;
        try {
          deleted = await this.purgeTable(client, table.logicalName, table.primaryKey, cutoff);
          outcome.deleted[table.entitySetName] = deleted;
          step({
            scope: "Task",
            phase: "Completed",
            resultType: deleted > 0 ? "Successful" : "Skipped",
            started,
            ended: new Date(),
            identifier: table.entitySetName,
            friendlyName: table.displayCollectionName,
            additionalInfo: { deleted, olderThan: cutoff.toISOString(), retentionDays: this.options.retentionDays },
          });
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          outcome.deleted[table.entitySetName] = deleted;
          outcome.error = message;
          step({
            scope: "Task",
            phase: "Completed",
            resultType: "Failure",
            started,
            ended: new Date(),
            identifier: table.entitySetName,
            friendlyName: table.displayCollectionName,
            error: message,
          });
        }
      }
      const failed = outcome.error !== undefined;
      step({
        scope: "Workflow",
        phase: "Completed",
        resultType: failed ? "Failure" : "Successful",
        started: submitted,
        ended: new Date(),
        workflow: { ...workflow, workflowStatus: failed ? "Failure" : "Successful" },
        additionalInfo: { deleted: outcome.deleted },
        ...(failed ? { error: outcome.error } : {}),
      });
      if (failed) this.options.log.warn({ organizationId, error: outcome.error }, "log retention: a purge failed");
      return outcome;
    } catch (error) {
      // No connection, or the lock could not be asked for: nothing was purged; the next run tries again.
      outcome.error = error instanceof Error ? error.message : String(error);
      this.options.log.warn({ organizationId, error: outcome.error }, "log retention: could not purge");
      return outcome;
    } finally {
      if (client && locked) await client.query("SELECT pg_advisory_unlock(hashtextextended('log-retention', 0))").catch(() => {});
      client?.release();
    }
  }

  /** Deletes up to maxBatches × batchSize rows older than `cutoff`, oldest first; returns how many. */
  private async purgeTable(client: pg.PoolClient, table: string, key: string, cutoff: Date): Promise<number> {
    let deleted = 0;
    for (let batch = 0; batch < this.options.maxBatches; batch++) {
      if (this.closing) break;
      const { rowCount } = await client.query(
        `DELETE FROM ${table} WHERE ${key} IN (
           SELECT ${key} FROM ${table} WHERE timegenerated < $1 ORDER BY timegenerated LIMIT $2)`,
        [cutoff, this.options.batchSize],
      );
      deleted += rowCount ?? 0;
      if ((rowCount ?? 0) < this.options.batchSize) break;
    }
    return deleted;
  }
}
