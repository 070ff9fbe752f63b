/**
 * Audit and operational log records in the Azure Monitor common schema, as Customer
 * Insights forwards them (shared/reference/analytics-and-audit.md Part B): an `ApiEvent`
 * per API call, `Audit` for POST/PUT/PATCH/DELETE and `Operational` for the rest, and a
 * `WorkflowEvent` (always `Operational`) per step of background work. Types and pure
 * helpers only.
 */

export type LogCategory = "Audit" | "Operational";
export const LOG_CATEGORIES: readonly LogCategory[] = ["Audit", "Operational"];

export type LogLevel = "Informational" | "Warning" | "Error" | "Critical";

export interface ApiEventRecord {
  /** UTC, seven decimals, as `2024-05-01T13:05:12.1234567Z`. */
  time: string;
  resourceId: string;
  operationName: string;
  category: LogCategory;
  resultType: "Success" | "ClientError" | "Failure";
  /** The HTTP status, as a string (as the schema's samples show it). */
  resultSignature: string;
  durationMs: number;
  callerIpAddress?: string;
  correlationId?: string;
  identity?: {
    Authorization: { UserRole: string; RequiredRoles: string[] };
    Claims: Record<string, unknown>;
  };
  level: LogLevel;
  uri: string;
  properties: {
    eventType: "ApiEvent";
    /** A stable id of this event, so that consumers of an at-least-once stream drop repeats. */
    eventId: string;
    userAgent: string;
    method: string;
    path: string;
    origin: string;
    operationStatus: "Success" | "ClientError" | "Error";
    tenantId: string;
    tenantName: string;
    callerObjectId?: string;
    instanceId: string;
    /** The ids of the records the call wrote, by entity set. */
    writtenRecords?: Record<string, string[]>;
    /** The `$batch` part this event is about: its index (1-based), Content-ID and change set. */
    batchPart?: { index: number; contentId?: string; changeSet?: number };
    errorCode?: string;
  };
}

export interface WorkflowEventRecord {
  time: string;
  resourceId: string;
  /** `{OperationType}.{Workflow|Task}{Started|Completed}`, e.g. `Forwarding.WorkflowCompleted`. */
  operationName: string;
  category: "Operational";
  resultType: "Running" | "Skipped" | "Successful" | "Failure";
  durationMs?: number;
  level: LogLevel;
  properties: {
    eventType: "WorkflowEvent";
    eventId: string;
    workflowJobId: string;
    operationType: string;
    startTimestamp: string;
    endTimestamp?: string;
    submittedTimestamp: string;
    instanceId: string;
    /** Workflow events only. */
    tasksCount?: number;
    submittedBy?: string;
    workflowType?: "full" | "incremental";
    workflowSubmissionKind?: "OnDemand" | "Scheduled";
    workflowStatus?: "Running" | "Successful" | "Failure";
    /** Task events only. */
    identifier?: string;
    friendlyName?: string;
    error?: string;
    additionalInfo?: Record<string, unknown>;
  };
}

export type LogRecord = ApiEventRecord | WorkflowEventRecord;

/**
 * A record as the log stores it and destinations deliver it: its JSON, sent as it is
 * (never parsed and written again on the way), and its eventId.
 */
export interface SerializedRecord {
  /** The id consumers de-duplicate by (`properties.eventId`). */
  eventId: string;
  json: string;
}

export const serialized = (record: LogRecord): SerializedRecord => ({
  eventId: record.properties.eventId,
  json: JSON.stringify(record),
});

/** `2024-05-01T13:05:12.1234567Z`: the schema's seven decimals (the last four from `subMillisecond`, 0–9999). */
export function azureTime(date: Date, subMillisecond = 0): string {
  const iso = date.toISOString(); // 2024-05-01T13:05:12.123Z
  return `${iso.slice(0, 23)}${String(Math.trunc(subMillisecond)).padStart(4, "0")}Z`;
}

/**
 * Where a destination delivers records: the blob path, stream subject and table of each
 * category are the destination's business; it is given records of one category at a time,
 * in log order, and must have stored all of them when `send` resolves (at-least-once: a
 * failed `send` is retried with the same records, so a destination may see repeats, and
 * carries `properties.eventId` so its consumers can drop them).
 */
export interface LogDestination {
  send(category: LogCategory, records: readonly SerializedRecord[]): Promise<void>;
  close(): Promise<void>;
}
