/**
 * What a request runs against: stand-alone requests use the pool (each write its own
 * transaction); a `$batch` change set gets record operations and reads bound to one
 * transaction, so its requests see each other's rows and commit or roll back together.
 */
import type pg from "pg";
import type { ActionHandler, RequestContext } from "../odata/request-handler.js";
import { type Caller, RecordService } from "./records.js";

export interface RequestContexts {
  standalone: RequestContext;
  /** Runs `fn` with a context whose every operation is in one transaction. */
  inTransaction<T>(fn: (context: RequestContext) => Promise<T>): Promise<T>;
}

export function createRequestContexts(
  pool: pg.Pool,
  caller: Caller,
  actions: ReadonlyMap<string, ActionHandler>,
  ingestBatchesInFlight: number,
  ingestMaxQueuedRows?: number,
): RequestContexts {
  const records = new RecordService(pool, caller, { batchesInFlight: ingestBatchesInFlight, maxQueued: ingestMaxQueuedRows });
  return {
    standalone: { records, db: pool, actions, transaction: (fn) => records.transaction(fn) },
    inTransaction: (fn) =>
      records.transaction((writer, client) => fn({ records: writer, db: client, actions, transaction: (inner) => inner(writer, client) })),
  };
}
