/**
 * Dataverse's service-protection limits per principal (src/identity/service-protection.ts):
 * over a limit, 429 with Dataverse's code and message and Retry-After, before any work;
 * admitted responses carry the x-ms-ratelimit-*-remaining-xrm-requests headers clients
 * (and Microsoft's SDKs) read to pace themselves.
 *
 * Registered after authentication, so `keyOf` can name the principal; a request it cannot
 * name (anonymous, /healthz) is not limited. No limits configured: nothing is added.
 */
import { performance } from "node:perf_hooks";
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { ServiceProtection, type ServiceProtectionLimits, type ServiceProtectionTicket } from "../identity/service-protection.js";

export interface ServiceProtectionPluginOptions {
  limits: ServiceProtectionLimits | undefined;
  keyOf: (request: FastifyRequest) => string | undefined;
  /** Milliseconds, monotonic; tests pass their own. */
  now?: () => number;
}

export const BURST_REMAINING_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests";
export const TIME_REMAINING_HEADER = "x-ms-ratelimit-time-remaining-xrm-requests";

export const serviceProtectionPlugin = fp<ServiceProtectionPluginOptions>(
  async (app, { limits, keyOf, now = () => performance.now() }) => {
    if (!limits) return;
    const protection = new ServiceProtection(limits);
    // Per request without decorating FastifyRequest: nothing else needs the ticket.
    const tickets = new WeakMap<FastifyRequest, ServiceProtectionTicket>();

    app.addHook("onRequest", async (request, reply) => {
      const key = keyOf(request);
      if (key === undefined) return;
      const admission = protection.admit(key, now());
      if (!admission.admitted) {
        request.log.debug({ principal: key, code: admission.code }, "service protection limit; answering 429");
        return reply
          .code(admission.status)
          .header("retry-after", String(admission.retryAfterSeconds))
          .header("content-type", "application/json; charset=utf-8")
          .send(JSON.stringify({ error: { code: admission.code, message: admission.message } }));
      }
      const { ticket } = admission;
      tickets.set(request, ticket);
      // 'close' comes after the response is written and also when the client goes away
      // first (onResponse then never runs); finish is idempotent, so once either way.
      reply.raw.once("close", () => protection.finish(ticket, now()));
    });

    app.addHook("onSend", async (request, reply, payload) => {
      const ticket = tickets.get(request);
      if (!ticket) return payload;
      const left = protection.remaining(ticket.key, now());
      reply.header(BURST_REMAINING_HEADER, String(left.requests));
      reply.header(TIME_REMAINING_HEADER, String(Math.floor(left.executionMs)));
      return payload;
    });

    app.addHook("onResponse", async (request) => {
      const ticket = tickets.get(request);
      if (ticket) protection.finish(ticket, now());
    });
  },
  { name: "service-protection" },
);
