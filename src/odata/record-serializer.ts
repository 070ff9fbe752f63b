/** Rows as Dataverse returns them: `@odata.etag`, then the columns under their property names. */
import type { ColumnDef, TableDef } from "../model/tables.js";
import { FORMATTED_VALUE, formattedValue } from "./annotations.js";
import { propertyName } from "../model/properties.js";

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
  const formatted = options.formattedValues === true;
  const compiled = formatted ? undefined : compiledSerializer(table, select);
  if (compiled) return compiled(row);
  const out: Record<string, unknown> = { "@odata.etag": `W/"${String(row.versionnumber)}"` };
  for (const column of select ?? table.columns) {
    const name = propertyName(column);
    const value = row[column.name];
    if (formatted) {
      const text = formattedValue(column, value);
      if (text !== undefined) out[`${name}@${FORMATTED_VALUE}`] = text;
    }
    out[name] = serializeValue(column, value);
  }
  return out;
}

type RowSerializer = (row: Record<string, unknown>) => Record<string, unknown>;
const serializers = new WeakMap<TableDef, Map<string, RowSerializer>>();
// Distinct $select lists kept per table; past that, rows take the generic path.
const MAX_SERIALIZERS_PER_TABLE = 200;

const formatDate = (value: unknown) => (value instanceof Date ? formatDateTime(value) : (value ?? null));
const toNumber = (value: unknown) => (value === null || value === undefined ? null : Number(value));

/**
 * A serializer made for one table and one $select: it builds each row as one object
 * literal with fixed keys, which V8 creates and JSON.stringify writes far faster than an
 * object filled key by key (this runs for every column of every row a query returns).
 * The names in the generated code come from the table definitions, quoted as JSON strings.
 */
function compiledSerializer(table: TableDef, select?: readonly ColumnDef[]): RowSerializer | undefined {
  let byColumns = serializers.get(table);
  if (!byColumns) serializers.set(table, (byColumns = new Map<string, RowSerializer>()));
  const columns = select ?? table.columns;
  const key = select ? select.map((c) => c.name).join(",") : "*";
  let serializer = byColumns.get(key);
  if (!serializer) {
    if (byColumns.size >= MAX_SERIALIZERS_PER_TABLE) return undefined;
    const fields = columns.map((column) => {
      const value = `row[${JSON.stringify(column.name)}]`;
      const converted =
        column.type === "datetime" || column.type === "dateonly"
          ? `formatDate(${value})`
          : column.type === "bigint"
            ? `toNumber(${value})`
            : `(${value} ?? null)`;
      return `${JSON.stringify(propertyName(column))}: ${converted}`;
    });
    const etag = `"@odata.etag": 'W/"' + String(row.versionnumber) + '"'`;
    // eslint-disable-next-line @typescript-eslint/no-implied-eval, @typescript-eslint/no-unsafe-call -- code generated from the table definitions only (see above)
    serializer = new Function("formatDate", "toNumber", `return (row) => ({ ${[etag, ...fields].join(", ")} });`)(
      formatDate,
      toNumber,
    ) as RowSerializer;
    byColumns.set(key, serializer);
  }
  return serializer;
}

/** `…$metadata#msdyn_kpieventsdata(a,b)/$entity` */
export function entityContext(root: string, table: TableDef, select?: readonly ColumnDef[]): string {
  const selected = select ? `(${select.map(propertyName).join(",")})` : "";
  return `${root}$metadata#${table.entitySetName}${selected}/$entity`;
}
