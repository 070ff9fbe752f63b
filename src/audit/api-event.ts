/**
 * One API call as an `ApiEvent` record (azure-monitor.ts), and a step of background work
 * as a `WorkflowEvent`; their rows of CIEventsAudit / CIEventsOperational are made from
 * them in SQL (the columns' `fromRecord` in model/tables.ts). Pure: what the call was is gathered by
 * request-audit.ts from the request and its observations.
 */
import { ROLE_NAMES, ROLE_PRIVILEGES } from "../identity/roles.js";
import { type ApiEventRecord, type LogCategory, type LogLevel, type WorkflowEventRecord, azureTime } from "./azure-monitor.js";

/** What is known of one call (a request, or one `$batch` part) when its record is made. */
export interface ApiCall {
  eventId: string;
  received: Date;
  /** 0–9999: the ten-thousandths of a millisecond after `received`, for the schema's seven decimals. */
  subMillisecond: number;
  durationMs: number;
  method: string;
  /** Relative: `/api/data/v9.2/msdyn_kpieventsdata`. */
  path: string;
  uri: string;
  status: number;
  operationName: string;
  userAgent?: string;
  origin?: string;
  callerIpAddress?: string;
  correlationId?: string;
  errorCode?: string;
  organization: { id: string; name: string };
  caller?: { principalId: string; roles: readonly string[]; claims?: Readonly<Record<string, unknown>> };
  /** The privileges the operation needed, when it was planned. */
  privileges?: readonly string[];
  written: ReadonlyMap<string, ReadonlySet<string>>;
  batchPart?: { index: number; contentId?: string; changeSet?: number };
}

export interface ApiEventOptions {
  /** The resource id with `{organizationId}` to fill in. */
  resourceIdTemplate: string;
}

/** Longest text kept of a value a client sent (paths, headers); the rest is cut. */
const MAX_VALUE = 256;
const MAX_URI = 1000;

/** Cuts a client's text: never logged whole when long. */
export function cut(value: string, max = MAX_VALUE): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

/** Claims that carry nothing about who called but could help replay or forge: left out. */
const SECRET_CLAIM = /secret|password|passwd|assertion|token|nonce|^at_hash$|^c_hash$|^uti$|^rh$|^aio$|^xms_/i;

/** The token's claims less anything secret, each value cut. */
export function publicClaims(claims: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  if (!claims) return {};
  // A verified token's claims are one object for every request with that token (it is cached).
  let kept = publicClaimsOf.get(claims);
  if (!kept) publicClaimsOf.set(claims, (kept = filterClaims(claims)));
  return kept;
}

const publicClaimsOf = new WeakMap<object, Record<string, unknown>>();

function filterClaims(claims: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(claims)) {
    if (SECRET_CLAIM.test(name)) continue;
    if (typeof value === "string") out[name] = cut(value);
    else if (typeof value === "number" || typeof value === "boolean") out[name] = value;
    else if (Array.isArray(value)) out[name] = (value as unknown[]).slice(0, 20).map((v) => (typeof v === "string" ? cut(v) : v));
  }
  return out;
}

/** The roles that hold every privilege the operation needs (all of them when it needs none). */
export function requiredRoles(privileges: readonly string[] | undefined): string[] {
  if (privileges === undefined) return [];
  // The operations need few distinct sets of privileges: each is worked out once.
  const key = privileges.join(" ");
  let roles = requiredRolesOf.get(key);
  if (!roles) {
    roles = ROLE_NAMES.filter((role) => privileges.every((p) => ROLE_PRIVILEGES[role].has(p)));
    if (requiredRolesOf.size < 1000) requiredRolesOf.set(key, roles);
  }
  return roles;
}

const requiredRolesOf = new Map<string, string[]>();

/** Audit: calls that change something (POST, PUT, PATCH, DELETE); Operational: the rest. */
export const categoryOf = (method: string): LogCategory =>
  ["POST", "PUT", "PATCH", "DELETE"].includes(method.toUpperCase()) ? "Audit" : "Operational";

const resultTypeOf = (status: number) => (status < 400 ? "Success" : status < 500 ? "ClientError" : "Failure");
const levelOf = (status: number): LogLevel => (status < 400 ? "Informational" : status < 500 ? "Warning" : "Error");

export function resourceIdOf(template: string, organizationId: string): string {
  const key = `${template}\n${organizationId}`;
  let id = resourceIds.get(key);
  if (id === undefined) {
    id = template.replaceAll("{organizationId}", organizationId.toUpperCase());
    // Bounded: one per organisation, and organisations are few.
    if (resourceIds.size < 10_000) resourceIds.set(key, id);
  }
  return id;
}

const resourceIds = new Map<string, string>();

export function apiEvent(call: ApiCall, options: ApiEventOptions): ApiEventRecord {
  const { status } = call;
  const resultType = resultTypeOf(status);
  const written = [...call.written].filter(([, ids]) => ids.size > 0);
  return {
    time: azureTime(call.received, call.subMillisecond),
    resourceId: resourceIdOf(options.resourceIdTemplate, call.organization.id),
    operationName: call.operationName,
    category: categoryOf(call.method),
    resultType,
    resultSignature: String(status),
    durationMs: Math.max(0, Math.round(call.durationMs)),
    ...(call.callerIpAddress ? { callerIpAddress: call.callerIpAddress } : {}),
    ...(call.correlationId ? { correlationId: cut(call.correlationId, 100) } : {}),
    ...(call.caller
      ? {
          identity: {
            Authorization: { UserRole: call.caller.roles.join(","), RequiredRoles: requiredRoles(call.privileges) },
            Claims: publicClaims(call.caller.claims),
          },
        }
      : {}),
    level: levelOf(status),
    uri: cut(call.uri, MAX_URI),
    properties: {
      eventType: "ApiEvent",
      eventId: call.eventId,
      userAgent: call.userAgent ? cut(call.userAgent) : "unknown",
      method: call.method,
      path: cut(call.path, MAX_URI),
      origin: call.origin ? cut(call.origin) : "unknown",
      operationStatus: resultType === "Failure" ? "Error" : resultType,
      tenantId: call.organization.id,
      tenantName: call.organization.name,
      ...(call.caller ? { callerObjectId: call.caller.principalId } : {}),
      instanceId: call.organization.id,
      ...(written.length ? { writtenRecords: Object.fromEntries(written.map(([set, ids]) => [set, [...ids]])) } : {}),
      ...(call.batchPart ? { batchPart: call.batchPart } : {}),
      ...(call.errorCode ? { errorCode: call.errorCode } : {}),
    },
  };
}

/** One step of background work (forwarding, retention, export jobs), as a WorkflowEvent. */
export interface WorkflowStep {
  eventId: string;
  /** e.g. `Forwarding`, `Retention`. */
  operationType: string;
  /** `Workflow` for the whole run, `Task` for a step of it. */
  scope: "Workflow" | "Task";
  phase: "Started" | "Completed";
  resultType: WorkflowEventRecord["resultType"];
  workflowJobId: string;
  organizationId: string;
  submitted: Date;
  started: Date;
  ended?: Date;
  /** Of a `Workflow` event: how it was started, how many tasks, how it stands. */
  workflow?: Pick<
    WorkflowEventRecord["properties"],
    "tasksCount" | "submittedBy" | "workflowType" | "workflowSubmissionKind" | "workflowStatus"
  >;
  identifier?: string;
  friendlyName?: string;
  error?: string;
  additionalInfo?: Record<string, unknown>;
}

export function workflowEvent(step: WorkflowStep, options: ApiEventOptions): WorkflowEventRecord {
  const at = step.ended ?? step.started;
  return {
    time: azureTime(at),
    resourceId: resourceIdOf(options.resourceIdTemplate, step.organizationId),
    operationName: `${step.operationType}.${step.scope}${step.phase}`,
    category: "Operational",
    resultType: step.resultType,
    ...(step.ended ? { durationMs: step.ended.getTime() - step.started.getTime() } : {}),
    level: step.resultType === "Failure" ? "Error" : "Informational",
    properties: {
      eventType: "WorkflowEvent",
      eventId: step.eventId,
      workflowJobId: step.workflowJobId,
      operationType: step.operationType,
      startTimestamp: azureTime(step.started),
      ...(step.ended ? { endTimestamp: azureTime(step.ended) } : {}),
      submittedTimestamp: azureTime(step.submitted),
      instanceId: step.organizationId,
      ...step.workflow,
      ...(step.identifier ? { identifier: step.identifier } : {}),
      ...(step.friendlyName ? { friendlyName: step.friendlyName } : {}),
      ...(step.error ? { error: cut(step.error, 1000) } : {}),
      ...(step.additionalInfo ? { additionalInfo: step.additionalInfo } : {}),
    },
  };
}
