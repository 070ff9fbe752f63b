/** The OData service document: the entity sets under /api/data/v9.x/. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { assertApiVersion, serviceRoot } from "../http/service-root.js";
import { TABLES } from "../model/tables.js";

const ApiVersionParams = z.object({ version: z.string().describe("v9.0, v9.1 or v9.2") });

const ServiceDocument = z.object({
  "@odata.context": z.string(),
  value: z.array(z.object({ name: z.string(), kind: z.literal("EntitySet"), url: z.string() })),
});

export const serviceDocumentRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/",
    {
      schema: {
        tags: ["odata"],
        summary: "Service document: the entity sets this service offers",
        params: ApiVersionParams,
        response: { 200: ServiceDocument },
      },
    },
    async (request, reply) => {
      assertApiVersion(request.params.version);
      const root = serviceRoot(request, request.params.version);
      return {
        "@odata.context": `${root}$metadata`,
        value: TABLES.map((t) => ({ name: t.entitySetName, kind: "EntitySet" as const, url: t.entitySetName })),
      };
    },
  );
};
