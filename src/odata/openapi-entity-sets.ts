/**
 * OpenAPI paths and schemas of the entity sets, generated from the table definitions.
 * (The router serves them through one wildcard route, which says nothing per set.)
 */
import { navigationProperties } from "../model/navigation.js";
import { entityTypeName, propertyName } from "../model/properties.js";
import { type ColumnDef, type TableDef, WEB_API_TABLES } from "../model/tables.js";

type Schema = Record<string, unknown>;

function columnSchema(column: ColumnDef): Schema {
  const schema: Schema = { description: column.displayName, nullable: !column.notNull };
  switch (column.type) {
    case "string":
    case "memo":
      Object.assign(schema, { type: "string", maxLength: column.maxLength });
      break;
    case "uniqueidentifier":
    case "lookup":
      Object.assign(schema, { type: "string", format: "uuid" });
      break;
    case "datetime":
    case "dateonly":
      Object.assign(schema, { type: "string", format: "date-time" });
      break;
    case "bigint":
      Object.assign(schema, { type: "integer", format: "int64" });
      break;
    case "boolean":
      schema.type = "boolean";
      break;
    default:
      Object.assign(schema, { type: "integer", format: "int32" });
      if (column.options) schema.enum = column.options.map((o) => o.value);
      if (column.minValue !== undefined) Object.assign(schema, { minimum: column.minValue, maximum: column.maxValue });
  }
  if (!column.validForCreate && !column.validForUpdate) schema.readOnly = true;
  return schema;
}

function entitySchema(table: TableDef): Schema {
  return {
    type: "object",
    description: `${table.displayName} (${entityTypeName(table)}). Lookups are set with <name>@odata.bind.`,
    additionalProperties: false,
    properties: Object.fromEntries(table.columns.map((c) => [propertyName(c), columnSchema(c)])),
  };
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ref("ODataError") } },
});
export const versionParam = {
  name: "version",
  in: "path",
  required: true,
  schema: { type: "string", enum: ["v9.0", "v9.1", "v9.2"] },
};
const keyParam = (table: TableDef) => ({
  name: "key",
  in: "path",
  required: true,
  description: `The row's GUID${table.naturalKey ? `, or its alternate key: ${table.naturalKey.map((k) => `${k}='…'`).join(",")}` : ""}`,
  schema: { type: "string" },
});
const propertyParam = (table: TableDef) => ({
  name: "property",
  in: "path",
  required: true,
  description: "A column's property name",
  schema: { type: "string", enum: table.columns.map(propertyName) },
});

const queryParam = (name: string, description: string, schema: Schema = { type: "string" }) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const headerParam = (name: string, description: string) => ({
  name,
  in: "header",
  required: false,
  description,
  schema: { type: "string" },
});

/** The query options and headers the service reads (src/odata/query-options.ts, prefer.ts), once each. */
const PARAMETERS = {
  select: queryParam("$select", "Comma-separated property names to return"),
  filter: queryParam(
    "$filter",
    "eq, ne, gt, ge, lt, le, and, or, not, contains, startswith, endswith and the Dataverse query functions (Microsoft.Dynamics.CRM.LastXDays(PropertyName='…',PropertyValue=7), In, Between, Today, …)",
  ),
  orderby: queryParam("$orderby", "Property names, each optionally followed by asc or desc; nulls sort first ascending"),
  top: queryParam("$top", "At most this many rows, in one page", { type: "integer", minimum: 0 }),
  count: queryParam("$count", "true: @odata.count holds the number of matching rows (capped at 5,000, as in Dataverse)", {
    type: "boolean",
  }),
  expand: queryParam("$expand", "Navigation properties to include, each with ($select=…;$filter=…;$orderby=…;$top=…)"),
  apply: queryParam(
    "$apply",
    "Aggregation: filter(…)/groupby((…),aggregate(… with sum|average|min|max|countdistinct as alias)) or aggregate($count as alias); not with $select, $orderby, $top or $expand",
  ),
  skiptoken: queryParam("$skiptoken", "The next page: taken from @odata.nextLink, not written by hand"),
  fetchXml: queryParam(
    "fetchXml",
    "A URL-encoded FetchXML <fetch> for this entity set (attributes, aggregates, filters, link-entity, paging cookie); not with $ options",
  ),
  preferRead: headerParam(
    "Prefer",
    'odata.maxpagesize=<n> (at most 5,000 per page); odata.include-annotations="*" (or a list: OData.Community.Display.V1.FormattedValue, Microsoft.Dynamics.CRM.totalrecordcount, Microsoft.Dynamics.CRM.fetchxmlpagingcookie, …)',
  ),
  preferWrite: headerParam("Prefer", "return=representation: answer 201/200 with the row (with $select) instead of 204"),
  ifMatch: headerParam("If-Match", '* or W/"<versionnumber>": only when the row exists (with that version)'),
  ifNoneMatch: headerParam("If-None-Match", '* (create only) or W/"<versionnumber>" (304 when unchanged)'),
};
const parameter = (name: keyof typeof PARAMETERS) => ({ $ref: `#/components/parameters/${name}` });

/** The options of a collection GET; a navigation collection takes all but $apply and fetchXml. */
const collectionParams = (navigation: boolean) => [
  parameter("select"),
  parameter("filter"),
  parameter("orderby"),
  parameter("top"),
  parameter("count"),
  parameter("expand"),
  ...(navigation ? [] : [parameter("apply"), parameter("fetchXml")]),
  parameter("skiptoken"),
  parameter("preferRead"),
];
const entityParams = [parameter("select"), parameter("expand"), parameter("preferRead")];
const writeParams = [parameter("preferWrite"), parameter("select")];

const common = {
  "400": errorResponse("Invalid request: unknown property, wrong type, too long, missing parent…"),
  "404": errorResponse("No such entity set or row"),
};

/** A page of rows; with $apply or fetchXml, rows of the aliases and attributes asked for. */
const page = (table: TableDef) => ({
  description: "A page of rows (follow @odata.nextLink with the same Prefer for the next)",
  content: {
    "application/json": {
      schema: {
        type: "object",
        properties: {
          "@odata.context": { type: "string", readOnly: true },
          "@odata.count": { type: "integer", readOnly: true },
          "@odata.nextLink": { type: "string", readOnly: true },
          value: {
            type: "array",
            items: {
              anyOf: [
                ref(table.logicalName),
                { type: "object", description: "A row of $apply or fetchXml: the aliases and attributes asked for" },
              ],
            },
          },
        },
      },
    },
  },
});

/** `{set}({key})/<navigation>`: GET the related row(s); POST a child bound to the row. */
function navigationPathsOf(table: TableDef): Record<string, Schema> {
  const tags = [table.entitySetName];
  const set = table.entitySetName;
  return Object.fromEntries(
    navigationProperties(table).map((nav) => {
      const target = nav.target.logicalName;
      const get = {
        tags,
        operationId: `${set}.${nav.name}.${nav.collection ? "RetrieveMultiple" : "Retrieve"}`,
        summary: nav.collection
          ? `The ${target} rows of a ${table.logicalName} row (query options as on ${nav.target.entitySetName})`
          : `The ${target} row of a ${table.logicalName} row (204 when the link is empty)`,
        parameters: [versionParam, keyParam(table), ...(nav.collection ? collectionParams(true) : entityParams)],
        responses: {
          "200": nav.collection
            ? page(nav.target)
            : { description: "The row", content: { "application/json": { schema: ref(target) } } },
          ...(nav.collection ? {} : { "204": { description: "No related row" } }),
          ...common,
        },
      };
      const post = {
        tags,
        operationId: `${set}.${nav.name}.Create`,
        summary: `Create a ${target} row bound to this ${table.logicalName} row (its link columns are filled in)`,
        parameters: [versionParam, keyParam(table), ...writeParams],
        requestBody: { required: true, content: { "application/json": { schema: ref(target) } } },
        responses: {
          "204": { description: "Created; OData-EntityId holds its URL" },
          "201": { description: "The row", content: { "application/json": { schema: ref(target) } } },
          ...common,
        },
      };
      return [`/api/data/{version}/${set}({key})/${nav.name}`, nav.collection ? { get, post } : { get }];
    }),
  );
}

/** A read-only table (the audit log) answers GET only. */
function pathsOf(table: TableDef): Record<string, Schema> {
  const paths = allPathsOf(table);
  if (!table.readOnly) return paths;
  return Object.fromEntries(
    Object.entries(paths)
      .map(([path, methods]) => [path, "get" in methods ? { get: methods.get } : undefined] as const)
      .filter(([, methods]) => methods !== undefined),
  ) as Record<string, Schema>;
}

function allPathsOf(table: TableDef): Record<string, Schema> {
  const body = { required: true, content: { "application/json": { schema: ref(table.logicalName) } } };
  const row = { description: "The row", content: { "application/json": { schema: ref(table.logicalName) } } };
  const set = table.entitySetName;
  const base = `/api/data/{version}/${set}`;
  const tags = [set];
  const property = [versionParam, keyParam(table), propertyParam(table)];
  return {
    [base]: {
      get: {
        tags,
        operationId: `${set}.RetrieveMultiple`,
        summary: `Query ${table.logicalName} rows: OData query options, $apply aggregation or fetchXml`,
        parameters: [versionParam, ...collectionParams(false)],
        responses: { "200": page(table), ...common },
      },
      post: {
        tags,
        operationId: `${set}.Create`,
        summary: `Create a ${table.logicalName} row`,
        parameters: [versionParam, ...writeParams],
        requestBody: body,
        responses: {
          "204": { description: "Created; OData-EntityId holds its URL" },
          "201": row,
          ...common,
          "403": errorResponse("A KPI event's provider has analytics disabled, or the caller lacks the privilege"),
          "412": errorResponse("A row with that key exists"),
          "413": errorResponse("Body larger than BODY_LIMIT"),
        },
      },
    },
    [`${base}/$count`]: {
      get: {
        tags,
        operationId: `${set}.Count`,
        summary: `The number of ${table.logicalName} rows (text/plain)`,
        parameters: [versionParam],
        responses: {
          "200": { description: "The count", content: { "text/plain": { schema: { type: "integer", minimum: 0 } } } },
          ...common,
        },
      },
    },
    [`${base}({key})`]: {
      get: {
        tags,
        operationId: `${set}.Retrieve`,
        summary: `Retrieve a ${table.logicalName} row`,
        parameters: [versionParam, keyParam(table), ...entityParams, parameter("ifNoneMatch")],
        responses: { "200": row, "304": { description: "Not modified" }, ...common },
      },
      patch: {
        tags,
        operationId: `${set}.Update`,
        summary: `Update (or create: upsert) a ${table.logicalName} row`,
        parameters: [versionParam, keyParam(table), ...writeParams, parameter("ifMatch"), parameter("ifNoneMatch")],
        requestBody: body,
        responses: { "204": { description: "Saved" }, "200": row, ...common, "412": errorResponse("Precondition failed") },
      },
      delete: {
        tags,
        operationId: `${set}.Delete`,
        summary: `Delete a ${table.logicalName} row (and its children)`,
        parameters: [versionParam, keyParam(table), parameter("ifMatch")],
        responses: { "204": { description: "Deleted" }, ...common, "412": errorResponse("Precondition failed") },
      },
    },
    [`${base}({key})/{property}`]: {
      get: {
        tags,
        operationId: `${set}.RetrieveProperty`,
        summary: "Read one column",
        parameters: property,
        responses: {
          "200": {
            description: '{"value": …}',
            content: { "application/json": { schema: { type: "object", properties: { value: {} } } } },
          },
          "204": { description: "The column is null" },
          ...common,
        },
      },
      put: {
        tags,
        operationId: `${set}.UpdateProperty`,
        summary: 'Set one column: {"value": …}',
        parameters: property,
        requestBody: {
          required: true,
          content: { "application/json": { schema: { type: "object", required: ["value"], properties: { value: {} } } } },
        },
        responses: { "204": { description: "Saved" }, ...common },
      },
      delete: {
        tags,
        operationId: `${set}.ClearProperty`,
        summary: "Clear one column",
        parameters: property,
        responses: { "204": { description: "Cleared" }, ...common },
      },
    },
  };
}

const batchPath = {
  "/api/data/{version}/$batch": {
    post: {
      tags: ["odata"],
      operationId: "ExecuteBatch",
      summary: "Several requests in one; each change set is one transaction",
      description:
        "multipart/mixed with CRLF framing (OData v4 $batch). Content-ID references ($1), Prefer: odata.continue-on-error, at most 1,000 operations.",
      parameters: [versionParam],
      requestBody: { required: true, content: { "multipart/mixed": { schema: { type: "string" } } } },
      responses: {
        "200": {
          description: "multipart/mixed responses, one per request",
          content: { "multipart/mixed": { schema: { type: "string" } } },
        },
        "400": errorResponse("A malformed body (the message names the part)"),
      },
    },
  },
};

/** Adds the entity sets, `$batch` and the given operation paths to an OpenAPI document object. */
export function withEntitySets<
  T extends {
    paths?: Record<string, unknown>;
    components?: { schemas?: Record<string, unknown>; parameters?: Record<string, unknown> };
  },
>(doc: T, operationPaths: Record<string, unknown> = {}): T {
  const entitySetPaths = Object.assign({}, ...WEB_API_TABLES.flatMap((t) => [pathsOf(t), navigationPathsOf(t)])) as Record<
    string,
    unknown
  >;
  doc.paths = { ...doc.paths, ...entitySetPaths, ...operationPaths, ...batchPath };
  doc.components = {
    ...doc.components,
    parameters: { ...doc.components?.parameters, ...PARAMETERS },
    schemas: {
      ...doc.components?.schemas,
      ODataError: {
        type: "object",
        properties: { error: { type: "object", properties: { code: { type: "string" }, message: { type: "string" } } } },
      },
      ...Object.fromEntries(WEB_API_TABLES.map((t) => [t.logicalName, entitySchema(t)])),
    },
  };
  return doc;
}
