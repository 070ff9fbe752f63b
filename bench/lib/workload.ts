/**
 * What the benchmark sends: request bodies for the service, and the SQL of the database
 * ceilings, which writes the same columns the service writes for the same KPI events.
 */
import { randomUUID } from "node:crypto";
import { loadConfig } from "../../src/config/config.js";
import { newRowId } from "../../src/model/row-ids.js";
import { SYSTEM_KPI_EVENT_DEFINITIONS } from "../../src/model/tables.js";

export const API = "/api/data/v9.2";
export const SESSION_ID = "s-1";
export const PARTICIPANT_ID = "agent-1";

/**
 * The KPI events the benchmark logs: the system definitions the provider gate applies to
 * (the four agent-behaviour events skip it), so every event is fully checked.
 */
export const GATED_EVENTS = SYSTEM_KPI_EVENT_DEFINITIONS.filter(
  (d) => !["CifSessionStart", "CifSessionEnd", "SessionFocusIn", "SessionFocusOut"].includes(d.name),
);

/** The caller the server records (its configuration defaults; the bench does not override them). */
const config = loadConfig({});
export const CALLER = { userId: config.CALLER_USER_ID, businessUnitId: config.BUSINESS_UNIT_ID };

export const conversationId = (runTag: string, i: number) => `bench-${runTag}-c${i}`;

/** A distinct, valid timestamp for event `n`. */
export function eventTimestamp(n: number): string {
  return new Date(Date.UTC(2026, 10, 22, 9, 0, 0) + n * 7).toISOString();
}

export interface KpiEventFields {
  msdyn_conversationid: string;
  msdyn_providersessionid: string;
  msdyn_participantid: string;
  msdyn_kpieventname: string;
  msdyn_eventtimestamp: string;
}

/** Event `n` of the rotation over `conversations`. */
export function kpiEvent(conversations: readonly string[], n: number): KpiEventFields {
  return {
    msdyn_conversationid: conversations[n % conversations.length]!,
    msdyn_providersessionid: SESSION_ID,
    msdyn_participantid: PARTICIPANT_ID,
    msdyn_kpieventname: GATED_EVENTS[n % GATED_EVENTS.length]!.name,
    msdyn_eventtimestamp: eventTimestamp(n),
  };
}

/** A CreateMultiple body of `size` events, starting at event `first` of the rotation. */
export function createMultipleBody(conversations: readonly string[], first: number, size: number): string {
  const Targets = Array.from({ length: size }, (_, i) => ({
    "@odata.type": "Microsoft.Dynamics.CRM.msdyn_kpieventdata",
    ...kpiEvent(conversations, first + i),
  }));
  return JSON.stringify({ Targets });
}

/** A msdyn_LogAnalyticsEvent body with `size` events for one conversation. */
export function logAnalyticsEventBody(conversation: string, first: number, size: number): string {
  return JSON.stringify({
    correlationId: randomUUID(),
    eventName: "SessionStarted",
    data: {
      conversationId: conversation,
      providerSessionId: SESSION_ID,
      participantId: PARTICIPANT_ID,
      events: Array.from({ length: size }, (_, i) => ({
        kpiEventName: GATED_EVENTS[(first + i) % GATED_EVENTS.length]!.name,
        eventTimestamp: eventTimestamp(first + i),
      })),
    },
  });
}

/** A msdyn_InitLogAnalytics body: a conversation, its session and one participant. */
export function initLogAnalyticsBody(conversation: string, providerId: string, n: number): string {
  return JSON.stringify({
    correlationId: randomUUID(),
    data: {
      conversation: {
        conversationId: conversation,
        channel: "voice",
        providerId,
        createdTimestamp: eventTimestamp(n),
        regionData: { city: "Redmond", state: "WA", country: "US", zip: "98052" },
        session: {
          providerSessionId: SESSION_ID,
          queueName: "Support",
          createdTimestamp: eventTimestamp(n),
          participants: [
            { participantId: PARTICIPANT_ID, name: "Ada", type: "Agent", mode: "Primary", addedTimestamp: eventTimestamp(n + 1) },
          ],
        },
      },
    },
  });
}

// ---------------------------------------------------------------------------
// The database ceilings. These are the columns the service writes for the KPI events
// above (a new time-ordered id as the service makes them, the body's five, the
// definition's id filled in from its name, and the caller's owner / business unit /
// created-by / modified-by); the rest take their defaults (createdon, modifiedon,
// statecode, statuscode) or the versionnumber trigger, exactly as for the service's rows.

export const KPI_COLUMNS = [
  "msdyn_kpieventdataid",
  "msdyn_conversationid",
  "msdyn_providersessionid",
  "msdyn_participantid",
  "msdyn_kpieventid",
  "msdyn_kpieventname",
  "msdyn_eventtimestamp",
  "ownerid",
  "owningbusinessunit",
  "createdby",
  "modifiedby",
] as const;

/** Columns that take a default or the trigger's value on insert. */
export const DEFAULTED_COLUMNS = ["createdon", "modifiedon", "versionnumber", "statecode", "statuscode"];

export const INSERT_KPI_SQL =
  `INSERT INTO msdyn_kpieventdata (${KPI_COLUMNS.map((c) => `"${c}"`).join(", ")}) ` +
  `VALUES (${KPI_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`;

export const COPY_KPI_SQL = `COPY msdyn_kpieventdata (${KPI_COLUMNS.map((c) => `"${c}"`).join(", ")}) FROM STDIN`;

const definitionIdByName = new Map(SYSTEM_KPI_EVENT_DEFINITIONS.map((d) => [d.name, d.id]));

/** The INSERT's parameters for event `n`, as the service binds them. */
export function kpiRowValues(conversations: readonly string[], n: number): unknown[] {
  const e = kpiEvent(conversations, n);
  return [
    newRowId(),
    e.msdyn_conversationid,
    e.msdyn_providersessionid,
    e.msdyn_participantid,
    definitionIdByName.get(e.msdyn_kpieventname),
    e.msdyn_kpieventname,
    new Date(e.msdyn_eventtimestamp),
    CALLER.userId,
    CALLER.businessUnitId,
    CALLER.userId,
    CALLER.userId,
  ];
}

/** `size` rows in COPY's text format (no value here needs escaping). */
export function copyBatch(conversations: readonly string[], first: number, size: number): string {
  let text = "";
  for (let n = first; n < first + size; n++) {
    const e = kpiEvent(conversations, n);
    text +=
      `${newRowId()}\t${e.msdyn_conversationid}\t${e.msdyn_providersessionid}\t${e.msdyn_participantid}\t` +
      `${definitionIdByName.get(e.msdyn_kpieventname)}\t${e.msdyn_kpieventname}\t${e.msdyn_eventtimestamp}\t` +
      `${CALLER.userId}\t${CALLER.businessUnitId}\t${CALLER.userId}\t${CALLER.userId}\n`;
  }
  return text;
}
