/** How a request names one row, and the GUID form every id takes. */

/** A row by its primary key, or by its table's alternate (natural) key. */
export type RecordKey = { kind: "id"; id: string } | { kind: "alternate"; values: Record<string, string> };

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isGuid = (value: string) => GUID.test(value);
