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
const preferHeader = {
  name: "Prefer",
  in: "header",
  required: false,
  description: "return=representation to get the row back",
  schema: { type: "string" },
};
const conditional = ["If-Match", "If-None-Match"].map((name) => ({
  name,
  in: "header",
  required: false,
  description: `${name}: * or W/"<versionnumber>"`,
  schema: { type: "string" },
}));
const common = {
  "400": errorResponse("Invalid request: unknown property, wrong type, too long, missing parent…"),
  "404": errorResponse("No such entity set or row"),
};

/** `{set}({key})/<navigation>`: GET the related row(s); POST a child bound to the row. */
function navigationPathsOf(table: TableDef): Record<string, Schema> {
  const tags = [table.entitySetName];
  return Object.fromEntries(
    navigationProperties(table).map((nav) => {
      const target = nav.target.logicalName;
      const get = {
        tags,
        summary: nav.collection
          ? `The ${target} rows of a ${table.logicalName} row (query options as on ${nav.target.entitySetName})`
          : `The ${target} row of a ${table.logicalName} row (204 when the link is empty)`,
        parameters: [versionParam, keyParam(table)],
        responses: {
          "200": {
            description: nav.collection ? "A page of rows" : "The row",
            content: { "application/json": { schema: { type: "object" } } },
          },
          ...(nav.collection ? {} : { "204": { description: "No related row" } }),
          ...common,
        },
      };
      const post = {
        tags,
        summary: `Create a ${target} row bound to this ${table.logicalName} row (its link columns are filled in)`,
        parameters: [versionParam, keyParam(table), preferHeader],
        requestBody: { required: true, content: { "application/json": { schema: ref(target) } } },
        responses: {
          "204": { description: "Created; OData-EntityId holds its URL" },
          "201": { description: "The row" },
          ...common,
        },
      };
      return [`/api/data/{version}/${table.entitySetName}({key})/${nav.name}`, nav.collection ? { get, post } : { get }];
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
  const base = `/api/data/{version}/${table.entitySetName}`;
  const tags = [table.entitySetName];
  return {
    [base]: {
      post: {
        tags,
        summary: `Create a ${table.logicalName} row`,
        parameters: [versionParam, preferHeader],
        requestBody: body,
        responses: {
          "204": { description: "Created; OData-EntityId holds its URL" },
          "201": row,
          ...common,
          "403": errorResponse("A KPI event's provider has analytics disabled"),
          "412": errorResponse("A row with that key exists"),
          "413": errorResponse("Body larger than BODY_LIMIT"),
        },
      },
    },
    [`${base}({key})`]: {
      get: {
        tags,
        summary: `Retrieve a ${table.logicalName} row`,
        parameters: [versionParam, keyParam(table)],
        responses: { "200": row, "304": { description: "Not modified" }, ...common },
      },
      patch: {
        tags,
        summary: `Update (or create: upsert) a ${table.logicalName} row`,
        parameters: [versionParam, keyParam(table), preferHeader, ...conditional],
        requestBody: body,
        responses: { "204": { description: "Saved" }, "200": row, ...common, "412": errorResponse("Precondition failed") },
      },
      delete: {
        tags,
        summary: `Delete a ${table.logicalName} row (and its children)`,
        parameters: [versionParam, keyParam(table), conditional[0]],
        responses: { "204": { description: "Deleted" }, ...common, "412": errorResponse("Precondition failed") },
      },
    },
    [`${base}({key})/{property}`]: {
      get: {
        tags,
        summary: "Read one column",
        parameters: [versionParam, keyParam(table), { name: "property", in: "path", required: true, schema: { type: "string" } }],
        responses: { "200": { description: '{"value": …}' }, "204": { description: "The column is null" }, ...common },
      },
      put: {
        tags,
        summary: 'Set one column: {"value": …}',
        parameters: [versionParam, keyParam(table), { name: "property", in: "path", required: true, schema: { type: "string" } }],
        responses: { "204": { description: "Saved" }, ...common },
      },
      delete: {
        tags,
        summary: "Clear one column",
        parameters: [versionParam, keyParam(table), { name: "property", in: "path", required: true, schema: { type: "string" } }],
        responses: { "204": { description: "Cleared" }, ...common },
      },
    },
  };
}

const batchPath = {
  "/api/data/{version}/$batch": {
    post: {
      tags: ["odata"],
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
        "400": { description: "A malformed body, or the first failure without continue-on-error" },
      },
    },
  },
};

/** Adds the entity sets, `$batch` and the given operation paths to an OpenAPI document object. */
export function withEntitySets<T extends { paths?: Record<string, unknown>; components?: { schemas?: Record<string, unknown> } }>(
  doc: T,
  operationPaths: Record<string, unknown> = {},
): T {
  const entitySetPaths = Object.assign({}, ...WEB_API_TABLES.flatMap((t) => [pathsOf(t), navigationPathsOf(t)])) as Record<
    string,
    unknown
  >;
  doc.paths = { ...doc.paths, ...entitySetPaths, ...operationPaths, ...batchPath };
  doc.components = {
    ...doc.components,
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
