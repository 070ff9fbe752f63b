/** OpenAPI document built from the route schemas; Swagger UI at /docs. */
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import fp from "fastify-plugin";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";
import { operationPaths } from "../actions/openapi.js";
import { withEntitySets } from "../odata/openapi-entity-sets.js";

export const swaggerPlugin = fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: "3.0.3",
        info: {
          title: "cif-analytics-server",
          description:
            "Dataverse Web API (OData v4) for the Dynamics 365 Channel Integration Framework analytics tables, on PostgreSQL.",
          version: "0.1.0",
        },
        tags: [
          { name: "health", description: "Liveness and readiness" },
          { name: "odata", description: "Dataverse Web API, /api/data/v9.0, v9.1 and v9.2" },
          { name: "identity", description: "The built-in issuer: token endpoint, discovery, keys (no token needed)" },
          { name: "admin", description: "Principals and organisations (Administrator role)" },
        ],
        components: {
          securitySchemes: {
            bearer: {
              type: "http",
              scheme: "bearer",
              bearerFormat: "JWT",
              description:
                "An access token for the organisation's URL: `npm run token`, or POST /{tenant}/oauth2/v2.0/token with client credentials and scope `<organisation URL>/.default`.",
            },
          },
        },
        // Everything needs a token unless its route says otherwise (health, identity).
        security: [{ bearer: [] }],
      },
      transform: jsonSchemaTransform,
      // The entity sets are served by one wildcard route; their paths come from the table definitions.
      transformObject: (input) =>
        withEntitySets(
          jsonSchemaTransformObject(input) as Parameters<typeof withEntitySets>[0],
          operationPaths(app.operations.definitions),
        ) as never,
    });
    await app.register(swaggerUi, { routePrefix: "/docs" });
  },
  { name: "swagger", dependencies: ["odata-service"] },
);
