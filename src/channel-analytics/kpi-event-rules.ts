/**
 * The rules a KPI event must pass before it is stored (DESIGN.md):
 * - its definition is found by msdyn_kpieventid (the GUID) or msdyn_kpieventname (the
 *   definition's msdyn_name); the server fills the other; given both, they must agree;
 *   an inactive definition takes no new events;
 * - its provider (msdyn_ProviderId, else the conversation's msdyn_providerid) exists and
 *   has analytics enabled, except for the four agent-behaviour events;
 * - written by a channel provider's caller, its conversation and its msdyn_ProviderId are
 *   that provider's (provider-scope.ts, whose rule is evaluated here with the others).
 * Parents are checked by the database's foreign keys on the insert itself.
 */
import { ErrorCodes, ODataError, badRequest } from "../odata/errors.js";
import { ident, prepared } from "../db/sql.js";
import type { ColumnValues } from "./record-input.js";
import { type Queryable, type Row, rowsSource } from "./store/record-store.js";
import { type TableDef, tableByLogicalName } from "../model/tables.js";
import { type RowScope, fillProviderColumn, kpiEventScopeRefusal, kpiEventScopeSql } from "./provider-scope.js";
import { logInsertSql, recordsParam } from "./write-audit.js";

/** Logged by the CIF client whatever the provider's analytics flag says. */
export const AGENT_BEHAVIOUR_EVENTS: readonly string[] = [
  "CifSessionStart",
  "CifSessionEnd",
  "SessionFocusIn",
  "SessionFocusOut",
];

// For each event: its definition, its provider reference and the provider itself. Each
// table is looked up once per distinct value (a batch repeats conversations, definitions
// and providers), and every join is an equality the planner can hash or index. With a
// provider's scope (`scoped`), the lookup also carries the conversation's msdyn_providerid.
// The conversations are looked up by `= ANY(array)`, which Citus routes to their shards
// (`IN (SELECT … FROM input)` would go to every shard).
const lookupCte = (scoped: boolean) => `
input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
    AS i(definition_id, definition_name, provider_ref, conversation_id, n)
), conversation AS (
  SELECT msdyn_conversationid, msdyn_providerid FROM msdyn_conversationdata
   WHERE msdyn_conversationid = ANY($4::text[])
), ref AS (
  SELECT input.*, c.msdyn_conversationid IS NOT NULL AS conversation_exists,
         COALESCE(input.provider_ref, c.msdyn_providerid) AS effective_provider${scoped ? ", c.msdyn_providerid AS conversation_provider" : ""}
    FROM input LEFT JOIN conversation c ON c.msdyn_conversationid = input.conversation_id
), definition AS (
  SELECT msdyn_kpieventdefinitionid, msdyn_name, statecode FROM msdyn_kpieventdefinition
   WHERE msdyn_kpieventdefinitionid IN (SELECT definition_id FROM input)
      OR msdyn_name IN (SELECT definition_name FROM input WHERE definition_id IS NULL)
), provider AS (
  SELECT r.ref, p.msdyn_ciproviderid, p.msdyn_name, p.msdyn_enableanalytics
    FROM (SELECT DISTINCT effective_provider AS ref FROM ref) r
    JOIN msdyn_ciprovider p
      ON p.msdyn_ciproviderid = CASE WHEN r.ref ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' THEN r.ref::uuid END
), lookup AS (
  SELECT ref.n, ref.definition_id AS input_id, ref.definition_name AS input_name, ref.provider_ref AS input_provider,
         COALESCE(by_id.msdyn_kpieventdefinitionid, by_name.msdyn_kpieventdefinitionid) AS definition_id,
         COALESCE(by_id.msdyn_name, by_name.msdyn_name) AS definition_name,
         COALESCE(by_id.statecode, by_name.statecode) AS definition_state,
         ref.effective_provider AS provider_ref, ref.conversation_exists,
         p.msdyn_ciproviderid AS provider_id, p.msdyn_name AS provider_name, p.msdyn_enableanalytics AS analytics_enabled${scoped ? ", ref.conversation_provider" : ""}
    FROM ref
    LEFT JOIN definition by_id ON by_id.msdyn_kpieventdefinitionid = ref.definition_id
    LEFT JOIN definition by_name ON ref.definition_id IS NULL AND by_name.msdyn_name = ref.definition_name
    LEFT JOIN provider p ON p.ref = ref.effective_provider
)`;

const LOOKUP_CTE = lookupCte(false);
const SCOPED_LOOKUP_CTE = lookupCte(true);

const LOOKUP_SQL = `WITH ${LOOKUP_CTE} SELECT * FROM lookup ORDER BY n`;

/**
 * The rules of \`check\` below, as SQL over one lookup row: the insert of a new event
 * happens in the same statement only when they pass ($5 holds the agent-behaviour names).
 * \`check\` then explains any refusal from the same lookup.
 */
const ACCEPTED = `
  lookup.definition_id IS NOT NULL
  AND (lookup.input_id IS NULL OR lookup.input_name IS NULL OR lookup.input_name = lookup.definition_name)
  AND lookup.definition_state = 0
  AND (lookup.definition_name = ANY($5::text[]) OR (NOT lookup.conversation_exists AND lookup.input_provider IS NULL)
       OR lookup.analytics_enabled IS TRUE)`;

interface Lookup {
  definition_id: string | null;
  definition_name: string | null;
  definition_state: number | null;
  provider_ref: string | null;
  conversation_exists: boolean;
  provider_id: string | null;
  provider_name: string | null;
  analytics_enabled: boolean | null;
  /** With a scope only: the conversation's msdyn_providerid. */
  conversation_provider?: string | null;
}

const definitionRequired = () =>
  badRequest(
    "msdyn_kpieventdata requires msdyn_kpieventid (the GUID of a msdyn_kpieventdefinition) or msdyn_kpieventname (its msdyn_name).",
    ErrorCodes.invalidArgument,
  );

/** The columns of a new event that the rules fill in from its definition. */
export const FILLED_BY_KPI_RULES: readonly string[] = ["msdyn_kpieventid", "msdyn_kpieventname"];

/** A new event must name its definition, by GUID or by name. */
export function assertDefinitionNamed(values: ColumnValues): void {
  if ((values.get("msdyn_kpieventid") ?? null) === null && (values.get("msdyn_kpieventname") ?? null) === null) {
    throw definitionRequired();
  }
}

const refused = (message: string) => new ODataError(403, ErrorCodes.privilegeDenied, message);

/** One event to check: its values (completed in place), and whether it is new. */
interface KpiEventWrite {
  values: ColumnValues;
  /** Turns on the provider gate (it guards new events). */
  creating: boolean;
  /** The row scope of the event's caller, if it is a channel provider's (new events only). */
  scope?: RowScope;
}

/** Which event of several was refused, and why (by the rules or by the database). */
export class KpiEventRuleError extends Error {
  constructor(
    readonly index: number,
    readonly error: ODataError,
  ) {
    super(error.message);
  }
}

/**
 * Completes and checks one KPI event's values in place, with one lookup query: a create
 * that takes the upsert path, or an update (`current` is the stored row). New events
 * outside an upsert go through `insertKpiEventGroups`, which checks in the INSERT itself.
 */
export async function applyKpiEventRules(
  db: Queryable,
  values: ColumnValues,
  current: Row | undefined,
  creating: boolean,
): Promise<void> {
  const touchesDefinition = values.has("msdyn_kpieventid") || values.has("msdyn_kpieventname");
  if (!creating && !touchesDefinition) return;
  // Definition and provider references are text (GUIDs or names) once record-input has checked them.
  const pick = (name: string) => ((values.has(name) ? values.get(name) : current?.[name]) ?? null) as string | null;
  // On update, a new name alone re-resolves the id (and the other way round).
  const id = values.has("msdyn_kpieventid") || !values.has("msdyn_kpieventname") ? pick("msdyn_kpieventid") : null;
  const name = values.has("msdyn_kpieventname") || !values.has("msdyn_kpieventid") ? pick("msdyn_kpieventname") : null;
  if (id === null && name === null) throw definitionRequired();
  const provider = pick("msdyn_ProviderId");
  const { rows } = await db.query<Lookup>(prepared(LOOKUP_SQL, [[id], [name], [provider], [pick("msdyn_conversationid")]]));
  check({ values, creating }, { id, name, provider }, rows[0]!);
}

function check(
  { values, creating, scope }: KpiEventWrite,
  { id, name, provider }: { id: string | null; name: string | null; provider: string | null },
  found: Lookup,
): void {
  // A channel provider's event for another provider's conversation is refused before
  // anything else is said about it (such as the other provider's analytics flag).
  const outOfScope = creating
    ? kpiEventScopeRefusal(scope, {
        conversationId: values.get("msdyn_conversationid"),
        conversationExists: found.conversation_exists,
        conversationProvider: found.conversation_provider ?? null,
        inputProvider: provider,
      })
    : undefined;
  if (outOfScope && found.conversation_exists) throw outOfScope;
  if (!found.definition_id) {
    throw badRequest(
      id !== null
        ? `The KPI event definition does not exist (no msdyn_kpieventdefinition with msdyn_kpieventdefinitionid = '${id}').`
        : `The KPI event definition does not exist (no msdyn_kpieventdefinition with msdyn_name = '${name}').`,
      ErrorCodes.objectDoesNotExist,
    );
  }
  if (id !== null && name !== null && name !== found.definition_name) {
    throw badRequest(
      `msdyn_kpieventname '${name}' does not match the definition ${id}, whose msdyn_name is '${found.definition_name}'.`,
      ErrorCodes.invalidArgument,
    );
  }
  if (found.definition_state !== 0) {
    throw badRequest(
      `The KPI event definition '${found.definition_name}' is inactive (statecode 1) and takes no new events.`,
      ErrorCodes.invalidArgument,
    );
  }
  values.set("msdyn_kpieventid", found.definition_id);
  values.set("msdyn_kpieventname", found.definition_name);
  if (creating) checkProvider(found, provider);
  // A missing conversation, for a channel provider: the foreign key's error, after the rules that come before it.
  if (outOfScope) throw outOfScope;
}

/** The provider gate of a new event. */
function checkProvider(found: Lookup, provider: string | null): void {
  if (AGENT_BEHAVIOUR_EVENTS.includes(found.definition_name!)) return;
  // A missing conversation is the foreign key's to report, as a missing parent.
  if (!found.conversation_exists && provider === null) return;
  if (found.provider_ref === null) {
    throw refused(
      "The KPI event names no provider: set msdyn_ProviderId on the event, or msdyn_providerid on its conversation, " +
        "to the msdyn_ciproviderid of a provider with analytics enabled.",
    );
  }
  if (!found.provider_id) {
    throw refused(`The provider '${found.provider_ref}' does not exist (no msdyn_ciprovider with that msdyn_ciproviderid).`);
  }
  if (!found.analytics_enabled) {
    throw refused(
      `Analytics is not enabled for provider '${found.provider_name ?? ""}' (${found.provider_id}). ` +
        `Enable it with PATCH /api/data/v9.2/msdyn_ciproviders(${found.provider_id}) and the body {"msdyn_enableanalytics": true}.`,
    );
  }
}

const LOOKUP_PREFIX = "lookup_";
const LOOKUP_COLUMNS = [
  "definition_id",
  "definition_name",
  "definition_state",
  "provider_ref",
  "conversation_exists",
  "provider_id",
  "provider_name",
  "analytics_enabled",
] as const;

const PREFIXED_LOOKUP_COLUMNS = LOOKUP_COLUMNS.map((c) => LOOKUP_PREFIX + c);
const SCOPED_LOOKUP_COLUMNS = [...LOOKUP_COLUMNS, "conversation_provider"] as const;
const PREFIXED_SCOPED_LOOKUP_COLUMNS = SCOPED_LOOKUP_COLUMNS.map((c) => LOOKUP_PREFIX + c);

/** What to read back of stored events: only the primary key, or the whole row. */
export type Returning = "key" | "row";

/**
 * The verdict on one group of new events: all stored, the first refused one, or a failure
 * of this service (its other groups keep their own verdicts: they may be stored).
 */
export type GroupOutcome = { stored: Row[] } | { refused: KpiEventRuleError } | { failed: Error };

const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");

/**
 * Log records (the requests' audit records) that the statement inserts with the events,
 * each belonging to a group: only the records of groups that are stored are inserted, so
 * they commit with those groups' events and with nothing else.
 */
export interface GroupRecords {
  table: TableDef;
  /** Each record's JSON. */
  texts: readonly string[];
  /** Per record, the index of its group. */
  groups: readonly number[];
}

/** What an event names of its definition and provider, as the lookup takes it. */
interface LookupInput {
  id: string | null;
  name: string | null;
  provider: string | null;
}

/**
 * The lookup's inputs for every row of the groups ($1–$4 of `lookupCte`), read before a
 * scoped group's rows get the scope's provider (the lookup keeps what the event named;
 * the stored row gets the scope's provider when it named none).
 */
function lookupInputs(
  groups: ReadonlyArray<readonly ColumnValues[]>,
  scopes: ReadonlyArray<RowScope | undefined>,
): { inputs: LookupInput[]; lookupParams: unknown[] } {
  const rows = groups.flat();
  const inputs = rows.map((values, index) => {
    const pick = (name: string) => (values.get(name) ?? null) as string | null;
    const input = { id: pick("msdyn_kpieventid"), name: pick("msdyn_kpieventname"), provider: pick("msdyn_ProviderId") };
    // Checked per request before events are grouped (assertDefinitionNamed), so one
    // request's mistake cannot fail another's.
    if (input.id === null && input.name === null) throw new Error(`KPI event ${index} names no definition`);
    return input;
  });
  groups.forEach((group, g) => {
    const scope = scopes[g];
    if (scope) for (const values of group) fillProviderColumn(KPI_EVENT, values, scope);
  });
  const column = (key: keyof LookupInput) => inputs.map((i) => i[key]);
  const lookupParams = [
    column("id"),
    column("name"),
    column("provider"),
    rows.map((values) => values.get("msdyn_conversationid") ?? null),
  ];
  return { inputs, lookupParams };
}

/** The verdict of the rules on one group, before it is stored: all its events pass, or the first refused one. */
export type GroupVerdict = { admitted: true } | { refused: KpiEventRuleError } | { failed: Error };

/** A lookup input's part of its key: null and every text apart. */
const part = (value: string | null) => (value === null ? "\u0000" : `\u0001${value}\u0000`);

const SCOPED_LOOKUP_SQL = `WITH ${SCOPED_LOOKUP_CTE} SELECT * FROM lookup ORDER BY n`;

/**
 * The rules for groups of new KPI events, with ONE lookup of every event's definition,
 * conversation and provider (each distinct value once): per group, admitted (its events'
 * msdyn_kpieventid and msdyn_kpieventname filled in, and a scoped group's msdyn_ProviderId)
 * or its first refused event. Nothing is written: the caller stores the admitted groups
 * (by COPY), and the foreign keys check their parents then.
 */
export async function checkKpiEventGroups(
  db: Queryable,
  groups: ReadonlyArray<readonly ColumnValues[]>,
  scopes: ReadonlyArray<RowScope | undefined> = [],
): Promise<GroupVerdict[]> {
  const scoped = scopes.some((scope) => scope !== undefined);
  const { inputs, lookupParams } = lookupInputs(groups, scopes);
  // Each distinct (definition, provider, conversation) once: a batch repeats them.
  const [ids, names, providers, conversations] = lookupParams as Array<Array<string | null>>;
  const distinct = new Map<string, number>();
  const lookupOf = inputs.map((_, i) => {
    const key = part(ids![i] ?? null) + part(names![i] ?? null) + part(providers![i] ?? null) + part(conversations![i] ?? null);
    let index = distinct.get(key);
    if (index === undefined) distinct.set(key, (index = distinct.size));
    return index;
  });
  const firstOf = new Array<number>(distinct.size);
  lookupOf.forEach((index, i) => (firstOf[index] ??= i));
  const column = (values: Array<string | null>) => firstOf.map((i) => values[i]);
  const { rows: found } = await db.query<Lookup>(
    prepared(scoped ? SCOPED_LOOKUP_SQL : LOOKUP_SQL, [column(ids!), column(names!), column(providers!), column(conversations!)]),
  );
  let first = 0;
  return groups.map((group, g): GroupVerdict => {
    const offset = first;
    first += group.length;
    for (let i = 0; i < group.length; i++) {
      try {
        check({ values: group[i]!, creating: true, scope: scopes[g] }, inputs[offset + i]!, found[lookupOf[offset + i]!]!);
      } catch (error) {
        if (!(error instanceof ODataError)) return { failed: error as Error };
        return { refused: new KpiEventRuleError(i, error) };
      }
    }
    return { admitted: true };
  });
}

/**
 * Creates groups of new KPI events in ONE statement: the lookup of every event's
 * definition and provider, the rules, and one INSERT (the foreign keys check the parents).
 * A group is stored whole or not at all: when the rules refuse one of its events, none of
 * it is inserted and \`check\` explains that event; the other groups are not affected.
 * An integrity refusal (a missing parent, a taken key) fails the whole statement.
 * Every row must carry its primary key and its server-filled columns; the rules fill in
 * msdyn_kpieventid and msdyn_kpieventname.
 *
 * `scopes`: per group, the row scope of its caller when that is a channel provider's: the
 * group's events must then be of its conversations (refused by the same rule evaluation,
 * so the groups of other callers in the statement are not affected), and their
 * msdyn_ProviderId is filled with it when not given. Without any scope the statement is
 * the unscoped one.
 *
 * `companions`: log records of the stored groups, in the same statement (so a group's
 * events and its audit record need no transaction of their own: one round trip).
 */
export async function insertKpiEventGroups(
  db: Queryable,
  groups: ReadonlyArray<readonly ColumnValues[]>,
  returning: Returning,
  scopes: ReadonlyArray<RowScope | undefined> = [],
  companions?: GroupRecords,
): Promise<GroupOutcome[]> {
  const scoped = scopes.some((scope) => scope !== undefined);
  const rows = groups.flat();
  const { inputs, lookupParams } = lookupInputs(groups, scopes);
  const groupOfRow = groups.flatMap((group, g) => group.map(() => g));
  const params: unknown[] = [...lookupParams, AGENT_BEHAVIOUR_EVENTS, groupOfRow];
  // $7: each row's scope.
  if (scoped) params.push(groupOfRow.map((g) => scopes[g]?.providerId ?? null));
  const lookupColumns = scoped ? SCOPED_LOOKUP_COLUMNS : LOOKUP_COLUMNS;
  const prefixedLookupColumns = scoped ? PREFIXED_SCOPED_LOOKUP_COLUMNS : PREFIXED_LOOKUP_COLUMNS;
  const filled = FILLED_BY_KPI_RULES;
  const source = rowsSource(KPI_EVENT, rows, params.length + 1, filled);
  params.push(...source.values);
  let companionCte = "";
  if (companions && companions.texts.length > 0) {
    params.push(recordsParam(companions.texts), companions.groups);
    const insert = logInsertSql(
      companions.table,
      params.length - 1,
      `JOIN unnest($${params.length}::int[]) WITH ORDINALITY AS cg(grp, n) ON cg.n = r.n`,
      "cg.grp NOT IN (SELECT grp FROM refused)",
    );
    companionCte = `, companions AS (${insert})`;
  }
  // The stored rows are read back (by primary key) only when asked for.
  if (returning === "row") params.push(rows.map((values) => values.get(KPI_EVENT.primaryKey)));
  const pk = ident(KPI_EVENT.primaryKey);
  // A group is admitted when every one of its events passes; `ins` runs even when the
  // final SELECT does not read it (PostgreSQL always completes data-modifying CTEs).
  const verdict = scoped
    ? `SELECT lookup.*, (${ACCEPTED}) IS TRUE AND ${kpiEventScopeSql("lookup", "g.scope")} IS TRUE AS accepted, g.grp ` +
      `FROM lookup JOIN unnest($6::int[], $7::text[]) WITH ORDINALITY AS g(grp, scope, n) ON g.n = lookup.n`
    : `SELECT lookup.*, (${ACCEPTED}) IS TRUE AS accepted, g.grp ` +
      `FROM lookup JOIN unnest($6::int[]) WITH ORDINALITY AS g(grp, n) ON g.n = lookup.n`;
  const sql =
    `WITH ${scoped ? SCOPED_LOOKUP_CTE : LOOKUP_CTE}, verdict AS (${verdict}), ` +
    `refused AS (SELECT DISTINCT grp FROM verdict WHERE NOT accepted), ` +
    `admitted AS (SELECT * FROM verdict WHERE grp NOT IN (SELECT grp FROM refused)), ` +
    `ins AS (INSERT INTO msdyn_kpieventdata (${[...source.names, ...filled].map(ident).join(", ")}) ` +
    `SELECT ${source.expressions.join(", ")}, admitted.definition_id, admitted.definition_name ` +
    `FROM ${source.from} JOIN admitted ON admitted.n = r.n ` +
    `RETURNING ${returning === "key" ? pk : "*"})${companionCte} ` +
    `SELECT ${lookupColumns.map((c) => `v.${c} AS ${LOOKUP_PREFIX}${c}`).join(", ")}, ` +
    `v.grp NOT IN (SELECT grp FROM refused) AS ${LOOKUP_PREFIX}stored` +
    (returning === "row"
      ? `, ins.* FROM verdict v LEFT JOIN ins ON ins.${pk} = ($${params.length}::uuid[])[v.n]`
      : ` FROM verdict v`) +
    ` ORDER BY v.n`;
  const { rows: results } = await db.query<Record<string, unknown>>(prepared(sql, params));

  let first = 0;
  return groups.map((group, g) => {
    const offset = first;
    first += group.length;
    const groupResults = results.slice(offset, offset + group.length);
    const admitted = groupResults.every((result) => result[`${LOOKUP_PREFIX}stored`] === true);
    const disagreement = { failed: new Error(`KPI event rules disagree between SQL and check() (stored: ${admitted})`) };
    for (let i = 0; i < group.length; i++) {
      const result = groupResults[i]!;
      const found = {} as Record<string, unknown>;
      lookupColumns.forEach((c, k) => (found[c] = result[prefixedLookupColumns[k]!]));
      try {
        // Explains a refusal; for a stored event the same rules pass and fill its values.
        check({ values: group[i]!, creating: true, scope: scopes[g] }, inputs[offset + i]!, found as unknown as Lookup);
      } catch (error) {
        if (!(error instanceof ODataError)) return { failed: error as Error };
        return admitted ? disagreement : { refused: new KpiEventRuleError(i, error) };
      }
    }
    if (!admitted) return disagreement;
    const stored = groupResults.map((result, i): Row => {
      if (returning === "key") return { [KPI_EVENT.primaryKey]: group[i]!.get(KPI_EVENT.primaryKey) };
      const row = { ...result };
      for (const c of [...lookupColumns, "stored"]) delete row[LOOKUP_PREFIX + c];
      return row;
    });
    return { stored };
  });
}
