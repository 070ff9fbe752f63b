/**
 * The OData operations as a decorator (a repository plugin, as in fastify/demo):
 * `app.operations`, declared once each in src/actions/. The record operations of a
 * request are its caller's (`request.odata`, src/plugins/identity.ts).
 */
import fp from "fastify-plugin";
import { type Operations, createOperations } from "../actions/index.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The operations (actions and functions), declared once each in src/actions/. */
    operations: Operations;
  }
}

export const odataServicePlugin = fp(
  async (app) => {
    app.decorate("operations", createOperations(app.config));
  },
  { name: "odata-service", dependencies: ["database"] },
);
