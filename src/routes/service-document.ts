/** The OData service document: the entity sets under /api/data/v9.x/. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { WEB_API_TABLES } from "../model/tables.js";
import { assertApiVersion } from "../odata/api-version.js";
import { ApiVersionParams, serviceRoot } from "./service-root.js";

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
        operationId: "ServiceDocument",
        params: ApiVersionParams,
        response: { 200: ServiceDocument },
      },
    },
    async (request) => {
      assertApiVersion(request.params.version);
      const root = serviceRoot(request, request.params.version);
      return {
        "@odata.context": `${root}$metadata`,
        value: WEB_API_TABLES.map((t) => ({ name: t.entitySetName, kind: "EntitySet" as const, url: t.entitySetName })),
      };
    },
  );
};
