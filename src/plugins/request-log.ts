/**
 * The request log as an observation subscriber: a correlation id joins the request's log
 * lines (or, inside a `$batch`, its part's), and notes become info lines. Fastify's own
 * "incoming request" / "request completed" lines carry the bindings.
 */
import type { FastifyBaseLogger } from "fastify";
import fp from "fastify-plugin";
import type { Observer } from "../observe/observation.js";

/** Fastify's logger is pino's, whose bindings can be added to in place. */
type BindableLogger = FastifyBaseLogger & { setBindings?: (bindings: Record<string, unknown>) => void };

export const requestLogPlugin = fp(
  async (app) => {
    app.observers.push((request): Observer => {
      const partLogs = new Map<number, FastifyBaseLogger>();
      const logFor = (part?: { index: number; contentId?: string; url: string }) => {
        if (!part) return request.log;
        let log = partLogs.get(part.index);
        if (!log) partLogs.set(part.index, (log = request.log.child({ batchPart: part.contentId ?? part.url })));
        return log;
      };
      return (observation) => {
        switch (observation.kind) {
          case "correlation":
            (logFor(observation.part) as BindableLogger).setBindings?.({ correlationId: observation.correlationId });
            break;
          case "note":
            logFor(observation.part).info(observation.fields, observation.message);
            break;
          case "outcome":
            if (observation.part) partLogs.delete(observation.part.index);
            break;
        }
      };
    });
  },
  { name: "request-log", dependencies: ["observation"] },
);
