/**
 * Turns every failure into a Dataverse-shaped error body. Only ODataError messages
 * reach clients as written; anything unexpected is logged and answered with a generic
 * 500, so no database or stack text leaks.
 */
import type { FastifyError } from "fastify";
import fp from "fastify-plugin";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { isConnectionError } from "../db/connection-errors.js";
import { ClientGoneError } from "../db/request-signal.js";
import { ErrorCodes, ODataError, badRequest, resourceNotFound } from "../odata/errors.js";
import { sheddingError } from "./load-shedding.js";
import { AnalyticsError, genesysCodeOf } from "../analytics/errors.js";
import { databaseUnavailable } from "./service-unavailable.js";

/** Maps Fastify's own errors (body parsing, limits, schema validation) to OData errors. */
export function toODataError(error: unknown): ODataError | undefined {
  if (error instanceof ODataError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const details = error.validation
      .map((v: { instancePath?: string; message?: string }) => `${v.instancePath || "/"}: ${v.message}`)
      .join("; ");
    return badRequest(`The request is not valid: ${details}`, ErrorCodes.invalidArgument);
  }
  const fastifyError = error as FastifyError;
  switch (fastifyError.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ODataError(
        413,
        ErrorCodes.generic,
        `The request body is larger than the limit of ${fastifyError.message.match(/\d+/)?.[0] ?? "the configured"} bytes (BODY_LIMIT).`,
      );
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return badRequest(`The request body is not valid JSON: ${fastifyError.message}`, ErrorCodes.payloadError);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ODataError(
        415,
        ErrorCodes.generic,
        "Unsupported Content-Type; send application/json (or multipart/mixed to $batch).",
      );
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return badRequest("The Content-Length header does not match the body.");
  }
  if (fastifyError instanceof SyntaxError && fastifyError.statusCode === 400) {
    return badRequest(`The request body is not valid JSON: ${fastifyError.message}`, ErrorCodes.payloadError);
  }
  return undefined;
}

/** The Genesys-compatible API (/api/v2/…, also under an organisation prefix) answers errors in Genesys' shape. */
const isGenesysRequest = (url: string) => /^(\/org\/[^/]+)?\/api\/v2\//.test(url);

/** Any failure as a Genesys error (src/analytics/errors.ts). */
function toAnalyticsError(error: unknown, retryAfterSeconds: number): AnalyticsError | undefined {
  if (error instanceof AnalyticsError) return error;
  if (isConnectionError(error)) {
    return new AnalyticsError(
      503,
      "service.unavailable",
      "The database is unreachable; try again shortly.",
      {},
      {
        "retry-after": String(retryAfterSeconds),
      },
    );
  }
  const known = toODataError(error) ?? sheddingError(error, retryAfterSeconds);
  if (!known) return undefined;
  const headers = Object.fromEntries(Object.entries(known.headers).map(([k, v]) => [k, String(v)]));
  return new AnalyticsError(known.status, genesysCodeOf(known.status), known.message, {}, headers);
}

export const errorHandlingPlugin = fp(
  async (app) => {
    app.setErrorHandler(async (error, request, reply) => {
      if (isGenesysRequest(request.url) && !(error instanceof ClientGoneError)) {
        const known = toAnalyticsError(error, app.config.RETRY_AFTER_SECONDS);
        if (!known) {
          request.log.error({ err: error }, "unhandled error");
          request.errorCode = "internal.server.error";
          const unexpected = new AnalyticsError(500, "internal.server.error", "An unexpected error occurred.");
          return reply.code(500).send(unexpected.toBody(request.id));
        }
        if (isConnectionError(error)) app.db?.outage?.failed(error);
        request.errorCode = known.code;
        return reply.code(known.status).headers(known.headers).send(known.toBody(request.id));
      }
      if (!(error instanceof ODataError) && isConnectionError(error)) {
        // One warning per outage (app.db.outage), not a stack trace per request.
        app.db?.outage?.failed(error);
        const unavailable = databaseUnavailable(app.config.RETRY_AFTER_SECONDS);
        request.errorCode = unavailable.code;
        return reply.code(503).headers(unavailable.headers).send(unavailable.toBody());
      }
      if (error instanceof ClientGoneError) {
        // Nobody is there to read an answer: the work was dropped unrun, quietly.
        request.log.debug("client gone; its queued work was dropped");
        return reply.code(503).send();
      }
      const known = toODataError(error) ?? sheddingError(error, app.config.RETRY_AFTER_SECONDS);
      if (!known) {
        request.log.error({ err: error }, "unhandled error");
        request.errorCode = ErrorCodes.unexpected;
        return reply.code(500).send({ error: { code: ErrorCodes.unexpected, message: "An unexpected error occurred." } });
      }
      // 503s (load shed, database away) are expected under stress and logged where they arise.
      if (known.status >= 500 && known.status !== 503) request.log.error({ err: error }, known.message);
      request.errorCode = known.code;
      return reply.code(known.status).headers(known.headers).send(known.toBody());
    });

    app.setNotFoundHandler(async (request, reply) => {
      if (isGenesysRequest(request.url)) {
        const error = new AnalyticsError(
          404,
          "not.found",
          `No resource at ${request.method} ${request.url.split("?")[0]!.slice(0, 200)}.`,
        );
        request.errorCode = error.code;
        return reply.code(404).send(error.toBody(request.id));
      }
      const path = request.url.split("?")[0] ?? "";
      const segment = decodeURIComponent(path.replace(/^\/api\/data\/v9\.\d\/?/, "").split("/")[0] || path);
      const error = resourceNotFound(segment);
      request.errorCode = error.code;
      return reply.code(error.status).send(error.toBody());
    });
  },
  { name: "error-handling", dependencies: ["observation"] },
);
