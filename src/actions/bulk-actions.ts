/**
 * The Dataverse bulk actions bound to an entity set (shared/reference/dataverse-webapi.md §7):
 *   POST {set}/Microsoft.Dynamics.CRM.CreateMultiple  {"Targets":[…]} → 200 {"Ids":[…]}
 *   POST {set}/Microsoft.Dynamics.CRM.UpdateMultiple  {"Targets":[…]} → 204
 *   POST {set}/Microsoft.Dynamics.CRM.UpsertMultiple  {"Targets":[…]} → 204
 *
 * As on Dataverse's standard tables, one request is one transaction: a failing target
 * rolls back the whole request, and the error (the writer's own status and code) names
 * the target's index. Every target goes through RecordWriter, so the integrity and
 * provider rules are those of a plain POST or PATCH.
 */
import { convertValue } from "../channel-analytics/record-input.js";
import type { RecordWriter } from "../channel-analytics/records.js";
import { type RecordKey, isGuid, unbraceGuid } from "../model/keys.js";
import type { PrivilegeVerb } from "../model/privileges.js";
import { DATAVERSE_NAMESPACE as NAMESPACE, entityTypeName as entityType, propertyByName } from "../model/properties.js";
import type { TableDef } from "../model/tables.js";
import { ErrorCodes, ODataError, badRequest } from "../odata/errors.js";
import { echoJson } from "../odata/echo.js";
import { errorResponse } from "../odata/openapi-entity-sets.js";
import { parseKey } from "../odata/resource-path.js";
import type { ODataResponse } from "../odata/response.js";
import type { JsonSchema, OperationContext, OperationDefinition } from "./action.js";

type Target = Record<string, unknown>;

/** Dataverse's guidance for standard tables (reference §7); `BULK_MAX_TARGETS` overrides it. */
export const DEFAULT_BULK_MAX_TARGETS = 1000;

const atIndex = (index: number, message: string, code: string = ErrorCodes.invalidArgument) =>
  badRequest(`Targets[${index}]: ${message}`, code);

/** Keeps the writer's status, code and headers; the message says which target failed. */
function nameTarget(index: number, error: unknown): unknown {
  if (!(error instanceof ODataError)) return error;
  return error.at(`Targets[${index}]`);
}

/**
 * Checks the body's shape, the limit and every target's `@odata.type`; returns the targets
 * without their `@odata.type`.
 */
function readTargets(
  action: string,
  table: TableDef | undefined,
  body: unknown,
  maxTargets: number,
): {
  table: TableDef;
  targets: Target[];
} {
  if (!table) {
    throw badRequest(`${action} is bound to an entity set: POST {set}/${NAMESPACE}.${action}.`, ErrorCodes.badRequest);
  }
  const targets =
    typeof body === "object" && body !== null && !Array.isArray(body) ? (body as { Targets?: unknown }).Targets : undefined;
  if (!Array.isArray(targets)) {
    throw badRequest(
      `${action} takes a body of the form {"Targets": [ {"@odata.type": "${entityType(table)}", …}, … ]}.`,
      ErrorCodes.payloadError,
    );
  }
  if (targets.length === 0)
    throw badRequest(`${action}: Targets is empty; send at least one record.`, ErrorCodes.invalidArgument);
  if (targets.length > maxTargets) {
    throw badRequest(
      `${action}: Targets holds ${targets.length} records, more than the limit of ${maxTargets} per request ` +
        `(BULK_MAX_TARGETS); split them over several requests.`,
      ErrorCodes.invalidArgument,
    );
  }
  const expected = entityType(table);
  return {
    table,
    targets: targets.map((target: unknown, index) => {
      if (typeof target !== "object" || target === null || Array.isArray(target)) {
        throw atIndex(
          index,
          `each target must be a JSON object with the columns of ${table.logicalName}.`,
          ErrorCodes.payloadError,
        );
      }
      const { "@odata.type": type, ...rest } = target as Target;
      if (type === undefined) {
        throw atIndex(
          index,
          `"@odata.type" is missing; every target must carry "@odata.type": "${expected}".`,
          ErrorCodes.payloadError,
        );
      }
      if (typeof type !== "string" || type.replace(/^#/, "") !== expected) {
        throw atIndex(
          index,
          `"@odata.type" ${echoJson(type)} does not match the entity set ${table.entitySetName}; use "${expected}".`,
          ErrorCodes.payloadError,
        );
      }
      return rest;
    }),
  };
}

/** The primary key value of a target, validated, or undefined when it carries none. */
function primaryKeyOf(table: TableDef, target: Target, index: number): string | undefined {
  const given = target[table.primaryKey];
  if (given === undefined || given === null) return undefined;
  const value = typeof given === "string" ? unbraceGuid(given) : given;
  if (typeof value !== "string" || !isGuid(value)) {
    throw atIndex(index, `${table.primaryKey} must be a GUID, got ${echoJson(value)}.`, ErrorCodes.payloadError);
  }
  return value.toLowerCase();
}

const withoutColumns = (target: Target, names: readonly string[]): Target =>
  Object.fromEntries(Object.entries(target).filter(([name]) => !names.includes(name)));

/** `set(<key>)`, optionally after a service root or any path without parentheses. */
const ODATA_ID = /^(?:[^()]*\/)?([A-Za-z_]\w*)\((.*)\)$/s;

/**
 * How UpsertMultiple finds a target's row: `@odata.id`, else the primary key column, else
 * all the alternate-key columns; undefined (create) when it names none. Returns the body
 * to write with the key.
 */
function upsertKey(table: TableDef, target: Target, index: number): { key?: RecordKey; body: Target } {
  const odataId = target["@odata.id"];
  if (odataId !== undefined) {
    const body = withoutColumns(target, ["@odata.id"]);
    const match = typeof odataId === "string" ? ODATA_ID.exec(odataId.trim()) : null;
    if (!match) {
      throw atIndex(
        index,
        `"@odata.id" must name a row of this set, such as "${table.entitySetName}(<guid>)"; got ${echoJson(odataId)}.`,
        ErrorCodes.payloadError,
      );
    }
    if (match[1] !== table.entitySetName) {
      throw atIndex(index, `"@odata.id" names the entity set '${match[1]}', but the action is bound to ${table.entitySetName}.`);
    }
    try {
      return { key: parseKey(match[2]!, table), body };
    } catch (error) {
      throw nameTarget(index, error);
    }
  }

  const id = primaryKeyOf(table, target, index);
  if (id !== undefined) return { key: { kind: "id", id }, body: withoutColumns(target, [table.primaryKey]) };

  const natural = table.naturalKey;
  if (natural?.every((name) => target[name] !== undefined && target[name] !== null)) {
    const values: Record<string, string> = {};
    for (const name of natural) {
      // Validated here (type, length) because the writer takes key values as they are.
      try {
        values[name] = String(convertValue(table, propertyByName(table, name)!, target[name]));
      } catch (error) {
        throw nameTarget(index, error);
      }
    }
    return { key: { kind: "alternate", values }, body: withoutColumns(target, natural) };
  }
  return { body: target };
}

/**
 * One transaction for all targets; a failure names its target and rolls everything back.
 * Admitted by its rows (the targets) before the transaction starts: beyond the bound on rows
 * in flight it is refused with 503 (CreateMultiple is admitted by `createMany` itself).
 */
async function eachTarget<I, T>(
  context: OperationContext,
  targets: readonly I[],
  write: (writer: RecordWriter, target: I, index: number) => Promise<T>,
): Promise<T[]> {
  const run = () => writeEachTarget(context, targets, write);
  return context.admitRows ? context.admitRows(targets.length, run) : run();
}

async function writeEachTarget<I, T>(
  context: OperationContext,
  targets: readonly I[],
  write: (writer: RecordWriter, target: I, index: number) => Promise<T>,
): Promise<T[]> {
  return context.transaction(async (writer) => {
    const results: T[] = [];
    for (const [index, target] of targets.entries()) {
      try {
        results.push(await write(writer, target, index));
      } catch (error) {
        throw nameTarget(index, error);
      }
    }
    return results;
  });
}

/** The Targets body of a bulk action on `table`, for OpenAPI. */
const targetsBody = (table: TableDef): JsonSchema => ({
  required: true,
  content: {
    "application/json": {
      schema: {
        type: "object",
        required: ["Targets"],
        properties: {
          Targets: {
            type: "array",
            description: `Each target carries "@odata.type": "${entityType(table)}". At most BULK_MAX_TARGETS (1,000).`,
            items: { $ref: `#/components/schemas/${table.logicalName}` },
          },
        },
      },
    },
  },
});

/** A bulk action's declaration: bound to every entity set, taking `Targets`. */
function bulkAction(
  name: string,
  verbs: readonly PrivilegeVerb[],
  summary: string,
  ok: Record<string, JsonSchema>,
  handler: OperationDefinition["handler"],
  response?: Pick<OperationDefinition, "returnType" | "complexTypes">,
): OperationDefinition {
  return {
    kind: "Action",
    name,
    binding: "entity-set",
    // The success response it declares for OpenAPI.
    successStatus: "200" in ok ? 200 : 204,
    summary,
    parameters: (table) => [{ name: "Targets", type: `Collection(mscrm.${table!.logicalName})`, nullable: false }],
    privileges: (table) => verbs.map((verb) => ({ verb, table: table! })),
    ...response,
    openApi: (table) => ({
      requestBody: targetsBody(table!),
      responses: {
        ...ok,
        "400": errorResponse("Invalid request: unknown property, wrong type, too long, missing parent…"),
        "404": errorResponse("No such entity set or row"),
        "403": errorResponse("A missing privilege, another provider's data, or a KPI event's provider with analytics disabled"),
      },
    }),
    handler,
  };
}

/** The bulk actions, refusing requests with more than `maxTargets` targets. */
export function createBulkActions(maxTargets: number = DEFAULT_BULK_MAX_TARGETS): OperationDefinition[] {
  if (!Number.isInteger(maxTargets) || maxTargets < 1)
    throw new RangeError(`maxTargets must be a positive integer, got ${maxTargets}`);

  const createMultiple: OperationDefinition["handler"] = async ({
    body,
    root,
    table: bound,
    context,
  }): Promise<ODataResponse> => {
    const { table, targets } = readTargets("CreateMultiple", bound, body, maxTargets);
    // One INSERT for all targets: the same rules as writer.create, checked for all at once.
    const ids = await context.records.createMany(table, targets, (index) => `Targets[${index}]`, context.signal);
    context.observe({ kind: "written", entitySet: table.entitySetName, ids });
    return {
      status: 200,
      headers: {},
      body: {
        "@odata.context": `${root}$metadata#${NAMESPACE}.CreateMultipleResponse`,
        Ids: ids,
      },
    };
  };

  const updateMultiple: OperationDefinition["handler"] = async ({ body, table: bound, context }) => {
    const { table, targets } = readTargets("UpdateMultiple", bound, body, maxTargets);
    const ids = targets.map((target, index) => {
      const id = primaryKeyOf(table, target, index);
      if (id === undefined) {
        throw atIndex(index, `UpdateMultiple needs each target's primary key: "${table.primaryKey}" is missing.`);
      }
      return id;
    });
    await eachTarget(context, targets, (writer, target, index) =>
      // If-Match: * makes it update only: a missing row is a 404, not a create.
      writer.upsert(table, { kind: "id", id: ids[index]! }, withoutColumns(target, [table.primaryKey]), { ifMatch: "*" }),
    );
    context.observe({ kind: "written", entitySet: table.entitySetName, ids });
    return { status: 204, headers: {} };
  };

  const upsertMultiple: OperationDefinition["handler"] = async ({ body, table: bound, context }) => {
    const { table, targets } = readTargets("UpsertMultiple", bound, body, maxTargets);
    const keyed = targets.map((target, index) => upsertKey(table, target, index));
    const ids = await eachTarget(context, keyed, async (writer, { key, body: values }) => {
      const row = key ? (await writer.upsert(table, key, values)).row : await writer.create(table, values);
      return String(row[table.primaryKey]);
    });
    context.observe({ kind: "written", entitySet: table.entitySetName, ids });
    return { status: 204, headers: {} };
  };

  const guids = { type: "array", items: { type: "string", format: "uuid" } };
  return [
    bulkAction(
      "CreateMultiple",
      ["Create"],
      "Create many rows in one transaction",
      {
        "200": {
          description: "The new ids, in target order",
          content: { "application/json": { schema: { type: "object", properties: { Ids: guids } } } },
        },
      },
      createMultiple,
      {
        returnType: { type: "mscrm.CreateMultipleResponse", nullable: false },
        complexTypes: [
          { name: "CreateMultipleResponse", properties: [{ name: "Ids", type: "Collection(Edm.Guid)", nullable: false }] },
        ],
      },
    ),
    bulkAction(
      "UpdateMultiple",
      ["Write"],
      "Update many rows (each target carries its primary key) in one transaction",
      { "204": { description: "Updated" } },
      updateMultiple,
    ),
    bulkAction(
      "UpsertMultiple",
      ["Create", "Write"],
      "Create or update many rows (by primary key, alternate key or @odata.id) in one transaction",
      { "204": { description: "Saved" } },
      upsertMultiple,
    ),
  ];
}
