/**
 * The dimensions the analytics queries group and filter by, and where each one is read:
 * the rollups keep five; the metric rows reach the rest through the conversation's own
 * tables; the details query's conversation and segment filters read the summaries.
 */
import { ident } from "../db/sql.js";

/** A dimension of the aggregates query. `rollup`: its rollup column; `fact`: its SQL over the metric rows and their joins. */
export interface AggregateDimension {
  name: string;
  description: string;
  rollup?: string;
  fact: string;
  joins?: readonly FactJoin[];
}

export type FactJoin = "conversation" | "session" | "segment" | "summary";

export const FACT_JOINS: Record<FactJoin, string> = {
  conversation: "LEFT JOIN msdyn_conversationdata c ON c.msdyn_conversationid = f.conversationid",
  session:
    "LEFT JOIN msdyn_sessiondata s ON s.msdyn_conversationid = f.conversationid AND s.msdyn_providersessionid = f.providersessionid",
  segment:
    "LEFT JOIN cif_analytics_segment g ON g.conversationid = f.conversationid AND g.providersessionid = f.providersessionid AND g.participantid = f.participantid",
  summary: "LEFT JOIN cif_analytics_conversation a ON a.conversationid = f.conversationid",
};

const conversationColumn = (name: string, column: string, description: string): AggregateDimension => ({
  name,
  description,
  fact: `COALESCE(c.${ident(column)}, '')`,
  joins: ["conversation"],
});

export const AGGREGATE_DIMENSIONS: readonly AggregateDimension[] = [
  { name: "queueId", description: "the session's msdyn_queueid", rollup: "queueid", fact: "f.queueid" },
  {
    name: "mediaType",
    description: "the session's msdyn_sessionchannel (else the conversation's msdyn_channel), as a Genesys media type",
    rollup: "mediatype",
    fact: "f.mediatype",
  },
  {
    name: "providerId",
    description: "the event's msdyn_ProviderId, else the conversation's msdyn_providerid",
    rollup: "providerid",
    fact: "f.providerid",
  },
  { name: "userId", description: "the agent participant's msdyn_participantid", rollup: "userid", fact: "f.userid" },
  {
    name: "direction",
    description: "inbound / outbound from the ANALYTICS_DIRECTION_COLUMN of the session (or conversation)",
    rollup: "direction",
    fact: "f.direction",
  },
  {
    name: "originatingDirection",
    description: "the direction of the conversation's first session",
    fact: "COALESCE(a.originatingdirection, '')",
    joins: ["summary"],
  },
  { name: "conversationId", description: "msdyn_conversationid", fact: "f.conversationid" },
  { name: "sessionId", description: "msdyn_providersessionid", fact: "f.providersessionid" },
  {
    name: "kpiEventName",
    description: "the KPI event that completed the metric (e.g. SessionClosed for tHandle)",
    fact: "f.kpieventname",
  },
  {
    name: "queueName",
    description: "the session's msdyn_queuename",
    fact: "COALESCE(s.msdyn_queuename, '')",
    joins: ["session"],
  },
  {
    name: "sessionCreationReason",
    description: "the session's msdyn_sessioncreationreason",
    fact: "COALESCE(s.msdyn_sessioncreationreason, '')",
    joins: ["session"],
  },
  {
    name: "purpose",
    description:
      "acd for queue metrics, else the participant's purpose from msdyn_participanttype (agent, customer, botflow, external)",
    fact: "CASE WHEN f.participantid = '' THEN 'acd' ELSE COALESCE(g.purpose, 'agent') END",
    joins: ["segment"],
  },
  conversationColumn("customerCountry", "msdyn_customercountry", "the conversation's msdyn_customerCountry"),
  conversationColumn("customerState", "msdyn_customerstate", "the conversation's msdyn_customerState"),
  conversationColumn("customerCity", "msdyn_customercity", "the conversation's msdyn_customerCity"),
  conversationColumn("externalCorrelationId", "msdyn_externalcorrelationid", "the conversation's msdyn_ExternalCorrelationId"),
  ...[1, 2, 3, 4, 5].map((n) =>
    conversationColumn(`customAttribute${n}`, `msdyn_customattribute${n}`, `the conversation's msdyn_CustomAttribute${n}`),
  ),
];

const aggregateByName = new Map(AGGREGATE_DIMENSIONS.map((d) => [d.name, d]));
export const aggregateDimension = (name: string) => aggregateByName.get(name);

/** A dimension of the details query's filters: its SQL over the summary `a` (conversation) or segment `g`. */
export interface DetailDimension {
  name: string;
  sql: string;
  joinsConversation?: boolean;
}

export const CONVERSATION_DIMENSIONS: readonly DetailDimension[] = [
  { name: "conversationId", sql: "a.conversationid" },
  { name: "conversationStart", sql: "a.conversationstart::text" },
  { name: "conversationEnd", sql: "a.conversationend::text" },
  { name: "originatingDirection", sql: "a.originatingdirection" },
  ...(
    [
      ["externalCorrelationId", "msdyn_externalcorrelationid"],
      ["customerCountry", "msdyn_customercountry"],
      ["customerState", "msdyn_customerstate"],
      ["customerCity", "msdyn_customercity"],
      ["providerId", "msdyn_providerid"],
      ["customAttribute1", "msdyn_customattribute1"],
      ["customAttribute2", "msdyn_customattribute2"],
      ["customAttribute3", "msdyn_customattribute3"],
      ["customAttribute4", "msdyn_customattribute4"],
      ["customAttribute5", "msdyn_customattribute5"],
    ] as const
  ).map(([name, column]) => ({ name, sql: `c.${ident(column)}`, joinsConversation: true })),
];

export const SEGMENT_DIMENSIONS: readonly DetailDimension[] = [
  { name: "mediaType", sql: "g.mediatype" },
  { name: "queueId", sql: "g.queueid" },
  { name: "userId", sql: "g.userid" },
  { name: "direction", sql: "g.direction" },
  { name: "purpose", sql: "g.purpose" },
  { name: "participantName", sql: "g.participantname" },
  { name: "participantId", sql: "g.participantid" },
  { name: "sessionId", sql: "g.providersessionid" },
  { name: "provider", sql: "g.providerid" },
  { name: "providerId", sql: "g.providerid" },
  // Multi-valued: matched as whole values of the delimited list.
  { name: "segmentType", sql: "g.segmenttypes" },
  { name: "disconnectType", sql: "g.disconnecttypes" },
];

export const MULTI_VALUED = new Set(["segmentType", "disconnectType"]);
