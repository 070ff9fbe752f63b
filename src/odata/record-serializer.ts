/** Rows as Dataverse returns them: `@odata.etag`, then the columns under their property names. */
import type { ColumnDef, TableDef } from "../model/tables.js";
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

export function serializeRow(
  table: TableDef,
  row: Record<string, unknown>,
  select?: readonly ColumnDef[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { "@odata.etag": `W/"${String(row.versionnumber)}"` };
  for (const column of select ?? table.columns) out[propertyName(column)] = serializeValue(column, row[column.name]);
  return out;
}

/** `…$metadata#msdyn_kpieventsdata(a,b)/$entity` */
export function entityContext(root: string, table: TableDef, select?: readonly ColumnDef[]): string {
  const selected = select ? `(${select.map(propertyName).join(",")})` : "";
  return `${root}$metadata#${table.entitySetName}${selected}/$entity`;
}
