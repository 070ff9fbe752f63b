/** Rows as Dataverse returns them: `@odata.etag`, then the columns under their property names. */
import type { ColumnDef, TableDef } from "../model/tables.js";
import { FORMATTED_VALUE, formattedValue } from "./annotations.js";
import { propertyName } from "./properties.js";

/**
 * `2026-11-22T09:30:00Z`: whole seconds, as Dataverse serialises date-times, and the only
 * form dynamics-web-api turns into Date objects. (Storage keeps milliseconds for ordering.)
 */
export function formatDateTime(value: Date): string {
  return value.toISOString().replace(/\.\d{3}Z$/, "Z");
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
  for (const column of select ?? table.columns) {
    const name = propertyName(column);
    if (options.formattedValues) {
      const formatted = formattedValue(column, row[column.name]);
      if (formatted !== undefined) out[`${name}@${FORMATTED_VALUE}`] = formatted;
    }
    out[name] = serializeValue(column, row[column.name]);
  }
  return out;
}

/** `…$metadata#msdyn_kpieventsdata(a,b)/$entity` */
export function entityContext(root: string, table: TableDef, select?: readonly ColumnDef[]): string {
  const selected = select ? `(${select.map(propertyName).join(",")})` : "";
  return `${root}$metadata#${table.entitySetName}${selected}/$entity`;
}
