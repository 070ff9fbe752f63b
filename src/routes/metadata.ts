/** `$metadata` (the CSDL) and the WhoAmI function under /api/data/v9.x/. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { methodNotAllowed } from "../http/errors.js";
import { assertApiVersion, serviceRoot } from "../http/service-root.js";
import { loggingActionsCsdl } from "../channel-analytics/logging-actions.js";
import { CSDL_NAMESPACE, renderCsdl } from "../odata/csdl.js";

const ApiVersionParams = z.object({ version: z.string().describe("v9.0, v9.1 or v9.2") });

const WhoAmIResponse = z
  .object({
    "@odata.context": z.string(),
    BusinessUnitId: z.guid(),
    UserId: z.guid(),
    OrganizationId: z.guid(),
  })
  .describe("Microsoft.Dynamics.CRM.WhoAmIResponse");

export const metadataRoutes: FastifyPluginAsyncZod = async (app) => {
  // The logging actions declare themselves beside their implementation.
  const csdl = renderCsdl(loggingActionsCsdl);

  app.get(
    "/$metadata",
    {
      schema: {
        tags: ["odata"],
        summary: "CSDL of the service: entity types, navigation properties, entity sets and operations",
        params: ApiVersionParams,
        produces: ["application/xml"],
        response: { 200: z.string().describe("CSDL XML (OData 4.0)") },
      },
    },
    async (request, reply) => {
      assertApiVersion(request.params.version);
      return reply.type("application/xml").send(csdl);
    },
  );

  for (const url of ["/WhoAmI", "/WhoAmI()"]) {
    app.get(
      url,
      {
        schema: {
          // @fastify/swagger reads "()" as a regular expression: document the bare name only.
          hide: url !== "/WhoAmI",
          tags: ["odata"],
          summary: "WhoAmI: the caller's user, business unit and organization",
          description: "Also answers as WhoAmI(). Other methods than GET answer 405 with an Allow header.",
          params: ApiVersionParams,
          response: { 200: WhoAmIResponse },
        },
      },
      async (request) => {
        assertApiVersion(request.params.version);
        const root = serviceRoot(request, request.params.version);
        return {
          "@odata.context": `${root}$metadata#${CSDL_NAMESPACE}.WhoAmIResponse`,
          BusinessUnitId: app.config.BUSINESS_UNIT_ID,
          UserId: app.config.CALLER_USER_ID,
          OrganizationId: app.config.ORGANIZATION_ID,
        };
      },
    );

    // A function answers GET only; other methods would otherwise reach the entity-set wildcard.
    app.route({
      method: ["POST", "PATCH", "PUT", "DELETE"],
      url,
      schema: { hide: true, params: ApiVersionParams },
      handler: async (request) => {
        assertApiVersion(request.params.version);
        throw methodNotAllowed(request.method, "WhoAmI", ["GET"]);
      },
    });
  }
};
