/** Liveness (the process answers) and readiness (database reachable, migrations applied). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { isConnectionError } from "../db/connection-errors.js";
import { pendingMigrations } from "../db/migrations.js";

/** /readyz answers within this time even when the database does not (a silent partition). */
export const READINESS_TIMEOUT_MS = 2_000;

class ReadinessTimeout extends Error {}

/** `promise`, or a ReadinessTimeout after `ms`; the timer never keeps the process alive. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReadinessTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const Health = z.object({ status: z.enum(["ok", "ready", "not ready"]), reason: z.string().optional() });

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/healthz",
    {
      schema: {
        tags: ["health"],
        summary: "The process is alive",
        operationId: "Healthz",
        security: [],
        response: { 200: Health },
      },
    },
    async () => ({
      status: "ok" as const,
    }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        tags: ["health"],
        security: [],
        summary: "The database is reachable and every migration is applied",
        operationId: "Readyz",
        response: { 200: Health, 503: Health },
      },
    },
    async (request, reply) => {
      const { migrations } = app.db;
      const expected = [...migrations.alreadyApplied, ...migrations.applied];
      try {
        const pending = await within(pendingMigrations(app.db.pool, expected), READINESS_TIMEOUT_MS);
        if (pending.length === 0) return { status: "ready" as const };
        return reply.code(503).send({ status: "not ready", reason: `migrations not applied: ${pending.join(", ")}` });
      } catch (error) {
        if (error instanceof ReadinessTimeout) {
          return reply
            .code(503)
            .send({ status: "not ready", reason: `database did not answer within ${READINESS_TIMEOUT_MS} ms` });
        }
        if (isConnectionError(error)) app.db.outage?.failed(error);
        else request.log.warn({ err: error }, "readiness check failed");
        return reply.code(503).send({ status: "not ready", reason: "database unreachable" });
      }
    },
  );
};
