/** `$metadata`: the CSDL of the entity sets and of the operations declared in src/actions/. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { assertApiVersion } from "../odata/api-version.js";
import { renderCsdl } from "../odata/csdl.js";
import { ApiVersionParams } from "./service-root.js";

export const metadataRoutes: FastifyPluginAsyncZod = async (app) => {
  const csdl = renderCsdl(app.operations.csdl());

  app.get(
    "/$metadata",
    {
      schema: {
        tags: ["odata"],
        summary: "CSDL of the service: entity types, navigation properties, entity sets and operations",
        operationId: "Metadata",
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
};
