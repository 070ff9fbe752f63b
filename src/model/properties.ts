/**
 * Web API property names of the table columns: lookups are read as `_<name>_value`
 * (set through `<name>@odata.bind`), every other column under its logical name.
 */
import type { ColumnDef, TableDef } from "./tables.js";

/** The namespace of Dataverse's types, actions and annotations. */
export const DATAVERSE_NAMESPACE = "Microsoft.Dynamics.CRM";

/** `Microsoft.Dynamics.CRM.msdyn_kpieventdata`: the entity type's qualified name. */
export const entityTypeName = (table: TableDef) => `${DATAVERSE_NAMESPACE}.${table.logicalName}`;

export const propertyName = (column: ColumnDef) => (column.type === "lookup" ? `_${column.name}_value` : column.name);

const cache = new WeakMap<TableDef, Map<string, ColumnDef>>();

function propertyMap(table: TableDef): Map<string, ColumnDef> {
  let map = cache.get(table);
  if (!map) {
    map = new Map(table.columns.map((c) => [propertyName(c), c]));
    cache.set(table, map);
  }
  return map;
}

/** Case-sensitive, as in Dataverse. */
export function propertyByName(table: TableDef, name: string): ColumnDef | undefined {
  return propertyMap(table).get(name);
}

/** The EDM type name of a column, for $metadata and error messages. */
export function edmType(column: ColumnDef): string {
  switch (column.type) {
    case "string":
    case "memo":
      return "Edm.String";
    case "uniqueidentifier":
    case "lookup":
      return "Edm.Guid";
    case "datetime":
    case "dateonly":
      return "Edm.DateTimeOffset";
    case "integer":
    case "picklist":
    case "state":
    case "status":
      return "Edm.Int32";
    case "bigint":
      return "Edm.Int64";
    case "boolean":
      return "Edm.Boolean";
  }
}
