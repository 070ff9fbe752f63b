/**
 * The entity sets under /api/data/v9.x/: translates HTTP into calls of the record
 * service and its results into Dataverse responses. No domain rule lives here.
 *
 * OData resource paths (`set(key)/property`, alternate keys with quoted literals) do not
 * fit Fastify's router, so one wildcard route receives them and the OData path parser
 * resolves them against the table definitions.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { type Caller, RecordService, etagOf } from "../channel-analytics/records.js";
import type { Row } from "../channel-analytics/record-store.js";
import { ErrorCodes, badRequest, methodNotAllowed } from "../http/errors.js";
import { assertApiVersion, serviceRoot } from "../http/service-root.js";
import type { ColumnDef, TableDef } from "../model/tables.js";
import { parsePrefer } from "../odata/prefer.js";
import { propertyName } from "../odata/properties.js";
import { entityContext, serializeRow, serializeValue } from "../odata/record-serializer.js";
import { type ResourcePath, parseResourcePath } from "../odata/resource-path.js";
import { aggregateRows, countRows, expandRows, queryPage } from "../channel-analytics/record-query.js";
import { TOTAL_RECORD_COUNT, TOTAL_RECORD_COUNT_LIMIT_EXCEEDED, FORMATTED_VALUE, wantsAnnotation } from "../odata/annotations.js";
import { type ExpandOption, MAX_PAGE_SIZE, parseCollectionQuery, parseExpandOnly } from "../odata/query-options.js";
import { parseSelect } from "../odata/select.js";

const Params = z.object({
  version: z.string().describe("v9.0, v9.1 or v9.2"),
  "*": z.string().describe("An entity set, optionally with a key and a property: msdyn_kpieventsdata(<guid>)/msdyn_name"),
});
// The OData options ($select, $filter, …, @aliases) are parsed by src/odata/query-options.ts.
const Query = z.record(z.string(), z.union([z.string(), z.array(z.string())]));

const COLLECTION_METHODS = ["GET", "POST"] as const;
const ENTITY_METHODS = ["GET", "PATCH", "DELETE"] as const;
const PROPERTY_METHODS = ["GET", "PUT", "DELETE"] as const;

function singleOption(query: Record<string, string | string[]>, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw badRequest(`The query option ${name} is given more than once.`, ErrorCodes.badRequest);
  return value;
}

/** Preference-Applied may name several preferences. */
function appendPreferenceApplied(reply: FastifyReply, preference: string) {
  const current = reply.getHeader("Preference-Applied");
  reply.header("Preference-Applied", current ? `${String(current)},${preference}` : preference);
}

/** Echoes the annotation preference; true when formatted values are wanted. */
function applyAnnotationPreference(reply: FastifyReply, include: string | undefined): boolean {
  if (include === undefined) return false;
  appendPreferenceApplied(reply, `odata.include-annotations="${include}"`);
  return wantsAnnotation(include, FORMATTED_VALUE);
}

function serializeExpanded(option: ExpandOption, related: Row | Row[] | null, formattedValues: boolean): unknown {
  const target = option.navigation.target;
  const one = (row: Row) => serializeRow(target, row, option.select, { formattedValues });
  if (Array.isArray(related)) return related.map(one);
  return related ? one(related) : null;
}

/** `…$metadata#msdyn_kpieventsdata(a,b)` */
const collectionContext = (root: string, table: TableDef, select?: readonly ColumnDef[]) =>
  `${root}$metadata#${table.entitySetName}${select ? `(${select.map(propertyName).join(",")})` : ""}`;

const header = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
};

export const entitySetRoutes: FastifyPluginAsyncZod = async (app) => {
  const caller: Caller = {
    userId: app.config.CALLER_USER_ID,
    businessUnitId: app.config.BUSINESS_UNIT_ID,
    organizationId: app.config.ORGANIZATION_ID,
  };
  // Made on first use: building the app (e.g. for the OpenAPI document) needs no database.
  let service: RecordService | undefined;
  const recordService = () => (service ??= new RecordService(app.db.pool, caller));

  const entityUrl = (root: string, table: TableDef, row: Row) => `${root}${table.entitySetName}(${row[table.primaryKey]})`;

  async function handle(request: FastifyRequest<{ Params: z.infer<typeof Params>; Querystring: z.infer<typeof Query> }>, reply: FastifyReply) {
    const { version } = request.params;
    assertApiVersion(version);
    const path = request.url.slice(request.url.indexOf(`/${version}/`) + version.length + 2).split("?")[0]!;
    const resource = parseResourcePath(path);
    const root = serviceRoot(request, version);
    const prefer = parsePrefer(request.headers.prefer);
    const select = () => parseSelect(resource.table, singleOption(request.query, "$select"));
    const { table } = resource;
    const records = recordService();

    /** 204 with OData-EntityId, or the row when `Prefer: return=representation` asks. */
    const answerWrite = (row: Row, representationStatus: number) => {
      if (!prefer.returnRepresentation) {
        return reply.code(204).header("OData-EntityId", entityUrl(root, table, row)).send();
      }
      const columns = select();
      return reply
        .code(representationStatus)
        .header("Preference-Applied", "return=representation")
        .header("OData-EntityId", entityUrl(root, table, row))
        .send({ "@odata.context": entityContext(root, table, columns), ...serializeRow(table, row, columns) });
    };

    if (resource.count) {
      if (request.method !== "GET") throw methodNotAllowed(request.method, `${table.entitySetName}/$count`, ["GET"]);
      return reply.type("text/plain").send(String(await countRows(app.db.pool, table)));
    }
    if (!resource.key) {
      if (request.method === "POST") return answerWrite(await records.create(table, request.body), 201);
      if (request.method === "GET") return queryCollection(request, reply, table, root);
      throw methodNotAllowed(request.method, table.entitySetName, COLLECTION_METHODS);
    }
    const key = resource.key;

    if (resource.property) return handleProperty(request, reply, resource, root);

    switch (request.method) {
      case "GET": {
        const row = await records.retrieve(table, key);
        const ifNoneMatch = header(request, "if-none-match");
        if (ifNoneMatch && ifNoneMatch.split(",").map((t) => t.trim()).includes(etagOf(row))) {
          return reply.code(304).header("ETag", etagOf(row)).send();
        }
        const columns = select();
        const expand = parseExpandOnly(table, request.query);
        const formatted = applyAnnotationPreference(reply, prefer.includeAnnotations);
        const body = serializeRow(table, row, columns, { formattedValues: formatted });
        for (const option of expand) {
          const [related] = await expandRows(app.db.pool, [row], option);
          body[option.navigation.name] = serializeExpanded(option, related ?? null, formatted);
        }
        return reply.header("ETag", etagOf(row)).send({ "@odata.context": entityContext(root, table, columns), ...body });
      }
      case "PATCH": {
        const { row } = await records.upsert(table, key, request.body, {
          ifMatch: header(request, "if-match"),
          ifNoneMatch: header(request, "if-none-match"),
        });
        return answerWrite(row, 200);
      }
      case "DELETE":
        await records.remove(table, key, { ifMatch: header(request, "if-match") });
        return reply.code(204).send();
      default:
        throw methodNotAllowed(request.method, `${table.entitySetName}(<key>)`, ENTITY_METHODS);
    }
  }

  async function queryCollection(
    request: FastifyRequest<{ Querystring: z.infer<typeof Query> }>,
    reply: FastifyReply,
    table: TableDef,
    root: string,
  ) {
    const query = parseCollectionQuery(table, request.query);
    const prefer = parsePrefer(request.headers.prefer);
    const formatted = applyAnnotationPreference(reply, prefer.includeAnnotations);
    if (query.apply) {
      const rows = await aggregateRows(app.db.pool, table, query.apply, query.filter);
      const names = [...query.apply.groupBy.map(propertyName), ...query.apply.aggregates.map((a) => a.alias)];
      const value = rows.map((row) => {
        const out: Record<string, unknown> = {};
        for (const column of query.apply!.groupBy) out[propertyName(column)] = serializeValue(column, row[column.name]);
        for (const a of query.apply!.aggregates) out[a.alias] = a.column ? serializeValue(a.column, row[a.alias]) : row[a.alias];
        return out;
      });
      return reply.send({ "@odata.context": `${root}$metadata#${table.entitySetName}(${names.join(",")})`, value });
    }

    const pageSize = Math.min(prefer.maxPageSize ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
    if (prefer.maxPageSize !== undefined) appendPreferenceApplied(reply, `odata.maxpagesize=${pageSize}`);
    const page = await queryPage(app.db.pool, table, query, pageSize);
    const body: Record<string, unknown> = { "@odata.context": collectionContext(root, table, query.select) };
    if (page.count !== undefined) body["@odata.count"] = page.count;
    if (wantsAnnotation(prefer.includeAnnotations, TOTAL_RECORD_COUNT)) body[`@${TOTAL_RECORD_COUNT}`] = page.count ?? -1;
    if (wantsAnnotation(prefer.includeAnnotations, TOTAL_RECORD_COUNT_LIMIT_EXCEEDED)) {
      body[`@${TOTAL_RECORD_COUNT_LIMIT_EXCEEDED}`] = page.countLimitExceeded ?? false;
    }
    body.value = page.rows.map((row, index) => {
      const out = serializeRow(table, row, query.select, { formattedValues: formatted });
      for (const option of query.expand) {
        out[option.navigation.name] = serializeExpanded(option, page.expanded.get(option.navigation.name)![index]!, formatted);
      }
      return out;
    });
    if (page.nextSkipToken) {
      // Same base and options as the request; only the $skiptoken changes.
      const search = request.url.includes("?") ? request.url.slice(request.url.indexOf("?") + 1) : "";
      const kept = search.split("&").filter((p) => p && !p.startsWith("$skiptoken=") && !p.startsWith("%24skiptoken="));
      body["@odata.nextLink"] = `${root}${table.entitySetName}?${[...kept, `$skiptoken=${page.nextSkipToken}`].join("&")}`;
    }
    return reply.send(body);
  }

  async function handleProperty(request: FastifyRequest, reply: FastifyReply, resource: ResourcePath, root: string) {
    const { table, key, property } = resource as Required<ResourcePath>;
    const name = propertyName(property);
    const records = recordService();
    switch (request.method) {
      case "GET": {
        const row = await records.retrieve(table, key);
        const value = serializeValue(property, row[property.name]);
        // OData: a null property answers 204 No Content.
        if (value === null) return reply.code(204).send();
        return reply.send({ "@odata.context": `${root}$metadata#${table.entitySetName}(${row[table.primaryKey]})/${name}`, value });
      }
      case "PUT": {
        const body = request.body as { value?: unknown } | undefined;
        if (typeof body !== "object" || body === null || !("value" in body)) {
          throw badRequest(`PUT ${name} takes a body of the form {"value": …}.`, ErrorCodes.payloadError);
        }
        await records.setProperty(table, key, property, body.value);
        return reply.code(204).send();
      }
      case "DELETE":
        await records.setProperty(table, key, property, null);
        return reply.code(204).send();
      default:
        throw methodNotAllowed(request.method, `${table.entitySetName}(<key>)/${name}`, PROPERTY_METHODS);
    }
  }

  for (const method of ["GET", "POST", "PATCH", "PUT", "DELETE"] as const) {
    app.route({
      method,
      url: "/*",
      schema: {
        // Documented per entity set instead (src/odata/openapi-paths.ts).
        hide: true,
        tags: ["odata"],
        summary: `${method} on an entity set, a row (by GUID or alternate key) or one of its properties`,
        params: Params,
        querystring: Query,
      },
      handler: handle,
    });
  }
};
