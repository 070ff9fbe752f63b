/**
 * The system query options of a collection request, parsed and resolved against the
 * table: $select, $filter, $orderby, $top, $count, $skiptoken, $expand and $apply, with
 * parameter aliases (@p1). Pure.
 */
import { ErrorCodes, badRequest } from "./errors.js";
import { type NavigationProperty, navigationByName } from "../model/navigation.js";
import { type ColumnDef, type TableDef, isUuidColumn } from "../model/tables.js";
import { type Aliases, type FilterExpr, FilterParser, TokenStream, parseFilter, syntaxError, tokenize } from "./filter-parser.js";
import { propertyByName } from "../model/properties.js";
import { quoted } from "./echo.js";
import { parseSelect, unknownProperty } from "./select.js";
import { entityTypeName } from "../model/properties.js";

export interface OrderBy {
  column: ColumnDef;
  descending: boolean;
}

export interface ExpandOption {
  navigation: NavigationProperty;
  select?: ColumnDef[];
  filter?: FilterExpr;
  orderBy: OrderBy[];
  top?: number;
}

export type AggregateFunction = "sum" | "average" | "min" | "max" | "count";

export interface Aggregate {
  alias: string;
  fn: AggregateFunction;
  /** Undefined for `$count`. */
  column?: ColumnDef;
}

export interface ApplyPlan {
  filter?: FilterExpr;
  groupBy: ColumnDef[];
  aggregates: Aggregate[];
}

export interface CollectionQuery {
  select?: ColumnDef[];
  filter?: FilterExpr;
  orderBy: OrderBy[];
  top?: number;
  count: boolean;
  skipToken?: string;
  expand: ExpandOption[];
  apply?: ApplyPlan;
}

/** The query options of a collection GET (OpenAPI documents each of them; a test holds them together). */
export const SUPPORTED_QUERY_OPTIONS: ReadonlySet<string> = new Set([
  "$select",
  "$filter",
  "$orderby",
  "$top",
  "$count",
  "$skiptoken",
  "$expand",
  "$apply",
]);
const SUPPORTED = SUPPORTED_QUERY_OPTIONS;
const NOT_SUPPORTED = new Set(["$skip", "$search", "$format", "$levels", "$compute", "$index", "$schemaversion"]);
export const MAX_PAGE_SIZE = 5000;
const MAX_EXPANDS = 15;

export type RawQuery = Record<string, string | string[] | undefined>;

/** A query option given at most once. */
export function single(query: RawQuery, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw badRequest(`The query option ${name} is given more than once.`, ErrorCodes.badRequest);
  return value;
}

function parseTop(text: string | undefined, where = "$top"): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()))
    throw badRequest(`${where} must be a whole number, got ${quoted(text)}.`, ErrorCodes.badRequest);
  const top = Number(text);
  if (top > MAX_PAGE_SIZE) throw badRequest(`${where} cannot be more than ${MAX_PAGE_SIZE}.`, ErrorCodes.badRequest);
  return top;
}

/** Resolves an alias to its text, for options where an alias stands for a name. */
function dealias(text: string, aliases: Aliases): string {
  return text.startsWith("@") ? (aliases[text] ?? "") : text;
}

export function parseOrderBy(table: TableDef, text: string | undefined, aliases: Aliases = {}): OrderBy[] {
  if (text === undefined) return [];
  return text.split(",").map((item) => {
    const parts = item.trim().split(/\s+/);
    if (parts.length > 2 || !parts[0])
      throw syntaxError(`$orderby item '${item.trim()}' is not valid: use <property> [asc|desc].`);
    const name = dealias(parts[0], aliases);
    const direction = (parts[1] ?? "asc").toLowerCase();
    if (direction !== "asc" && direction !== "desc") {
      throw syntaxError(`$orderby direction '${parts[1]}' is not valid: use asc or desc.`);
    }
    const column = propertyByName(table, name);
    if (!column) throw unknownProperty(table, name);
    return { column, descending: direction === "desc" };
  });
}

/** Splits on `separator` outside parentheses and quotes. */
export function splitTopLevel(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'") quoted = !quoted;
    else if (!quoted && ch === "(") depth++;
    else if (!quoted && ch === ")") depth--;
    else if (!quoted && depth === 0 && ch === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
    if (depth < 0) throw syntaxError(`Unbalanced parentheses in '${text}'.`);
  }
  if (depth !== 0 || quoted) throw syntaxError(`Unbalanced parentheses or quotes in '${text}'.`);
  parts.push(text.slice(start));
  return parts;
}

function parseExpand(table: TableDef, text: string | undefined): ExpandOption[] {
  if (text === undefined) return [];
  const items = splitTopLevel(text, ",").map((s) => s.trim());
  if (items.length > MAX_EXPANDS) throw badRequest(`At most ${MAX_EXPANDS} $expand items are allowed.`, ErrorCodes.badRequest);
  return items.map((item) => {
    const match = /^([A-Za-z_]\w*)(?:\((.*)\))?$/s.exec(item);
    if (!match) throw syntaxError(`$expand item '${item}' is not valid: use <navigation property>($select=…;$filter=…).`);
    const [, name, inner] = match;
    const navigation = navigationByName(table, name!);
    if (!navigation) {
      throw badRequest(
        `Could not find a navigation property named '${name}' on type '${entityTypeName(table)}'.`,
        ErrorCodes.generic,
      );
    }
    const options: Record<string, string> = {};
    for (const part of inner ? splitTopLevel(inner, ";") : []) {
      const eq = part.indexOf("=");
      const key = part.slice(0, eq).trim();
      if (eq < 0 || !["$select", "$filter", "$orderby", "$top"].includes(key)) {
        throw badRequest(
          `'${part.trim()}' is not allowed inside $expand: use $select, $filter, $orderby or $top, separated by ';'.`,
          ErrorCodes.badRequest,
        );
      }
      options[key] = part.slice(eq + 1);
    }
    if (!navigation.collection && (options.$orderby || options.$top || options.$filter)) {
      throw badRequest(
        "Only $select can be provided while doing $expand on a single-valued navigation property.",
        ErrorCodes.badRequest,
      );
    }
    return {
      navigation,
      select: parseSelect(navigation.target, options.$select),
      filter: options.$filter === undefined ? undefined : parseFilter(options.$filter),
      orderBy: parseOrderBy(navigation.target, options.$orderby),
      top: parseTop(options.$top, "$top inside $expand"),
    };
  });
}

const AGGREGATE_WORDS = { sum: "sum", average: "average", min: "min", max: "max" } as const;

/** `$apply`: [filter(expr)/]groupby((a,b)[,aggregate(...)]) | [filter(expr)/]aggregate(...). */
export function parseApply(table: TableDef, text: string, aliases: Aliases = {}): ApplyPlan {
  const plan: ApplyPlan = { groupBy: [], aggregates: [] };
  const steps = splitTopLevel(text, "/").map((s) => s.trim());
  steps.forEach((step, index) => {
    const match = /^(filter|groupby|aggregate)\((.*)\)$/s.exec(step);
    if (!match) throw syntaxError(`$apply step '${step}' is not supported: use filter(...), groupby((...)) or aggregate(...).`);
    const [, kind, body] = match;
    if (kind === "filter") {
      if (index !== 0) throw syntaxError("In $apply, filter(...) must come first.");
      plan.filter = FilterParser.parse(body!, aliases, "$apply");
      return;
    }
    if (index !== steps.length - 1) throw syntaxError(`In $apply, ${kind}(...) must be the last step.`);
    if (kind === "aggregate") {
      plan.aggregates = parseAggregates(table, body!);
      return;
    }
    const [groups, aggregate, ...extra] = splitTopLevel(body!, ",").map((s) => s.trim());
    const groupMatch = /^\((.*)\)$/s.exec(groups ?? "");
    if (!groupMatch || extra.length)
      throw syntaxError(`groupby takes ((<properties>)[,aggregate(...)]), got 'groupby(${body})'.`);
    plan.groupBy = groupMatch[1]!.split(",").map((name) => {
      const column = propertyByName(table, name.trim());
      if (!column) throw unknownProperty(table, name.trim());
      return column;
    });
    if (aggregate !== undefined) {
      const aggregateMatch = /^aggregate\((.*)\)$/s.exec(aggregate);
      if (!aggregateMatch) throw syntaxError(`Expected aggregate(...) in groupby, got '${aggregate}'.`);
      plan.aggregates = parseAggregates(table, aggregateMatch[1]!);
    }
  });
  if (!plan.groupBy.length && !plan.aggregates.length) throw syntaxError("$apply needs groupby(...) or aggregate(...).");
  return plan;
}

function parseAggregates(table: TableDef, text: string): Aggregate[] {
  const aggregates = splitTopLevel(text, ",").map((item) => {
    const stream = new TokenStream(tokenize(item.trim(), "aggregate"), item.trim(), "aggregate");
    const first = stream.expect("word", "a property or $count");
    if (first.text === "$count") {
      if (!stream.isWord("as")) stream.fail("'as'");
      stream.next();
      const alias = stream.expect("word", "an alias").text;
      if (!stream.atEnd()) stream.fail("the end of the aggregate");
      return { alias, fn: "count" as const };
    }
    const column = propertyByName(table, first.text);
    if (!column) throw unknownProperty(table, first.text);
    if (!stream.isWord("with")) stream.fail("'with'");
    stream.next();
    const fnToken = stream.expect("word", "sum, average, min or max");
    const fn = AGGREGATE_WORDS[fnToken.text as keyof typeof AGGREGATE_WORDS];
    if (!fn) throw syntaxError(`Unknown aggregation '${fnToken.text}': use sum, average, min or max.`);
    if ((fn === "sum" || fn === "average") && !["integer", "bigint", "picklist", "state", "status"].includes(column.type)) {
      throw badRequest(`'${column.name}' is not numeric and cannot be aggregated with ${fn}.`, ErrorCodes.badRequest);
    }
    if (isUuidColumn(table, column) || column.type === "boolean") {
      throw badRequest(
        `'${first.text}' holds ${column.type === "boolean" ? "yes/no values" : "GUIDs"} and cannot be aggregated with ${fn}.`,
        ErrorCodes.badRequest,
      );
    }
    if (!stream.isWord("as")) stream.fail("'as'");
    stream.next();
    const alias = stream.expect("word", "an alias").text;
    if (!stream.atEnd()) stream.fail("the end of the aggregate");
    return { alias, fn, column };
  });
  const aliases = new Set<string>();
  for (const a of aggregates) {
    if (aliases.has(a.alias) || propertyByName(table, a.alias)) {
      throw badRequest(`The alias '${a.alias}' is used twice or names a property.`, ErrorCodes.badRequest);
    }
    aliases.add(a.alias);
  }
  return aggregates;
}

/** `$expand` alone, for a single-row GET. */
export const parseExpandOnly = (table: TableDef, query: RawQuery) => parseExpand(table, single(query, "$expand"));

export function parseCollectionQuery(table: TableDef, query: RawQuery): CollectionQuery {
  const aliases: Aliases = {};
  for (const [name, value] of Object.entries(query)) {
    if (name.startsWith("@")) {
      aliases[name] = single(query, name);
      continue;
    }
    if (!name.startsWith("$")) continue;
    if (NOT_SUPPORTED.has(name)) {
      throw badRequest(`The query parameter ${name} is not supported.`, ErrorCodes.badRequest);
    }
    if (!SUPPORTED.has(name)) throw badRequest(`The query parameter ${name} is not supported.`, ErrorCodes.badRequest);
    if (value === "" && name !== "$skiptoken") throw badRequest(`The query option ${name} has no value.`, ErrorCodes.badRequest);
  }
  const countText = single(query, "$count");
  if (countText !== undefined && countText !== "true" && countText !== "false") {
    throw badRequest(`$count must be true or false, got '${countText}'.`, ErrorCodes.badRequest);
  }
  const filterText = single(query, "$filter");
  const applyText = single(query, "$apply");
  return {
    select: parseSelect(table, single(query, "$select")),
    filter: filterText === undefined ? undefined : parseFilter(filterText, aliases),
    orderBy: parseOrderBy(table, single(query, "$orderby"), aliases),
    top: parseTop(single(query, "$top")),
    count: countText === "true",
    skipToken: single(query, "$skiptoken"),
    expand: parseExpand(table, single(query, "$expand")),
    apply: applyText === undefined ? undefined : parseApply(table, applyText, aliases),
  };
}
