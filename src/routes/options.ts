/** `OPTIONS` under /api/data/v9.x/: 204 with the `Allow` header of the resource. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { assertApiVersion } from "../odata/api-version.js";
import { allowedMethods } from "../service/allowed-methods.js";

const Params = z.object({ version: z.string(), "*": z.string().optional() });

export const optionsRoutes: FastifyPluginAsyncZod = async (app) => {
  for (const url of ["/", "/*"]) {
    app.route({
      method: "OPTIONS",
      url,
      schema: { hide: true, params: Params },
      handler: async (request, reply) => {
        assertApiVersion(request.params.version);
        const path = (request.params["*"] ?? "").split("?")[0]!;
        return reply.code(204).header("allow", allowedMethods(path, app.operations).join(", ")).send();
      },
    });
  }
};
