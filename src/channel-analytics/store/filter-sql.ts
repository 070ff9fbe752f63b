/**
 * Turns a `$filter` AST into a SQL condition for one table. Every value becomes a bound
 * parameter; every name is resolved against the table definitions first.
 */
import { SqlParams, ident } from "../../db/sql.js";
import { parseIsoDateTime } from "../../model/date-time.js";
import { isGuid } from "../../model/keys.js";
import { DATAVERSE_NAMESPACE, edmType, entityTypeName, propertyByName } from "../../model/properties.js";
import { type SqlType, sqlType } from "../../model/sql-types.js";
import type { ColumnDef, TableDef } from "../../model/tables.js";
import { ErrorCodes, badRequest } from "../../odata/errors.js";
import type { FilterExpr, Literal, Operand } from "../../odata/filter-parser.js";
import { unknownProperty } from "../../odata/select.js";

type ValueKind = "string" | "uuid" | "datetime" | "number" | "boolean";

const KIND_OF_SQL_TYPE: Record<SqlType, ValueKind> = {
  text: "string",
  uuid: "uuid",
  timestamptz: "datetime",
  int: "number",
  bigint: "number",
  boolean: "boolean",
};

const kindOf = (table: TableDef, column: ColumnDef): ValueKind => KIND_OF_SQL_TYPE[sqlType(table, column)];

export function columnFor(table: TableDef, name: string, alias?: string): { sql: string; column: ColumnDef } {
  const column = propertyByName(table, name);
  if (!column) throw unknownProperty(table, name);
  return { sql: alias ? `${alias}.${ident(column.name)}` : ident(column.name), column };
}

const mismatch = (table: TableDef, column: ColumnDef, literal: Literal) =>
  badRequest(
    `A value of type '${literal.type}' at position ${literal.position} cannot be compared with '${column.name}' ` +
      `(${edmType(column)}) on '${entityTypeName(table)}'.`,
    ErrorCodes.badRequest,
  );

/** A literal converted to the column's type, as a placeholder. */
function literalFor(table: TableDef, column: ColumnDef, literal: Literal, params: SqlParams): string {
  const kind = kindOf(table, column);
  const { type, value } = literal;
  switch (kind) {
    case "string":
      if (type !== "string") throw mismatch(table, column, literal);
      return params.add(value);
    case "uuid":
      if (type === "guid" || (type === "string" && isGuid(String(value)))) {
        return `${params.add(String(value).toLowerCase())}::uuid`;
      }
      throw mismatch(table, column, literal);
    case "datetime": {
      if (type !== "datetime" && type !== "string") throw mismatch(table, column, literal);
      const date = parseIsoDateTime(String(value));
      if (!date) {
        throw badRequest(
          `'${String(value)}' at position ${literal.position} is not an ISO 8601 date-time between the years 1 and 9999.`,
          ErrorCodes.badRequest,
        );
      }
      return `${params.add(date.toISOString())}::timestamptz`;
    }
    case "number": {
      if (type !== "number") throw mismatch(table, column, literal);
      const n = value as number;
      const [min, max] =
        column.type === "bigint" ? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] : [-2147483648, 2147483647];
      if (!Number.isInteger(n) || n < min || n > max) {
        throw badRequest(
          `${String(value)} at position ${literal.position} is not a whole number that '${column.name}' (${edmType(column)}) can hold.`,
          ErrorCodes.badRequest,
        );
      }
      return params.add(n);
    }
    case "boolean":
      if (type !== "boolean") throw mismatch(table, column, literal);
      return params.add(value);
  }
}

const SQL_OPS = { eq: "=", ne: "<>", gt: ">", ge: ">=", lt: "<", le: "<=" } as const;

function compare(table: TableDef, expr: Extract<FilterExpr, { kind: "compare" }>, params: SqlParams, alias?: string): string {
  let { left, right } = expr;
  let op = expr.op;
  // Normalise `value op property` to `property op' value`.
  if (left.kind === "literal" && right.kind === "property") {
    [left, right] = [right, left];
    op = ({ eq: "eq", ne: "ne", gt: "lt", ge: "le", lt: "gt", le: "ge" } as const)[op];
  }
  if (left.kind !== "property") {
    throw badRequest(`The comparison at position ${expr.position} must name a property of the table.`, ErrorCodes.badRequest);
  }
  const { sql, column } = columnFor(table, left.name, alias);
  if (right.kind === "property") {
    const other = columnFor(table, right.name, alias);
    if (kindOf(table, column) !== kindOf(table, other.column)) {
      throw badRequest(
        `'${column.name}' and '${other.column.name}' have different types and cannot be compared.`,
        ErrorCodes.badRequest,
      );
    }
    return `${sql} ${SQL_OPS[op]} ${other.sql}`;
  }
  if (right.type === "null") {
    if (op === "eq") return `${sql} IS NULL`;
    if (op === "ne") return `${sql} IS NOT NULL`;
    throw badRequest(`null can only be compared with eq or ne (position ${right.position}).`, ErrorCodes.badRequest);
  }
  return `${sql} ${SQL_OPS[op]} ${literalFor(table, column, right, params)}`;
}

function stringColumn(table: TableDef, operand: Operand, where: string, alias?: string) {
  if (operand.kind !== "property") throw badRequest(`${where} takes a property as its first argument.`, ErrorCodes.badRequest);
  const resolved = columnFor(table, operand.name, alias);
  if (kindOf(table, resolved.column) !== "string") {
    throw badRequest(
      `${where} needs a text property; '${resolved.column.name}' is ${edmType(resolved.column)}.`,
      ErrorCodes.badRequest,
    );
  }
  return resolved;
}

function stringArg(args: Record<string, Literal | Literal[]>, name: string, fn: string): string {
  const arg = args[name];
  if (!arg || Array.isArray(arg) || arg.type !== "string") {
    throw badRequest(`${DATAVERSE_NAMESPACE}.${fn} needs ${name}='…'.`, ErrorCodes.badRequest);
  }
  return String(arg.value);
}

function queryFunction(
  table: TableDef,
  expr: Extract<FilterExpr, { kind: "queryFunction" }>,
  params: SqlParams,
  alias?: string,
): string {
  const { name, args } = expr;
  const { sql, column } = columnFor(table, stringArg(args, "PropertyName", name), alias);
  const values = () => {
    const list = args.PropertyValues;
    if (!Array.isArray(list) || list.length === 0) {
      throw badRequest(`${DATAVERSE_NAMESPACE}.${name} needs PropertyValues=[…] with at least one value.`, ErrorCodes.badRequest);
    }
    return list.map((v) => literalFor(table, column, asTyped(table, column, v), params));
  };
  const single = () => {
    const value = args.PropertyValue;
    if (!value || Array.isArray(value))
      throw badRequest(`${DATAVERSE_NAMESPACE}.${name} needs PropertyValue=….`, ErrorCodes.badRequest);
    return value;
  };
  const count = (max: number) => {
    const value = single();
    const n = Number(value.value);
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw badRequest(
        `${DATAVERSE_NAMESPACE}.${name} needs a whole number from 0 to ${max} as PropertyValue.`,
        ErrorCodes.badRequest,
      );
    }
    return params.add(n);
  };
  const needsDate = () => {
    if (kindOf(table, column) !== "datetime") {
      throw badRequest(
        `${DATAVERSE_NAMESPACE}.${name} needs a date-time property; '${column.name}' is ${edmType(column)}.`,
        ErrorCodes.badRequest,
      );
    }
  };
  // Days are UTC days.
  const today = `(now() AT TIME ZONE 'UTC')::date`;
  switch (name) {
    case "In":
      return `${sql} IN (${values().join(", ")})`;
    case "NotIn":
      return `(${sql} IS NULL OR ${sql} NOT IN (${values().join(", ")}))`;
    case "Between":
    case "NotBetween": {
      const [low, high, ...extra] = values();
      if (!high || extra.length)
        throw badRequest(`${DATAVERSE_NAMESPACE}.${name} needs exactly two PropertyValues.`, ErrorCodes.badRequest);
      return name === "Between" ? `${sql} BETWEEN ${low} AND ${high}` : `NOT (${sql} BETWEEN ${low} AND ${high})`;
    }
    case "LastXHours":
      needsDate();
      return `(${sql} >= now() - make_interval(hours => ${count(1_000_000)}) AND ${sql} <= now())`;
    case "LastXDays":
      needsDate();
      return `(${sql} >= (${today} - ${count(100_000)}::int)::timestamp AT TIME ZONE 'UTC' AND ${sql} <= now())`;
    case "OnOrAfter":
    case "OnOrBefore": {
      needsDate();
      const day = literalFor(table, column, asTyped(table, column, single()), params);
      return name === "OnOrAfter"
        ? `${sql} >= date_trunc('day', ${day}, 'UTC')`
        : `${sql} < date_trunc('day', ${day}, 'UTC') + interval '1 day'`;
    }
    case "Today":
      needsDate();
      return `(${sql} >= ${today}::timestamp AT TIME ZONE 'UTC' AND ${sql} < (${today} + 1)::timestamp AT TIME ZONE 'UTC')`;
    default:
      throw badRequest(
        `The query function ${DATAVERSE_NAMESPACE}.${name} is not supported; use In, NotIn, Between, NotBetween, ` +
          `LastXHours, LastXDays, OnOrAfter, OnOrBefore or Today.`,
        ErrorCodes.badRequest,
      );
  }
}

/** Query-function values arrive as strings ("5"); give them the column's literal type. */
function asTyped(table: TableDef, column: ColumnDef, literal: Literal): Literal {
  if (literal.type !== "string") return literal;
  const kind = kindOf(table, column);
  if (kind === "number") {
    const n = Number(literal.value);
    if (String(literal.value).trim() === "" || Number.isNaN(n)) throw mismatch(table, column, literal);
    return { ...literal, type: "number", value: n };
  }
  if (kind === "boolean") return { ...literal, type: "boolean", value: literal.value === "true" || literal.value === "1" };
  return literal;
}

/** The parser has already bounded the conditions (MAX_CONDITIONS) and the nesting. */
export function filterToSql(table: TableDef, expr: FilterExpr, params: SqlParams, alias?: string): string {
  const walk = (node: FilterExpr): string => {
    switch (node.kind) {
      case "and":
      case "or":
        return `(${walk(node.left)} ${node.kind.toUpperCase()} ${walk(node.right)})`;
      case "not":
        return `NOT COALESCE(${walk(node.operand)}, false)`;
      case "compare":
        return compare(table, node, params, alias);
      case "stringFunction": {
        const { sql } = stringColumn(table, node.target, node.name, alias);
        if (node.value.kind !== "literal" || node.value.type !== "string") {
          throw badRequest(`${node.name} takes a text value as its second argument.`, ErrorCodes.badRequest);
        }
        // Case-insensitive, and % _ act as wildcards, as in Dataverse.
        const value = params.add(node.value.value);
        const pattern =
          node.name === "contains"
            ? `'%' || ${value} || '%'`
            : node.name === "startswith"
              ? `${value} || '%'`
              : `'%' || ${value}`;
        return `${sql} ILIKE ${pattern}`;
      }
      case "queryFunction":
        return queryFunction(table, node, params, alias);
    }
  };
  return walk(expr);
}
