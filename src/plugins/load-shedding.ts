/**
 * Load shedding: beyond a bound, new requests get 503 with Retry-After at once, before
 * their body is read, instead of queueing until memory runs out and clients time out.
 *
 * - `@fastify/under-pressure` for event-loop delay and resident memory;
 * - our own bounds, checked on arrival: requests in flight (MAX_REQUESTS_IN_FLIGHT: what
 *   bounds memory when many large bodies arrive at once, before any waits for the
 *   database), and requests waiting for a database connection (pg-pool's queue has none); the group commit bounds its queued rows itself
 *   (GroupCommitQueueFullError, answered 503 here too);
 * - a request whose client has gone by the time its body is in is not started, and the
 *   writes it queued are dropped before they run (src/db/request-signal.ts).
 *
 * /healthz is exempt: liveness must not fail because the service is busy.
 */
import underPressure from "@fastify/under-pressure";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { GroupCommitQueueFullError } from "../db/group-commit.js";
import { serverOverloaded } from "./service-unavailable.js";

const EXEMPT = new Set(["/healthz"]);

function shed(app: FastifyInstance, reply: FastifyReply, what: string) {
  const error = serverOverloaded(app.config.RETRY_AFTER_SECONDS, what);
  // The body is not read: close the connection rather than drain an upload we refuse.
  return reply.code(503).headers(error.headers).header("connection", "close").send(error.toBody());
}

let lastWarning = 0;
/** At most one warning a second, however many requests are shed. */
function warnShedding(request: FastifyRequest, what: string) {
  const now = Date.now();
  if (now - lastWarning < 1_000) return;
  lastWarning = now;
  request.log.warn({ shedding: what }, "overloaded; answering 503");
}

declare module "fastify" {
  interface FastifyRequest {
    /** Aborted when the client goes away before its answer (set before the handler runs). */
    clientGone?: AbortSignal;
  }
}

export const loadSheddingPlugin = fp(
  async (app) => {
    const { config } = app;
    await app.register(underPressure, {
      maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
      maxRssBytes: config.MAX_RSS_BYTES,
      pressureHandler: (request, reply, type, value) => {
        // Returning without sending lets the request through (the package's documented contract).
        if (EXEMPT.has(request.url)) return;
        const what = `${type} ${Math.round(Number(value ?? 0))}`;
        warnShedding(request, what);
        shed(app, reply, what);
      },
    });

    app.decorateRequest("clientGone", undefined);
    let inFlight = 0;
    app.addHook("onRequest", async (request, reply) => {
      if (EXEMPT.has(request.url)) return;
      if (inFlight >= config.MAX_REQUESTS_IN_FLIGHT) {
        const what = `${inFlight} requests in flight`;
        warnShedding(request, what);
        return shed(app, reply, what);
      }
      inFlight++;
      // The response's 'close' comes once, whether it was answered, hijacked or its client left.
      reply.raw.once("close", () => inFlight--);
      const waiting = app.db?.pool?.waitingCount ?? 0;
      if (waiting > config.DB_MAX_WAITING) {
        const what = `${waiting} requests waiting for the database`;
        warnShedding(request, what);
        return shed(app, reply, what);
      }
    });

    // After the body is in: the last moment to notice a client that has gone before any work.
    app.addHook("preHandler", (request, reply, done) => {
      if (request.raw.socket?.destroyed) {
        request.log.debug("client gone before the request started; not started");
        reply.hijack();
        return;
      }
      const controller = new AbortController();
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) controller.abort();
      });
      // Passed down explicitly (routes → request context → group commit), not through
      // AsyncLocalStorage, whose context on Node 20 rides on every promise of the request.
      request.clientGone = controller.signal;
      done();
    });

    app.addHook("onError", async (request, _reply, error) => {
      if (error instanceof GroupCommitQueueFullError) warnShedding(request, error.message);
    });
  },
  { name: "load-shedding" },
);

/** The 503 for the queue-full error the group commit raises deep inside a request. */
export function sheddingError(error: unknown, retryAfterSeconds: number) {
  if (error instanceof GroupCommitQueueFullError) return serverOverloaded(retryAfterSeconds, error.message);
  return undefined;
}
