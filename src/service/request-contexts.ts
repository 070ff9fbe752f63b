/**
 * What a request runs against: one caller's record operations on its organisation's
 * database. Stand-alone requests use the pool (each write its own transaction); a
 * `$batch` change set gets record operations and reads bound to one transaction, so its
 * requests see each other's rows and commit or roll back together.
 */
import type { Operations } from "../actions/index.js";
import type { RequestAudit } from "../audit/request-audit.js";
import type { CallerRecords } from "../channel-analytics/records.js";
import type { Queryable } from "../db/transactions.js";
import type { Access } from "../identity/access.js";
import type { Caller } from "../model/caller.js";
import type { WriteAudit } from "../channel-analytics/write-audit.js";
import type { BatchPartRef, Observer } from "../observe/observation.js";
import type { RequestContext } from "./odata-request.js";

export class RequestContexts {
  constructor(
    private readonly records: CallerRecords,
    private readonly pool: Queryable,
    readonly operations: Operations,
    readonly access: Access,
    /** The request's audit (src/audit/), when the audit log is on. */
    private readonly audit?: RequestAudit,
  ) {}

  /** The audit record of the request, or of one of its `$batch` parts. */
  auditOf(part?: BatchPartRef): WriteAudit | undefined {
    return this.audit?.draft(part);
  }

  /** The organisation's database (its pool), for what the request keeps beside its records (Idempotency-Keys). */
  get db(): Queryable {
    return this.pool;
  }

  get caller(): Caller {
    return this.records.caller;
  }

  /**
   * `signal`: aborted when the client has gone (its queued writes are then dropped unrun).
   * `part`: the `$batch` part it runs, whose audit record its writes commit.
   */
  standalone(observe: Observer, signal?: AbortSignal, part?: BatchPartRef): RequestContext {
    const { operations, caller, access } = this;
    const records = this.records.withAudit(this.auditOf(part));
    return {
      records,
      db: this.pool,
      operations,
      caller,
      access,
      observe,
      signal,
      transaction: (fn) => records.transaction(fn),
      admitRows: (rows, fn) => records.admitRows(rows, signal, fn),
    };
  }

  /** Runs `fn` with a context whose every operation is in one transaction. */
  inTransaction<T>(observe: Observer, fn: (context: RequestContext) => Promise<T>): Promise<T> {
    const { operations, caller, access } = this;
    return this.records.transaction((writer, client) =>
      fn({ records: writer, db: client, operations, caller, access, observe, transaction: (inner) => inner(writer, client) }),
    );
  }
}
