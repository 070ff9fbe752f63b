/**
 * FetchXML (`GET {set}?fetchXml=…`): parsed with fast-xml-parser and resolved against the
 * table definitions into a plan that fetchxml-query.ts turns into SQL. Pure. Conditions
 * become the `FilterExpr` nodes `$filter` uses (one per condition), so both query languages
 * share the comparison rules and the value checks; only `like` has a node of its own.
 *
 * The subset analytics users write against these tables: <fetch> (top, count, page,
 * paging-cookie, distinct, aggregate), <entity>, <attribute> (alias, aggregate, groupby,
 * dategrouping, distinct), <all-attributes>, <order>, nested <filter>, <condition> and
 * <link-entity> over the parent links. Anything else is refused with a message naming it.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { ErrorCodes, ODataError, badRequest } from "./errors.js";
import { type NavigationProperty, navigationProperties } from "../model/navigation.js";
import { type ColumnDef, type TableDef, TABLES, isUuidColumn } from "../model/tables.js";
import { hasNulCharacter } from "../model/date-time.js";
import { type FilterExpr, type Literal, MAX_CONDITIONS } from "./filter-parser.js";
import { MAX_PAGE_SIZE } from "./query-options.js";
import { propertyName } from "../model/properties.js";

export type FetchAggregate = "count" | "countcolumn" | "sum" | "avg" | "min" | "max";
export type DateGrouping = "day" | "week" | "month" | "year";

export interface FetchAttribute {
  column: ColumnDef;
  /** The key in the response when given (required in aggregate queries). */
  alias?: string;
  aggregate?: FetchAggregate;
  /** countcolumn distinct="true": count distinct values. */
  distinct: boolean;
  groupBy: boolean;
  dateGrouping?: DateGrouping;
}

export interface FetchOrder {
  /** An attribute of its entity (plain queries). */
  column?: ColumnDef;
  /** An attribute alias (aggregate queries). */
  alias?: string;
  descending: boolean;
}

export type FetchCondition =
  | { kind: "condition"; entity: FetchEntity; expr: FilterExpr }
  | { kind: "like"; entity: FetchEntity; column: ColumnDef; pattern: string; negated: boolean };

export interface FetchFilter {
  kind: "and" | "or";
  items: Array<FetchFilter | FetchCondition>;
}

export interface FetchEntity {
  table: TableDef;
  /** The SQL alias (t0 for the root, t1… for links). */
  sqlAlias: string;
  /** A link's alias (given, or `<name><n>` as Dataverse makes them); prefixes its attributes in the response. */
  alias?: string;
  /** Undefined when all attributes are wanted: <all-attributes/>, or no <attribute> on the root (a link with none returns none). */
  attributes?: FetchAttribute[];
  orders: FetchOrder[];
  filter?: FetchFilter;
  links: FetchLink[];
}

export interface FetchLink extends FetchEntity {
  /** From the entity this link is nested in to this one. */
  navigation: NavigationProperty;
  outer: boolean;
}

export interface FetchPlan {
  root: FetchEntity;
  top?: number;
  /** The page size (count), at most 5,000. */
  count: number;
  page: number;
  /** The paging cookie given (`<cookie page="1"><keyset last="…" /></cookie>`, as this service makes them). */
  pagingCookie?: { page: number; last: string };
  distinct: boolean;
  aggregate: boolean;
}

/** How much a fetchXml value may show of itself in an error message. */
const ECHO = 100;
const echo = (text: string) => (text.length > ECHO ? `${text.slice(0, ECHO)}…` : text);
export const fetchError = (message: string) => new ODataError(400, ErrorCodes.badRequest, message);
const MAX_LINKS = 10;

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  // Every element as an array, every text as #text: one shape to walk.
  isArray: (_name, _path, _leaf, isAttribute) => !isAttribute,
  alwaysCreateTextNode: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  htmlEntities: true,
});

interface Element {
  tag: string;
  attributes: Record<string, string>;
  children: Element[];
  text: string;
}

/** FetchXML is shallow; the bound keeps a hostile document from exhausting the stack. */
const MAX_XML_DEPTH = 50;

function toElements(tag: string, value: unknown, depth = 0): Element[] {
  if (depth > MAX_XML_DEPTH) throw fetchError(`The fetchXml value is nested more than ${MAX_XML_DEPTH} elements deep.`);
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => {
    const node: Node = typeof item === "object" && item !== null ? (item as Node) : { "#text": String(item ?? "") };
    const element: Element = { tag, attributes: {}, children: [], text: "" };
    for (const [key, child] of Object.entries(node)) {
      if (key.startsWith("@_")) element.attributes[key.slice(2)] = String(child);
      else if (key === "#text") element.text = String(child);
      else element.children.push(...toElements(key, child, depth + 1));
    }
    return element;
  });
}

/** Refuses attributes and child elements an element does not support, naming them. */
function checkShape(element: Element, attributes: readonly string[], children: readonly string[]) {
  for (const name of Object.keys(element.attributes)) {
    if (!attributes.includes(name)) {
      throw fetchError(`The attribute '${echo(name)}' of the FetchXML element <${element.tag}> is not supported.`);
    }
  }
  for (const child of element.children) {
    if (!children.includes(child.tag)) {
      throw fetchError(`The FetchXML element <${echo(child.tag)}> is not supported inside <${element.tag}>.`);
    }
  }
  if (element.text && !children.includes("#text")) {
    throw fetchError(`The FetchXML element <${element.tag}> takes no text.`);
  }
}

function booleanAttribute(element: Element, name: string): boolean {
  const value = element.attributes[name];
  if (value === undefined) return false;
  const lower = value.toLowerCase();
  if (lower === "true" || lower === "1") return true;
  if (lower === "false" || lower === "0") return false;
  throw fetchError(`The attribute ${name} of <${element.tag}> must be true or false, got '${echo(value)}'.`);
}

function wholeNumber(element: Element, name: string, min: number, max: number): number | undefined {
  const value = element.attributes[name];
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw fetchError(
      `The attribute ${name} of <${element.tag}> must be a whole number from ${min} to ${max}, got '${echo(value)}'.`,
    );
  }
  return Number(value);
}

function required(element: Element, name: string): string {
  const value = element.attributes[name];
  if (value === undefined || value === "") throw fetchError(`The FetchXML element <${element.tag}> needs the attribute ${name}.`);
  return value;
}

/** Columns by logical name: FetchXML names attributes so, lookups included (`ownerid`). */
function columnByLogicalName(table: TableDef, name: string): ColumnDef {
  const column = table.columns.find((c) => c.name === name);
  if (!column) throw fetchError(`'${table.logicalName}' entity doesn't contain attribute with Name = '${echo(name)}'.`);
  return column;
}

const GUID_IN_BRACES = /^\{([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}$/;

/** A condition value as the literal `$filter` would have for the column. */
function literalFor(table: TableDef, column: ColumnDef, text: string): Literal {
  if (hasNulCharacter(text)) throw fetchError(`A value for '${column.name}' holds a NUL character.`);
  const position = 0;
  if (isUuidColumn(table, column)) {
    return { kind: "literal", type: "guid", value: (GUID_IN_BRACES.exec(text)?.[1] ?? text).toLowerCase(), position };
  }
  switch (column.type) {
    case "integer":
    case "bigint":
    case "picklist":
    case "state":
    case "status": {
      const n = Number(text);
      if (text.trim() === "" || Number.isNaN(n)) {
        throw fetchError(`'${echo(text)}' is not a number, which '${column.name}' holds.`);
      }
      return { kind: "literal", type: "number", value: n, position };
    }
    case "boolean": {
      const lower = text.toLowerCase();
      if (!["true", "false", "1", "0"].includes(lower))
        throw fetchError(`'${echo(text)}' is not a yes/no value, which '${column.name}' holds.`);
      return { kind: "literal", type: "boolean", value: lower === "true" || lower === "1", position };
    }
    case "datetime":
    case "dateonly":
      return { kind: "literal", type: "datetime", value: text, position };
    default:
      return { kind: "literal", type: "string", value: text, position };
  }
}

/** Query-function arguments are strings, as in `$filter` (`PropertyValues=["1","2"]`); filter-sql types them. */
const stringLiteral = (text: string): Literal => {
  if (hasNulCharacter(text)) throw fetchError("A condition value holds a NUL character.");
  return { kind: "literal", type: "string", value: GUID_IN_BRACES.exec(text)?.[1] ?? text, position: 0 };
};

const COMPARISONS = { eq: "eq", ne: "ne", neq: "ne", gt: "gt", ge: "ge", lt: "lt", le: "le" } as const;
const ONE_VALUE_FUNCTIONS = {
  "last-x-hours": "LastXHours",
  "last-x-days": "LastXDays",
  "on-or-after": "OnOrAfter",
  "on-or-before": "OnOrBefore",
} as const;
const OPERATORS =
  "eq, ne, gt, ge, lt, le, like, not-like, in, not-in, between, null, not-null, last-x-hours, last-x-days, on-or-after, on-or-before, today";

class PlanBuilder {
  private conditions = 0;
  private links = 0;
  /** Links by alias, for conditions that name one with entityname. */
  readonly aliases = new Map<string, FetchEntity>();
  /** Filters whose conditions may use entityname, resolved once every link is known. */
  private readonly pending: Array<{ entity: FetchEntity; element: Element; assign: (f: FetchFilter) => void }> = [];

  constructor(private readonly aggregate: boolean) {}

  entity(element: Element, table: TableDef, sqlAlias: string): FetchEntity {
    const entity: FetchEntity = { table, sqlAlias, orders: [], links: [] };
    this.fill(entity, element, true);
    return entity;
  }

  private fill(entity: FetchEntity, element: Element, isRoot: boolean) {
    let all = false;
    const attributes: FetchAttribute[] = [];
    for (const child of element.children) {
      switch (child.tag) {
        case "attribute":
          attributes.push(this.attribute(entity.table, child));
          break;
        case "all-attributes":
          checkShape(child, [], []);
          all = true;
          break;
        case "order":
          entity.orders.push(this.order(entity.table, child));
          break;
        case "filter":
          this.pending.push({
            entity,
            element: child,
            assign: (f) => (entity.filter = entity.filter ? { kind: "and", items: [entity.filter, f] } : f),
          });
          break;
        case "link-entity":
          entity.links.push(this.link(entity, child));
          break;
      }
    }
    if (all && this.aggregate) throw fetchError("<all-attributes> cannot be used in an aggregate query.");
    entity.attributes = all || (isRoot && attributes.length === 0) ? undefined : attributes;
  }

  private attribute(table: TableDef, element: Element): FetchAttribute {
    checkShape(element, ["name", "alias", "aggregate", "groupby", "dategrouping", "distinct"], []);
    const column = columnByLogicalName(table, required(element, "name"));
    const alias = element.attributes.alias;
    if (alias !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,99}$/.test(alias)) {
      throw fetchError(`The alias '${echo(alias)}' is not valid: use letters, digits and underscores, starting with a letter.`);
    }
    const aggregate = element.attributes.aggregate?.toLowerCase();
    const groupBy = booleanAttribute(element, "groupby");
    const dateGrouping = element.attributes.dategrouping?.toLowerCase();
    const attribute: FetchAttribute = { column, alias, distinct: booleanAttribute(element, "distinct"), groupBy };
    if (!this.aggregate) {
      if (aggregate !== undefined || groupBy || dateGrouping !== undefined) {
        throw fetchError(
          `The attribute '${column.name}' uses aggregate, groupby or dategrouping: set aggregate="true" on <fetch>.`,
        );
      }
      return attribute;
    }
    if (alias === undefined)
      throw fetchError(`In an aggregate query every <attribute> needs an alias; '${column.name}' has none.`);
    if (groupBy === (aggregate !== undefined)) {
      throw fetchError(`In an aggregate query the attribute '${column.name}' needs either aggregate="…" or groupby="true".`);
    }
    if (aggregate !== undefined) {
      if (!["count", "countcolumn", "sum", "avg", "min", "max"].includes(aggregate)) {
        throw fetchError(`The aggregate '${echo(aggregate)}' is not supported: use count, countcolumn, sum, avg, min or max.`);
      }
      attribute.aggregate = aggregate as FetchAggregate;
      const numeric = ["integer", "bigint", "picklist", "state", "status"].includes(column.type);
      const date = column.type === "datetime" || column.type === "dateonly";
      if ((aggregate === "sum" || aggregate === "avg") && !numeric) {
        throw fetchError(`'${column.name}' is not numeric and cannot be aggregated with ${aggregate}.`);
      }
      if ((aggregate === "min" || aggregate === "max") && !numeric && !date) {
        throw fetchError(`'${column.name}' is neither a number nor a date-time and cannot be aggregated with ${aggregate}.`);
      }
    }
    if (dateGrouping !== undefined) {
      if (!groupBy) throw fetchError(`dategrouping on '${column.name}' needs groupby="true".`);
      if (!["day", "week", "month", "year"].includes(dateGrouping)) {
        throw fetchError(`The dategrouping '${echo(dateGrouping)}' is not supported: use day, week, month or year.`);
      }
      if (column.type !== "datetime" && column.type !== "dateonly") {
        throw fetchError(`dategrouping needs a date-time attribute; '${column.name}' is not one.`);
      }
      attribute.dateGrouping = dateGrouping as DateGrouping;
    }
    return attribute;
  }

  private order(table: TableDef, element: Element): FetchOrder {
    checkShape(element, ["attribute", "alias", "descending"], []);
    const descending = booleanAttribute(element, "descending");
    const { attribute, alias } = element.attributes;
    if ((attribute === undefined) === (alias === undefined)) throw fetchError("<order> needs either attribute or alias.");
    if (this.aggregate) {
      if (alias === undefined)
        throw fetchError('In an aggregate query <order> names an attribute\'s alias (alias="…"), not an attribute.');
      return { alias, descending };
    }
    if (alias !== undefined) throw fetchError('<order alias="…"> is only for aggregate queries; use attribute="…".');
    return { column: columnByLogicalName(table, attribute!), descending };
  }

  private link(parent: FetchEntity, element: Element): FetchLink {
    checkShape(
      element,
      ["name", "from", "to", "alias", "link-type"],
      ["attribute", "all-attributes", "order", "filter", "link-entity"],
    );
    if (++this.links > MAX_LINKS) throw fetchError(`At most ${MAX_LINKS} <link-entity> elements are supported.`);
    const name = required(element, "name");
    const table = TABLES.find((t) => t.logicalName === name);
    if (!table) throw fetchError(`The entity '${echo(name)}' of <link-entity> does not exist.`);
    const linkType = (element.attributes["link-type"] ?? "inner").toLowerCase();
    if (linkType !== "inner" && linkType !== "outer") {
      throw fetchError(`The link-type '${echo(linkType)}' is not supported: use inner or outer.`);
    }
    const { from, to } = element.attributes;
    if (from !== undefined) columnByLogicalName(table, from);
    if (to !== undefined) columnByLogicalName(parent.table, to);
    // A link follows one of the tables' parent links (either way); naming one column pair of a
    // composite link joins on the whole link, which is what the relationship means.
    const candidates = navigationProperties(parent.table).filter(
      (n) =>
        n.target === table &&
        n.columns.some((c, i) => (to === undefined || c === to) && (from === undefined || n.targetColumns[i] === from)),
    );
    if (candidates.length !== 1) {
      const links = navigationProperties(parent.table)
        .filter((n) => n.target === table)
        .map((n) => n.columns.map((c, i) => `from="${n.targetColumns[i]}" to="${c}"`).join(" or "));
      throw fetchError(
        candidates.length === 0
          ? `No relationship links '${parent.table.logicalName}' to '${table.logicalName}'` +
              (from !== undefined || to !== undefined ? ` over from="${echo(from ?? "")}" to="${echo(to ?? "")}"` : "") +
              (links.length ? `; use ${links.join(", or ")}.` : ".")
          : `More than one relationship links '${parent.table.logicalName}' to '${table.logicalName}': name it with from and to.`,
      );
    }
    const alias = element.attributes.alias ?? `${table.logicalName}${this.links}`;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,99}$/.test(alias)) throw fetchError(`The link-entity alias '${echo(alias)}' is not valid.`);
    if (this.aliases.has(alias)) throw fetchError(`The link-entity alias '${alias}' is used twice.`);
    const link: FetchLink = {
      table,
      sqlAlias: `t${this.links}`,
      alias,
      orders: [],
      links: [],
      navigation: candidates[0]!,
      outer: linkType === "outer",
    };
    this.aliases.set(alias, link);
    this.fill(link, element, false);
    return link;
  }

  /** Filters, once every link alias is known. */
  resolveFilters() {
    for (const { entity, element, assign } of this.pending) assign(this.filter(entity, element, 0));
  }

  private filter(entity: FetchEntity, element: Element, depth: number): FetchFilter {
    checkShape(element, ["type"], ["condition", "filter"]);
    if (depth > 20) throw fetchError("<filter> elements are nested too deeply (at most 20 levels).");
    const type = (element.attributes.type ?? "and").toLowerCase();
    if (type !== "and" && type !== "or") throw fetchError(`The filter type '${echo(type)}' is not supported: use and or or.`);
    const items = element.children.map((child) =>
      child.tag === "filter" ? this.filter(entity, child, depth + 1) : this.condition(entity, child),
    );
    if (items.length === 0) throw fetchError("A <filter> needs at least one <condition> or <filter>.");
    return { kind: type, items };
  }

  private condition(entity: FetchEntity, element: Element): FetchCondition {
    checkShape(element, ["attribute", "operator", "value", "entityname"], ["value"]);
    if (++this.conditions > MAX_CONDITIONS)
      throw new ODataError(400, "0x8004430C", "Number of conditions in query exceeded maximum limit.");
    let target = entity;
    const entityName = element.attributes.entityname;
    if (entityName !== undefined) {
      const named = this.aliases.get(entityName);
      if (!named) throw fetchError(`No <link-entity> has the alias '${echo(entityName)}' that the condition's entityname names.`);
      target = named;
    }
    const { table } = target;
    const column = columnByLogicalName(table, required(element, "attribute"));
    const operator = required(element, "operator").toLowerCase();
    for (const child of element.children) checkShape(child, [], ["#text"]);
    const listed = element.children.map((c) => c.text);
    const single = element.attributes.value;
    const oneValue = (): string => {
      if (single !== undefined && listed.length === 0) return single;
      if (single === undefined && listed.length === 1) return listed[0]!;
      throw fetchError(`The condition operator '${operator}' on '${column.name}' takes one value.`);
    };
    const noValue = () => {
      if (single !== undefined || listed.length)
        throw fetchError(`The condition operator '${operator}' on '${column.name}' takes no value.`);
    };
    const property = { kind: "property" as const, name: propertyName(column), position: 0 };
    const propertyArg = { kind: "literal" as const, type: "string" as const, value: propertyName(column), position: 0 };
    const condition = (expr: FilterExpr): FetchCondition => ({ kind: "condition", entity: target, expr });
    if (operator in COMPARISONS) {
      return condition({
        kind: "compare",
        op: COMPARISONS[operator as keyof typeof COMPARISONS],
        left: property,
        right: literalFor(table, column, oneValue()),
        position: 0,
      });
    }
    switch (operator) {
      case "null":
      case "not-null":
        noValue();
        return condition({
          kind: "compare",
          op: operator === "null" ? "eq" : "ne",
          left: property,
          right: { kind: "literal", type: "null", value: null, position: 0 },
          position: 0,
        });
      case "like":
      case "not-like": {
        if (!["string", "memo"].includes(column.type))
          throw fetchError(`${operator} needs a text attribute; '${column.name}' is not one.`);
        const pattern = oneValue();
        if (hasNulCharacter(pattern)) throw fetchError(`A value for '${column.name}' holds a NUL character.`);
        return { kind: "like", entity: target, column, pattern, negated: operator === "not-like" };
      }
      case "in":
      case "not-in":
      case "between": {
        const values = listed.length ? listed : single !== undefined ? [single] : [];
        if (single !== undefined && listed.length)
          throw fetchError(`The condition on '${column.name}' has both a value attribute and <value> elements.`);
        if (operator === "between" && values.length !== 2)
          throw fetchError(`between on '${column.name}' takes two <value> elements.`);
        if (values.length === 0) throw fetchError(`${operator} on '${column.name}' takes at least one <value>.`);
        const name = operator === "in" ? "In" : operator === "not-in" ? "NotIn" : "Between";
        return condition({
          kind: "queryFunction",
          name,
          args: { PropertyName: propertyArg, PropertyValues: values.map(stringLiteral) },
          position: 0,
        });
      }
      case "today":
        noValue();
        return condition({ kind: "queryFunction", name: "Today", args: { PropertyName: propertyArg }, position: 0 });
      default: {
        const name = ONE_VALUE_FUNCTIONS[operator as keyof typeof ONE_VALUE_FUNCTIONS];
        if (!name) throw fetchError(`The condition operator '${echo(operator)}' is not supported; use ${OPERATORS}.`);
        return condition({
          kind: "queryFunction",
          name,
          args: { PropertyName: propertyArg, PropertyValue: stringLiteral(oneValue()) },
          position: 0,
        });
      }
    }
  }
}

/** The top-level elements of a document, refused with a 400 when it is not well-formed (or too deep for the parser). */
function parseXml(text: string): Element[] {
  let parsed: Node;
  try {
    const valid = XMLValidator.validate(text);
    if (valid !== true) {
      throw fetchError(
        `The fetchXml value is not well-formed XML: ${echo(valid.err.msg)} (line ${valid.err.line}, column ${valid.err.col}).`,
      );
    }
    parsed = parser.parse(text) as Node;
  } catch (error) {
    if (error instanceof ODataError) throw error;
    throw fetchError(`The fetchXml value could not be read: ${echo(error instanceof Error ? error.message : String(error))}.`);
  }
  return Object.entries(parsed).flatMap(([tag, value]) => (tag.startsWith("?") ? [] : toElements(tag, value)));
}

/** Parses `fetchXml` for a GET on `table`'s entity set. */
export function parseFetchXml(table: TableDef, text: string): FetchPlan {
  // FetchXML has no document type; refusing one keeps entity expansion out.
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw fetchError("The fetchXml value cannot have a DOCTYPE or ENTITY declaration.");
  const top = parseXml(text);
  if (top.length !== 1 || top[0]!.tag !== "fetch")
    throw fetchError("The fetchXml value must have one <fetch> element at its root.");
  const fetch = top[0]!;
  checkShape(
    fetch,
    ["top", "count", "page", "paging-cookie", "distinct", "aggregate", "mapping", "no-lock", "version", "output-format"],
    ["entity"],
  );
  if (fetch.attributes.mapping !== undefined && fetch.attributes.mapping !== "logical") {
    throw fetchError(`The fetch mapping '${echo(fetch.attributes.mapping)}' is not supported: use logical.`);
  }
  if (fetch.attributes["output-format"] !== undefined && fetch.attributes["output-format"] !== "xml-platform") {
    throw fetchError(`The fetch output-format '${echo(fetch.attributes["output-format"])}' is not supported.`);
  }
  booleanAttribute(fetch, "no-lock");
  const aggregate = booleanAttribute(fetch, "aggregate");
  const topCount = wholeNumber(fetch, "top", 0, MAX_PAGE_SIZE);
  const count = wholeNumber(fetch, "count", 1, MAX_PAGE_SIZE);
  const page = wholeNumber(fetch, "page", 1, 1_000_000_000);
  if (topCount !== undefined && (count !== undefined || page !== undefined)) {
    throw fetchError("The top attribute can't be specified with paging attribute page or count.");
  }
  if (fetch.children.length !== 1) throw fetchError("<fetch> needs exactly one <entity>.");
  const entityElement = fetch.children[0]!;
  checkShape(entityElement, ["name"], ["attribute", "all-attributes", "order", "filter", "link-entity"]);
  const name = required(entityElement, "name");
  if (name !== table.logicalName) {
    throw fetchError(
      `The entity name '${echo(name)}' in the fetchXml does not match the entity set '${table.entitySetName}' (entity '${table.logicalName}').`,
    );
  }
  const builder = new PlanBuilder(aggregate);
  const root = builder.entity(entityElement, table, "t0");
  builder.resolveFilters();
  const cookie = fetch.attributes["paging-cookie"];
  const plan: FetchPlan = {
    root,
    top: topCount,
    count: count ?? MAX_PAGE_SIZE,
    page: page ?? 1,
    pagingCookie: cookie === undefined || cookie.trim() === "" ? undefined : parseCookie(cookie),
    distinct: booleanAttribute(fetch, "distinct"),
    aggregate,
  };
  checkPlan(plan);
  return plan;
}

/** The limit Dataverse sets on simple paging (page and count without a paging cookie). */
export const SIMPLE_PAGING_LIMIT = 50_000;

/**
 * Whether the query pages by keyset with a paging cookie: its rows are one per root row
 * (no distinct, aggregate or link to children) and it sorts on root columns only. Others
 * have no cookie, as in Dataverse, and page simply.
 */
export function pagesByCookie(plan: FetchPlan): boolean {
  const links = allLinks(plan.root);
  return (
    !plan.aggregate &&
    !plan.distinct &&
    !links.some((link) => link.navigation.collection) &&
    links.every((link) => link.orders.length === 0)
  );
}

/** The rules that span elements, checked once the whole plan is known, so SQL is only made from a plan that holds. */
function checkPlan(plan: FetchPlan) {
  const entities = [plan.root, ...allLinks(plan.root)];
  if (plan.aggregate) {
    const aliases = new Set<string>();
    for (const a of entities.flatMap((e) => e.attributes ?? [])) {
      if (aliases.has(a.alias!)) throw fetchError(`The alias '${a.alias!}' is used twice.`);
      aliases.add(a.alias!);
    }
    if (!aliases.size) throw fetchError("An aggregate query needs at least one <attribute> with aggregate or groupby.");
    for (const order of entities.flatMap((e) => e.orders)) {
      if (!aliases.has(order.alias!))
        throw fetchError(`The order alias '${echo(order.alias!)}' names no attribute of the query.`);
    }
  } else if (plan.distinct) {
    for (const entity of entities) {
      for (const order of entity.orders) {
        if (entity.attributes && !entity.attributes.some((a) => a.column === order.column)) {
          throw fetchError(`With distinct, <order> must name a selected attribute; '${order.column!.name}' is not selected.`);
        }
      }
    }
  }
  if (plan.top !== undefined) return;
  const cookie = plan.pagingCookie;
  if (pagesByCookie(plan) && cookie && cookie.page === plan.page - 1) return;
  // Without a cookie for the page before (or none at all): simple paging, bounded.
  if (plan.page * plan.count > SIMPLE_PAGING_LIMIT) {
    throw fetchError(
      `Simple paging (page and count without the paging cookie of the page before) reaches at most ${SIMPLE_PAGING_LIMIT} rows; ` +
        `page ${plan.page} of ${plan.count} goes past that. Pass the paging cookie of each page to the next.`,
    );
  }
}

const badCookie = () =>
  fetchError("The paging-cookie is not valid: pass the pagingcookie of the previous page's response unchanged.");

/** A paging cookie this service made: `<cookie page="1"><keyset last="…" /></cookie>`. */
function parseCookie(text: string): { page: number; last: string } {
  let elements: Element[];
  try {
    elements = parseXml(text);
  } catch {
    throw badCookie();
  }
  const [cookie, ...rest] = elements;
  const keyset = cookie?.children[0];
  if (rest.length || cookie?.tag !== "cookie" || cookie.children.length !== 1 || keyset?.tag !== "keyset") throw badCookie();
  const page = cookie.attributes.page ?? "";
  const last = keyset.attributes.last ?? "";
  if (!/^\d{1,9}$/.test(page) || !/^[A-Za-z0-9_-]{1,10000}$/.test(last)) throw badCookie();
  return { page: Number(page), last };
}

/** `savedQuery` and `userQuery` run stored views; there are none here. */
export function refuseStoredQuery(option: string): never {
  throw badRequest(
    `The query option ${option} runs a saved view, and this service has no saved views: send the query as fetchXml or with $filter.`,
    ErrorCodes.badRequest,
  );
}

/** Every link of `entity`, depth first. */
export function allLinks(entity: FetchEntity): FetchLink[] {
  return entity.links.flatMap((link) => [link, ...allLinks(link)]);
}
