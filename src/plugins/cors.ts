/** CORS for the origins configured (CORS_ORIGINS); none configured, no CORS headers at all. */
import cors from "@fastify/cors";
import fp from "fastify-plugin";

export const corsPlugin = fp(
  async (app) => {
    const origins = app.config.CORS_ORIGINS;
    if (!origins.length) return;
    // A preflight is answered by its hook before any route runs.
    await app.register(cors, {
      origin: origins.includes("*") ? "*" : origins,
      methods: ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"],
      // What Dataverse clients read from responses.
      exposedHeaders: ["OData-EntityId", "OData-Version", "ETag", "Preference-Applied", "Location", "x-request-id"],
      maxAge: 600,
    });
  },
  { name: "cors", dependencies: ["database"] },
);
