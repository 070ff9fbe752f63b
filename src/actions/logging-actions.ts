/**
 * The CIF client's logging API as unbound Dataverse-style actions (DESIGN.md, "Server-side
 * logging actions"):
 *
 *   POST {root}msdyn_InitLogAnalytics   {"data": <init payload>, "correlationId": "<guid>"}
 *     upserts, by natural keys and all or nothing, the conversation, its session and each
 *     participant (in one statement; row by row in one transaction when that cannot do);
 *     answers their ids.
 *   POST {root}msdyn_LogAnalyticsEvent  {"data": <event payload>, "eventName": "…", "correlationId": "<guid>"}
 *     creates one KPI event per `data.events[i]`, all or none, in one statement.
 *
 * Payload shapes and the JSON → column mapping follow shared/reference/dataverse-entities.md
 * §7–§8, without Microsoft's quirks: each level's own `customData` goes to its own row (an
 * attribute must be a writable column of that table), participant `mode` and `assignReason`
 * are stored, `regionData` is kept whole in msdyn_region and also fills msdyn_customer*, and
 * session and participant rows get an msdyn_name (their own id), as the conversation does.
 *
 * Every row is written through RecordWriter (`upsertByNaturalKeys`, `upsert`, `createMany`), so the integrity, KPI
 * definition and provider rules are the same as for a plain POST/PATCH; a writer's refusal is
 * prefixed with the JSON path of the payload part it came from (`data.events[2]: …`) and
 * keeps its status and code. Payload errors are one 400 listing every problem by JSON path.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { convertValue } from "../channel-analytics/record-input.js";
import type { RecordOperations } from "../channel-analytics/records.js";
import { parseIsoDateTime } from "../model/date-time.js";
import { type RecordKey, isGuid, unbraceGuid } from "../model/keys.js";
import { DATAVERSE_NAMESPACE, propertyByName } from "../model/properties.js";
import { type TableDef, columnOf, tableByLogicalName } from "../model/tables.js";
import { ErrorCodes, ODataError, badRequest } from "../odata/errors.js";
import { errorResponse } from "../odata/openapi-entity-sets.js";
import type { ODataResponse } from "../odata/response.js";
import type { Observer } from "../observe/observation.js";
import type { JsonSchema, OperationDefinition, OperationInput } from "./action.js";

const CONVERSATION = tableByLogicalName("msdyn_conversationdata");
const SESSION = tableByLogicalName("msdyn_sessiondata");
const PARTICIPANT = tableByLogicalName("msdyn_sessionparticipantdata");
const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");

export const INIT_LOG_ANALYTICS = "msdyn_InitLogAnalytics";
export const LOG_ANALYTICS_EVENT = "msdyn_LogAnalyticsEvent";
/** Events one msdyn_LogAnalyticsEvent call may carry (the $batch limit of Dataverse). */
export const MAX_EVENTS_PER_CALL = 1000;

// ---------------------------------------------------------------------------
// The JSON → column mapping, per payload level. Key fields (conversationId,
// providerSessionId, participantId) are handled apart: they form the natural keys.

const CONVERSATION_FIELDS = {
  createdTimestamp: "msdyn_conversationtimestamp",
  channel: "msdyn_channel",
  accountId: "msdyn_accountid",
  contactId: "msdyn_contactid",
  additionalData: "msdyn_additionaldata",
  externalCorrelationId: "msdyn_externalcorrelationid",
  providerId: "msdyn_providerid",
  providerName: "msdyn_providername",
} as const;

const SESSION_FIELDS = {
  clientSessionId: "msdyn_ucisessionid",
  clientSessionName: "msdyn_ucisessionname",
  channel: "msdyn_sessionchannel",
  creationReason: "msdyn_sessioncreationreason",
  additionalData: "msdyn_sessionadditionaldata",
  externalCorrelationId: "msdyn_externalcorrelationid",
  createdTimestamp: "msdyn_sessioncreatedtimestamp",
  agentAssignedTimestamp: "msdyn_sessionagentassignedtimestamp",
  queueAssignedTimestamp: "msdyn_sessionqueueassignedtimestamp",
  queueId: "msdyn_queueid",
  queueName: "msdyn_queuename",
} as const;

const PARTICIPANT_FIELDS = {
  name: "msdyn_participantname",
  mode: "msdyn_participantmode",
  type: "msdyn_participanttype",
  addedTimestamp: "msdyn_participantaddedtimestamp",
  assignReason: "msdyn_participantassignreason",
} as const;

/** regionData's parts that also fill a column of their own. */
const REGION_FIELDS = {
  city: "msdyn_customercity",
  state: "msdyn_customerstate",
  country: "msdyn_customercountry",
  zip: "msdyn_customerzip",
} as const;

/** Top-level fields of the event payload that apply to each event. */
const EVENT_SHARED_FIELDS = {
  clientSessionId: "msdyn_clientsessionid",
} as const;

const EVENT_FIELDS = {
  kpiEventName: "msdyn_kpieventname",
  kpiEventReason: "msdyn_kpieventreason",
  eventTimestamp: "msdyn_eventtimestamp",
  additionalData: "msdyn_additionaldata",
  notificationResponseAction: "msdyn_notificationresponseaction",
  externalCorrelationId: "msdyn_externalcorrelationid",
} as const;

type FieldMap = Readonly<Record<string, string>>;

// ---------------------------------------------------------------------------
// Validation. Types and lengths come from the table definitions, so the payload is
// refused with its own JSON paths before any row is written.

/** An ISO 8601 date-time with a real calendar date (the same rule as plain writes). */
const isIsoDateTime = (value: string): boolean => parseIsoDateTime(value) !== undefined;

const NOT_A_DATE_TIME = "must be an ISO-8601 date-time, such as 2026-11-22T09:30:00Z";
// (Not z.custom: its failure would stop the checks around it, so the 400 would list less.)
const isoDateTime = z.string({ error: NOT_A_DATE_TIME }).refine(isIsoDateTime, { error: NOT_A_DATE_TIME });

/**
 * Cross-field checks run even when some field is malformed (zod skips them by default),
 * so one 400 lists every problem; they guard the shapes they read.
 */
const EVEN_WITH_OTHER_ISSUES = { when: () => true };

const text = (maxLength: number) => z.string().max(maxLength);

function columnValue(table: TableDef, name: string): z.ZodType<string> {
  const column = columnOf(table, name);
  return column.type === "datetime" ? isoDateTime : text(column.maxLength!);
}

/** The mapped fields of a level: each optional; null is the same as absent. */
function mappedFields<M extends FieldMap>(table: TableDef, fields: M) {
  return Object.fromEntries(Object.entries(fields).map(([json, column]) => [json, columnValue(table, column).nullish()])) as {
    [K in keyof M]: z.ZodOptional<z.ZodNullable<z.ZodType<string>>>;
  };
}

/** An id that is (part of) a natural key or a parent link: a non-empty string. */
const idField = (table: TableDef, column: string) => text(columnOf(table, column).maxLength!).min(1);

/** Columns a payload's ids fill; customData may not set them. */
const keyColumns = (table: TableDef) => new Set([...(table.naturalKey ?? []), ...table.parents.flatMap((p) => p.columns)]);

/**
 * `[{attribute, value}]`: each attribute a writable column of `table` (case-sensitive
 * logical name), each value valid for it. Rows that may be updated need columns writable
 * on update too.
 */
function customDataOf(table: TableDef, writes: "create" | "create-and-update") {
  const keys = keyColumns(table);
  return z
    .array(z.strictObject({ attribute: z.string(), value: z.unknown() }))
    .superRefine((items, ctx) => {
      if (!Array.isArray(items)) return;
      items.forEach((item, i) => {
        // Checked even when other items are malformed, so one 400 lists every problem.
        if (typeof item !== "object" || item === null || typeof item.attribute !== "string") return;
        const { attribute, value } = item;
        const column = propertyByName(table, attribute);
        const writable =
          column !== undefined &&
          column.type !== "lookup" &&
          column.validForCreate &&
          (writes === "create" || column.validForUpdate);
        if (!writable) {
          ctx.addIssue({
            code: "custom",
            path: [i, "attribute"],
            message: `'${attribute}' is not a writable column of ${table.logicalName}`,
          });
        } else if (keys.has(column.name)) {
          ctx.addIssue({
            code: "custom",
            path: [i, "attribute"],
            message: `'${attribute}' is a key column of ${table.logicalName}; it comes from the payload's ids, not from customData`,
          });
        } else if (value !== undefined) {
          // (A missing value is zod's to report; null clears the column.)
          try {
            convertValue(table, column, value);
          } catch (error) {
            if (!(error instanceof ODataError)) throw error;
            ctx.addIssue({ code: "custom", path: [i, "value"], message: error.message });
          }
        }
      });
    }, EVEN_WITH_OTHER_ISSUES)
    .nullish();
}

/** An object, or a string holding its JSON (older CIF docs type `data` as a string). */
function objectOrJsonText<S extends z.ZodType>(schema: S) {
  return z.preprocess((value, ctx) => {
    if (typeof value !== "string") return value;
    try {
      return JSON.parse(value) as unknown;
    } catch (error) {
      ctx.addIssue({ code: "custom", message: `is a string but not valid JSON (${(error as Error).message})` });
      return value;
    }
  }, schema);
}

const regionColumn = columnOf(CONVERSATION, "msdyn_region");

/** Kept whole (other parts such as addressLine1 included) as JSON text in msdyn_region. */
const RegionData = objectOrJsonText(
  z
    .looseObject({
      addressLine1: z.string().nullish(),
      ...mappedFields(CONVERSATION, REGION_FIELDS),
    })
    .superRefine((region, ctx) => {
      if (typeof region !== "object" || region === null) return;
      const length = JSON.stringify(region).length;
      if (length > regionColumn.maxLength!) {
        ctx.addIssue({
          code: "custom",
          message: `is ${length} characters as JSON text; msdyn_region holds at most ${regionColumn.maxLength}`,
        });
      }
    }, EVEN_WITH_OTHER_ISSUES),
);

const Participant = z.strictObject({
  participantId: idField(PARTICIPANT, "msdyn_participantid"),
  /** The provider's own id of the participant: no column holds it (reference §7). */
  externalId: z.string().nullish(),
  ...mappedFields(PARTICIPANT, PARTICIPANT_FIELDS),
  customData: customDataOf(PARTICIPANT, "create-and-update"),
});

const Session = z.strictObject({
  providerSessionId: idField(SESSION, "msdyn_providersessionid"),
  ...mappedFields(SESSION, SESSION_FIELDS),
  customData: customDataOf(SESSION, "create-and-update"),
  participants: z
    .array(Participant)
    .superRefine((participants, ctx) => {
      if (!Array.isArray(participants)) return;
      const first = new Map<string, number>();
      participants.forEach((participant, i) => {
        const participantId = (participant as { participantId?: unknown } | null)?.participantId;
        if (typeof participantId !== "string") return;
        const earlier = first.get(participantId);
        if (earlier === undefined) first.set(participantId, i);
        else
          ctx.addIssue({ code: "custom", path: [i, "participantId"], message: `repeats participants[${earlier}].participantId` });
      });
    }, EVEN_WITH_OTHER_ISSUES)
    .nullish(),
});

const InitPayload = z.strictObject({
  conversation: z.strictObject({
    conversationId: idField(CONVERSATION, "msdyn_conversationid"),
    ...mappedFields(CONVERSATION, CONVERSATION_FIELDS),
    regionData: RegionData.nullish(),
    customData: customDataOf(CONVERSATION, "create-and-update"),
    session: Session,
  }),
});

const KpiEvent = z.strictObject({
  ...mappedFields(KPI_EVENT, EVENT_FIELDS),
  customData: customDataOf(KPI_EVENT, "create"),
});

const EventPayload = z.strictObject({
  conversationId: idField(KPI_EVENT, "msdyn_conversationid"),
  providerSessionId: idField(KPI_EVENT, "msdyn_providersessionid"),
  participantId: idField(KPI_EVENT, "msdyn_participantid").nullish(),
  ...mappedFields(KPI_EVENT, EVENT_SHARED_FIELDS),
  events: z.array(KpiEvent).min(1).max(MAX_EVENTS_PER_CALL),
});

// GUIDs in braces are accepted, as everywhere; the header echoes the bare form.
const CorrelationId = z
  .string()
  .refine((v) => isGuid(unbraceGuid(v)), "must be a GUID, such as 3fa85f64-5717-4562-b3fc-2c963f66afa6");

export const InitRequest = z.strictObject({
  data: objectOrJsonText(InitPayload),
  correlationId: CorrelationId.nullish(),
});

export const EventRequest = z
  .strictObject({
    data: objectOrJsonText(EventPayload),
    eventName: columnValue(KPI_EVENT, "msdyn_kpieventname").nullish(),
    correlationId: CorrelationId,
  })
  .superRefine(({ data, eventName }, ctx) => {
    const events = (data as { events?: unknown } | null)?.events;
    if (eventName || !Array.isArray(events)) return;
    events.forEach((event: { kpiEventName?: unknown } | null, i) => {
      if (typeof event === "object" && event !== null && !event.kpiEventName) {
        ctx.addIssue({
          code: "custom",
          path: ["data", "events", i, "kpiEventName"],
          message: "is required when eventName is not given",
        });
      }
    });
  }, EVEN_WITH_OTHER_ISSUES);

type InitPayload = z.infer<typeof InitPayload>;
type EventRequest = z.infer<typeof EventRequest>;

// ---------------------------------------------------------------------------
// Error messages with JSON paths.

const article = (noun: string) => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);

/** Wording for zod's own issues; custom ones carry their message. */
const issueMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined ? "is required" : `must be ${article(issue.expected)}`;
    case "too_big":
      if (issue.origin === "string") return `must be at most ${issue.maximum} characters long`;
      if (issue.origin === "array") return `must have at most ${issue.maximum} items`;
      return undefined;
    case "too_small":
      if (issue.origin === "string") return "must not be empty";
      if (issue.origin === "array") return `must have at least ${issue.minimum} item${issue.minimum === 1 ? "" : "s"}`;
      return undefined;
    default:
      return undefined;
  }
};

/** `data.conversation.session.participants[1].addedTimestamp` */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(part))) out += `${out ? "." : ""}${String(part)}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => `${jsonPath([...issue.path, key])}: is not a known property`);
    }
    return [`${jsonPath(issue.path) || "(body)"}: ${issue.message}`];
  });
}

function parseRequest<S extends z.ZodType>(action: string, schema: S, body: unknown): z.infer<S> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest(
      `The body of ${action} must be a JSON object such as {"data": {…}, "correlationId": "<guid>"}.`,
      ErrorCodes.payloadError,
    );
  }
  const parsed = schema.safeParse(body, { error: issueMessage });
  if (parsed.success) return parsed.data;
  throw badRequest(
    `The ${action} request is not valid: ${describeIssues(parsed.error.issues).join("; ")}`,
    ErrorCodes.payloadError,
  );
}

/** Prefixes a writer's refusal with the JSON path of the payload part, keeping status and code. */
async function at<T>(path: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (error instanceof ODataError) throw error.at(path);
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Correlation.

/**
 * Reports the request's correlation id as soon as the body has one that is a GUID (so even
 * a refusal of the rest carries it), else `fallback()`. The service echoes it in
 * `x-ms-correlation-request-id`, errors included, and the request log adds it to the
 * request's lines.
 */
function reportCorrelation(body: unknown, observe: Observer, fallback: () => string | undefined): void {
  const given = (body as { correlationId?: unknown } | null | undefined)?.correlationId;
  const correlationId =
    typeof given === "string" && isGuid(unbraceGuid(given))
      ? unbraceGuid(given)
      : given === undefined || given === null
        ? fallback()
        : undefined;
  if (correlationId) observe({ kind: "correlation", correlationId });
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const alternateKey = (values: Record<string, string>): RecordKey => ({ kind: "alternate", values });

const responseContext = (root: string, type: string) => `${root}$metadata#${DATAVERSE_NAMESPACE}.${type}`;

/** Copies the given mapped fields; absent and null ones leave the column as it is. */
function mapFields(fields: FieldMap, source: Readonly<Record<string, unknown>>, body: Record<string, unknown>): void {
  for (const [json, column] of Object.entries(fields)) {
    const value = source[json];
    if (value !== undefined && value !== null) body[column] = value;
  }
}

/** customData after the mapped fields: it may override them (keys excepted, see customDataOf). */
function mapCustomData(
  items: ReadonlyArray<{ attribute: string; value?: unknown }> | null | undefined,
  body: Record<string, unknown>,
): void {
  for (const { attribute, value } of items ?? []) body[attribute] = value;
}

// ---------------------------------------------------------------------------
// msdyn_InitLogAnalytics

type Conversation = InitPayload["conversation"];
type Session = Conversation["session"];
type Participant = NonNullable<Session["participants"]>[number];

function conversationBody(conversation: Conversation): Record<string, unknown> {
  const body: Record<string, unknown> = { msdyn_name: conversation.conversationId };
  mapFields(CONVERSATION_FIELDS, conversation, body);
  if (conversation.regionData) {
    const region = conversation.regionData as Record<string, unknown>;
    body.msdyn_region = JSON.stringify(region);
    // The whole region replaces the old one, so its absent parts clear their columns.
    for (const [json, column] of Object.entries(REGION_FIELDS)) body[column] = region[json] ?? null;
  }
  mapCustomData(conversation.customData, body);
  return body;
}

function sessionBody(session: Session): Record<string, unknown> {
  const body: Record<string, unknown> = { msdyn_name: session.providerSessionId };
  mapFields(SESSION_FIELDS, session, body);
  mapCustomData(session.customData, body);
  return body;
}

function participantBody(participant: Participant): Record<string, unknown> {
  const body: Record<string, unknown> = { msdyn_name: participant.participantId };
  mapFields(PARTICIPANT_FIELDS, participant, body);
  mapCustomData(participant.customData, body);
  return body;
}

/** The natural key of the conversation, of its session and of one of its participants. */
const conversationKeyOf = (data: InitPayload) => ({ msdyn_conversationid: data.conversation.conversationId });
const sessionKeyOf = (data: InitPayload) => ({
  ...conversationKeyOf(data),
  msdyn_providersessionid: data.conversation.session.providerSessionId,
});
const participantKeyOf = (data: InitPayload, participant: Participant) => ({
  ...sessionKeyOf(data),
  msdyn_participantid: participant.participantId,
});

/**
 * The common call (no state columns, no column that only create or only update may
 * write) as one statement: one round trip, atomic on its own. Undefined when the call
 * needs the row-by-row path below, which has every rule and explains every refusal.
 */
async function initInOneStatement(records: RecordOperations, data: InitPayload, signal?: AbortSignal) {
  const { conversation } = data;
  const participants = conversation.session.participants ?? [];
  const result = await records.upsertByNaturalKeys(
    [
      {
        table: CONVERSATION,
        key: conversationKeyOf(data),
        body: conversationBody(conversation),
        // createdTimestamp defaults to the moment the conversation is first logged, and stays.
        createOnly: conversation.createdTimestamp ? {} : { msdyn_conversationtimestamp: new Date().toISOString() },
      },
      { table: SESSION, key: sessionKeyOf(data), body: sessionBody(conversation.session) },
      ...participants.map((p) => ({ table: PARTICIPANT, key: participantKeyOf(data, p), body: participantBody(p) })),
    ],
    signal,
  );
  return result && { conversation: result[0]!.id, session: result[1]!.id, participants: result.slice(2).map((r) => r.id) };
}

async function initLogAnalytics({ body, root, context }: OperationInput): Promise<ODataResponse> {
  reportCorrelation(body, context.observe, randomUUID);
  const { data } = parseRequest(INIT_LOG_ANALYTICS, InitRequest, body);
  const { conversation } = data;
  const { session } = conversation;
  const participants = session.participants ?? [];
  const conversationId = conversation.conversationId;
  const providerSessionId = session.providerSessionId;

  const ids =
    (await initInOneStatement(context.records, data, context.signal)) ??
    (await context.transaction(async (writer) => {
      const conversationKey = alternateKey(conversationKeyOf(data));
      const conversationRow = await at("data.conversation", async () => {
        const { row, created } = await writer.upsert(CONVERSATION, conversationKey, conversationBody(conversation));
        if (!created || conversation.createdTimestamp) return row;
        // createdTimestamp defaults to the moment the conversation is first logged, and stays.
        const stamped = await writer.upsert(CONVERSATION, conversationKey, {
          msdyn_conversationtimestamp: new Date().toISOString(),
        });
        return stamped.row;
      });

      const sessionKey = alternateKey(sessionKeyOf(data));
      const sessionRow = await at("data.conversation.session", () => writer.upsert(SESSION, sessionKey, sessionBody(session)));

      // In participantId order, so two calls for the same session lock rows alike (no deadlock).
      const participantIds: string[] = new Array<string>(participants.length);
      const order = participants
        .map((_, i) => i)
        .sort((a, b) => compare(participants[a]!.participantId, participants[b]!.participantId));
      for (const i of order) {
        const participant = participants[i]!;
        const key = alternateKey(participantKeyOf(data, participant));
        const { row } = await at(`data.conversation.session.participants[${i}]`, () =>
          writer.upsert(PARTICIPANT, key, participantBody(participant)),
        );
        participantIds[i] = row[PARTICIPANT.primaryKey] as string;
      }
      return {
        conversation: conversationRow[CONVERSATION.primaryKey] as string,
        session: sessionRow.row[SESSION.primaryKey] as string,
        participants: participantIds,
      };
    }));

  context.observe({ kind: "written", entitySet: CONVERSATION.entitySetName, ids: [ids.conversation] });
  context.observe({ kind: "written", entitySet: SESSION.entitySetName, ids: [ids.session] });
  if (ids.participants.length) context.observe({ kind: "written", entitySet: PARTICIPANT.entitySetName, ids: ids.participants });
  context.observe({
    kind: "note",
    fields: { conversationId, providerSessionId, participants: participants.length },
    message:
      `${INIT_LOG_ANALYTICS}: logged conversation '${conversationId}', session '${providerSessionId}' ` +
      `and ${participants.length} participant(s)`,
  });
  return {
    status: 200,
    headers: {},
    body: {
      "@odata.context": responseContext(root, `${INIT_LOG_ANALYTICS}Response`),
      ConversationDataId: ids.conversation,
      SessionDataId: ids.session,
      SessionParticipantDataIds: ids.participants,
    },
  };
}

// ---------------------------------------------------------------------------
// msdyn_LogAnalyticsEvent

type KpiEvent = EventRequest["data"]["events"][number];

function eventBody(request: EventRequest, event: KpiEvent, now: string): Record<string, unknown> {
  const { data, eventName } = request;
  const body: Record<string, unknown> = {
    msdyn_conversationid: data.conversationId,
    msdyn_providersessionid: data.providerSessionId,
    // An event without a timestamp happened when it was logged (as the CIF client's system events).
    msdyn_eventtimestamp: now,
  };
  if (eventName) body.msdyn_kpieventname = eventName;
  if (data.participantId) body.msdyn_participantid = data.participantId;
  mapFields(EVENT_SHARED_FIELDS, data, body);
  mapFields(EVENT_FIELDS, event, body);
  mapCustomData(event.customData, body);
  return body;
}

async function logAnalyticsEvent({ body, root, context }: OperationInput): Promise<ODataResponse> {
  reportCorrelation(body, context.observe, () => undefined);
  const parsed = parseRequest(LOG_ANALYTICS_EVENT, EventRequest, body);
  const { data } = parsed;
  const now = new Date().toISOString();

  // One INSERT for all events: all or none without an explicit transaction.
  const bodies = data.events.map((event) => eventBody(parsed, event, now));
  const ids = await context.records.createMany(KPI_EVENT, bodies, (i) => `data.events[${i}]`, context.signal);

  context.observe({ kind: "written", entitySet: KPI_EVENT.entitySetName, ids });
  context.observe({
    kind: "note",
    fields: { conversationId: data.conversationId, providerSessionId: data.providerSessionId, events: ids.length },
    message:
      `${LOG_ANALYTICS_EVENT}: logged ${ids.length} KPI event(s) ` +
      `for conversation '${data.conversationId}', session '${data.providerSessionId}'`,
  });
  return {
    status: 200,
    headers: {},
    body: { "@odata.context": responseContext(root, `${LOG_ANALYTICS_EVENT}Response`), KpiEventDataIds: ids },
  };
}

/** The request body's JSON schema, from the action's own validation. */
function requestSchema(type: z.ZodType): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(type, { io: "input", unrepresentable: "any", target: "openapi-3.0" });
  return { required: true, content: { "application/json": { schema: rest } } };
}

const LOGGING_DESCRIPTION =
  "`data` may be the JSON object or its JSON text. The correlationId is echoed in the x-ms-correlation-request-id header and written to the request's log lines.";

const loggingResponses = (properties: Record<string, JsonSchema>) => ({
  "200": { description: "Saved", content: { "application/json": { schema: { type: "object", properties } } } },
  "400": errorResponse("A bad payload (the message names its JSON path) or a missing parent"),
  "403": errorResponse("The provider has analytics disabled"),
});

const guid = { type: "string", format: "uuid" };

/**
 * `data` is declared in `$metadata` as the JSON string of the CIF docs; the object itself
 * is accepted too.
 */
export const loggingActions: readonly OperationDefinition[] = [
  {
    kind: "Action",
    name: INIT_LOG_ANALYTICS,
    binding: "unbound",
    successStatus: 200,
    summary: "Create or update a conversation, its session and participants (initLogAnalytics)",
    description: LOGGING_DESCRIPTION,
    parameters: () => [
      { name: "data", type: "Edm.String", nullable: false },
      { name: "correlationId", type: "Edm.String" },
    ],
    privileges: () =>
      [CONVERSATION, SESSION, PARTICIPANT].flatMap((table) => [
        { verb: "Create" as const, table },
        { verb: "Write" as const, table },
      ]),
    returnType: { type: `mscrm.${INIT_LOG_ANALYTICS}Response`, nullable: false },
    complexTypes: [
      {
        name: `${INIT_LOG_ANALYTICS}Response`,
        properties: [
          { name: "ConversationDataId", type: "Edm.Guid", nullable: false },
          { name: "SessionDataId", type: "Edm.Guid", nullable: false },
          { name: "SessionParticipantDataIds", type: "Collection(Edm.Guid)", nullable: false },
        ],
      },
    ],
    openApi: () => ({
      requestBody: requestSchema(InitRequest),
      responses: loggingResponses({
        ConversationDataId: guid,
        SessionDataId: guid,
        SessionParticipantDataIds: { type: "array", items: guid },
      }),
    }),
    handler: initLogAnalytics,
  },
  {
    kind: "Action",
    name: LOG_ANALYTICS_EVENT,
    binding: "unbound",
    successStatus: 200,
    summary: "Log KPI events, all or none (logAnalyticsEvent)",
    description: LOGGING_DESCRIPTION,
    parameters: () => [
      { name: "data", type: "Edm.String", nullable: false },
      { name: "eventName", type: "Edm.String" },
      { name: "correlationId", type: "Edm.String", nullable: false },
    ],
    privileges: () => [{ verb: "Create", table: KPI_EVENT }],
    returnType: { type: `mscrm.${LOG_ANALYTICS_EVENT}Response`, nullable: false },
    complexTypes: [
      {
        name: `${LOG_ANALYTICS_EVENT}Response`,
        properties: [{ name: "KpiEventDataIds", type: "Collection(Edm.Guid)", nullable: false }],
      },
    ],
    openApi: () => ({
      requestBody: requestSchema(EventRequest),
      responses: loggingResponses({ KpiEventDataIds: { type: "array", items: guid } }),
    }),
    handler: logAnalyticsEvent,
  },
];
