/**
 * Stage 2, plan: what the request asks for, as data: the record operation, its inputs,
 * and how the answer is to be shaped. Pure: query options are parsed and checked against
 * the table definitions here, so a bad option is refused before anything is read or
 * written.
 */
import type { OperationDefinition } from "../../actions/index.js";
import type { Preconditions } from "../../channel-analytics/records.js";
import type { RecordKey } from "../../model/keys.js";
import type { NavigationProperty } from "../../model/navigation.js";
import { propertyName } from "../../model/properties.js";
import type { ColumnDef, TableDef } from "../../model/tables.js";
import { FORMATTED_VALUE, wantsAnnotation } from "../../odata/annotations.js";
import { ErrorCodes, ODataError, badRequest, methodNotAllowed } from "../../odata/errors.js";
import type { Preferences } from "../../odata/prefer.js";
import {
  type ApplyPlan,
  type CollectionQuery,
  type ExpandOption,
  MAX_PAGE_SIZE,
  type RawQuery,
  parseCollectionQuery,
  parseExpandOnly,
  single,
} from "../../odata/query-options.js";
import type { FetchPlan } from "../../odata/fetchxml.js";
import { parseSelect } from "../../odata/select.js";
import { isFetchXmlQuery, planFetchXml } from "../fetchxml.js";
import type { ODataRequest } from "../odata-request.js";
import type { ParsedRequest } from "./parse.js";

/** How the response is shaped, whatever the operation. */
export interface Shape {
  root: string;
  prefer: Preferences;
  /** The query string as given (for next links). */
  search: string;
  /** Formatted values asked for with `Prefer: odata.include-annotations`. */
  formattedValues: boolean;
  /** Echoed in Preference-Applied, in order. */
  preferenceApplied: string[];
}

/** Rows reached from a keyed row through a navigation property: `{set}(<key>)/<navigation>`. */
export interface Via {
  table: TableDef;
  key: RecordKey;
  navigation: NavigationProperty;
}

export type Plan = {
  /** A stable name for logs and audit: `msdyn_kpieventsdata.Create`, `msdyn_LogAnalyticsEvent`. */
  operationName: string;
  shape: Shape;
} & (
  | { op: "operation"; definition: OperationDefinition; table?: TableDef; body: unknown }
  | { op: "count"; table: TableDef }
  | { op: "create"; table: TableDef; body: unknown; select?: ColumnDef[]; via?: Via }
  /** `path`: the collection's path under the root, for next links. */
  | { op: "query"; table: TableDef; query: CollectionQuery; pageSize: number; path: string; via?: Via }
  /** A single-valued navigation property: its row, or 204 when the link is empty. */
  | { op: "related"; table: TableDef; via: Via; select?: ColumnDef[]; expand: ExpandOption[] }
  | { op: "aggregate"; table: TableDef; apply: ApplyPlan; filter: CollectionQuery["filter"] }
  /** `?fetchXml=…`, parsed here (src/service/fetchxml.ts); a stored query is refused here. */
  | { op: "fetchxml"; table: TableDef; fetch: FetchPlan }
  | { op: "retrieve"; table: TableDef; key: RecordKey; select?: ColumnDef[]; expand: ExpandOption[]; ifNoneMatch?: string }
  | { op: "upsert"; table: TableDef; key: RecordKey; body: unknown; pre: Preconditions; select?: ColumnDef[] }
  | { op: "delete"; table: TableDef; key: RecordKey; pre: Preconditions }
  | { op: "readProperty"; table: TableDef; key: RecordKey; property: ColumnDef }
  | { op: "writeProperty"; table: TableDef; key: RecordKey; property: ColumnDef; value: unknown }
);

const ENTITY_METHODS = ["GET", "PATCH", "DELETE"];

/** The audit log's tables: written by the service alone, so that a record cannot be forged or erased. */
const readOnlyTable = (method: string, table: TableDef) =>
  new ODataError(
    405,
    ErrorCodes.notSupported,
    `The HTTP method '${method}' is not supported by '${table.entitySetName}': it is read-only (the service writes it).`,
    { allow: "GET" },
  );
const PROPERTY_METHODS = ["GET", "PUT", "DELETE"];

export function planRequest(parsed: ParsedRequest, request: ODataRequest): Plan {
  const { method, prefer, query, search } = parsed;
  const shape: Shape = { root: request.root, prefer, search, formattedValues: false, preferenceApplied: [] };
  /** Echoes the annotation preference and turns on formatted values when they are asked for. */
  const withAnnotations = () => {
    if (prefer.includeAnnotations === undefined) return;
    shape.preferenceApplied.push(`odata.include-annotations="${prefer.includeAnnotations}"`);
    shape.formattedValues = wantsAnnotation(prefer.includeAnnotations, FORMATTED_VALUE);
  };

  if (parsed.kind === "operation") {
    const { definition, table, name } = parsed;
    const expected = definition.kind === "Function" ? "GET" : "POST";
    if (method !== expected) throw methodNotAllowed(method, name, [expected]);
    if (table?.readOnly && definition.kind === "Action") throw readOnlyTable(method, table);
    const operationName = table ? `${table.entitySetName}.${definition.name}` : definition.name;
    return { op: "operation", operationName, shape, definition, table, body: request.body };
  }

  const { table, key, property, count, navigation } = parsed.resource;
  const set = table.entitySetName;
  if (table.readOnly && method !== "GET") throw readOnlyTable(method, table);
  const select = () => parseSelect(table, single(query, "$select"));
  /** `return=representation`: the written row comes back, with its `$select`. */
  const representation = () => {
    if (!prefer.returnRepresentation) return undefined;
    shape.preferenceApplied.push("return=representation");
    return select();
  };

  if (count) {
    if (method !== "GET") throw methodNotAllowed(method, `${set}/$count`, ["GET"]);
    return { op: "count", operationName: `${set}.Count`, shape, table };
  }
  if (!key) {
    if (method === "POST") {
      return { op: "create", operationName: `${set}.Create`, shape, table, body: request.body, select: representation() };
    }
    if (method !== "GET") throw methodNotAllowed(method, set, ["GET", "POST"]);
    return planCollection(table, query, shape, withAnnotations, set);
  }
  if (property) return planProperty(method, table, key, property, request, shape);
  if (navigation) return planNavigation(method, { table, key, navigation }, parsed, request, shape, withAnnotations);

  switch (method) {
    case "GET": {
      const columns = select();
      withAnnotations();
      return {
        op: "retrieve",
        operationName: `${set}.Retrieve`,
        shape,
        table,
        key,
        select: columns,
        expand: parseExpandOnly(table, query),
        ifNoneMatch: request.headers["if-none-match"],
      };
    }
    case "PATCH": {
      const pre = { ifMatch: request.headers["if-match"], ifNoneMatch: request.headers["if-none-match"] };
      return {
        op: "upsert",
        operationName: `${set}.Update`,
        shape,
        table,
        key,
        body: request.body,
        pre,
        select: representation(),
      };
    }
    case "DELETE":
      return { op: "delete", operationName: `${set}.Delete`, shape, table, key, pre: { ifMatch: request.headers["if-match"] } };
    default:
      throw methodNotAllowed(method, `${set}(<key>)`, ENTITY_METHODS);
  }
}

function planCollection(
  table: TableDef,
  query: RawQuery,
  shape: Shape,
  withAnnotations: () => void,
  path: string,
  via?: Via,
): Plan {
  if (isFetchXmlQuery(query)) {
    if (via)
      throw badRequest(
        "fetchXml is not supported on a navigation property; query its entity set instead.",
        ErrorCodes.badRequest,
      );
    const fetch = planFetchXml(table, query);
    withAnnotations();
    return { op: "fetchxml", operationName: `${table.entitySetName}.RetrieveMultiple`, shape, table, fetch };
  }
  const options = parseCollectionQuery(table, query);
  withAnnotations();
  const operationName = `${table.entitySetName}.RetrieveMultiple`;
  if (options.apply) {
    if (via)
      throw badRequest("$apply is not supported on a navigation property; query its entity set instead.", ErrorCodes.badRequest);
    return { op: "aggregate", operationName, shape, table, apply: options.apply, filter: options.filter };
  }
  const { maxPageSize } = shape.prefer;
  const pageSize = Math.min(maxPageSize ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
  if (maxPageSize !== undefined) shape.preferenceApplied.push(`odata.maxpagesize=${pageSize}`);
  return { op: "query", operationName, shape, table, query: options, pageSize, path, via };
}

/**
 * `{set}(<key>)/<navigation>`: GET a collection (with query options) or a single related
 * row, or POST a new child bound to the keyed row.
 */
function planNavigation(
  method: string,
  via: Via,
  parsed: ParsedRequest,
  request: ODataRequest,
  shape: Shape,
  withAnnotations: () => void,
): Plan {
  const { navigation } = via;
  const target = navigation.target;
  const path = request.target.split("?")[0]!;
  if (navigation.collection && method === "POST") {
    const select = parsed.prefer.returnRepresentation ? parseSelect(target, single(parsed.query, "$select")) : undefined;
    if (parsed.prefer.returnRepresentation) shape.preferenceApplied.push("return=representation");
    return {
      op: "create",
      operationName: `${target.entitySetName}.Create`,
      shape,
      table: target,
      body: request.body,
      select,
      via,
    };
  }
  if (method !== "GET") {
    throw methodNotAllowed(
      method,
      `${via.table.entitySetName}(<key>)/${navigation.name}`,
      navigation.collection ? ["GET", "POST"] : ["GET"],
    );
  }
  if (navigation.collection) return planCollection(target, parsed.query, shape, withAnnotations, path, via);
  const select = parseSelect(target, single(parsed.query, "$select"));
  withAnnotations();
  return {
    op: "related",
    operationName: `${target.entitySetName}.Retrieve`,
    shape,
    table: target,
    via,
    select,
    expand: parseExpandOnly(target, parsed.query),
  };
}

function planProperty(
  method: string,
  table: TableDef,
  key: RecordKey,
  property: ColumnDef,
  request: ODataRequest,
  shape: Shape,
): Plan {
  const name = propertyName(property);
  const operationName = `${table.entitySetName}.${method === "GET" ? "Retrieve" : "Update"}`;
  switch (method) {
    case "GET":
      return { op: "readProperty", operationName, shape, table, key, property };
    case "PUT": {
      const body = request.body as { value?: unknown } | undefined;
      if (typeof body !== "object" || body === null || !("value" in body)) {
        throw badRequest(`PUT ${name} takes a body of the form {"value": …}.`, ErrorCodes.payloadError);
      }
      return { op: "writeProperty", operationName, shape, table, key, property, value: body.value };
    }
    case "DELETE":
      return { op: "writeProperty", operationName, shape, table, key, property, value: null };
    default:
      throw methodNotAllowed(method, `${table.entitySetName}(<key>)/${name}`, PROPERTY_METHODS);
  }
}
