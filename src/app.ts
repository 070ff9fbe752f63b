/**
 * Builds the Fastify application without listening, so tests use the very same app
 * through `app.inject` and `src/server.ts` runs it.
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from "fastify";
import fp from "fastify-plugin";
import { type ZodTypeProvider, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Config } from "./config/config.js";
import type { Database } from "./db/database.js";
import { DATAVERSE_LIMITS, type ServiceProtectionLimits } from "./identity/service-protection.js";
import { analyticsPlugin } from "./plugins/analytics.js";
import { analyticsJobsPlugin } from "./plugins/analytics-jobs.js";
import { auditPlugin } from "./plugins/audit.js";
import { errorHandlingPlugin } from "./plugins/error-handling.js";
import { identityPlugin, rewriteOrganizationPrefix } from "./plugins/identity.js";
import { serviceProtectionPlugin } from "./plugins/service-protection.js";
import { gracefulClosePlugin } from "./plugins/graceful-close.js";
import { observationPlugin } from "./plugins/observation.js";
import { idempotencyPlugin } from "./plugins/idempotency.js";
import { jsonBodyPlugin } from "./plugins/json-body.js";
import { loadSheddingPlugin } from "./plugins/load-shedding.js";
import { odataHeadersPlugin } from "./plugins/odata-headers.js";
import { odataServicePlugin } from "./plugins/odata-service.js";
import { requestLogPlugin } from "./plugins/request-log.js";
import { MAX_HEADER_SIZE, clientErrorHandler, requestLimitsPlugin } from "./plugins/request-limits.js";
import { requestBodyPlugin } from "./plugins/request-body.js";
import { swaggerPlugin } from "./plugins/swagger.js";
import { adminRoutes } from "./routes/admin.js";
import { analyticsRoutes } from "./routes/analytics.js";
import { analyticsJobsRoutes } from "./routes/analytics-jobs.js";
import { logDestinationRoutes } from "./routes/log-destinations.js";
import { batchRoutes } from "./routes/batch.js";
import { entitySetRoutes } from "./routes/entity-sets.js";
import { healthRoutes } from "./routes/health.js";
import { metadataRoutes } from "./routes/metadata.js";
import { oauthRoutes } from "./routes/oauth.js";
import { optionsRoutes } from "./routes/options.js";
import { corsPlugin } from "./plugins/cors.js";
import { serviceDocumentRoutes } from "./routes/service-document.js";

declare module "fastify" {
  interface FastifyInstance {
    config: Config;
    db: Database;
  }
}

export interface AppOptions {
  config: Config;
  db: Database;
  /** Fastify's logger options (tests pass `false`); ignored when `loggerInstance` is given. */
  logger?: FastifyServerOptions["logger"];
  /** A pino logger to share with the rest of the process. */
  loggerInstance?: FastifyBaseLogger;
}

/** The configuration and the database, as a plugin the others declare as a dependency. */
const databasePlugin = fp<{ config: Config; db: Database }>(
  async (app, { config, db }) => {
    app.decorate("config", config);
    app.decorate("db", db);
  },
  { name: "database" },
);

export async function buildApp({ config, db, logger, loggerInstance }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger: logger ?? { level: config.LOG_LEVEL } }),
    bodyLimit: config.BODY_LIMIT,
    // Every wait on a client is bounded (issue 18): a whole request must arrive within
    // requestTimeout (a dribbled body gets 408 and the socket closes), its headers within
    // headersTimeout, an idle socket lives connectionTimeout, an idle keep-alive one
    // keepAliveTimeout. Node checks the first two every connectionsCheckingInterval.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    connectionTimeout: config.CONNECTION_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    // A URL as long as Dataverse takes (src/plugins/request-limits.ts).
    clientErrorHandler,
    http: {
      maxHeaderSize: MAX_HEADER_SIZE,
      headersTimeout: Math.min(config.HEADERS_TIMEOUT_MS, config.REQUEST_TIMEOUT_MS),
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1_000, config.HEADERS_TIMEOUT_MS),
    },
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    // OData keys such as msdyn_conversationsdata(msdyn_conversationid='c-42') make long segments.
    routerOptions: { maxParamLength: 2048 },
    // `/org/<name>/api/…` reaches the same routes as `/api/…` (src/plugins/identity.ts).
    rewriteUrl: rewriteOrganizationPrefix,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Connections beyond the cap are closed on arrival, before they cost memory.
  app.server.maxConnections = config.MAX_CONNECTIONS;

  // Our foundations, then external plugins, then ours, then the routes (the fastify/demo order).
  await app.register(databasePlugin, { config, db });
  await app.register(observationPlugin);
  await app.register(requestLogPlugin);
  // Before identity: an oversized URL or header is refused before any token is checked.
  await app.register(requestLimitsPlugin);
  await app.register(odataServicePlugin);
  await app.register(swaggerPlugin);
  await app.register(loadSheddingPlugin);
  // After load shedding (a shed request costs no token check), before the body is read.
  await app.register(identityPlugin);
  // After identity: plugins close in reverse order, and the audit log's last flush needs the
  // organisation directory still open.
  await app.register(auditPlugin);
  await app.register(analyticsPlugin);
  await app.register(analyticsJobsPlugin);
  await app.register(serviceProtectionPlugin, {
    limits: serviceProtectionLimits(config),
    keyOf: (request) => request.identity && `${request.identity.organization.id}\n${request.identity.principalId}`,
  });
  await app.register(jsonBodyPlugin);
  await app.register(odataHeadersPlugin);
  await app.register(gracefulClosePlugin);
  // After odata-headers: its onSend has set the headers a replay must carry.
  await app.register(idempotencyPlugin);
  await app.register(errorHandlingPlugin);
  await app.register(requestBodyPlugin);
  await app.register(corsPlugin);

  await app.register(healthRoutes);
  await app.register(oauthRoutes);
  await app.register(adminRoutes, { prefix: "/api/admin" });
  await app.register(logDestinationRoutes, { prefix: "/api/admin/log-destinations" });
  if (config.ANALYTICS === "on") await app.register(analyticsRoutes, { prefix: "/api/v2/analytics" });
  if (config.ANALYTICS === "on") await app.register(analyticsJobsRoutes, { prefix: "/api/v2/analytics" });
  await app.register(serviceDocumentRoutes, { prefix: "/api/data/:version" });
  await app.register(metadataRoutes, { prefix: "/api/data/:version" });
  await app.register(entitySetRoutes, { prefix: "/api/data/:version" });
  await app.register(batchRoutes, { prefix: "/api/data/:version" });
  await app.register(optionsRoutes, { prefix: "/api/data/:version" });
  return app;
}

/**
 * How the server listens. The accept queue (`backlog`) holds as many connections as the
 * server keeps open (MAX_CONNECTIONS; the kernel caps it at net.core.somaxconn): with Node's
 * 511, a burst of 1,000 clients overflowed it and the dropped connections waited for the
 * client's SYN retransmits (1 s, 3 s, 7 s…), time that counts against their timeouts.
 */
export function listenOptions(config: Config): { port: number; host: string; backlog: number } {
  return { port: config.PORT, host: config.HOST, backlog: config.MAX_CONNECTIONS };
}

/** Dataverse's numbers, each overridable; undefined when SERVICE_PROTECTION is off. */
export function serviceProtectionLimits(config: Config): ServiceProtectionLimits | undefined {
  if (config.SERVICE_PROTECTION === "off") return undefined;
  return {
    ...DATAVERSE_LIMITS,
    ...(config.SERVICE_PROTECTION_REQUESTS ? { requests: config.SERVICE_PROTECTION_REQUESTS } : {}),
    ...(config.SERVICE_PROTECTION_EXECUTION_MS ? { executionMs: config.SERVICE_PROTECTION_EXECUTION_MS } : {}),
    ...(config.SERVICE_PROTECTION_CONCURRENT ? { concurrent: config.SERVICE_PROTECTION_CONCURRENT } : {}),
  };
}
