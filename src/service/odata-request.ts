/** One OData request as plain data, and what it runs against. */
import type { OperationContext } from "../actions/action.js";
import type { Operations } from "../actions/index.js";
import type { Queryable } from "../db/transactions.js";

export interface ODataRequest {
  method: string;
  /** Everything after `/api/data/v9.x/`, with the query string. */
  target: string;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  /** The parsed JSON body, if any. */
  body?: unknown;
  /** `http://host/api/data/v9.2/` */
  root: string;
}

/** Stand-alone requests run on the pool; a `$batch` change set's on its transaction. */
export interface RequestContext extends OperationContext {
  /** For reads. */
  db: Queryable;
  operations: Operations;
}

/** Echoes a request's correlation id (Dataverse's name for its own). */
export const CORRELATION_HEADER = "x-ms-correlation-request-id";
