/**
 * The row scope of a channel provider (Caller.providerId): the one place its rule lives,
 * as SQL for reads and as checks for writes, used by every path of this folder.
 *
 * A caller bound to msdyn_ciprovider P reads and writes only the rows of P's conversations:
 * - msdyn_conversationdata: its msdyn_providerid is P;
 * - msdyn_sessiondata, msdyn_sessionparticipantdata: their conversation (by
 *   msdyn_conversationid) is P's;
 * - msdyn_kpieventdata: its conversation is P's, and its own msdyn_ProviderId, when set,
 *   is P too (the event's effective provider, COALESCE(msdyn_ProviderId, the conversation's
 *   msdyn_providerid) as the KPI event rules read it, is P).
 * Other tables are not scoped: every provider reads the KPI event definitions, and
 * msdyn_ciprovider is no provider's to read or write (its roles refuse that earlier).
 *
 * Why a KPI event belongs to its conversation and not to its own msdyn_ProviderId alone:
 * the conversation is the owner of the tree (an event hangs from its session, the session
 * from the conversation, and deleting the conversation deletes them all), the column is
 * optional (events logged without it, by an administrator or before this rule, are their
 * conversation's provider's, as the analytics gate reads them), and an event that an
 * administrator attributed to P inside another provider's conversation would otherwise show
 * P that conversation. So an event is visible to, and writable by, exactly the provider that
 * could have logged it: the one of its conversation, which its own column does not
 * contradict.
 *
 * Reads: another provider's rows are not there (`scopeCondition`, one bound parameter in
 * the WHERE of every query, expansion, count, aggregate and FetchXML entity, and in
 * findRow: a retrieve or delete of such a row is a 404). Writes: a provider column given
 * must be P, and is P when not given on create; a row under another provider's conversation,
 * or a stored row of another provider, is refused with 403 0x80040220 naming the provider
 * and the row. A row under a conversation that does not exist is refused by the scope too,
 * with the foreign key's own error, instead of being left to the foreign key: the foreign
 * key sees rows committed after the check's snapshot, so another provider's conversation
 * created in that instant would pass unchecked.
 *
 * Provider ids are GUIDs held as text: they are compared in lower case (the KPI event rules
 * look providers up by GUID, whatever the case). A caller without providerId has no scope
 * (`rowScope` is undefined): nothing here runs and no SQL is added.
 */
import { ident, prepared } from "../db/sql.js";
import type { Queryable } from "../db/transactions.js";
import type { Caller } from "../model/caller.js";
import { type TableDef, tableByLogicalName } from "../model/tables.js";
import { echoText } from "../odata/echo.js";
import { ErrorCodes, ODataError } from "../odata/errors.js";
import { missingParentError } from "./integrity-errors.js";
import type { ColumnValues } from "./record-input.js";

/** The provider a caller is confined to (its msdyn_ciproviderid, lower case). */
export interface RowScope {
  readonly providerId: string;
}

/** The caller's row scope; undefined for callers that are not bound to a provider. */
export function rowScope(caller: Caller | undefined): RowScope | undefined {
  return caller?.providerId ? { providerId: caller.providerId.toLowerCase() } : undefined;
}

const CONVERSATION = "msdyn_conversationdata";
const KPI_EVENT = "msdyn_kpieventdata";
const CONVERSATION_ID = "msdyn_conversationid";
const UNDER_A_CONVERSATION = new Set(["msdyn_sessiondata", "msdyn_sessionparticipantdata", KPI_EVENT]);

/** The column that names a row's provider, on the tables that have one. */
const PROVIDER_COLUMN: Readonly<Record<string, string>> = { [CONVERSATION]: "msdyn_providerid", [KPI_EVENT]: "msdyn_ProviderId" };

/** Whether a provider's scope confines the rows of `table` (the conversation tree). */
export const isScopedTable = (table: TableDef) =>
  table.logicalName === CONVERSATION || UNDER_A_CONVERSATION.has(table.logicalName);

const isProvider = (value: unknown, scope: RowScope) => typeof value === "string" && value.toLowerCase() === scope.providerId;

// ---------------------------------------------------------------------------
// Reads: one SQL condition per table.

/** Binds a value and returns its placeholder (SqlParams fits). */
export interface Binder {
  add(value: unknown): string;
}

/** A binder over a plain parameter array. */
export const arrayBinder = (params: unknown[]): Binder => ({ add: (value) => `$${params.push(value)}` });

/**
 * The condition that confines rows of `table`, as `qualifier` (an alias, or the quoted
 * table name when the query has none), to the scope; undefined when there is nothing to
 * confine (no scope, or a table outside the conversation tree). The provider is one bound
 * parameter. The children's EXISTS finds their conversation by its natural key (a unique
 * index); KPI events also test their own column.
 */
export function scopeCondition(
  table: TableDef,
  scope: RowScope | undefined,
  params: Binder,
  qualifier = ident(table.logicalName),
): string | undefined {
  if (!scope || !isScopedTable(table)) return undefined;
  const provider = params.add(scope.providerId);
  const column = (name: string) => `${qualifier}.${ident(name)}`;
  if (table.logicalName === CONVERSATION) return `lower(${column("msdyn_providerid")}) = ${provider}`;
  const conversation =
    `EXISTS (SELECT 1 FROM ${ident(CONVERSATION)} scope_c WHERE scope_c.${ident(CONVERSATION_ID)} = ${column(CONVERSATION_ID)} ` +
    `AND lower(scope_c.${ident("msdyn_providerid")}) = ${provider})`;
  if (table.logicalName !== KPI_EVENT) return conversation;
  const own = column(PROVIDER_COLUMN[KPI_EVENT]!);
  return `${conversation} AND (${own} IS NULL OR lower(${own}) = ${provider})`;
}

// ---------------------------------------------------------------------------
// Writes: the refusals, and the checks that raise them.

const refused = (scope: RowScope, what: string) =>
  new ODataError(
    403,
    ErrorCodes.privilegeDenied,
    `The caller is bound to msdyn_ciprovider ${scope.providerId} and cannot write ${what}.`,
  );

const quote = (value: unknown) => `'${echoText(String(value))}'`;
const whoseOwner = (owner: unknown) =>
  owner === null || owner === undefined ? "which belongs to no provider" : "which belongs to another provider";

const rowOf = (tableName: string, conversationId: unknown) =>
  tableName === CONVERSATION
    ? `${CONVERSATION} ${quote(conversationId)}`
    : `${tableName} of conversation ${quote(conversationId)}`;

/** The refusal of a write to a conversation, or under one, that is not the scope's. */
const foreignConversation = (scope: RowScope, tableName: string, conversationId: unknown, owner: unknown) =>
  refused(scope, `${rowOf(tableName, conversationId)}, ${whoseOwner(owner)}`);

const foreignProviderValue = (scope: RowScope, tableName: string, conversationId: unknown, column: string, value: unknown) =>
  refused(
    scope,
    `${rowOf(tableName, conversationId)} with ${column} ${value === null ? "null" : quote(value)}; ` +
      `leave ${column} out or set it to ${scope.providerId}`,
  );

/**
 * The provider column of a new (`create`) or changed (`update`) row's values: a value
 * given must be the scope's provider (it is then written in lower case); on create null
 * counts as not given (`fillProviderColumn` fills it). No database access.
 */
export function confineProviderColumn(
  table: TableDef,
  values: ColumnValues,
  scope: RowScope,
  mode: "create" | "update",
  conversationId: unknown = values.get(CONVERSATION_ID),
): void {
  const column = PROVIDER_COLUMN[table.logicalName];
  if (!column || !values.has(column)) return;
  const value = values.get(column);
  if (value === null && mode === "create") return;
  if (!isProvider(value, scope)) throw foreignProviderValue(scope, table.logicalName, conversationId, column, value);
  values.set(column, scope.providerId);
}

/** A new row's provider column, when not given: the scope's provider. */
export function fillProviderColumn(table: TableDef, values: ColumnValues, scope: RowScope): void {
  const column = PROVIDER_COLUMN[table.logicalName];
  if (column && (values.get(column) ?? null) === null) values.set(column, scope.providerId);
}

const OWNERS_SQL =
  `SELECT ${ident(CONVERSATION_ID)} AS id, ${ident("msdyn_providerid")} AS owner ` +
  `FROM ${ident(CONVERSATION)} WHERE ${ident(CONVERSATION_ID)} = ANY($1::text[])`;

/** The msdyn_providerid of each of the conversations that exist (by msdyn_conversationid). */
async function conversationOwners(db: Queryable, ids: readonly unknown[]): Promise<Map<string, string | null>> {
  const wanted = [...new Set(ids.filter((id): id is string => typeof id === "string"))];
  if (!wanted.length) return new Map();
  const { rows } = await db.query<{ id: string; owner: string | null }>(prepared(OWNERS_SQL, [wanted]));
  return new Map(rows.map((row) => [row.id, row.owner]));
}

/** A session's link to its conversation: what the foreign keys report a missing conversation by. */
const CONVERSATION_LINK = tableByLogicalName("msdyn_sessiondata").parents.find((link) => link.parentTable === CONVERSATION)!;

/**
 * A row under a conversation that the check does not see: refused as the foreign key
 * refuses it ("its conversation does not exist", the error it always had). The scope
 * does not leave it to the foreign key, which would see a conversation that another
 * caller commits in the meantime, unchecked.
 */
const missingConversation = (tableName: string, conversationId: unknown) =>
  missingParentError(tableByLogicalName(tableName), CONVERSATION_LINK, [conversationId]);

/** The refusal of a row under `conversationId`, given the owners found; undefined if allowed. */
function parentRefusal(scope: RowScope, tableName: string, conversationId: unknown, owners: Map<string, string | null>) {
  if (typeof conversationId !== "string" || !owners.has(conversationId)) return missingConversation(tableName, conversationId);
  const owner = owners.get(conversationId);
  return isProvider(owner, scope) ? undefined : foreignConversation(scope, tableName, conversationId, owner);
}

/**
 * Before new rows of `table` are inserted: refuses a provider column that names another
 * provider (`confineProviderColumn`) and a row under another provider's conversation
 * (before any other rule speaks of that conversation). A row under a conversation that
 * does not exist is not refused here: its refusal is returned, to be thrown where the
 * foreign key would have refused it (after the other rules), so that the error and its
 * precedence stay what they were. A refusal of one of many rows is named with
 * `at(index)`. One query for all rows; none for conversations.
 */
export async function checkNewRowsInScope(
  db: Queryable,
  table: TableDef,
  scope: RowScope,
  rows: readonly ColumnValues[],
  at?: (index: number) => string,
): Promise<ODataError | undefined> {
  if (!isScopedTable(table)) return undefined;
  const named = (index: number, error: ODataError) => (at ? error.at(at(index)) : error);
  rows.forEach((values, index) => {
    try {
      confineProviderColumn(table, values, scope, "create");
    } catch (error) {
      throw error instanceof ODataError ? named(index, error) : error;
    }
  });
  if (table.logicalName === CONVERSATION) return undefined;
  const ids = rows.map((values) => values.get(CONVERSATION_ID));
  const owners = await conversationOwners(db, ids);
  let missing: ODataError | undefined;
  for (const [index, id] of ids.entries()) {
    if (typeof id !== "string" || !owners.has(id)) missing ??= named(index, missingConversation(table.logicalName, id));
    else if (!isProvider(owners.get(id), scope))
      throw named(index, foreignConversation(scope, table.logicalName, id, owners.get(id)));
  }
  return missing;
}

/**
 * Before a stored row (`current`) is changed with `values` (update, upsert, a property):
 * the row must be the scope's (its conversation, and for a conversation or an event its
 * provider column), and so must what it becomes (a provider column given stays the
 * scope's; a new msdyn_conversationid names an existing conversation of the scope's).
 */
export async function assertChangeInScope(
  db: Queryable,
  table: TableDef,
  scope: RowScope,
  current: Readonly<Record<string, unknown>>,
  values: ColumnValues,
): Promise<void> {
  if (!isScopedTable(table)) return;
  const conversationId = current[CONVERSATION_ID];
  if (table.logicalName === CONVERSATION) {
    const owner = current.msdyn_providerid;
    if (!isProvider(owner, scope)) throw foreignConversation(scope, table.logicalName, conversationId, owner);
  } else {
    const next = values.get(CONVERSATION_ID);
    const moved = values.has(CONVERSATION_ID) && next !== conversationId;
    const owners = await conversationOwners(db, moved ? [conversationId, next] : [conversationId]);
    const owner = owners.get(conversationId as string) ?? null;
    if (!isProvider(owner, scope)) throw foreignConversation(scope, table.logicalName, conversationId, owner);
    if (table.logicalName === KPI_EVENT) {
      const own = current[PROVIDER_COLUMN[KPI_EVENT]!];
      if (own !== null && own !== undefined && !isProvider(own, scope)) {
        throw refused(
          scope,
          `${KPI_EVENT} ${quote(current.msdyn_kpieventdataid)} of conversation ${quote(conversationId)}, ` +
            `whose msdyn_ProviderId names another provider`,
        );
      }
    }
    const refusal = moved ? parentRefusal(scope, table.logicalName, next, owners) : undefined;
    if (refusal) throw refusal;
  }
  confineProviderColumn(table, values, scope, "update", values.get(CONVERSATION_ID) ?? conversationId);
}

// ---------------------------------------------------------------------------
// The same rules inside the one-statement write paths.

/**
 * A query that returns a row when one of the given conversations (msdyn_conversationid)
 * is another provider's than the one given beside it (lower case), or does not exist
 * while `mustExist` says it must (false for the conversations that the same statement
 * writes for the same provider): three array parameters. msdyn_InitLogAnalytics' one
 * statement writes nothing then, and the row-by-row path explains the refusal.
 */
export const foreignConversationSql = (conversationIds: string, providerIds: string, mustExist: string) =>
  `SELECT 1 FROM unnest(${conversationIds}::text[], ${providerIds}::text[], ${mustExist}::boolean[]) ` +
  `AS s(conversation_id, provider_id, must_exist) ` +
  // The conversations by `= ANY`, first: on Citus that reads their shards only.
  `LEFT JOIN (SELECT ${ident(CONVERSATION_ID)}, ${ident("msdyn_providerid")} FROM ${ident(CONVERSATION)} ` +
  `WHERE ${ident(CONVERSATION_ID)} = ANY(${conversationIds}::text[])) c ON c.${ident(CONVERSATION_ID)} = s.conversation_id ` +
  `WHERE CASE WHEN c.${ident(CONVERSATION_ID)} IS NULL THEN s.must_exist ` +
  `ELSE lower(c.${ident("msdyn_providerid")}) IS DISTINCT FROM s.provider_id END LIMIT 1`;

/**
 * The scope rule of a new KPI event as SQL over its rule lookup (kpi-event-rules.ts):
 * `lookup` has conversation_exists, conversation_provider (the conversation's
 * msdyn_providerid) and input_provider (the event's msdyn_ProviderId); `provider` is the
 * scope's provider id, NULL for an unscoped caller. `kpiEventScopeRefusal` explains it.
 */
export const kpiEventScopeSql = (lookup: string, provider: string) =>
  `(${provider} IS NULL OR (${lookup}.conversation_exists AND ` +
  `lower(${lookup}.conversation_provider) = ${provider} AND ` +
  `(${lookup}.input_provider IS NULL OR lower(${lookup}.input_provider) = ${provider})))`;

/**
 * `kpiEventScopeSql`'s verdict, explained: the refusal, or undefined when the event
 * passes. A missing conversation is refused with the foreign key's own error.
 */
export function kpiEventScopeRefusal(
  scope: RowScope | undefined,
  event: {
    conversationId: unknown;
    conversationExists: boolean;
    conversationProvider: string | null;
    inputProvider: string | null;
  },
): ODataError | undefined {
  if (!scope) return undefined;
  if (!event.conversationExists) return missingConversation(KPI_EVENT, event.conversationId);
  if (!isProvider(event.conversationProvider, scope)) {
    return foreignConversation(scope, KPI_EVENT, event.conversationId, event.conversationProvider);
  }
  if (event.inputProvider !== null && !isProvider(event.inputProvider, scope)) {
    return foreignProviderValue(scope, KPI_EVENT, event.conversationId, PROVIDER_COLUMN[KPI_EVENT]!, event.inputProvider);
  }
  return undefined;
}
