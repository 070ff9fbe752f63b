/**
 * Turns a JSON request body into column values for one table, or a Dataverse-shaped 400
 * that names the property and what was wrong. Every write path (POST, PATCH, PUT of a
 * property, $batch, bulk actions, logging actions) goes through here.
 */
import { ErrorCodes, ODataError, badRequest } from "../odata/errors.js";
import { type ColumnDef, STATE_OPTIONS, type TableDef, columnOf, isUuidColumn } from "../model/tables.js";
import { isGuid, unbraceGuid } from "../model/keys.js";
import { hasNulCharacter, parseIsoDateTime } from "../model/date-time.js";
import { edmType, entityTypeName, propertyByName, propertyName } from "../model/properties.js";
import { echoJson, echoText } from "../odata/echo.js";

/** Column logical name → value ready for a pg parameter (null clears). */
export type ColumnValues = Map<string, unknown>;

export type WriteMode = "create" | "update";

const typeError = (table: TableDef, column: ColumnDef, expected: string, got: unknown) =>
  badRequest(
    `The value of '${propertyName(column)}' on ${table.logicalName} must be ${expected}, got ${echoJson(got)}.`,
    ErrorCodes.payloadError,
  );

export const stringTooLong = (table: TableDef, column: ColumnDef) =>
  badRequest(
    `A validation error occurred.  The length of the '${column.name}' attribute of the '${table.logicalName}' entity ` +
      `exceeded the maximum allowed length of '${column.maxLength}'.`,
    ErrorCodes.stringTooLong,
  );

function parseDateTime(table: TableDef, column: ColumnDef, value: unknown): Date {
  const date = typeof value === "string" ? parseIsoDateTime(value) : undefined;
  if (!date) {
    throw typeError(
      table,
      column,
      "Edm.DateTimeOffset (an ISO 8601 date-time such as 2026-11-22T09:30:00Z, years 1 to 9999)",
      value,
    );
  }
  return date;
}

/** Text columns that hold a provider's msdyn_ciproviderid (the KPI event rules look the provider up by it). */
const PROVIDER_ID_COLUMNS = new Set(["msdyn_providerid", "msdyn_ProviderId"]);

/** Converts one JSON value for a column; null passes through (NOT NULL is checked by the caller). */
export function convertValue(table: TableDef, column: ColumnDef, value: unknown): unknown {
  if (value === null) return null;
  const uuid = isUuidColumn(table, column);
  if (typeof value === "string" && (uuid || PROVIDER_ID_COLUMNS.has(column.name))) value = unbraceGuid(value);
  if (uuid) {
    if (typeof value !== "string" || !isGuid(value)) {
      const what = column.type === "string" ? `the GUID of a row (it is stored as ${edmType(column)})` : "Edm.Guid";
      throw typeError(table, column, what, value);
    }
    return value.toLowerCase();
  }
  switch (column.type) {
    case "string":
    case "memo":
      if (typeof value !== "string") throw typeError(table, column, "Edm.String", value);
      if (hasNulCharacter(value)) throw typeError(table, column, "text without NUL characters", value);
      // Dataverse counts characters (UTF-16 code units), as String.length does.
      if (column.maxLength !== undefined && value.length > column.maxLength) throw stringTooLong(table, column);
      return value;
    case "datetime":
    case "dateonly":
      return parseDateTime(table, column, value);
    case "integer":
    case "picklist":
    case "state":
    case "status": {
      if (typeof value !== "number" || !Number.isInteger(value)) throw typeError(table, column, "Edm.Int32", value);
      if (column.options && !column.options.some((o) => o.value === value)) {
        const allowed = column.options.map((o) => `${o.value} (${o.label})`).join(", ");
        throw badRequest(
          `${value} is not a valid value for '${column.name}' on ${table.logicalName}; use one of ${allowed}.`,
          ErrorCodes.invalidArgument,
        );
      }
      const { minValue = -2147483648, maxValue = 2147483647 } = column;
      if (value < minValue || value > maxValue) {
        throw badRequest(
          `The value ${value} of '${column.name}' on ${table.logicalName} is outside the range ${minValue} to ${maxValue}.`,
          ErrorCodes.invalidArgument,
        );
      }
      return value;
    }
    case "boolean":
      if (typeof value !== "boolean") throw typeError(table, column, "Edm.Boolean (true or false)", value);
      return value;
    case "bigint":
      if (typeof value !== "number" || !Number.isInteger(value)) throw typeError(table, column, "Edm.Int64", value);
      return value;
    default:
      throw typeError(table, column, edmType(column), value);
  }
}

/** `/systemusers(<guid>)`, `systemusers(<guid>)` or an absolute URL ending so. */
const BIND_TARGET = /(?:^|\/)(systemusers|teams)\((\{?[0-9a-f-]{36}\}?)\)$/i;

function parseBind(table: TableDef, name: string, value: unknown): [ColumnDef, unknown] {
  const column = table.columns.find((c) => c.name === name && c.type === "lookup");
  if (!column) {
    throw badRequest(
      `An undeclared property '${name}' which only has property annotations in the payload was found on ` +
        `'${entityTypeName(table)}'. Navigation properties that can be bound: ` +
        `${
          table.columns
            .filter((c) => c.type === "lookup" && c.validForCreate)
            .map((c) => c.name)
            .join(", ") || "none"
        }.`,
      ErrorCodes.payloadError,
    );
  }
  if (value === null) return [column, null];
  const match = typeof value === "string" ? BIND_TARGET.exec(value) : null;
  if (match) match[2] = unbraceGuid(match[2]!);
  if (!match || !isGuid(match[2]!)) {
    throw badRequest(
      `'${name}@odata.bind' must reference a user or team, such as "/systemusers(<guid>)"; got ${echoJson(value)}.`,
      ErrorCodes.payloadError,
    );
  }
  return [column, match[2]!.toLowerCase()];
}

/** Validates the shape and types of a body; which columns may be written is checked by `assertWritable`. */
export function parseRecordBody(table: TableDef, body: unknown): ColumnValues {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest(`The request body must be a JSON object with the columns of ${table.logicalName}.`, ErrorCodes.payloadError);
  }
  const values: ColumnValues = new Map();
  for (const [key, value] of Object.entries(body)) {
    if (key === "@odata.type") {
      const type = String(value).replace(/^#/, "");
      if (type !== entityTypeName(table)) {
        throw badRequest(
          `The @odata.type '${echoText(String(value))}' does not match '${entityTypeName(table)}'.`,
          ErrorCodes.payloadError,
        );
      }
      continue;
    }
    if (key.endsWith("@odata.bind")) {
      const [column, id] = parseBind(table, key.slice(0, -"@odata.bind".length), value);
      values.set(column.name, id);
      continue;
    }
    // Other instance annotations (@odata.etag, …FormattedValue) are what a client read; they carry no data.
    if (key.includes("@")) continue;
    const column = propertyByName(table, key);
    if (!column) {
      throw badRequest(
        `Invalid property '${echoText(key)}' was found in entity '${entityTypeName(table)}'. ` +
          `Property names are case-sensitive logical names, e.g. ${table.primaryName}.`,
      );
    }
    if (column.type === "lookup") {
      throw new ODataError(
        400,
        ErrorCodes.payloadError,
        `'${key}' is read-only; set the ${column.name} lookup with "${column.name}@odata.bind": "/systemusers(<guid>)".`,
      );
    }
    values.set(column.name, convertValue(table, column, value));
  }
  return values;
}

const notWritable = (table: TableDef, column: ColumnDef, why: string) =>
  badRequest(`'${propertyName(column)}' of ${table.logicalName} cannot be set ${why}.`, ErrorCodes.invalidArgument);

/** Refuses columns the operation may not write, and NOT NULL columns set to null. */
export function assertWritable(table: TableDef, values: ColumnValues, mode: WriteMode): void {
  for (const [name, value] of values) {
    const column = columnOf(table, name);
    if (!column.validForCreate && !column.validForUpdate) throw notWritable(table, column, "by clients: it is read-only");
    if (mode === "create" && !column.validForCreate) {
      throw notWritable(table, column, "when a row is created; create it, then update the column");
    }
    if (mode === "update" && !column.validForUpdate) {
      throw notWritable(table, column, "once the row exists: it is set only when the row is created");
    }
    if (value === null && column.notNull) {
      throw badRequest(
        `'${propertyName(column)}' of ${table.logicalName} is required and cannot be null.`,
        ErrorCodes.invalidArgument,
      );
    }
  }
}

/** Columns that must be given when a row is created (NOT NULL without a default). */
export function assertRequiredForCreate(table: TableDef, values: ColumnValues, filledByServer: readonly string[]): void {
  const missing = table.columns.filter(
    (c) =>
      c.notNull &&
      c.defaultValue === undefined &&
      c.name !== table.primaryKey &&
      !filledByServer.includes(c.name) &&
      (values.get(c.name) ?? null) === null,
  );
  if (missing.length) {
    throw badRequest(
      `${table.logicalName} requires ${missing.map((c) => `'${c.name}'`).join(", ")} when a row is created.`,
      ErrorCodes.invalidArgument,
    );
  }
}

/** statuscode must belong to statecode (1 ↔ Active, 2 ↔ Inactive); a state change alone gets its default status. */
export function reconcileState(table: TableDef, values: ColumnValues, currentState: number | undefined): void {
  const state = (values.get("statecode") as number | undefined) ?? currentState ?? 0;
  const status = values.get("statuscode") as number | undefined;
  const defaultStatus = state === 0 ? 1 : 2;
  if (status === undefined) {
    if (values.has("statecode")) values.set("statuscode", defaultStatus);
    return;
  }
  if (status !== defaultStatus) {
    const stateLabel = STATE_OPTIONS.find((o) => o.value === state)?.label;
    throw badRequest(
      `statuscode ${status} is not valid for statecode ${state} (${stateLabel}) on ${table.logicalName}; use ${defaultStatus}.`,
      ErrorCodes.invalidArgument,
    );
  }
}
