/**
 * One OData request against the entity sets and actions, as a function of plain data:
 * parse (path, options, Prefer) → the record operations → an OData response. The HTTP
 * route and every `$batch` part run through here, so they behave alike; a `$batch`
 * change set passes record operations bound to its transaction.
 */
import { parse as parseQueryString } from "node:querystring";
import type { FastifyBaseLogger } from "fastify";
import type { Row, Queryable } from "../channel-analytics/record-store.js";
import { aggregateRows, countRows, expandRows, queryPage } from "../channel-analytics/record-query.js";
import { type NaturalKeyUpsert, type Preconditions, type RecordWriter, type UpsertedRows, etagOf } from "../channel-analytics/records.js";
import { ErrorCodes, badRequest, methodNotAllowed } from "../http/errors.js";
import type { ColumnDef, TableDef } from "../model/tables.js";
import { FORMATTED_VALUE, TOTAL_RECORD_COUNT, TOTAL_RECORD_COUNT_LIMIT_EXCEEDED, wantsAnnotation } from "./annotations.js";
import { answerFetchXml, isFetchXmlQuery } from "./fetchxml-response.js";
import { parsePrefer } from "./prefer.js";
import { propertyName } from "./properties.js";
import { type ExpandOption, MAX_PAGE_SIZE, parseCollectionQuery, parseExpandOnly } from "./query-options.js";
import { entityContext, serializeRow, serializeValue } from "./record-serializer.js";
import { type RecordKey, type ResourcePath, parseResourcePath } from "./resource-path.js";
import { parseSelect } from "./select.js";

export interface ODataRequest {
  method: string;
  /** Everything after `/api/data/v9.x/`, with the query string. */
  target: string;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  /** The parsed JSON body, if any. */
  body?: unknown;
  /** `http://host/api/data/v9.2/` */
  root: string;
  /** The request's logger; actions may add bindings (e.g. a correlation id) to its lines. */
  log?: FastifyBaseLogger;
}

export interface ODataResponse {
  status: number;
  headers: Record<string, string>;
  /** JSON (an object), text (a string) or nothing. */
  body?: unknown;
}

/** The record operations; RecordService (one transaction each) and RecordWriter (a shared one) both fit. */
export interface RecordOperations {
  retrieve(table: TableDef, key: RecordKey): Promise<Row>;
  /** `keyOnly`: only the new row's primary key is needed (no representation asked for). */
  create(table: TableDef, body: unknown, options?: { keyOnly?: boolean }): Promise<Row>;
  /** Creates all rows or none; a refusal names its row with `label(index)`. */
  createMany(table: TableDef, bodies: readonly unknown[], label: (index: number) => string): Promise<string[]>;
  upsert(table: TableDef, key: RecordKey, body: unknown, pre?: Preconditions): Promise<{ row: Row; created: boolean }>;
  /** Upserts by natural keys in one statement; undefined (nothing written) when `upsert` is needed instead. */
  upsertByNaturalKeys(items: readonly NaturalKeyUpsert[]): Promise<UpsertedRows | undefined>;
  setProperty(table: TableDef, key: RecordKey, column: ColumnDef, value: unknown): Promise<Row>;
  remove(table: TableDef, key: RecordKey, pre?: Preconditions): Promise<void>;
}

/** An action (`POST {root}name` or `POST {set}/Microsoft.Dynamics.CRM.name`). */
export type ActionHandler = (input: {
  request: ODataRequest;
  table?: TableDef;
  context: RequestContext;
}) => Promise<ODataResponse>;

export interface RequestContext {
  records: RecordOperations;
  /** Runs `fn` in one transaction (the change set's own, inside a `$batch`). */
  transaction<T>(fn: (writer: RecordWriter, db: Queryable) => Promise<T>): Promise<T>;
  /** For reads. */
  db: Queryable;
  /** Unbound actions by name, and actions bound to an entity set by qualified name. */
  actions: ReadonlyMap<string, ActionHandler>;
}

type Query = Record<string, string | string[] | undefined>;

function singleOption(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw badRequest(`The query option ${name} is given more than once.`, ErrorCodes.badRequest);
  return value;
}

function serializeExpanded(option: ExpandOption, related: Row | Row[] | null, formattedValues: boolean): unknown {
  const one = (row: Row) => serializeRow(option.navigation.target, row, option.select, { formattedValues });
  if (Array.isArray(related)) return related.map(one);
  return related ? one(related) : null;
}

const collectionContext = (root: string, table: TableDef, select?: readonly ColumnDef[]) =>
  `${root}$metadata#${table.entitySetName}${select ? `(${select.map(propertyName).join(",")})` : ""}`;

const entityUrl = (root: string, table: TableDef, row: Row) => `${root}${table.entitySetName}(${row[table.primaryKey]})`;

const ENTITY_METHODS = ["GET", "PATCH", "DELETE"];
const PROPERTY_METHODS = ["GET", "PUT", "DELETE"];

export async function handleODataRequest(request: ODataRequest, context: RequestContext): Promise<ODataResponse> {
  const questionMark = request.target.indexOf("?");
  const path = questionMark < 0 ? request.target : request.target.slice(0, questionMark);
  const search = questionMark < 0 ? "" : request.target.slice(questionMark + 1);
  const query = parseQueryString(search) as Query;
  const prefer = parsePrefer(request.headers.prefer);
  const headers: Record<string, string> = {};
  const preferenceApplied: string[] = [];
  const respond = (status: number, body?: unknown): ODataResponse => {
    if (preferenceApplied.length) headers["Preference-Applied"] = preferenceApplied.join(",");
    return { status, headers, body };
  };
  /** Echoes the annotation preference; true when formatted values are wanted. */
  const formattedValues = () => {
    if (prefer.includeAnnotations === undefined) return false;
    preferenceApplied.push(`odata.include-annotations="${prefer.includeAnnotations}"`);
    return wantsAnnotation(prefer.includeAnnotations, FORMATTED_VALUE);
  };

  // Actions: unbound (`msdyn_LogAnalyticsEvent`) or bound to a set (`set/Microsoft.Dynamics.CRM.CreateMultiple`).
  const bound = /^([A-Za-z_]\w*)\/(Microsoft\.Dynamics\.CRM\.\w+)$/.exec(path);
  const actionName = bound ? bound[2]! : /^[A-Za-z_]\w*$/.test(path) ? path : undefined;
  const action = actionName === undefined ? undefined : context.actions.get(actionName);
  if (action) {
    if (request.method !== "POST") throw methodNotAllowed(request.method, actionName!, ["POST"]);
    return action({ request, table: bound ? parseResourcePath(bound[1]!).table : undefined, context });
  }

  const resource = parseResourcePath(path);
  const { table } = resource;
  const select = () => parseSelect(table, singleOption(query, "$select"));

  /** 204 with OData-EntityId, or the row when `Prefer: return=representation` asks. */
  const answerWrite = (row: Row, representationStatus: number) => {
    headers["OData-EntityId"] = entityUrl(request.root, table, row);
    if (!prefer.returnRepresentation) return respond(204);
    const columns = select();
    preferenceApplied.push("return=representation");
    return respond(representationStatus, {
      "@odata.context": entityContext(request.root, table, columns),
      ...serializeRow(table, row, columns),
    });
  };

  if (resource.count) {
    if (request.method !== "GET") throw methodNotAllowed(request.method, `${table.entitySetName}/$count`, ["GET"]);
    headers["Content-Type"] = "text/plain";
    return respond(200, String(await countRows(context.db, table)));
  }

  if (!resource.key) {
    if (request.method === "POST") {
      const row = await context.records.create(table, request.body, { keyOnly: !prefer.returnRepresentation });
      return answerWrite(row, 201);
    }
    if (request.method !== "GET") throw methodNotAllowed(request.method, table.entitySetName, ["GET", "POST"]);
    return queryCollection();
  }
  const key = resource.key;
  if (resource.property) return handleProperty(resource as Required<ResourcePath>);

  switch (request.method) {
    case "GET": {
      const row = await context.records.retrieve(table, key);
      headers.ETag = etagOf(row);
      const ifNoneMatch = request.headers["if-none-match"];
      if (ifNoneMatch && ifNoneMatch.split(",").map((t) => t.trim()).includes(etagOf(row))) return respond(304);
      const columns = select();
      const formatted = formattedValues();
      const body = serializeRow(table, row, columns, { formattedValues: formatted });
      for (const option of parseExpandOnly(table, query)) {
        const [related] = await expandRows(context.db, [row], option);
        body[option.navigation.name] = serializeExpanded(option, related ?? null, formatted);
      }
      return respond(200, { "@odata.context": entityContext(request.root, table, columns), ...body });
    }
    case "PATCH": {
      const { row } = await context.records.upsert(table, key, request.body, {
        ifMatch: request.headers["if-match"],
        ifNoneMatch: request.headers["if-none-match"],
      });
      return answerWrite(row, 200);
    }
    case "DELETE":
      await context.records.remove(table, key, { ifMatch: request.headers["if-match"] });
      return respond(204);
    default:
      throw methodNotAllowed(request.method, `${table.entitySetName}(<key>)`, ENTITY_METHODS);
  }

  async function queryCollection(): Promise<ODataResponse> {
    if (isFetchXmlQuery(query)) {
      const fetchInput = { db: context.db, table, query, root: request.root, includeAnnotations: prefer.includeAnnotations };
      return respond(200, await answerFetchXml({ ...fetchInput, formattedValues: formattedValues() }));
    }
    const options = parseCollectionQuery(table, query);
    const formatted = formattedValues();
    if (options.apply) {
      const plan = options.apply;
      const rows = await aggregateRows(context.db, table, plan, options.filter);
      const names = [...plan.groupBy.map(propertyName), ...plan.aggregates.map((a) => a.alias)];
      const value = rows.map((row) => {
        const out: Record<string, unknown> = {};
        for (const column of plan.groupBy) out[propertyName(column)] = serializeValue(column, row[column.name]);
        for (const a of plan.aggregates) out[a.alias] = a.column ? serializeValue(a.column, row[a.alias]) : row[a.alias];
        return out;
      });
      return respond(200, { "@odata.context": `${request.root}$metadata#${table.entitySetName}(${names.join(",")})`, value });
    }

    const pageSize = Math.min(prefer.maxPageSize ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
    if (prefer.maxPageSize !== undefined) preferenceApplied.push(`odata.maxpagesize=${pageSize}`);
    const page = await queryPage(context.db, table, options, pageSize);
    const body: Record<string, unknown> = { "@odata.context": collectionContext(request.root, table, options.select) };
    if (page.count !== undefined) body["@odata.count"] = page.count;
    if (wantsAnnotation(prefer.includeAnnotations, TOTAL_RECORD_COUNT)) body[`@${TOTAL_RECORD_COUNT}`] = page.count ?? -1;
    if (wantsAnnotation(prefer.includeAnnotations, TOTAL_RECORD_COUNT_LIMIT_EXCEEDED)) {
      body[`@${TOTAL_RECORD_COUNT_LIMIT_EXCEEDED}`] = page.countLimitExceeded ?? false;
    }
    body.value = page.rows.map((row, index) => {
      const out = serializeRow(table, row, options.select, { formattedValues: formatted });
      for (const option of options.expand) {
        out[option.navigation.name] = serializeExpanded(option, page.expanded.get(option.navigation.name)![index]!, formatted);
      }
      return out;
    });
    if (page.nextSkipToken) {
      // Same base and options as the request; only the $skiptoken changes.
      const kept = search.split("&").filter((p) => p && !p.startsWith("$skiptoken=") && !p.startsWith("%24skiptoken="));
      body["@odata.nextLink"] = `${request.root}${table.entitySetName}?${[...kept, `$skiptoken=${page.nextSkipToken}`].join("&")}`;
    }
    return respond(200, body);
  }

  async function handleProperty({ property }: Required<ResourcePath>): Promise<ODataResponse> {
    const name = propertyName(property);
    switch (request.method) {
      case "GET": {
        const row = await context.records.retrieve(table, key);
        const value = serializeValue(property, row[property.name]);
        // OData: a null property answers 204 No Content.
        if (value === null) return respond(204);
        return respond(200, {
          "@odata.context": `${request.root}$metadata#${table.entitySetName}(${row[table.primaryKey]})/${name}`,
          value,
        });
      }
      case "PUT": {
        const body = request.body as { value?: unknown } | undefined;
        if (typeof body !== "object" || body === null || !("value" in body)) {
          throw badRequest(`PUT ${name} takes a body of the form {"value": …}.`, ErrorCodes.payloadError);
        }
        await context.records.setProperty(table, key, property, body.value);
        return respond(204);
      }
      case "DELETE":
        await context.records.setProperty(table, key, property, null);
        return respond(204);
      default:
        throw methodNotAllowed(request.method, `${table.entitySetName}(<key>)/${name}`, PROPERTY_METHODS);
    }
  }
}
