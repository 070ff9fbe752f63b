/** How a request names one row, and the GUID form every id takes. */

/** A row by its primary key, or by its table's alternate (natural) key. */
export type RecordKey = { kind: "id"; id: string } | { kind: "alternate"; values: Record<string, string> };

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isGuid = (value: string) => GUID.test(value);

/**
 * GUIDs in braces (`{3FA85F64-…}`, as .NET writes them) are accepted wherever a GUID is and
 * normalised to the bare lower-case form; anything else is returned unchanged.
 */
export function unbraceGuid(value: string): string {
  const inner = value.startsWith("{") && value.endsWith("}") ? value.slice(1, -1) : undefined;
  return inner !== undefined && GUID.test(inner) ? inner.toLowerCase() : value;
}
