/**
 * `OPTIONS` under /api/data/v9.x/: 204 with the `Allow` header of the resource, and, when
 * CORS_ORIGINS lists browser origins, CORS through @fastify/cors (a preflight is answered
 * by its hook before any route runs).
 */
import cors from "@fastify/cors";
import fp from "fastify-plugin";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { assertApiVersion } from "../http/service-root.js";
import { parseResourcePath } from "../odata/resource-path.js";
import { requestContexts } from "./entity-sets.js";

const Params = z.object({ version: z.string(), "*": z.string().optional() });

/** The methods a resource path answers (HEAD wherever GET). */
function allowedMethods(path: string, isAction: (name: string) => boolean): string[] {
  if (path === "" || path === "$metadata" || path === "WhoAmI" || path === "WhoAmI()") return ["GET", "HEAD"];
  if (path === "$batch") return ["POST"];
  const bound = /^[A-Za-z_]\w*\/(Microsoft\.Dynamics\.CRM\.\w+)$/.exec(path);
  if ((bound && isAction(bound[1]!)) || isAction(path)) return ["POST"];
  const resource = parseResourcePath(path);
  if (resource.count) return ["GET", "HEAD"];
  if (!resource.key) return ["GET", "HEAD", "POST"];
  if (resource.property) return ["GET", "HEAD", "PUT", "DELETE"];
  return ["GET", "HEAD", "PATCH", "DELETE"];
}

export const optionsRoutes: FastifyPluginAsyncZod = async (app) => {
  for (const url of ["/", "/*"]) {
    app.route({
      method: "OPTIONS",
      url,
      schema: { hide: true, params: Params },
      handler: async (request, reply) => {
        assertApiVersion(request.params.version);
        const path = decodeURIComponent((request.params["*"] ?? "").split("?")[0]!);
        const actions = requestContexts(app).standalone.actions;
        return reply.code(204).header("allow", allowedMethods(path, (name) => actions.has(name)).join(", ")).send();
      },
    });
  }
};

/** CORS for the origins configured; none configured, no CORS headers at all. */
export const corsPlugin = fp(
  async (app) => {
    const origins = app.config.CORS_ORIGINS;
    if (!origins.length) return;
    await app.register(cors, {
      origin: origins.includes("*") ? "*" : origins,
      methods: ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"],
      // What Dataverse clients read from responses.
      exposedHeaders: ["OData-EntityId", "OData-Version", "ETag", "Preference-Applied", "Location", "x-request-id"],
      maxAge: 600,
    });
  },
  { name: "cors" },
);
