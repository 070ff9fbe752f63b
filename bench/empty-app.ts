/**
 * The framework ceiling: Fastify (the service's version) with one empty route and nothing
 * else, run on the same machine and loaded the same way as the single-event ingest: POST
 * of the same JSON bodies, parsed by Fastify's JSON parser, answered 204.
 */
import Fastify from "fastify";

const app = Fastify({ logger: false });
app.post("/empty", async (_request, reply) => {
  reply.code(204);
});
app.get("/healthz", async () => ({ status: "ok" }));

const stop = () => void app.close().then(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);

await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? "127.0.0.1" });
