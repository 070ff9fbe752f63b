/**
 * The one source of truth for the six CIF Channel Analytics tables.
 *
 * Everything else is derived from these definitions: `prisma/schema.prisma` (by
 * `npm run db:schema`), the migrations (diffed from that schema), validation, SQL,
 * `$metadata`, OpenAPI and error messages. Column facts follow
 * shared/reference/dataverse-entities.md; the parent links follow DESIGN.md
 * ("Integrity: parents before events").
 */

export type ColumnType =
  | "string" // Edm.String with a max length (nvarchar)
  | "memo" // multi-line text, Edm.String with a max length
  | "uniqueidentifier"
  | "datetime" // Edm.DateTimeOffset
  | "dateonly" // Edm.Date-like: stored as timestamptz, serialised as a date-time
  | "integer"
  | "bigint"
  | "boolean"
  | "picklist"
  | "state"
  | "status"
  | "lookup"; // a GUID pointing at a system table we do not emulate (systemuser, businessunit…)

export type RequiredLevel = "none" | "application" | "system";

export interface OptionDef {
  value: number;
  label: string;
}

export interface ColumnDef {
  /** Logical name: the PostgreSQL column, the Prisma field and (except lookups) the Web API property. */
  name: string;
  schemaName: string;
  displayName: string;
  type: ColumnType;
  maxLength?: number;
  minValue?: number;
  maxValue?: number;
  /** Dataverse's RequiredLevel; the Web API itself enforces only "system". */
  required: RequiredLevel;
  /** NOT NULL in PostgreSQL. Natural-key and parent-link columns are NOT NULL here even where Dataverse is laxer. */
  notNull: boolean;
  validForCreate: boolean;
  validForUpdate: boolean;
  /** Prisma default expression, e.g. `false`, `0`, `now()`. */
  defaultValue?: string;
  options?: readonly OptionDef[];
  /** For lookups: the logical name of the table the GUID points at. */
  lookupTarget?: string;
  /**
   * Of a log table: where in the row's JSON record the value is (`["properties", "method"]`);
   * `[]` is the record itself. The rows are made from the records in SQL (recordsSource).
   */
  fromRecord?: readonly string[];
}

/** A parent link enforced by a composite foreign key. */
export interface ParentLinkDef {
  /** Navigation property name on the child (also the Prisma relation field). */
  name: string;
  /** Collection navigation property name on the parent. */
  childCollectionName: string;
  parentTable: string;
  /** Child columns, in the order of `parentColumns`. */
  columns: readonly string[];
  parentColumns: readonly string[];
  onDelete: "cascade" | "restrict";
  /** Human wording for error messages, e.g. "conversation". */
  description: string;
  /**
   * Set when no foreign key of its own enforces the link because another one implies it
   * (an event's conversation is its session's). It is still a navigation property.
   */
  impliedBy?: string;
}

export interface IndexDef {
  columns: readonly string[];
  /** Why the index exists: the access path it serves. */
  purpose: string;
  /** The index's name when its first column's (ix_<table>_<column>) is taken already. */
  name?: string;
  /**
   * Columns the index keeps in an order with a nulls clause, as OData sorts them (nulls first
   * ascending, last descending; src/channel-analytics/store/record-query.ts). Prisma's schema
   * cannot say NULLS FIRST/LAST, so such an index is left out of schema.prisma and its
   * migration creates it by hand with `handWrittenIndexSql` (src/model/prisma-schema.ts).
   */
  nullsOrder?: Readonly<Record<string, "ASC NULLS FIRST" | "DESC NULLS LAST">>;
}

export interface TableDef {
  logicalName: string;
  /**
   * Whether the table is an entity set of the Web API (routes, `$metadata`, OpenAPI, the
   * service document). Internal tables say false, so adding one exposes nothing.
   */
  webApi: boolean;
  schemaName: string;
  entitySetName: string;
  displayName: string;
  displayCollectionName: string;
  primaryKey: string;
  primaryName: string;
  ownership: "user" | "organization";
  /** The alternate key of DESIGN.md, if any (unique in the database). */
  naturalKey?: readonly string[];
  columns: readonly ColumnDef[];
  parents: readonly ParentLinkDef[];
  indexes: readonly IndexDef[];
  /**
   * Only the service writes it (the audit log): the Web API serves reads, refuses every
   * write with 405, and roles can hold only its Read privilege.
   */
  readOnly?: boolean;
}

// ---------------------------------------------------------------------------
// Column builders: they keep the table lists below readable.

type ColumnOptions = Partial<Omit<ColumnDef, "name" | "schemaName" | "displayName" | "type">>;

function column(name: string, schemaName: string, displayName: string, type: ColumnType, options: ColumnOptions = {}): ColumnDef {
  return {
    name,
    schemaName,
    displayName,
    type,
    required: "none",
    notNull: false,
    validForCreate: true,
    validForUpdate: true,
    ...options,
  };
}

const text = (name: string, schemaName: string, displayName: string, maxLength = 100, options: ColumnOptions = {}) =>
  column(name, schemaName, displayName, "string", { maxLength, ...options });

const memo = (name: string, schemaName: string, displayName: string, maxLength: number, options: ColumnOptions = {}) =>
  column(name, schemaName, displayName, "memo", { maxLength, ...options });

const dateTime = (name: string, schemaName: string, displayName: string, options: ColumnOptions = {}) =>
  column(name, schemaName, displayName, "datetime", options);

function primaryKeyColumn(name: string, schemaName: string, displayName: string): ColumnDef {
  return column(name, schemaName, displayName, "uniqueidentifier", {
    required: "system",
    notNull: true,
    validForUpdate: false,
  });
}

function customAttributes(): ColumnDef[] {
  return [1, 2, 3, 4, 5].map((n) => text(`msdyn_customattribute${n}`, `msdyn_CustomAttribute${n}`, `Custom Attribute ${n}`));
}

const readOnly: ColumnOptions = { validForCreate: false, validForUpdate: false };

/** The row version's default: the next value of the one sequence every table shares. */
const ROW_VERSION_DEFAULT = `dbgenerated("nextval('row_version_seq'::regclass)")`;
const createOnly: ColumnOptions = { validForUpdate: false };

export const STATE_OPTIONS: readonly OptionDef[] = [
  { value: 0, label: "Active" },
  { value: 1, label: "Inactive" },
];
export const STATUS_OPTIONS: readonly OptionDef[] = [
  { value: 1, label: "Active" },
  { value: 2, label: "Inactive" },
];
export const YES_NO_OPTIONS: readonly OptionDef[] = [
  { value: 0, label: "No" },
  { value: 1, label: "Yes" },
];

/** System columns every table has (reference §0, "Standard system columns"). */
function systemColumns(ownership: "user" | "organization"): ColumnDef[] {
  const lookup = (name: string, displayName: string, target: string, options: ColumnOptions = {}) =>
    column(name, name, displayName, "lookup", { lookupTarget: target, ...readOnly, ...options });
  const owner =
    ownership === "user"
      ? [
          lookup("ownerid", "Owner", "systemuser", {
            required: "system",
            notNull: true,
            validForCreate: true,
            validForUpdate: true,
          }),
          lookup("owningbusinessunit", "Owning Business Unit", "businessunit"),
        ]
      : [lookup("organizationid", "Organization Id", "organization")];
  return [
    ...owner,
    lookup("createdby", "Created By", "systemuser"),
    lookup("createdonbehalfby", "Created By (Delegate)", "systemuser"),
    lookup("modifiedby", "Modified By", "systemuser"),
    lookup("modifiedonbehalfby", "Modified By (Delegate)", "systemuser"),
    dateTime("createdon", "CreatedOn", "Created On", { ...readOnly, notNull: true, defaultValue: "now()" }),
    dateTime("modifiedon", "ModifiedOn", "Modified On", { ...readOnly, notNull: true, defaultValue: "now()" }),
    column("overriddencreatedon", "OverriddenCreatedOn", "Record Created On", "dateonly", createOnly),
    column("importsequencenumber", "ImportSequenceNumber", "Import Sequence Number", "integer", {
      ...createOnly,
      minValue: -2147483648,
      maxValue: 2147483647,
    }),
    column("timezoneruleversionnumber", "TimeZoneRuleVersionNumber", "Time Zone Rule Version Number", "integer", {
      minValue: -1,
      maxValue: 2147483647,
    }),
    column("utcconversiontimezonecode", "UTCConversionTimeZoneCode", "UTC Conversion Time Zone Code", "integer", {
      minValue: -1,
      maxValue: 2147483647,
    }),
    // From one database sequence: its default on insert, a trigger on update (ETags); see
    // prisma/migrations/20261204140000_citus_distribution for what reference tables do.
    column("versionnumber", "VersionNumber", "Version Number", "bigint", {
      ...readOnly,
      notNull: true,
      defaultValue: ROW_VERSION_DEFAULT,
    }),
    column("statecode", "statecode", "Status", "state", {
      required: "system",
      notNull: true,
      validForCreate: false,
      defaultValue: "0",
      options: STATE_OPTIONS,
    }),
    column("statuscode", "statuscode", "Status Reason", "status", {
      notNull: true,
      defaultValue: "1",
      options: STATUS_OPTIONS,
    }),
  ];
}

// ---------------------------------------------------------------------------
// The six tables.

const conversationData: TableDef = {
  webApi: true,
  logicalName: "msdyn_conversationdata",
  schemaName: "msdyn_conversationdata",
  entitySetName: "msdyn_conversationsdata",
  displayName: "Conversation Data (Deprecated)",
  displayCollectionName: "Conversations Data (Deprecated)",
  primaryKey: "msdyn_conversationdataid",
  primaryName: "msdyn_name",
  ownership: "user",
  naturalKey: ["msdyn_conversationid"],
  columns: [
    primaryKeyColumn("msdyn_conversationdataid", "msdyn_conversationdataId", "Conversation Data Id"),
    text("msdyn_name", "msdyn_name", "Name", 100, { required: "application" }),
    text("msdyn_conversationid", "msdyn_ConversationId", "Conversation Id", 100, { notNull: true }),
    dateTime("msdyn_conversationtimestamp", "msdyn_ConversationTimestamp", "Conversation Timestamp", {
      required: "application",
    }),
    text("msdyn_channel", "msdyn_Channel", "Channel"),
    text("msdyn_accountid", "msdyn_AccountId", "Account Id"),
    text("msdyn_contactid", "msdyn_ContactId", "Contact Id"),
    text("msdyn_additionaldata", "msdyn_AdditionalData", "Additional Data", 1000),
    text("msdyn_region", "msdyn_Region", "RegionData", 1000),
    text("msdyn_customercity", "msdyn_customerCity", "Customer City"),
    text("msdyn_customerstate", "msdyn_customerState", "Customer State"),
    text("msdyn_customercountry", "msdyn_customerCountry", "Customer Country"),
    text("msdyn_customerzip", "msdyn_customerZip", "Customer Zip"),
    text("msdyn_externalcorrelationid", "msdyn_ExternalCorrelationId", "External Correlation Id"),
    text("msdyn_primaryrelatedentityname", "msdyn_PrimaryRelatedEntityName", "Primary Related Entity Name"),
    text("msdyn_primaryrelatedentityrecordid", "msdyn_PrimaryRelatedEntityRecordId", "Primary Related Entity Record Id"),
    text("msdyn_providerid", "msdyn_ProviderId", "Provider Id"),
    text("msdyn_providername", "msdyn_ProviderName", "Provider Name"),
    ...customAttributes(),
    ...systemColumns("user"),
  ],
  parents: [],
  indexes: [],
};

const sessionData: TableDef = {
  webApi: true,
  logicalName: "msdyn_sessiondata",
  schemaName: "msdyn_SessionData",
  entitySetName: "msdyn_sessionsdata",
  displayName: "Session Data (Deprecated)",
  displayCollectionName: "Sessions Data (Deprecated)",
  primaryKey: "msdyn_sessiondataid",
  primaryName: "msdyn_name",
  ownership: "user",
  naturalKey: ["msdyn_conversationid", "msdyn_providersessionid"],
  columns: [
    primaryKeyColumn("msdyn_sessiondataid", "msdyn_SessionDataId", "Session Data Id"),
    text("msdyn_name", "msdyn_Name", "Name"),
    text("msdyn_conversationid", "msdyn_ConversationId", "Conversation Id", 100, { notNull: true }),
    text("msdyn_providersessionid", "msdyn_ProviderSessionId", "Provider Session Id", 100, { notNull: true }),
    text("msdyn_ucisessionid", "msdyn_UCISessionId", "Client Session Id"),
    text("msdyn_ucisessionname", "msdyn_UCISessionName", "Client Session Name"),
    text("msdyn_sessionchannel", "msdyn_SessionChannel", "Channel"),
    text("msdyn_sessioncreationreason", "msdyn_SessionCreationReason", "Creation Reason"),
    text("msdyn_sessionadditionaldata", "msdyn_SessionAdditionalData", "Additional Data"),
    text("msdyn_externalcorrelationid", "msdyn_ExternalCorrelationId", "External Correlation Id"),
    text("msdyn_queueid", "msdyn_QueueId", "Queue Id"),
    text("msdyn_queuename", "msdyn_QueueName", "Queue Name"),
    dateTime("msdyn_sessioncreatedtimestamp", "msdyn_SessionCreatedTimestamp", "Created Timestamp"),
    dateTime("msdyn_sessionagentassignedtimestamp", "msdyn_SessionAgentAssignedTimestamp", "Agent Assigned Timestamp"),
    dateTime("msdyn_sessionqueueassignedtimestamp", "msdyn_SessionQueueAssignedTimestamp", "Queue Assigned Timestamp"),
    ...customAttributes(),
    ...systemColumns("user"),
  ],
  parents: [
    {
      name: "msdyn_conversation",
      childCollectionName: "msdyn_sessions",
      parentTable: "msdyn_conversationdata",
      columns: ["msdyn_conversationid"],
      parentColumns: ["msdyn_conversationid"],
      onDelete: "cascade",
      description: "conversation",
    },
  ],
  indexes: [],
};

const sessionParticipantData: TableDef = {
  webApi: true,
  logicalName: "msdyn_sessionparticipantdata",
  schemaName: "msdyn_SessionParticipantData",
  entitySetName: "msdyn_sessionparticipantsdata",
  displayName: "Session Participant Data (Deprecated)",
  displayCollectionName: "Session Participants Data (Deprecated)",
  primaryKey: "msdyn_sessionparticipantdataid",
  primaryName: "msdyn_name",
  ownership: "user",
  naturalKey: ["msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid"],
  columns: [
    primaryKeyColumn("msdyn_sessionparticipantdataid", "msdyn_SessionParticipantDataId", "Session Participant Data Id"),
    text("msdyn_name", "msdyn_Name", "Name", 100, { required: "application" }),
    text("msdyn_conversationid", "msdyn_ConversationId", "Conversation Id", 100, { notNull: true }),
    text("msdyn_providersessionid", "msdyn_ProviderSessionId", "Provider Session Id", 100, { notNull: true }),
    text("msdyn_participantid", "msdyn_ParticipantId", "Participant Id", 100, { notNull: true }),
    text("msdyn_participantname", "msdyn_ParticipantName", "Name"),
    text("msdyn_participantmode", "msdyn_ParticipantMode", "Mode"),
    text("msdyn_participanttype", "msdyn_ParticipantType", "Type"),
    text("msdyn_participantassignreason", "msdyn_ParticipantAssignReason", "Assign Reason"),
    dateTime("msdyn_participantaddedtimestamp", "msdyn_ParticipantAddedTimestamp", "Added Timestamp", {
      required: "application",
    }),
    ...customAttributes(),
    ...systemColumns("user"),
  ],
  parents: [
    {
      name: "msdyn_session",
      childCollectionName: "msdyn_participants",
      parentTable: "msdyn_sessiondata",
      columns: ["msdyn_conversationid", "msdyn_providersessionid"],
      parentColumns: ["msdyn_conversationid", "msdyn_providersessionid"],
      onDelete: "cascade",
      description: "session",
    },
  ],
  indexes: [],
};

const kpiEventData: TableDef = {
  webApi: true,
  logicalName: "msdyn_kpieventdata",
  schemaName: "msdyn_KPIEventData",
  entitySetName: "msdyn_kpieventsdata",
  displayName: "KPI Event Data",
  displayCollectionName: "KPI Event Data",
  primaryKey: "msdyn_kpieventdataid",
  primaryName: "msdyn_name",
  ownership: "user",
  columns: [
    primaryKeyColumn("msdyn_kpieventdataid", "msdyn_KPIEventDataId", "KPI Event Data Id"),
    text("msdyn_name", "msdyn_Name", "Name", 100, { required: "application" }),
    // The definition's GUID as text in Dataverse; a uuid here so the database can enforce the link.
    text("msdyn_kpieventid", "msdyn_KPIEventId", "KPI Event Id", 100, { required: "application", notNull: true }),
    text("msdyn_kpieventname", "msdyn_KPIEventName", "KPI Event Name"),
    text("msdyn_kpieventreason", "msdyn_KPIEventReason", "KPI Event Reason"),
    dateTime("msdyn_eventtimestamp", "msdyn_EventTimestamp", "Event Timestamp"),
    text("msdyn_additionaldata", "msdyn_AdditionalData", "Additional Data", 2000),
    text("msdyn_conversationid", "msdyn_ConversationId", "Conversation Id", 100, { notNull: true }),
    text("msdyn_providersessionid", "msdyn_ProviderSessionId", "Provider Session Id", 100, { notNull: true }),
    text("msdyn_clientsessionid", "msdyn_ClientSessionId", "Client Session Id"),
    text("msdyn_sessionId", "msdyn_sessionId", "Session Id"),
    text("msdyn_cifSessionId", "msdyn_cifSessionId", "User Session Id"),
    text("msdyn_ProviderId", "msdyn_ProviderId", "Provider Id"),
    text("msdyn_participantid", "msdyn_ParticipantId", "Participant Id"),
    text("msdyn_externalcorrelationid", "msdyn_ExternalCorrelationId", "External Correlation Id"),
    // Our extension (DESIGN.md): the logging payload carries notificationResponseAction.
    text("msdyn_notificationresponseaction", "msdyn_NotificationResponseAction", "Notification Response Action"),
    ...customAttributes(),
    ...systemColumns("user"),
  ],
  parents: [
    {
      // No foreign key of its own: the session link implies it (a session's own link names
      // its conversation), and one foreign key fewer keeps inserts cheap.
      name: "msdyn_conversation",
      childCollectionName: "msdyn_kpievents",
      parentTable: "msdyn_conversationdata",
      columns: ["msdyn_conversationid"],
      parentColumns: ["msdyn_conversationid"],
      onDelete: "cascade",
      description: "conversation",
      impliedBy: "msdyn_session",
    },
    {
      name: "msdyn_session",
      childCollectionName: "msdyn_kpievents",
      parentTable: "msdyn_sessiondata",
      columns: ["msdyn_conversationid", "msdyn_providersessionid"],
      parentColumns: ["msdyn_conversationid", "msdyn_providersessionid"],
      onDelete: "cascade",
      description: "session",
    },
    {
      // Checked only when msdyn_participantid is given (MATCH SIMPLE).
      name: "msdyn_participant",
      childCollectionName: "msdyn_kpievents",
      parentTable: "msdyn_sessionparticipantdata",
      columns: ["msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid"],
      parentColumns: ["msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid"],
      onDelete: "cascade",
      description: "session participant",
    },
    {
      name: "msdyn_definition",
      childCollectionName: "msdyn_kpievents",
      parentTable: "msdyn_kpieventdefinition",
      columns: ["msdyn_kpieventid"],
      parentColumns: ["msdyn_kpieventdefinitionid"],
      onDelete: "restrict",
      description: "KPI event definition",
    },
  ],
  indexes: [
    {
      // Its prefixes serve "by conversation" and "by (conversation, session)" too, and the cascades.
      columns: ["msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid"],
      purpose: "events of a conversation / session / participant; cascading deletes",
    },
    { columns: ["msdyn_eventtimestamp"], purpose: "events by time" },
    {
      // Without it, "a conversation's events, newest first" is a backward scan of the
      // timestamp index that filters out every other conversation's rows (issue 18). Newest
      // first, a page sorts `msdyn_eventtimestamp DESC NULLS LAST, msdyn_kpieventdataid`:
      // exactly this index's order, so the page is read from it without a sort. (Oldest
      // first is its backward scan but for the id, an incremental sort of equal times.)
      columns: ["msdyn_conversationid", "msdyn_eventtimestamp", "msdyn_kpieventdataid"],
      nullsOrder: { msdyn_eventtimestamp: "DESC NULLS LAST" },
      purpose: "a conversation's events in time order",
      name: "ix_msdyn_kpieventdata_conversationid_eventtimestamp",
    },
    { columns: ["msdyn_kpieventid"], purpose: "events of a definition; the in-use check on delete" },
  ],
};

export const EVENT_TYPE_OPTIONS: readonly OptionDef[] = [
  { value: 100000000, label: "System" },
  { value: 100000001, label: "Custom" },
];

const kpiEventDefinition: TableDef = {
  webApi: true,
  logicalName: "msdyn_kpieventdefinition",
  schemaName: "msdyn_KPIEventDefinition",
  entitySetName: "msdyn_kpieventdefinitions",
  displayName: "KPI Event Definition",
  displayCollectionName: "KPI Event Definitions",
  primaryKey: "msdyn_kpieventdefinitionid",
  primaryName: "msdyn_name",
  ownership: "user",
  naturalKey: ["msdyn_name"],
  columns: [
    primaryKeyColumn("msdyn_kpieventdefinitionid", "msdyn_KPIEventDefinitionId", "KPI Event Definition Id"),
    text("msdyn_name", "msdyn_Name", "Name", 100, { required: "application", notNull: true }),
    text("msdyn_eventdisplayname", "msdyn_EventDisplayName", "Event Display Name", 100, { required: "application" }),
    text("msdyn_eventdescription", "msdyn_EventDescription", "Event Description", 1000),
    column("msdyn_eventtype", "msdyn_EventType", "Event Type", "picklist", {
      required: "application",
      options: EVENT_TYPE_OPTIONS,
    }),
    ...systemColumns("user"),
  ],
  parents: [],
  indexes: [],
};

export const API_VERSION_OPTIONS: readonly OptionDef[] = [
  { value: 0, label: "1.0" },
  { value: 1, label: "2.0" },
];

const ciProvider: TableDef = {
  webApi: true,
  logicalName: "msdyn_ciprovider",
  schemaName: "msdyn_ciprovider",
  entitySetName: "msdyn_ciproviders",
  displayName: "Channel Integration Framework v1.0 Provider",
  displayCollectionName: "Channel Integration Framework v1.0 Providers",
  primaryKey: "msdyn_ciproviderid",
  primaryName: "msdyn_name",
  ownership: "organization",
  columns: [
    primaryKeyColumn("msdyn_ciproviderid", "msdyn_ciproviderId", "CIProviderId"),
    text("msdyn_name", "msdyn_name", "Name", 100, { required: "application" }),
    text("msdyn_label", "msdyn_Label", "Label", 100, { required: "application" }),
    text("msdyn_landingurl", "msdyn_LandingUrl", "Channel URL", 1024, { required: "application" }),
    column("msdyn_enableanalytics", "msdyn_EnableAnalytics", "Enable Analytics", "boolean", {
      notNull: true,
      defaultValue: "false",
      options: YES_NO_OPTIONS,
    }),
    column("msdyn_clicktoact", "msdyn_ClickToAct", "Enable Outbound Communication", "boolean", {
      required: "application",
      notNull: true,
      defaultValue: "false",
      options: YES_NO_OPTIONS,
    }),
    column("msdyn_sortorder", "msdyn_SortOrder", "Channel Order", "integer", {
      required: "application",
      minValue: 0,
      maxValue: 1000,
    }),
    column("msdyn_ciproviderapiversion", "msdyn_ciproviderapiversion", "API Version", "picklist", {
      notNull: true,
      defaultValue: "0",
      options: API_VERSION_OPTIONS,
    }),
    memo("msdyn_appselector", "msdyn_AppSelector", "App Selector", 4000),
    memo("msdyn_roleselector", "msdyn_RoleSelector", "Role Selector", 4000, { required: "application" }),
    text("msdyn_trusteddomain", "msdyn_trusteddomain", "Trusted Domain", 2000),
    text("msdyn_customparams", "msdyn_customparams", "Custom Parameters", 2000),
    text("msdyn_cifsolversion", "msdyn_cifsolversion", "CIF Solution Version", 2000),
    memo("msdyn_sandboxconfiguration", "msdyn_sandboxconfiguration", "Sandbox Configuration", 2000),
    column("msdyn_channelprovidericon", "msdyn_channelprovidericon", "Channel Provider Icon", "lookup", {
      lookupTarget: "webresource",
    }),
    ...systemColumns("organization"),
  ],
  parents: [],
  indexes: [],
};

// ---------------------------------------------------------------------------
// The audit and operational log (src/audit/): Azure Monitor's CIEventsAudit and
// CIEventsOperational tables of Log Analytics (shared/reference/analytics-and-audit.md B.3),
// one row per record, the record itself in `record` as it is forwarded, each other column
// filled from the record's field at its `fromRecord` path.

/** A read-only column of a log table, filled from the record at `path`. */
const fromLog = (...path: string[]): ColumnOptions => ({ ...readOnly, fromRecord: path });

const logColumns = (table: string, schemaName: string): ColumnDef[] => [
  { ...primaryKeyColumn(`${table}id`, `${schemaName}Id`, "Event Id"), fromRecord: ["properties", "eventId"] },
  dateTime("timegenerated", "TimeGenerated", "Time Generated", { ...fromLog("time"), notNull: true }),
  text("category", "Category", "Category", 20, { ...fromLog("category"), notNull: true }),
  text("operationname", "OperationName", "Operation Name", 200, { ...fromLog("operationName"), notNull: true }),
  text("resulttype", "ResultType", "Result Type", 20, fromLog("resultType")),
  text("resultsignature", "ResultSignature", "Result Signature", 10, fromLog("resultSignature")),
  column("durationms", "DurationMs", "Duration (ms)", "bigint", fromLog("durationMs")),
  text("calleripaddress", "CallerIPAddress", "Caller IP Address", 64, fromLog("callerIpAddress")),
  text("correlationid", "CorrelationId", "Correlation Id", 100, fromLog("correlationId")),
  text("level", "Level", "Level", 20, fromLog("level")),
  memo("uri", "Uri", "URI", 2000, fromLog("uri")),
  text("eventtype", "EventType", "Event Type", 20, { ...fromLog("properties", "eventType"), notNull: true }),
  text("method", "Method", "Method", 10, fromLog("properties", "method")),
  memo("path", "Path", "Path", 2000, fromLog("properties", "path")),
  text("origin", "Origin", "Origin", 400, fromLog("properties", "origin")),
  text("operationstatus", "OperationStatus", "Operation Status", 20, fromLog("properties", "operationStatus")),
  text("useragent", "UserAgent", "User Agent", 400, fromLog("properties", "userAgent")),
  text("instanceid", "InstanceId", "Instance Id", 100, fromLog("properties", "instanceId")),
  text("callerobjectid", "CallerObjectId", "Caller Object Id", 100, fromLog("properties", "callerObjectId")),
  text("userrole", "UserRole", "User Role", 200, fromLog("identity", "Authorization", "UserRole")),
  text("requiredroles", "RequiredRoles", "Required Roles", 400, fromLog("identity", "Authorization", "RequiredRoles")),
  memo("claims", "Claims", "Claims", 8000, fromLog("identity", "Claims")),
  text("tenantid", "TenantId", "Tenant Id", 100, fromLog("properties", "tenantId")),
  text("tenantname", "TenantName", "Tenant Name", 100, fromLog("properties", "tenantName")),
  text("resourceid", "ResourceId", "Resource Id", 400, fromLog("resourceId")),
  memo("writtenrecords", "WrittenRecords", "Records Written", 1_000_000, fromLog("properties", "writtenRecords")),
  memo("record", "Record", "Record", 1_000_000, { ...fromLog(), notNull: true }),
  // The forwarding order: rows of transactions below every open one's id are final, so a
  // cursor on (transactionid, versionnumber) never skips a row that commits late.
  column("transactionid", "TransactionId", "Transaction Id", "bigint", {
    ...readOnly,
    notNull: true,
    defaultValue: 'dbgenerated("(pg_current_xact_id())::text::bigint")',
  }),
  column("versionnumber", "VersionNumber", "Version Number", "bigint", {
    ...readOnly,
    notNull: true,
    defaultValue: "autoincrement()",
  }),
];

const logIndexes = (): IndexDef[] => [
  { columns: ["transactionid", "versionnumber"], purpose: "forwarding reads the log in commit order from a cursor" },
  { columns: ["timegenerated"], purpose: "retention purges and time-range queries" },
];

const ciEventsAudit: TableDef = {
  webApi: true,
  readOnly: true,
  logicalName: "cieventsaudit",
  schemaName: "CIEventsAudit",
  entitySetName: "CIEventsAudit",
  displayName: "Audit Event",
  displayCollectionName: "Audit Events (CIEventsAudit)",
  primaryKey: "cieventsauditid",
  primaryName: "operationname",
  ownership: "organization",
  columns: logColumns("cieventsaudit", "CIEventsAudit"),
  parents: [],
  indexes: logIndexes(),
};

const ciEventsOperational: TableDef = {
  webApi: true,
  readOnly: true,
  logicalName: "cieventsoperational",
  schemaName: "CIEventsOperational",
  entitySetName: "CIEventsOperational",
  displayName: "Operational Event",
  displayCollectionName: "Operational Events (CIEventsOperational)",
  primaryKey: "cieventsoperationalid",
  primaryName: "operationname",
  ownership: "organization",
  columns: [
    ...logColumns("cieventsoperational", "CIEventsOperational"),
    text("operationtype", "OperationType", "Operation Type", 100, fromLog("properties", "operationType")),
    text("workflowjobid", "WorkflowJobId", "Workflow Job Id", 100, fromLog("properties", "workflowJobId")),
    text("workflowtype", "WorkflowType", "Workflow Type", 20, fromLog("properties", "workflowType")),
    text("workflowstatus", "WorkflowStatus", "Workflow Status", 20, fromLog("properties", "workflowStatus")),
    text(
      "workflowsubmissionkind",
      "WorkflowSubmissionKind",
      "Workflow Submission Kind",
      20,
      fromLog("properties", "workflowSubmissionKind"),
    ),
    text("submittedby", "SubmittedBy", "Submitted By", 100, fromLog("properties", "submittedBy")),
    dateTime("submittedtime", "SubmittedTime", "Submitted Time", fromLog("properties", "submittedTimestamp")),
    dateTime("starttime", "StartTime", "Start Time", fromLog("properties", "startTimestamp")),
    dateTime("endtime", "EndTime", "End Time", fromLog("properties", "endTimestamp")),
    column("taskscount", "TasksCount", "Tasks Count", "integer", fromLog("properties", "tasksCount")),
    text("identifier", "Identifier", "Identifier", 200, fromLog("properties", "identifier")),
    text("friendlyname", "FriendlyName", "Friendly Name", 200, fromLog("properties", "friendlyName")),
    memo("error", "Error", "Error", 2000, fromLog("properties", "error")),
    memo(
      "additionalinformation",
      "AdditionalInformation",
      "Additional Information",
      4000,
      fromLog("properties", "additionalInfo"),
    ),
  ],
  parents: [],
  indexes: logIndexes(),
};

// ---------------------------------------------------------------------------
// Internal tables: no entity set, no privilege; only the service reads and writes them.

/**
 * The `Idempotency-Key`s of writes (src/plugins/idempotency.ts), in each organisation's own
 * database: claimed before the write runs, answered (status, headers, body) before the
 * answer is sent, so a retry after a restart still gets the first answer. `requestevent` is
 * the request's audit event id: its Audit record commits in the write's own transaction, so
 * after a crash it tells whether an unanswered claim's write committed.
 */
const idempotencyKey: TableDef = {
  webApi: false,
  logicalName: "cif_idempotencykey",
  schemaName: "cif_IdempotencyKey",
  entitySetName: "cif_idempotencykeys",
  displayName: "Idempotency Key",
  displayCollectionName: "Idempotency Keys",
  primaryKey: "cif_idempotencykeyid",
  primaryName: "keyhash",
  ownership: "organization",
  // One claim per key: SHA-256 of the principal, method, URL and key.
  naturalKey: ["keyhash"],
  columns: [
    primaryKeyColumn("cif_idempotencykeyid", "cif_IdempotencyKeyId", "Claim Id"),
    text("keyhash", "KeyHash", "Key Hash", 64, { ...readOnly, notNull: true }),
    text("requestevent", "RequestEvent", "Request's Audit Event Id", 36, readOnly),
    text("instanceid", "InstanceId", "Claiming Server Instance", 36, { ...readOnly, notNull: true }),
    // Null while the first request runs.
    column("status", "Status", "Answer Status", "integer", readOnly),
    memo("headers", "Headers", "Answer Headers (JSON)", 8000, readOnly),
    memo("body", "Body", "Answer Body", 1_048_576, readOnly),
    column("bodybytes", "BodyBytes", "Answer Body Bytes", "integer", readOnly),
    dateTime("createdon", "CreatedOn", "Claimed On", { ...readOnly, notNull: true, defaultValue: "now()" }),
    dateTime("expireson", "ExpiresOn", "Expires On", { ...readOnly, notNull: true }),
  ],
  parents: [],
  indexes: [{ columns: ["expireson"], purpose: "purging expired keys" }],
};

// ---------------------------------------------------------------------------
// Analytics (src/analytics/): the metrics derived from each conversation's tree, kept as
// the tree changes. Dimension columns hold '' for "none", so they can be part of a key.

/** A dimension of a metric: '' when the conversation does not say. */
const dimension = (name: string, schemaName: string, displayName: string) =>
  text(name, schemaName, displayName, 100, { ...readOnly, notNull: true, defaultValue: '""' });

const metricDimensions = () => [
  dimension("queueid", "QueueId", "Queue Id"),
  dimension("mediatype", "MediaType", "Media Type"),
  dimension("providerid", "ProviderId", "Provider Id"),
  dimension("userid", "UserId", "User (Agent Participant) Id"),
  dimension("direction", "Direction", "Direction"),
];

/**
 * Conversations whose tree changed since their metrics were last derived: a statement-level
 * trigger on each table of the tree adds the changed conversation ids in the writing
 * transaction (so no committed write is missed), and the refresher takes them in `seq` order.
 * Rows are only ever appended and deleted, so a writer never waits for the refresher.
 */
const analyticsDirty: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_dirty",
  schemaName: "cif_AnalyticsDirty",
  entitySetName: "cif_analyticsdirties",
  displayName: "Conversation To Re-derive",
  displayCollectionName: "Conversations To Re-derive",
  primaryKey: "cif_analytics_dirtyid",
  primaryName: "conversationid",
  ownership: "organization",
  columns: [
    primaryKeyColumn("cif_analytics_dirtyid", "cif_AnalyticsDirtyId", "Entry Id"),
    text("conversationid", "ConversationId", "Conversation Id", 100, { ...readOnly, notNull: true }),
    column("seq", "Seq", "Sequence", "bigint", { ...readOnly, notNull: true, defaultValue: "autoincrement()" }),
    // The writing transaction's start: the oldest pending entry's is how far the derived
    // data is complete (the export jobs' dataAvailabilityDate, src/analytics/jobs/).
    dateTime("createdon", "CreatedOn", "Queued On", { ...readOnly, notNull: true, defaultValue: "now()" }),
  ],
  parents: [],
  indexes: [
    { columns: ["seq"], purpose: "the refresher takes the oldest entries first" },
    { columns: ["conversationid"], purpose: "taking every entry of a conversation at once" },
  ],
};

/** One row per conversation: what the details query filters, sorts and pages on. */
const analyticsConversation: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_conversation",
  schemaName: "cif_AnalyticsConversation",
  entitySetName: "cif_analyticsconversations",
  displayName: "Conversation Summary",
  displayCollectionName: "Conversation Summaries",
  primaryKey: "cif_analytics_conversationid",
  primaryName: "conversationid",
  ownership: "organization",
  naturalKey: ["conversationid"],
  columns: [
    primaryKeyColumn("cif_analytics_conversationid", "cif_AnalyticsConversationId", "Summary Id"),
    text("conversationid", "ConversationId", "Conversation Id", 100, { ...readOnly, notNull: true }),
    dateTime("conversationstart", "ConversationStart", "Conversation Start", { ...readOnly, notNull: true }),
    dateTime("conversationend", "ConversationEnd", "Conversation End", readOnly),
    text("originatingdirection", "OriginatingDirection", "Originating Direction", 20, readOnly),
  ],
  parents: [],
  indexes: [
    { columns: ["conversationstart"], purpose: "details queries by interval, in conversationStart order" },
    { columns: ["conversationend"], purpose: "details queries in conversationEnd order" },
  ],
};

/**
 * One row per participant session of each conversation's detail record (customer, acd,
 * agent): what the details query's segment filters match.
 */
const analyticsSegment: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_segment",
  schemaName: "cif_AnalyticsSegment",
  entitySetName: "cif_analyticssegments",
  displayName: "Participant Session Summary",
  displayCollectionName: "Participant Session Summaries",
  primaryKey: "cif_analytics_segmentid",
  primaryName: "participantid",
  ownership: "organization",
  columns: [
    primaryKeyColumn("cif_analytics_segmentid", "cif_AnalyticsSegmentId", "Summary Id"),
    text("conversationid", "ConversationId", "Conversation Id", 100, { ...readOnly, notNull: true }),
    dateTime("conversationstart", "ConversationStart", "Conversation Start", { ...readOnly, notNull: true }),
    dimension("providersessionid", "ProviderSessionId", "Provider Session Id"),
    dimension("participantid", "ParticipantId", "Participant Id"),
    dimension("participantname", "ParticipantName", "Participant Name"),
    dimension("purpose", "Purpose", "Purpose"),
    ...metricDimensions(),
    // Comma-delimited on both ends (",alert,interact,"), so a LIKE matches one whole value.
    text("segmenttypes", "SegmentTypes", "Segment Types", 400, { ...readOnly, notNull: true, defaultValue: '""' }),
    text("disconnecttypes", "DisconnectTypes", "Disconnect Types", 400, { ...readOnly, notNull: true, defaultValue: '""' }),
  ],
  parents: [],
  indexes: [
    { columns: ["conversationid"], purpose: "re-deriving a conversation" },
    { columns: ["queueid", "conversationstart"], purpose: "details queries filtered by queue" },
    { columns: ["userid", "conversationstart"], purpose: "details queries filtered by agent" },
  ],
};

/**
 * The metrics of each conversation (src/analytics/derive.ts): one row per emitted value,
 * at its emit time, with the dimensions it is grouped by and the KPI event that completed it.
 */
const analyticsMetric: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_metric",
  schemaName: "cif_AnalyticsMetric",
  entitySetName: "cif_analyticsmetrics",
  displayName: "Conversation Metric",
  displayCollectionName: "Conversation Metrics",
  primaryKey: "cif_analytics_metricid",
  primaryName: "metric",
  ownership: "organization",
  columns: [
    primaryKeyColumn("cif_analytics_metricid", "cif_AnalyticsMetricId", "Metric Id"),
    text("conversationid", "ConversationId", "Conversation Id", 100, { ...readOnly, notNull: true }),
    dimension("providersessionid", "ProviderSessionId", "Provider Session Id"),
    dimension("participantid", "ParticipantId", "Participant Id"),
    text("metric", "Metric", "Metric", 40, { ...readOnly, notNull: true }),
    column("value", "Value", "Value", "bigint", { ...readOnly, notNull: true }),
    dateTime("emittedon", "EmittedOn", "Emitted On", { ...readOnly, notNull: true }),
    dimension("kpieventname", "KpiEventName", "Completing KPI Event"),
    ...metricDimensions(),
  ],
  parents: [],
  indexes: [
    { columns: ["conversationid"], purpose: "re-deriving a conversation; its detail record" },
    { columns: ["metric", "emittedon"], purpose: "aggregates over dimensions no rollup keeps; recomputing a rollup cell" },
  ],
};

/** Rollup grains: which dimensions a grain keeps and how wide its buckets are. */
// No grain keeps the agent: at 15 minutes a cell per agent is about a cell per metric row,
// so agent queries read the metric rows instead (the planner knows).
export const ROLLUP_GRAINS: readonly { grain: number; minutes: number; keepsUser: boolean }[] = [
  { grain: 2, minutes: 15, keepsUser: false },
  // PT30M is the granularity supervisors use most: half the cells of 15 minutes to read.
  { grain: 5, minutes: 30, keepsUser: false },
  { grain: 3, minutes: 60, keepsUser: false },
  { grain: 4, minutes: 1440, keepsUser: false },
];

/**
 * The metrics summed per bucket and dimensions (count, sum, min, max), at each grain of
 * ROLLUP_GRAINS, maintained from the metric rows' changes in the refresher's transaction.
 */
const analyticsRollup: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_rollup",
  schemaName: "cif_AnalyticsRollup",
  entitySetName: "cif_analyticsrollups",
  displayName: "Metric Rollup",
  displayCollectionName: "Metric Rollups",
  primaryKey: "cif_analytics_rollupid",
  primaryName: "metric",
  ownership: "organization",
  // Grain and metric first: a query reads one contiguous range of buckets per metric.
  naturalKey: ["grain", "metric", "bucketstart", "queueid", "mediatype", "providerid", "userid", "direction"],
  columns: [
    primaryKeyColumn("cif_analytics_rollupid", "cif_AnalyticsRollupId", "Rollup Id"),
    column("grain", "Grain", "Grain", "integer", { ...readOnly, notNull: true }),
    text("metric", "Metric", "Metric", 40, { ...readOnly, notNull: true }),
    dateTime("bucketstart", "BucketStart", "Bucket Start", { ...readOnly, notNull: true }),
    ...metricDimensions(),
    column("statcount", "StatCount", "Count", "bigint", { ...readOnly, notNull: true }),
    column("statsum", "StatSum", "Sum", "bigint", { ...readOnly, notNull: true }),
    column("statmin", "StatMin", "Min", "bigint", { ...readOnly, notNull: true }),
    column("statmax", "StatMax", "Max", "bigint", { ...readOnly, notNull: true }),
  ],
  parents: [],
  indexes: [],
};

/**
 * The KPI events of each agent (participant) that their presence and routing timelines are
 * replayed from (src/analytics/agents.ts), copied out of each conversation's tree when it is
 * derived: kept by agent and time, so a timeline reads one index range however the
 * conversations are spread.
 */
const analyticsAgentEvent: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_agentevent",
  schemaName: "cif_AnalyticsAgentEvent",
  entitySetName: "cif_analyticsagentevents",
  displayName: "Agent Event",
  displayCollectionName: "Agent Events",
  primaryKey: "cif_analytics_agenteventid",
  primaryName: "eventname",
  ownership: "organization",
  columns: [
    primaryKeyColumn("cif_analytics_agenteventid", "cif_AnalyticsAgentEventId", "Agent Event Id"),
    text("conversationid", "ConversationId", "Conversation Id", 100, { ...readOnly, notNull: true }),
    dimension("userid", "UserId", "User (Agent Participant) Id"),
    dateTime("eventon", "EventOn", "Event Time", { ...readOnly, notNull: true }),
    dateTime("createdon", "CreatedOn", "Stored On", { ...readOnly, notNull: true }),
    text("kpieventid", "KpiEventId", "KPI Event Id", 100, { ...readOnly, notNull: true }),
    dimension("eventname", "EventName", "KPI Event Name"),
    text("reason", "Reason", "KPI Event Reason", 400, readOnly),
    dimension("providersessionid", "ProviderSessionId", "Provider Session Id"),
    dimension("cifsessionid", "CifSessionId", "CIF Session Id"),
    dimension("queueid", "QueueId", "Queue Id"),
    dimension("mediatype", "MediaType", "Media Type"),
  ],
  parents: [],
  indexes: [
    { columns: ["userid", "eventon"], purpose: "an agent's timeline over an interval" },
    { columns: ["eventon"], purpose: "the agents active in an interval (observations, users queries)" },
    { columns: ["conversationid"], purpose: "re-deriving a conversation" },
  ],
};

/**
 * What is open now in each conversation (src/analytics/derive.ts): sessions waiting in a
 * queue, alerting an agent, or being handled. The real-time observations read this small table.
 */
const analyticsOpenState: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_openstate",
  schemaName: "cif_AnalyticsOpenState",
  entitySetName: "cif_analyticsopenstates",
  displayName: "Open Session State",
  displayCollectionName: "Open Session States",
  primaryKey: "cif_analytics_openstateid",
  primaryName: "state",
  ownership: "organization",
  columns: [
    primaryKeyColumn("cif_analytics_openstateid", "cif_AnalyticsOpenStateId", "Open State Id"),
    text("conversationid", "ConversationId", "Conversation Id", 100, { ...readOnly, notNull: true }),
    dimension("providersessionid", "ProviderSessionId", "Provider Session Id"),
    text("state", "State", "State", 20, { ...readOnly, notNull: true }),
    dateTime("since", "Since", "In This State Since", { ...readOnly, notNull: true }),
    dateTime("lastactivity", "LastActivity", "Conversation's Last Activity", { ...readOnly, notNull: true }),
    dimension("queueid", "QueueId", "Queue Id"),
    dimension("mediatype", "MediaType", "Media Type"),
    dimension("userid", "UserId", "User (Agent Participant) Id"),
  ],
  parents: [],
  indexes: [
    { columns: ["queueid", "state"], purpose: "observations of a queue" },
    { columns: ["conversationid"], purpose: "re-deriving a conversation" },
  ],
};

/**
 * A version per agent, moved by the refresher in the transaction that changes any of the
 * agent's timeline events: what the real-time observations check before they replay an
 * agent again (an unchanged agent's timeline is kept in memory).
 */
const analyticsAgentVersion: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_agentversion",
  schemaName: "cif_AnalyticsAgentVersion",
  entitySetName: "cif_analyticsagentversions",
  displayName: "Agent Timeline Version",
  displayCollectionName: "Agent Timeline Versions",
  primaryKey: "cif_analytics_agentversionid",
  primaryName: "userid",
  ownership: "organization",
  naturalKey: ["userid"],
  columns: [
    primaryKeyColumn("cif_analytics_agentversionid", "cif_AnalyticsAgentVersionId", "Agent Version Id"),
    dimension("userid", "UserId", "User (Agent Participant) Id"),
    column("version", "Version", "Version", "bigint", { ...readOnly, notNull: true }),
  ],
  parents: [],
  indexes: [],
};

// ---------------------------------------------------------------------------
// Export jobs (src/analytics/jobs/): large extracts of the details queries, run in the
// background (the queue itself is pg-boss's, in the main database; these rows are in the
// organisation's own database, so a job of one organisation cannot be found from another).

/** One export job: what it extracts, how far it got, when it expires. */
const analyticsExportJob: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_exportjob",
  schemaName: "cif_AnalyticsExportJob",
  entitySetName: "cif_analyticsexportjobs",
  displayName: "Analytics Export Job",
  displayCollectionName: "Analytics Export Jobs",
  // The job id the API gives out.
  primaryKey: "cif_analytics_exportjobid",
  primaryName: "kind",
  ownership: "organization",
  columns: [
    primaryKeyColumn("cif_analytics_exportjobid", "cif_AnalyticsExportJobId", "Job Id"),
    // conversations | users: the export kind (src/analytics/jobs/kinds.ts).
    text("kind", "Kind", "Kind", 40, { ...readOnly, notNull: true }),
    // The request body as submitted (JSON), parsed again by the worker.
    memo("query", "Query", "Query (JSON)", 1_048_576, { ...readOnly, notNull: true }),
    // QUEUED, PENDING, FULFILLED, FAILED, CANCELLED, EXPIRED.
    text("state", "State", "State", 20, { ...readOnly, notNull: true }),
    text("submittedby", "SubmittedBy", "Submitted By (Principal Id)", 100, readOnly),
    dateTime("submittedon", "SubmittedOn", "Submitted On", { ...readOnly, notNull: true, defaultValue: "now()" }),
    dateTime("startedon", "StartedOn", "Started On", readOnly),
    dateTime("completedon", "CompletedOn", "Completed On", readOnly),
    dateTime("expireson", "ExpiresOn", "Expires On", readOnly),
    memo("errormessage", "ErrorMessage", "Error Message", 2000, readOnly),
    // Null until the job has taken its snapshot of the matching keys.
    column("rowsexpected", "RowsExpected", "Rows Expected", "integer", readOnly),
    // Also the checkpoint: results 1..rowswritten are stored.
    column("rowswritten", "RowsWritten", "Rows Written", "integer", { ...readOnly, notNull: true, defaultValue: "0" }),
  ],
  parents: [],
  indexes: [{ columns: ["expireson"], purpose: "deleting long-expired jobs" }],
};

/** The keys (conversation ids, user ids) a job extracts, in its order: its snapshot. */
const analyticsExportKey: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_exportkey",
  schemaName: "cif_AnalyticsExportKey",
  entitySetName: "cif_analyticsexportkeys",
  displayName: "Analytics Export Key",
  displayCollectionName: "Analytics Export Keys",
  primaryKey: "cif_analytics_exportkeyid",
  primaryName: "key",
  ownership: "organization",
  naturalKey: ["jobid", "seq"],
  columns: [
    primaryKeyColumn("cif_analytics_exportkeyid", "cif_AnalyticsExportKeyId", "Entry Id"),
    column("jobid", "JobId", "Job Id", "uniqueidentifier", { ...readOnly, notNull: true }),
    column("seq", "Seq", "Position", "integer", { ...readOnly, notNull: true }),
    text("key", "Key", "Key", 100, { ...readOnly, notNull: true }),
  ],
  parents: [],
  indexes: [],
};

/** A job's results: one row per extracted record, in its order, written a page at a time. */
const analyticsExportResult: TableDef = {
  webApi: false,
  logicalName: "cif_analytics_exportresult",
  schemaName: "cif_AnalyticsExportResult",
  entitySetName: "cif_analyticsexportresults",
  displayName: "Analytics Export Result",
  displayCollectionName: "Analytics Export Results",
  primaryKey: "cif_analytics_exportresultid",
  primaryName: "seq",
  ownership: "organization",
  naturalKey: ["jobid", "seq"],
  columns: [
    primaryKeyColumn("cif_analytics_exportresultid", "cif_AnalyticsExportResultId", "Result Id"),
    column("jobid", "JobId", "Job Id", "uniqueidentifier", { ...readOnly, notNull: true }),
    column("seq", "Seq", "Position", "integer", { ...readOnly, notNull: true }),
    // The record as the API answers it (JSON).
    memo("body", "Body", "Record (JSON)", 1_048_576, { ...readOnly, notNull: true }),
  ],
  parents: [],
  indexes: [],
};

export const ANALYTICS_EXPORT_TABLES = {
  Job: analyticsExportJob,
  Key: analyticsExportKey,
  Result: analyticsExportResult,
} as const;

export const ANALYTICS_TABLES = {
  Dirty: analyticsDirty,
  Conversation: analyticsConversation,
  Segment: analyticsSegment,
  Metric: analyticsMetric,
  Rollup: analyticsRollup,
  AgentEvent: analyticsAgentEvent,
  OpenState: analyticsOpenState,
  AgentVersion: analyticsAgentVersion,
} as const;

export const INTERNAL_TABLES = { IdempotencyKey: idempotencyKey } as const;

/** The audit log's tables, by category. */
export const LOG_TABLES = { Audit: ciEventsAudit, Operational: ciEventsOperational } as const;

/** In dependency order: parents before children. */
export const TABLES: readonly TableDef[] = [
  ciProvider,
  kpiEventDefinition,
  conversationData,
  sessionData,
  sessionParticipantData,
  kpiEventData,
  ciEventsAudit,
  ciEventsOperational,
  idempotencyKey,
  analyticsDirty,
  analyticsConversation,
  analyticsSegment,
  analyticsMetric,
  analyticsRollup,
  analyticsAgentEvent,
  analyticsOpenState,
  analyticsAgentVersion,
  analyticsExportJob,
  analyticsExportKey,
  analyticsExportResult,
];

/** The tables that are entity sets of the Web API. */
export const WEB_API_TABLES: readonly TableDef[] = TABLES.filter((t) => t.webApi);

const byLogicalName = new Map(TABLES.map((t) => [t.logicalName, t]));
const byEntitySet = new Map(WEB_API_TABLES.map((t) => [t.entitySetName, t]));

export function tableByLogicalName(logicalName: string): TableDef {
  const table = byLogicalName.get(logicalName);
  if (!table) throw new Error(`No table named ${logicalName}`);
  return table;
}

/** The column of `table` named `name` (a logical name from the definitions; anything else is a bug). */
export function columnOf(table: TableDef, name: string): ColumnDef {
  const column = table.columns.find((c) => c.name === name);
  if (!column) throw new Error(`${table.logicalName} has no column ${name}`);
  return column;
}

/** The parent links a foreign key enforces (all but the implied ones). */
export const enforcedParents = (table: TableDef) => table.parents.filter((p) => !p.impliedBy);

/** An entity set of the Web API by name (internal tables have none). */
export function tableByEntitySet(entitySetName: string): TableDef | undefined {
  return byEntitySet.get(entitySetName);
}

/** Columns stored as uuid in PostgreSQL although Dataverse types them as text (they must match a uuid key). */
export function isUuidColumn(table: TableDef, column: ColumnDef): boolean {
  if (column.type === "uniqueidentifier" || column.type === "lookup") return true;
  // Asked for every value written (record-input, COPY): answered from the parents once per column.
  let known = uuidColumns.get(table);
  if (!known) uuidColumns.set(table, (known = new Map<ColumnDef, boolean>()));
  let uuid = known.get(column);
  if (uuid === undefined) {
    uuid = table.parents.some(
      (p) =>
        p.columns.includes(column.name) &&
        tableByLogicalName(p.parentTable).primaryKey === p.parentColumns[p.columns.indexOf(column.name)],
    );
    known.set(column, uuid);
  }
  return uuid;
}

const uuidColumns = new WeakMap<TableDef, Map<ColumnDef, boolean>>();

/** The ten system KPI event definitions (reference §5), present after migration. */
export const SYSTEM_KPI_EVENT_DEFINITIONS: readonly { id: string; name: string; displayName: string }[] = [
  { id: "6716695d-1bd9-e911-a838-000d3a375590", name: "NotificationReceived", displayName: "Notification Received" },
  { id: "7b37d3a5-1bd9-e911-a838-000d3a375590", name: "NotificationTimedOut", displayName: "Notification TimedOut" },
  { id: "1d30a3cb-1bd9-e911-a838-000d3a375590", name: "SessionStarted", displayName: "Session Started" },
  { id: "c77081f2-1bd9-e911-a838-000d3a375590", name: "SessionClosed", displayName: "Session Closed" },
  { id: "b0277f3b-c4c0-4d33-9c27-8114eaace944", name: "CifSessionStart", displayName: "Cif Session Start" },
  { id: "0d232df5-96ff-49cd-9ebe-b5bc3f44a080", name: "CifSessionEnd", displayName: "Cif Session End" },
  { id: "0e281360-0c69-47c1-9d2a-1039e1bbeb4b", name: "NotificationAccepted", displayName: "Notification Accepted" },
  { id: "d698cbf7-ef47-4a7d-83b9-80fd66da804e", name: "NotificationRejected", displayName: "Notification Rejected" },
  { id: "740b615b-769b-4972-b66c-0b22970a80ca", name: "SessionFocusIn", displayName: "Session Focus In" },
  { id: "cd3526ab-ac21-4bd5-aace-15c84f9ca29d", name: "SessionFocusOut", displayName: "Session Focus Out" },
];

/**
 * Custom KPI event definitions the analytics read (src/analytics/derive.ts), present after
 * migration: CIF's first-party events say nothing about hold, wrap-up, abandon, transfer or
 * presence, so providers log these where their channel knows it.
 */
export const ANALYTICS_KPI_EVENT_DEFINITIONS: readonly {
  id: string;
  name: string;
  displayName: string;
  description: string;
}[] = [
  {
    id: "3f0c2a41-7d1e-4c5b-9a61-0a1e00000001",
    name: "CallHold",
    displayName: "Call Hold",
    description: "The agent put the customer on hold (tHeld runs until the next CallUnhold of the same session and participant).",
  },
  {
    id: "3f0c2a41-7d1e-4c5b-9a61-0a1e00000002",
    name: "CallUnhold",
    displayName: "Call Unhold",
    description: "The agent took the customer off hold.",
  },
  {
    id: "3f0c2a41-7d1e-4c5b-9a61-0a1e00000003",
    name: "WrapUpStarted",
    displayName: "Wrap-up Started",
    description: "The conversation with the customer ended and after-call work began (tAcw runs until SessionClosed).",
  },
  {
    id: "3f0c2a41-7d1e-4c5b-9a61-0a1e00000004",
    name: "ConversationAbandoned",
    displayName: "Conversation Abandoned",
    description: "The customer left while waiting in queue, before an agent accepted (tAbandon).",
  },
  {
    id: "3f0c2a41-7d1e-4c5b-9a61-0a1e00000005",
    name: "ConversationTransferred",
    displayName: "Conversation Transferred",
    description: "The agent transferred the conversation (nTransferred); the reason may name the target queue or agent.",
  },
  {
    id: "3f0c2a41-7d1e-4c5b-9a61-0a1e00000006",
    name: "PresenceChanged",
    displayName: "Presence Changed",
    description: "The agent's presence changed; msdyn_kpieventreason holds the new presence (for example AVAILABLE, BUSY, AWAY).",
  },
];

/** The owner of rows the system creates itself (the seeded definitions). */
export const SYSTEM_USER_ID = "00000000-0000-0000-0000-000000000001";
