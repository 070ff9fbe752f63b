/**
 * Instance annotations asked for with `Prefer: odata.include-annotations="…"`
 * (`*`, a comma list, or a namespace wildcard such as `OData.Community.Display.V1.*`).
 */
import type { ColumnDef } from "../model/tables.js";
import { DATAVERSE_NAMESPACE } from "../model/properties.js";

export const FORMATTED_VALUE = "OData.Community.Display.V1.FormattedValue";
export const TOTAL_RECORD_COUNT = `${DATAVERSE_NAMESPACE}.totalrecordcount`;
export const TOTAL_RECORD_COUNT_LIMIT_EXCEEDED = `${DATAVERSE_NAMESPACE}.totalrecordcountlimitexceeded`;

/** True when the Prefer value asks for the annotation `name`. */
export function wantsAnnotation(include: string | undefined, name: string): boolean {
  if (!include) return false;
  return include.split(",").some((pattern) => {
    const p = pattern.trim().replace(/^"|"$/g, "");
    if (p === "*" || p === name) return true;
    return p.endsWith(".*") && name.startsWith(p.slice(0, -1));
  });
}

const dateFormat = new Intl.DateTimeFormat("en-US", {
  timeZone: "UTC",
  year: "numeric",
  month: "numeric",
  day: "numeric",
  hour: "numeric",
  minute: "2-digit",
});

/** The display text Dataverse gives a value: choice labels, Yes/No, dates (UTC, en-US). */
export function formattedValue(column: ColumnDef, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (column.options) {
    const key = typeof value === "boolean" ? Number(value) : value;
    return column.options.find((o) => o.value === key)?.label;
  }
  if (value instanceof Date) return dateFormat.format(value).replace(",", "");
  if (column.type === "integer" || column.type === "bigint") return Number(value).toLocaleString("en-US");
  return undefined;
}
