/** Rows as Dataverse returns them: `@odata.etag`, then the columns under their property names. */
import type { ColumnDef, TableDef } from "../model/tables.js";
import { FORMATTED_VALUE, formattedValue } from "./annotations.js";
import { propertyName } from "./properties.js";

/**
 * `2026-11-22T09:30:00Z`: whole seconds, as Dataverse serialises date-times, and the only
 * form dynamics-web-api turns into Date objects. (Storage keeps milliseconds for ordering.)
 */
export function formatDateTime(value: Date): string {
  // toISOString() is YYYY-MM-DDTHH:mm:ss.sssZ for years 1 to 9999, all we store.
  return `${value.toISOString().slice(0, 19)}Z`;
}

export function serializeValue(column: ColumnDef, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return formatDateTime(value);
  if (column.type === "bigint") return Number(value);
  return value;
}

export interface SerializeOptions {
  /** Add `<property>@OData.Community.Display.V1.FormattedValue` before each formattable value. */
  formattedValues?: boolean;
}

export function serializeRow(
  table: TableDef,
  row: Record<string, unknown>,
  select?: readonly ColumnDef[],
  options: SerializeOptions = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = { "@odata.etag": `W/"${String(row.versionnumber)}"` };
  const formatted = options.formattedValues === true;
  for (const column of select ?? table.columns) {
    const name = propertyName(column);
    const value = row[column.name];
    if (formatted) {
      const text = formattedValue(column, value);
      if (text !== undefined) out[`${name}@${FORMATTED_VALUE}`] = text;
    }
    // The common cases first: this runs for every column of every row returned.
    out[name] = value === null || value === undefined ? null : typeof value === "string" && column.type !== "bigint" ? value : serializeValue(column, value);
  }
  return out;
}

/** `…$metadata#msdyn_kpieventsdata(a,b)/$entity` */
export function entityContext(root: string, table: TableDef, select?: readonly ColumnDef[]): string {
  const selected = select ? `(${select.map(propertyName).join(",")})` : "";
  return `${root}$metadata#${table.entitySetName}${selected}/$entity`;
}
