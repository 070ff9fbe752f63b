/**
 * The entity sets and actions under /api/data/v9.x/: HTTP in, `handleODataRequest` out.
 * No domain rule lives here.
 *
 * OData resource paths (`set(key)/property`, alternate keys with quoted literals) do not
 * fit Fastify's router, so one wildcard route receives them and the OData path parser
 * resolves them against the table definitions.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { createActions } from "../channel-analytics/actions.js";
import type { Caller } from "../channel-analytics/records.js";
import { type RequestContexts, createRequestContexts } from "../channel-analytics/request-context.js";
import { assertApiVersion, serviceRoot } from "../http/service-root.js";
import { type ODataResponse, handleODataRequest } from "../odata/request-handler.js";

const Params = z.object({
  version: z.string().describe("v9.0, v9.1 or v9.2"),
  "*": z.string().describe("An entity set, optionally with a key and a property: msdyn_kpieventsdata(<guid>)/msdyn_name"),
});

export const callerOf = (config: FastifyRequest["server"]["config"]): Caller => ({
  userId: config.CALLER_USER_ID,
  businessUnitId: config.BUSINESS_UNIT_ID,
  organizationId: config.ORGANIZATION_ID,
});

/** Flattens Node's header object to single strings, lower-case names. */
export function headerMap(headers: FastifyRequest["headers"]): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(",") : v]));
}

export function sendODataResponse(reply: FastifyReply, response: ODataResponse): FastifyReply {
  reply.code(response.status).headers(response.headers);
  return response.body === undefined ? reply.send() : reply.send(response.body);
}

// Keyed by the database: every plugin scope of one app shares it.
const contexts = new WeakMap<object, RequestContexts>();

/** The app's request contexts, made on first use: building the app (e.g. for the OpenAPI document) needs no database. */
export function requestContexts(app: FastifyInstance): RequestContexts {
  let found = contexts.get(app.db);
  if (!found) {
    found = createRequestContexts(app.db.pool, callerOf(app.config), createActions(app.config), app.config.INGEST_BATCHES_IN_FLIGHT, app.config.INGEST_MAX_QUEUED_ROWS);
    contexts.set(app.db, found);
  }
  return found;
}

export const entitySetRoutes: FastifyPluginAsyncZod = async (app) => {

  for (const method of ["GET", "POST", "PATCH", "PUT", "DELETE"] as const) {
    app.route({
      method,
      url: "/*",
      schema: {
        // Documented per entity set instead (src/odata/openapi-paths.ts).
        hide: true,
        params: Params,
      },
      handler: async (request, reply) => {
        const { version } = request.params;
        assertApiVersion(version);
        const target = request.url.slice(request.url.indexOf(`/${version}/`) + version.length + 2);
        const response = await handleODataRequest(
          {
            method: request.method,
            target,
            headers: headerMap(request.headers),
            body: request.body,
            root: serviceRoot(request, version),
            log: request.log,
          },
          requestContexts(app).standalone,
        );
        return sendODataResponse(reply, response);
      },
    });
  }
};
