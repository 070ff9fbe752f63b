/**
 * The entity sets and operations under /api/data/v9.x/: HTTP in, the OData pipeline
 * (src/service/handle-request.ts) out. No domain rule lives here.
 *
 * OData resource paths (`set(key)/property`, alternate keys with quoted literals) do not
 * fit Fastify's router, so one wildcard route receives them and the OData path parser
 * resolves them against the table definitions.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { assertApiVersion } from "../odata/api-version.js";
import type { ODataResponse } from "../odata/response.js";
import { handleODataRequest } from "../service/handle-request.js";
import { serviceRoot } from "./service-root.js";

const Params = z.object({
  version: z.string().describe("v9.0, v9.1 or v9.2"),
  "*": z.string().describe("An entity set, optionally with a key and a property: msdyn_kpieventsdata(<guid>)/msdyn_name"),
});

/** Flattens Node's header object to single strings, lower-case names. */
function headerMap(headers: FastifyRequest["headers"]): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(",") : v]));
}

function sendODataResponse(reply: FastifyReply, response: ODataResponse): FastifyReply {
  reply.code(response.status).headers(response.headers);
  return response.body === undefined ? reply.send() : reply.send(response.body);
}

export const entitySetRoutes: FastifyPluginAsyncZod = async (app) => {
  for (const method of ["GET", "POST", "PATCH", "PUT", "DELETE"] as const) {
    app.route({
      method,
      url: "/*",
      schema: {
        // Documented per entity set and operation instead (src/odata/openapi-entity-sets.ts, src/actions/openapi.ts).
        hide: true,
        params: Params,
      },
      handler: async (request, reply) => {
        const { version } = request.params;
        assertApiVersion(version);
        const target = request.url.slice(request.url.indexOf(`/${version}/`) + version.length + 2);
        const odataRequest = {
          // Fastify answers HEAD through the GET route and drops the body.
          method: request.method === "HEAD" ? "GET" : request.method,
          target,
          headers: headerMap(request.headers),
          body: request.body,
          root: serviceRoot(request, version),
        };
        const response = await handleODataRequest(odataRequest, request.odata.standalone(request.observe, request.clientGone));
        return sendODataResponse(reply, response);
      },
    });
  }
};
