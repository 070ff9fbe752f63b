/**
 * Load shedding: beyond a bound, new requests get 503 with Retry-After at once, before
 * their body is read, instead of queueing until memory runs out and clients time out.
 *
 * - `@fastify/under-pressure` for event-loop delay and resident memory;
 * - our own bounds, checked on arrival: requests in flight (MAX_REQUESTS_IN_FLIGHT: what
 *   bounds memory when many large bodies arrive at once, before any waits for the
 *   database), and requests waiting for a database connection (pg-pool's queue has none);
 *   deeper in, the rows of bulk writes in flight (MAX_ROWS_IN_FLIGHT, src/db/admission.ts:
 *   RowsInFlightError) and the group commit's queued rows (GroupCommitQueueFullError), both
 *   answered 503 here too;
 * - a request whose client has gone by the time its body is in is not started, and the
 *   writes it queued are dropped before they run (src/db/request-signal.ts).
 *
 * /healthz is exempt: liveness must not fail because the service is busy.
 */
import underPressure from "@fastify/under-pressure";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { RowsInFlightError } from "../db/admission.js";
import { GroupCommitQueueFullError } from "../db/group-commit.js";
import { serverOverloaded } from "./service-unavailable.js";

const EXEMPT = new Set(["/healthz"]);

/**
 * The 503, sent before the body is read. A body of a declared length within BODY_LIMIT is
 * then read and discarded by Node (the connection stays open): closing a socket with unread
 * data makes the kernel answer the client's next bytes with a reset, and a client still
 * sending its body then loses the 503 it was sent (the 112 connection resets of an
 * overload run, issue 18). Only a body larger than that, or of no declared length, is
 * refused by closing the connection.
 */
function shed(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, what: string) {
  const error = serverOverloaded(app.config.RETRY_AFTER_SECONDS, what);
  reply.code(503).headers(error.headers);
  if (!drainable(request, app.config.BODY_LIMIT)) reply.header("connection", "close");
  return reply.send(error.toBody());
}

function drainable(request: FastifyRequest, bodyLimit: number): boolean {
  const { headers } = request.raw;
  if (headers["transfer-encoding"] !== undefined) return false;
  const length = headers["content-length"];
  if (length === undefined) return true;
  return /^\d+$/.test(length) && Number(length) <= bodyLimit;
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
        shed(app, request, reply, what);
      },
    });

    app.decorateRequest("clientGone", undefined);
    let inFlight = 0;
    app.addHook("onRequest", async (request, reply) => {
      if (EXEMPT.has(request.url)) return;
      if (inFlight >= config.MAX_REQUESTS_IN_FLIGHT) {
        const what = `${inFlight} requests in flight`;
        warnShedding(request, what);
        return shed(app, request, reply, what);
      }
      inFlight++;
      // The response's 'close' comes once, whether it was answered, hijacked or its client left.
      reply.raw.once("close", () => inFlight--);
      const waiting = app.db?.pool?.waitingCount ?? 0;
      if (waiting > config.DB_MAX_WAITING) {
        const what = `${waiting} requests waiting for the database`;
        warnShedding(request, what);
        return shed(app, request, reply, what);
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
      if (error instanceof GroupCommitQueueFullError || error instanceof RowsInFlightError) warnShedding(request, error.message);
    });
  },
  { name: "load-shedding" },
);

/** The 503 for the refusals raised deep inside a request: the group commit's queue, the rows in flight. */
export function sheddingError(error: unknown, retryAfterSeconds: number) {
  if (error instanceof GroupCommitQueueFullError || error instanceof RowsInFlightError) {
    return serverOverloaded(retryAfterSeconds, error.message);
  }
  return undefined;
}
