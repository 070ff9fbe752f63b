/** Liveness (the process answers) and readiness (database reachable, migrations applied). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { pendingMigrations } from "../db/migrations.js";

const Health = z.object({ status: z.enum(["ok", "ready", "not ready"]), reason: z.string().optional() });

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get("/healthz", { schema: { tags: ["health"], summary: "The process is alive", response: { 200: Health } } }, async () => ({
    status: "ok" as const,
  }));

  app.get(
    "/readyz",
    {
      schema: {
        tags: ["health"],
        summary: "The database is reachable and every migration is applied",
        response: { 200: Health, 503: Health },
      },
    },
    async (request, reply) => {
      const { migrations } = app.db;
      const expected = [...migrations.alreadyApplied, ...migrations.applied];
      try {
        const pending = await pendingMigrations(app.db.pool, expected);
        if (pending.length === 0) return { status: "ready" as const };
        return reply.code(503).send({ status: "not ready", reason: `migrations not applied: ${pending.join(", ")}` });
      } catch (error) {
        request.log.warn({ err: error }, "readiness check failed");
        return reply.code(503).send({ status: "not ready", reason: "database unreachable" });
      }
    },
  );
};
