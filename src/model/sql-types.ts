/** The PostgreSQL type of each column, as the table definitions imply it. */
import { type ColumnDef, type TableDef, isUuidColumn } from "./tables.js";

export type SqlType = "uuid" | "timestamptz" | "bigint" | "int" | "boolean" | "text";

/** The PostgreSQL type a column's values are bound and compared as. */
export function sqlType(table: TableDef, column: ColumnDef): SqlType {
  if (isUuidColumn(table, column)) return "uuid";
  switch (column.type) {
    case "datetime":
    case "dateonly":
      return "timestamptz";
    case "bigint":
      return "bigint";
    case "boolean":
      return "boolean";
    case "string":
    case "memo":
      return "text";
    default:
      return "int";
  }
}
