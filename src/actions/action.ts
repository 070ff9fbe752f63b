/**
 * One definition per action or function: its name, binding, parameters, response and
 * handler. Dispatch (src/service/), `$metadata` (src/odata/csdl.ts) and the OpenAPI
 * document (src/actions/openapi.ts) are all generated from the list in ./index.ts, so an
 * operation is declared in exactly one place.
 */
import type { RecordOperations, RecordWriter } from "../channel-analytics/records.js";
import type { Queryable } from "../db/transactions.js";
import type { Access } from "../identity/access.js";
import type { Caller } from "../model/caller.js";
import type { PrivilegeNeed } from "../model/privileges.js";
import type { TableDef } from "../model/tables.js";
import type { CsdlComplexType, CsdlProperty } from "../odata/csdl.js";
import type { ODataResponse } from "../odata/response.js";
import type { Observer } from "../observe/observation.js";

/** What an operation runs against: the request's record operations, caller and observer. */
export interface OperationContext {
  records: RecordOperations;
  /** Runs `fn` in one transaction (the change set's own, inside a `$batch`). */
  transaction<T>(fn: (writer: RecordWriter, db: Queryable) => Promise<T>): Promise<T>;
  caller: Caller;
  /** What the caller may do (its roles' privileges). */
  access: Access;
  observe: Observer;
  /** Aborted when the client has gone: its queued writes are dropped before they run. */
  signal?: AbortSignal;
  /**
   * Runs `fn`, which writes `rows` rows, once admitted by the bound on rows in flight
   * (src/db/admission.ts): refused with a 503 beyond it, not started when the client has
   * gone. Absent inside a `$batch` change set (admitted as a whole) and without a bound.
   */
  admitRows?<T>(rows: number, fn: () => Promise<T>): Promise<T>;
}

export interface OperationInput {
  /** The parsed JSON body (actions), if any. */
  body: unknown;
  /** `http://host/api/data/v9.2/` */
  root: string;
  /** The entity set an `entity-set` operation was called on. */
  table?: TableDef;
  context: OperationContext;
}

/** A JSON schema object, as OpenAPI 3.0 takes it. */
export type JsonSchema = Record<string, unknown>;

export interface OperationDefinition {
  kind: "Action" | "Function";
  /** `msdyn_LogAnalyticsEvent`; for bound ones the unqualified name (`CreateMultiple`). */
  name: string;
  /**
   * `unbound`: `POST {root}name` (functions: `GET {root}name()`); `entity-set`: bound to
   * every entity set's collection, `POST {set}/Microsoft.Dynamics.CRM.name`.
   */
  binding: "unbound" | "entity-set";
  summary: string;
  description?: string;
  /** CSDL parameters (for bound ones, after the binding parameter), per table when bound. */
  parameters(table?: TableDef): readonly CsdlProperty[];
  /** The privileges a call needs (per table when bound); none for WhoAmI. */
  privileges(table?: TableDef): readonly PrivilegeNeed[];
  /** The status a successful call answers (its audit record, committed with its writes, carries it). */
  successStatus: 200 | 204;
  /** The CSDL return type, if any. */
  returnType?: { type: string; nullable?: boolean };
  /** Complex types this operation declares (its response, say). */
  complexTypes?: readonly CsdlComplexType[];
  /** OpenAPI: the request body's schema (actions) and the responses, per table when bound. */
  openApi(table?: TableDef): { requestBody?: JsonSchema; responses: Record<string, JsonSchema> };
  handler(input: OperationInput): Promise<ODataResponse>;
}
