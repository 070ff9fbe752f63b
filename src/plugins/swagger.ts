/** OpenAPI document built from the route schemas; Swagger UI at /docs. */
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import fp from "fastify-plugin";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";
import { operationPaths } from "../actions/openapi.js";
import { withEntitySets } from "../odata/openapi-entity-sets.js";

/** Either scheme gives the bearer token every API request needs. */
const AUTHENTICATED: Array<Record<string, string[]>> = [{ bearer: [] }, { oauth2: [] }];
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

type Operation = { security?: unknown[]; responses?: Record<string, unknown> };
type Document = { paths?: Record<string, unknown> };

/**
 * Every operation that needs a token says so itself (those open to all have `security: []`),
 * with the 401 and 403 the identity checks answer. Paths lose a trailing slash: the router
 * serves both, and OpenAPI tools take the bare one.
 */
function withSecurity<T extends Document>(doc: T): T {
  const problem = (description: string) => ({
    description,
    content: { "application/json": { schema: { $ref: "#/components/schemas/ODataError" } } },
  });
  const paths: Record<string, Record<string, Operation>> = {};
  for (const [path, item] of Object.entries(doc.paths ?? {}) as Array<[string, Record<string, Operation>]>) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation || operation.security?.length === 0) continue;
      operation.security = AUTHENTICATED;
      operation.responses = {
        ...operation.responses,
        "401": problem("No token, or one that is expired or not valid for this organisation"),
        "403": operation.responses?.["403"] ?? problem("The caller's roles lack the privilege this needs"),
      };
    }
    paths[path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path] = item;
  }
  doc.paths = paths;
  return doc;
}

const copyOf = <T>(doc: T): T => JSON.parse(JSON.stringify(doc)) as T;

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
            oauth2: {
              type: "oauth2",
              description:
                "The built-in issuer's client-credentials grant (the default organisation's token URL; another organisation's is /{its id or name}/oauth2/v2.0/token). Scope: `<organisation URL>/.default`.",
              flows: {
                clientCredentials: {
                  tokenUrl: "/default/oauth2/v2.0/token",
                  scopes: { "/.default": "Everything the principal's roles allow in the organisation" },
                },
              },
            },
          },
        },
        // Swagger UI sends its requests to the service that serves it.
        servers: [{ url: "/", description: "This service" }],
        security: AUTHENTICATED,
      },
      transform: jsonSchemaTransform,
      // The entity sets are served by one wildcard route; their paths come from the table definitions.
      // A plain copy: objects shared between operations would be written as YAML anchors and
      // aliases, which many OpenAPI tools (and the yaml package's alias bound) refuse.
      transformObject: (input) =>
        copyOf(
          withSecurity(
            withEntitySets(
              jsonSchemaTransformObject(input) as Parameters<typeof withEntitySets>[0],
              operationPaths(app.operations.definitions),
            ),
          ),
        ) as never,
    });
    await app.register(swaggerUi, { routePrefix: "/docs" });
  },
  { name: "swagger", dependencies: ["odata-service"] },
);
