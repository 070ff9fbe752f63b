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
import type { ColumnValues } from "./record-input.js";
import type { Queryable, Row } from "./record-store.js";

/** Logged by the CIF client whatever the provider's analytics flag says. */
export const AGENT_BEHAVIOUR_EVENTS: readonly string[] = ["CifSessionStart", "CifSessionEnd", "SessionFocusIn", "SessionFocusOut"];

// One round trip: the definition, the provider reference and the provider itself.
const LOOKUP_SQL = `
WITH ref AS (
  SELECT COALESCE($3::text, (SELECT c.msdyn_providerid FROM msdyn_conversationdata c WHERE c.msdyn_conversationid = $4)) AS provider_ref,
         EXISTS (SELECT 1 FROM msdyn_conversationdata c WHERE c.msdyn_conversationid = $4) AS conversation_exists
)
SELECT d.msdyn_kpieventdefinitionid AS definition_id, d.msdyn_name AS definition_name, d.statecode AS definition_state,
       ref.provider_ref, ref.conversation_exists,
       p.msdyn_ciproviderid AS provider_id, p.msdyn_name AS provider_name, p.msdyn_enableanalytics AS analytics_enabled
  FROM ref
  LEFT JOIN msdyn_kpieventdefinition d
    ON CASE WHEN $1::uuid IS NOT NULL THEN d.msdyn_kpieventdefinitionid = $1::uuid ELSE d.msdyn_name = $2 END
  LEFT JOIN msdyn_ciprovider p
    ON p.msdyn_ciproviderid = CASE WHEN ref.provider_ref ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' THEN ref.provider_ref::uuid END`;

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

/**
 * Completes and checks a KPI event's values in place. `current` is the stored row when
 * updating; `creating` turns on the provider gate (it guards new events).
 */
export async function applyKpiEventRules(
  db: Queryable,
  values: ColumnValues,
  current: Row | undefined,
  creating: boolean,
): Promise<void> {
  const touchesDefinition = values.has("msdyn_kpieventid") || values.has("msdyn_kpieventname");
  if (!creating && !touchesDefinition) return;

  const pick = (name: string) => (values.has(name) ? values.get(name) : current?.[name]) ?? null;
  // On update, a new name alone re-resolves the id (and the other way round).
  const id = values.has("msdyn_kpieventid") || !values.has("msdyn_kpieventname") ? pick("msdyn_kpieventid") : null;
  const name = values.has("msdyn_kpieventname") || !values.has("msdyn_kpieventid") ? pick("msdyn_kpieventname") : null;
  if (id === null && name === null) {
    throw badRequest(
      "msdyn_kpieventdata requires msdyn_kpieventid (the GUID of a msdyn_kpieventdefinition) or msdyn_kpieventname (its msdyn_name).",
      ErrorCodes.invalidArgument,
    );
  }

  const { rows } = await db.query<Lookup>(LOOKUP_SQL, [id, name, pick("msdyn_ProviderId"), pick("msdyn_conversationid")]);
  const found = rows[0]!;

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

  if (!creating || AGENT_BEHAVIOUR_EVENTS.includes(found.definition_name!)) return;
  // A missing conversation is the foreign key's to report, as a missing parent.
  if (!found.conversation_exists && pick("msdyn_ProviderId") === null) return;
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
