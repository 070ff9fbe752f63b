/**
 * One HTTP request's audit: an `ApiEvent` for the request and one for each `$batch` part,
 * gathered from the request's observations (src/observe/observation.ts).
 *
 * A write's record is committed with the write (CallerRecords, the group commits and the
 * change sets insert `draft.recordText()` in the transaction that stores the write, then call
 * `settled`). When the response has gone, every event whose record did not commit that
 * way (reads, refusals, rolled-back change sets, the `$batch` envelope) is handed to
 * `emit`, which buffers it for at most a second (audit-log.ts).
 */
import { randomUUID } from "node:crypto";
import type { WriteAudit } from "../channel-analytics/write-audit.js";
import type { TableDef } from "../model/tables.js";
import type { BatchPartRef, Observation } from "../observe/observation.js";
import { type ApiCall, type ApiEventOptions, apiEvent } from "./api-event.js";
import type { ApiEventRecord } from "./azure-monitor.js";

/** What the HTTP layer knows of the request when it arrives. */
export interface RequestFacts {
  method: string;
  /** The path and query, as received (relative). */
  url: string;
  /** The request's absolute URL. */
  uri: string;
  /** e.g. `http://host/api/data/v9.2/`, to resolve the URLs of `$batch` parts against. */
  base: string;
  userAgent?: string;
  origin?: string;
  callerIpAddress?: string;
  requestId: string;
  /** The route matched (`/api/admin/principals/:id`), if any. */
  route?: string;
}

export interface RequestAuditOptions extends ApiEventOptions {
  /** The organisation a request without a known one is logged in (the default one). */
  organization: { id: string; name: string };
  /** A stable name for a call the pipeline never planned (refused before it): `msdyn_kpieventsdata.Create`. */
  nameOf(method: string, path: string, route?: string): string;
}

/** One event in the making: the request's own or a part's; its WriteAudit when it writes. */
export class EventDraft implements WriteAudit {
  readonly eventId = randomUUID();
  readonly received = new Date();
  private readonly startedAt = performance.now();
  operationName?: string;
  privileges?: readonly string[];
  successStatus?: number;
  status?: number;
  durationMs?: number;
  errorCode?: string;
  correlationId?: string;
  readonly written = new Map<string, Set<string>>();
  /** Its record committed with a write (the last commit's verdict counts). */
  committed = false;
  /** A commit that held its write failed or was rolled back (a change set whose later part failed). */
  rolledBack = false;

  constructor(
    private readonly audit: RequestAudit,
    /** A part's is set when the part is received. */
    public method: string,
    readonly path: string,
    readonly uri: string,
    readonly part?: BatchPartRef,
  ) {}

  stored(table: TableDef, ids: readonly string[]): void {
    this.addWritten(table.entitySetName, ids);
  }

  addWritten(entitySet: string, ids: readonly string[]): void {
    let set = this.written.get(entitySet);
    if (!set) this.written.set(entitySet, (set = new Set()));
    for (const id of ids) set.add(id);
  }

  /**
   * Its record as of now; before the response, with the status the operation answers on
   * success. `written`: what it names as written, when not (yet) what it was told.
   */
  record(written: ReadonlyMap<string, ReadonlySet<string>> = this.written): ApiEventRecord {
    return this.audit.recordOf(
      this,
      this.status ?? this.successStatus ?? 200,
      this.durationMs ?? performance.now() - this.startedAt,
      written,
    );
  }

  recordText(storing?: { table: TableDef; ids: readonly string[] }): string {
    if (!storing?.ids.length) return JSON.stringify(this.record());
    // Named in this record only: whether they are stored is known once the statement has run.
    const set = storing.table.entitySetName;
    const written = new Map(this.written);
    written.set(set, new Set([...(this.written.get(set) ?? []), ...storing.ids]));
    return JSON.stringify(this.record(written));
  }

  settled(committed: boolean): void {
    this.committed = committed;
    this.rolledBack = !committed;
  }

  get subMillisecond(): number {
    return Math.trunc(((this.startedAt % 1) * 10_000) % 10_000);
  }
}

export class RequestAudit {
  private readonly request: EventDraft;
  private readonly parts = new Map<number, EventDraft>();
  private caller?: Extract<Observation, { kind: "caller" }>;
  private organization?: { id: string; name: string };
  private finished = false;

  constructor(
    private readonly facts: RequestFacts,
    private readonly options: RequestAuditOptions,
    /** Where the events not committed with a write go, once the response has gone. */
    private readonly emit: (organizationId: string, record: ApiEventRecord) => void,
  ) {
    this.request = new EventDraft(this, facts.method, facts.url.split("?")[0]!, facts.uri);
  }

  /** The request's own event (a write's WriteAudit), or a `$batch` part's. */
  draft(part?: BatchPartRef): EventDraft {
    if (!part) return this.request;
    let draft = this.parts.get(part.index);
    if (!draft) {
      const uri = new URL(part.url, this.facts.base).href;
      draft = new EventDraft(this, "GET", new URL(uri).pathname, uri, part);
      this.parts.set(part.index, draft);
    }
    return draft;
  }

  readonly observe = (observation: Observation): void => {
    const draft = this.draft(observation.part);
    switch (observation.kind) {
      case "received":
        if (observation.part) draft.method = observation.method.toUpperCase();
        break;
      case "organization":
        this.organization = { id: observation.id, name: observation.name };
        break;
      case "caller":
        this.caller = observation;
        break;
      case "operation":
        draft.operationName = observation.name;
        break;
      case "requirements":
        draft.privileges = observation.privileges;
        draft.successStatus = observation.successStatus;
        break;
      case "correlation":
        draft.correlationId = observation.correlationId;
        break;
      case "written":
        draft.addWritten(observation.entitySet, observation.ids);
        break;
      case "outcome":
        draft.status = observation.status;
        draft.durationMs = observation.ms;
        draft.errorCode = observation.errorCode;
        if (!observation.part) this.finish();
        break;
      default:
        break;
    }
  };

  recordOf(
    draft: EventDraft,
    status: number,
    durationMs: number,
    written: ReadonlyMap<string, ReadonlySet<string>>,
  ): ApiEventRecord {
    const { facts, caller } = this;
    const call: ApiCall = {
      eventId: draft.eventId,
      received: draft.received,
      subMillisecond: draft.subMillisecond,
      durationMs,
      method: draft.method,
      path: draft.path,
      uri: draft.uri,
      status,
      operationName: draft.operationName ?? this.options.nameOf(draft.method, draft.path, draft.part ? undefined : facts.route),
      userAgent: facts.userAgent,
      origin: facts.origin,
      callerIpAddress: facts.callerIpAddress,
      correlationId: draft.correlationId ?? this.request.correlationId ?? facts.requestId,
      errorCode: draft.errorCode,
      organization: this.organization ?? this.options.organization,
      caller: caller && { principalId: caller.principalId, roles: caller.roles, claims: caller.claims },
      privileges: draft.privileges,
      written,
      batchPart: draft.part && { index: draft.part.index, contentId: draft.part.contentId, changeSet: draft.part.changeSet },
    };
    return apiEvent(call, this.options);
  }

  /** The response has gone: every event not committed with a write is emitted now. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const organizationId = (this.organization ?? this.options.organization).id;
    for (const draft of [this.request, ...this.parts.values()]) {
      if (draft.committed) continue;
      // A part the request never finished (the batch failed under it) shares its outcome.
      if (draft.status === undefined) {
        draft.status = this.request.status;
        draft.durationMs = this.request.durationMs;
      }
      // A write that succeeded but was rolled back with its change set: 424 Failed
      // Dependency (OData's status for a request that failed because another one did).
      if (draft.rolledBack && (draft.status ?? 200) < 400) {
        draft.status = 424;
        draft.errorCode ??= "RolledBack";
      }
      this.emit(organizationId, draft.record());
    }
  }
}
