/**
 * The audit log of one server: a RequestAudit per request (request-audit.ts), and the
 * buffer of records that are not committed with a write (reads, refusals, the `$batch`
 * envelope, background work). That buffer is written to the organisation's tables at
 * least once a second (`flushMs`), so an operational record may be lost only with the
 * process, within that second; an Audit record of a write never waits here: it commits
 * with the write.
 */
import type pg from "pg";
import type { ApiEventOptions } from "./api-event.js";
import type { LogRecord } from "./azure-monitor.js";
import { type RequestAuditOptions, RequestAudit, type RequestFacts } from "./request-audit.js";
import { appendLogRecords } from "./store/log-store.js";

/** What the audit log says of itself (pino's shape). */
export interface AuditLogger {
  warn(fields: object, message: string): void;
  info(message: string): void;
}

export interface AuditLogOptions extends ApiEventOptions {
  /** The default organisation: where a request that reached none is logged. */
  organization: RequestAuditOptions["organization"];
  nameOf: RequestAuditOptions["nameOf"];
  /** The pool of an organisation's database. */
  poolOf(organizationId: string): Promise<pg.Pool>;
  flushMs: number;
  /** The most records held while their database is away; beyond it the oldest are dropped (and counted). */
  maxBuffered: number;
  log: AuditLogger;
}

export class AuditLog {
  private readonly buffers = new Map<string, LogRecord[]>();
  private readonly timer: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private failing = false;
  /** Records dropped because the buffer was full while the database was away. */
  dropped = 0;

  constructor(private readonly options: AuditLogOptions) {
    this.timer = setInterval(() => void this.flush(), options.flushMs);
    this.timer.unref();
  }

  /** An organisation's database, as the options give it. */
  poolOf(organizationId: string): Promise<pg.Pool> {
    return this.options.poolOf(organizationId);
  }

  begin(facts: RequestFacts): RequestAudit {
    return new RequestAudit(facts, this.options, (organizationId, record) => this.append(organizationId, record));
  }

  /** Buffers a record for the next flush. */
  append(organizationId: string, record: LogRecord): void {
    let buffer = this.buffers.get(organizationId);
    if (!buffer) this.buffers.set(organizationId, (buffer = []));
    buffer.push(record);
    if (buffer.length > this.options.maxBuffered) {
      this.dropped += buffer.length - this.options.maxBuffered;
      buffer.splice(0, buffer.length - this.options.maxBuffered);
    }
  }

  /** How many records wait to be written. */
  get buffered(): number {
    let n = 0;
    for (const buffer of this.buffers.values()) n += buffer.length;
    return n;
  }

  /** Writes what is buffered; one flush at a time (a second call waits for the first, then runs). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.flushAll().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async flushAll(): Promise<void> {
    for (const [organizationId, buffer] of this.buffers) {
      if (buffer.length === 0) continue;
      const records = buffer.splice(0, buffer.length);
      try {
        await appendLogRecords(await this.options.poolOf(organizationId), records);
        if (this.failing) this.options.log.info("audit log: records are written again");
        this.failing = false;
      } catch (error) {
        // Kept for the next flush (ahead of newer ones); one warning per outage.
        buffer.unshift(...records);
        if (!this.failing) this.options.log.warn({ err: error }, "audit log: records could not be written; keeping them");
        this.failing = true;
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
