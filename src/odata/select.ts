/** `$select`: a comma list of property names, checked against the table. */
import { ErrorCodes, badRequest } from "./errors.js";
import type { ColumnDef, TableDef } from "../model/tables.js";
import { propertyByName } from "../model/properties.js";
import { entityTypeName } from "../model/properties.js";

export const unknownProperty = (table: TableDef, name: string) =>
  badRequest(`Could not find a property named '${name}' on type '${entityTypeName(table)}'.`, ErrorCodes.generic);

/** Undefined means every column. The primary key is always included, as in Dataverse. */
export function parseSelect(table: TableDef, text: string | undefined): ColumnDef[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(",").map((n) => n.trim());
  if (names.some((n) => n === "")) throw badRequest(`$select has an empty item: '${text}'.`, ErrorCodes.badRequest);
  if (names.includes("*")) return undefined;
  const columns = names.map(
    (name) =>
      propertyByName(table, name) ??
      (() => {
        throw unknownProperty(table, name);
      })(),
  );
  const primaryKey = table.columns.find((c) => c.name === table.primaryKey)!;
  return columns.includes(primaryKey) ? columns : [...columns, primaryKey];
}
