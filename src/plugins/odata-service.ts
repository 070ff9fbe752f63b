/**
 * The OData service as decorators (repository plugins, as in fastify/demo): `app.operations`,
 * and `app.odata`, the record service with its group commit and the caller, made on first
 * use, so building the app (e.g. for the OpenAPI document) needs no database. Routes reach
 * them through the app; no route imports another.
 */
import fp from "fastify-plugin";
import { type Operations, createOperations } from "../actions/index.js";
import { RecordService } from "../channel-analytics/records.js";
import type { Caller } from "../model/caller.js";
import { RequestContexts } from "../service/request-contexts.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The operations (actions and functions), declared once each in src/actions/. */
    operations: Operations;
    odata: RequestContexts;
  }
}

export const odataServicePlugin = fp(
  async (app) => {
    const operations = createOperations(app.config);
    app.decorate("operations", operations);
    let contexts: RequestContexts | undefined;
    app.decorate("odata", {
      getter(): RequestContexts {
        if (!contexts) {
          const { config, db } = app;
          const caller: Caller = {
            userId: config.CALLER_USER_ID,
            businessUnitId: config.BUSINESS_UNIT_ID,
            organizationId: config.ORGANIZATION_ID,
          };
          const records = new RecordService(db.pool, caller, {
            batchesInFlight: config.INGEST_BATCHES_IN_FLIGHT,
            maxQueued: config.INGEST_MAX_QUEUED_ROWS,
          });
          contexts = new RequestContexts(records, db.pool, operations, caller);
        }
        return contexts;
      },
    });
  },
  { name: "odata-service", dependencies: ["database"] },
);
