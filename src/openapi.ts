/**
 * The OpenAPI document, generated from the route schemas by @fastify/swagger.
 * `npm run openapi` writes it to openapi.yaml; a test fails when that file is stale.
 */
import { buildApp } from "./app.js";
import { loadConfig } from "./config/config.js";
import type { Database } from "./db/database.js";

/** Building the document runs no handler, so it needs no database; any use is a bug. */
const noDatabase = new Proxy({} as Database, {
  get(_, property) {
    // Fastify's decorate() probes for accessor definitions; those are not uses.
    if (typeof property === "symbol" || property === "getter" || property === "setter") return undefined;
    throw new Error(`OpenAPI generation touched the database (db.${String(property)})`);
  },
});

export async function renderOpenApiYaml(): Promise<string> {
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: "silent" }), db: noDatabase, logger: false });
  await app.ready();
  try {
    return app.swagger({ yaml: true });
  } finally {
    await app.close();
  }
}
