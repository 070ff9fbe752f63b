/**
 * The rules a KPI event must pass before it is stored (DESIGN.md):
 * - its definition is found by msdyn_kpieventid (the GUID) or msdyn_kpieventname (the
 *   definition's msdyn_name); the server fills the other; given both, they must agree;
 *   an inactive definition takes no new events;
 * - its provider (msdyn_ProviderId, else the conversation's msdyn_providerid) exists and
 *   has analytics enabled, except for the four agent-behaviour events.
 * Parents are checked by the database's foreign keys on the insert itself.
 */
import { ErrorCodes, ODataError, badRequest } from "../http/errors.js";
import { ident, prepared } from "../db/sql.js";
import type { ColumnValues } from "./record-input.js";
import type { Queryable, Row } from "./record-store.js";

/** Logged by the CIF client whatever the provider's analytics flag says. */
export const AGENT_BEHAVIOUR_EVENTS: readonly string[] = ["CifSessionStart", "CifSessionEnd", "SessionFocusIn", "SessionFocusOut"];

// For each event: its definition, its provider reference and the provider itself.
const LOOKUP_CTE = `
input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
    AS i(definition_id, definition_name, provider_ref, conversation_id, n)
), ref AS (
  SELECT input.*, c.msdyn_providerid AS conversation_provider, c.msdyn_conversationid IS NOT NULL AS conversation_exists
    FROM input LEFT JOIN msdyn_conversationdata c ON c.msdyn_conversationid = input.conversation_id
), lookup AS (
  SELECT ref.n, ref.definition_id AS input_id, ref.definition_name AS input_name, ref.provider_ref AS input_provider,
         d.msdyn_kpieventdefinitionid AS definition_id, d.msdyn_name AS definition_name, d.statecode AS definition_state,
         COALESCE(ref.provider_ref, ref.conversation_provider) AS provider_ref, ref.conversation_exists,
         p.msdyn_ciproviderid AS provider_id, p.msdyn_name AS provider_name, p.msdyn_enableanalytics AS analytics_enabled
    FROM ref
    LEFT JOIN msdyn_kpieventdefinition d
      ON CASE WHEN ref.definition_id IS NOT NULL THEN d.msdyn_kpieventdefinitionid = ref.definition_id ELSE d.msdyn_name = ref.definition_name END
    LEFT JOIN msdyn_ciprovider p
      ON p.msdyn_ciproviderid = CASE WHEN COALESCE(ref.provider_ref, ref.conversation_provider) ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                                     THEN COALESCE(ref.provider_ref, ref.conversation_provider)::uuid END
)`;

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
}

const refused = (message: string) => new ODataError(403, ErrorCodes.privilegeDenied, message);

/** One event to check: its values (completed in place), the stored row when updating. */
export interface KpiEventWrite {
  values: ColumnValues;
  current?: Row;
  /** Turns on the provider gate (it guards new events). */
  creating: boolean;
}

/** Which write failed, for callers that check many at once. */
export class KpiEventRuleError extends Error {
  constructor(
    readonly index: number,
    readonly error: ODataError,
  ) {
    super(error.message);
  }
}

/** Completes and checks one KPI event's values in place. */
export async function applyKpiEventRules(
  db: Queryable,
  values: ColumnValues,
  current: Row | undefined,
  creating: boolean,
): Promise<void> {
  try {
    await applyKpiEventRulesToMany(db, [{ values, current, creating }]);
  } catch (error) {
    throw error instanceof KpiEventRuleError ? error.error : error;
  }
}

/**
 * Completes and checks many KPI events with one lookup query; the first refusal is
 * thrown as a KpiEventRuleError naming its index.
 */
export async function applyKpiEventRulesToMany(db: Queryable, writes: readonly KpiEventWrite[]): Promise<void> {
  const inputs = writes.map(({ values, current, creating }, index) => {
    const touchesDefinition = values.has("msdyn_kpieventid") || values.has("msdyn_kpieventname");
    if (!creating && !touchesDefinition) return undefined;
    const pick = (name: string) => (values.has(name) ? values.get(name) : current?.[name]) ?? null;
    // On update, a new name alone re-resolves the id (and the other way round).
    const id = values.has("msdyn_kpieventid") || !values.has("msdyn_kpieventname") ? pick("msdyn_kpieventid") : null;
    const name = values.has("msdyn_kpieventname") || !values.has("msdyn_kpieventid") ? pick("msdyn_kpieventname") : null;
    if (id === null && name === null) {
      throw new KpiEventRuleError(
        index,
        badRequest(
          "msdyn_kpieventdata requires msdyn_kpieventid (the GUID of a msdyn_kpieventdefinition) or msdyn_kpieventname (its msdyn_name).",
          ErrorCodes.invalidArgument,
        ),
      );
    }
    return { index, id, name, provider: pick("msdyn_ProviderId"), conversation: pick("msdyn_conversationid") };
  });
  const checked = inputs.filter((i) => i !== undefined);
  if (checked.length === 0) return;

  const column = (key: "id" | "name" | "provider" | "conversation") => checked.map((i) => i[key]);
  const { rows } = await db.query<Lookup>(
    prepared(LOOKUP_SQL, [column("id"), column("name"), column("provider"), column("conversation")]),
  );
  checked.forEach((input, n) => {
    try {
      check(writes[input.index]!, input, rows[n]!);
    } catch (error) {
      throw error instanceof ODataError ? new KpiEventRuleError(input.index, error) : error;
    }
  });
}

function check(
  { values, creating }: KpiEventWrite,
  { id, name, provider }: { id: unknown; name: unknown; provider: unknown },
  found: Lookup,
): void {
  if (!found.definition_id) {
    throw badRequest(
      id !== null
        ? `The KPI event definition does not exist (no msdyn_kpieventdefinition with msdyn_kpieventdefinitionid = '${String(id)}').`
        : `The KPI event definition does not exist (no msdyn_kpieventdefinition with msdyn_name = '${String(name)}').`,
      ErrorCodes.objectDoesNotExist,
    );
  }
  if (id !== null && name !== null && name !== found.definition_name) {
    throw badRequest(
      `msdyn_kpieventname '${String(name)}' does not match the definition ${String(id)}, whose msdyn_name is '${found.definition_name}'.`,
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

  if (!creating || AGENT_BEHAVIOUR_EVENTS.includes(found.definition_name!)) return;
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

/**
 * Creates one KPI event in ONE statement: the lookup of its definition and provider, the
 * rules, and the INSERT (the foreign keys check its parents). This is the ingestion hot
 * path; the rules are the same as \`applyKpiEventRules\` (a refusal is explained by \`check\`).
 * `values` must not yet hold msdyn_kpieventid/msdyn_kpieventname other than as given.
 */
export async function insertKpiEvent(
  db: Queryable,
  values: ColumnValues,
  sqlType: (column: string) => string,
  keyOnly = false,
): Promise<Row> {
  const pick = (name: string) => values.get(name) ?? null;
  const id = pick("msdyn_kpieventid");
  const name = pick("msdyn_kpieventname");
  if (id === null && name === null) {
    throw badRequest(
      "msdyn_kpieventdata requires msdyn_kpieventid (the GUID of a msdyn_kpieventdefinition) or msdyn_kpieventname (its msdyn_name).",
      ErrorCodes.invalidArgument,
    );
  }
  const names = [...values.keys()].filter((n) => n !== "msdyn_kpieventid" && n !== "msdyn_kpieventname");
  const params: unknown[] = [[id], [name], [pick("msdyn_ProviderId")], [pick("msdyn_conversationid")], AGENT_BEHAVIOUR_EVENTS];
  const selected = names.map((n) => {
    params.push(values.get(n));
    return `$${params.length}::${sqlType(n)}`;
  });
  const lookupColumns = ["definition_id", "definition_name", "definition_state", "provider_ref", "conversation_exists", "provider_id", "provider_name", "analytics_enabled"];
  const sql =
    `WITH ${LOOKUP_CTE}, ins AS (` +
    `INSERT INTO msdyn_kpieventdata (${[...names, "msdyn_kpieventid", "msdyn_kpieventname"].map(ident).join(", ")}) ` +
    `SELECT ${[...selected, "lookup.definition_id", "lookup.definition_name"].join(", ")} FROM lookup WHERE ${ACCEPTED} RETURNING ${keyOnly ? "msdyn_kpieventdataid" : "*"}) ` +
    `SELECT ${lookupColumns.map((c) => `lookup.${c} AS ${LOOKUP_PREFIX}${c}`).join(", ")}, ins.* FROM lookup LEFT JOIN ins ON true`;
  const { rows } = await db.query<Record<string, unknown>>(prepared(sql, params));
  const result = rows[0]!;
  const found = Object.fromEntries(lookupColumns.map((c) => [c, result[LOOKUP_PREFIX + c]])) as unknown as Lookup;
  // Explains a refusal; when the statement inserted, the same rules pass and fill the values.
  check({ values, creating: true }, { id, name, provider: pick("msdyn_ProviderId") }, found);
  if (result.msdyn_kpieventdataid === null || result.msdyn_kpieventdataid === undefined) {
    throw new Error("KPI event rules disagree between SQL and check()");
  }
  for (const c of lookupColumns) delete result[LOOKUP_PREFIX + c];
  return result;
}
