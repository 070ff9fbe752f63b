/**
 * Gives every HTTP request its observer (`request.observe`, src/observe/observation.ts)
 * and reports its outcome when the response is sent, whatever produced it (a route, the
 * error handler, the not-found handler). Subscribers (the request log here; audit and
 * metrics later) register with `app.observers.push(...)` before the app is ready.
 */
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { type Observer, fanOut } from "../observe/observation.js";

/** Makes one request's observer; called once per HTTP request. */
export type ObservationSubscriber = (request: FastifyRequest) => Observer;

declare module "fastify" {
  interface FastifyInstance {
    observers: ObservationSubscriber[];
  }
  interface FastifyRequest {
    observe: Observer;
    /** The Dataverse code of the error this request was answered with, if any. */
    errorCode?: string;
  }
}

export const observationPlugin = fp(
  async (app) => {
    app.decorate("observers", [] as ObservationSubscriber[]);
    app.decorateRequest("observe", () => {});
    app.decorateRequest("errorCode", undefined);
    app.addHook("onRequest", async (request) => {
      request.observe = fanOut(app.observers.map((subscribe) => subscribe(request)));
    });
    app.addHook("onResponse", async (request, reply) => {
      request.observe({ kind: "outcome", status: reply.statusCode, ms: reply.elapsedTime, errorCode: request.errorCode });
    });
  },
  { name: "observation" },
);
