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
import { ErrorCodes, ODataError, badRequest, methodNotAllowed } from "../http/errors.js";
import { assertApiVersion, serviceRoot } from "../http/service-root.js";
import type { TableDef } from "../model/tables.js";
import { parsePrefer } from "../odata/prefer.js";
import { propertyName } from "../odata/properties.js";
import { entityContext, serializeRow, serializeValue } from "../odata/record-serializer.js";
import { type ResourcePath, parseResourcePath } from "../odata/resource-path.js";
import { parseSelect } from "../odata/select.js";

const Params = z.object({
  version: z.string().describe("v9.0, v9.1 or v9.2"),
  "*": z.string().describe("An entity set, optionally with a key and a property: msdyn_kpieventsdata(<guid>)/msdyn_name"),
});
const Query = z.object({ $select: z.string().optional() }).passthrough();

const COLLECTION_METHODS = ["POST"] as const;
const ENTITY_METHODS = ["GET", "PATCH", "DELETE"] as const;
const PROPERTY_METHODS = ["GET", "PUT", "DELETE"] as const;

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
    const select = () => parseSelect(resource.table, request.query.$select);
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

    if (!resource.key) {
      if (request.method === "POST") return answerWrite(await records.create(table, request.body), 201);
      if (request.method === "GET") {
        throw new ODataError(
          501,
          ErrorCodes.notSupported,
          `Querying the ${table.entitySetName} collection is not available in this version; retrieve rows by key.`,
        );
      }
      throw methodNotAllowed(request.method, table.entitySetName, [...COLLECTION_METHODS, "GET"]);
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
        return reply
          .header("ETag", etagOf(row))
          .send({ "@odata.context": entityContext(root, table, columns), ...serializeRow(table, row, columns) });
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
