/**
 * Oversized URLs and headers, answered in the Dataverse error shape instead of Node's or
 * Fastify's own bodies.
 *
 * Dataverse takes URLs of up to 32,768 characters and refuses longer ones with 400
 * `0x80060888` "Invalid URI: The Uri string is too long." (reference/dataverse-webapi.md
 * §5). Node parses the request line and headers together under one limit (16 KiB by
 * default, which would refuse a 20,000-character URL Dataverse takes), so the parser's
 * limit is raised to hold the longest URL plus Node's usual 16 KiB of headers, and both are
 * checked here: the URL (400, as Dataverse) and the headers (431, as Node). A request past
 * even the parser's limit, or one Node cannot parse, is answered by `clientErrorHandler`
 * before Fastify sees it: 431, 408 or 400, with the same body shape.
 */
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { ErrorCodes, ODataError } from "../odata/errors.js";

export const MAX_URL_LENGTH = 32_768;
/** Node's default header limit, kept for the headers alone. */
export const MAX_HEADER_BYTES = 16_384;
/** Node's parser limit (request line and headers): the longest URL, the headers, and the method and version around them. */
export const MAX_HEADER_SIZE = MAX_URL_LENGTH + MAX_HEADER_BYTES + 1_024;

const headersTooLarge = (detail: string) =>
  new ODataError(
    431,
    ErrorCodes.generic,
    `${detail} A URL may have up to ${MAX_URL_LENGTH} characters and the headers up to ${MAX_HEADER_BYTES} bytes.`,
  );

export const requestLimitsPlugin = fp(
  async (app) => {
    app.addHook("onRequest", async (request) => {
      if (request.originalUrl.length > MAX_URL_LENGTH) {
        throw new ODataError(
          400,
          ErrorCodes.badRequest,
          `Invalid URI: The Uri string is too long (${request.originalUrl.length} characters; at most ${MAX_URL_LENGTH}).`,
        );
      }
      const raw = request.raw.rawHeaders;
      let bytes = 0;
      // Each header line is `name: value\r\n`; Node decodes header bytes as latin1, so length is bytes.
      for (let i = 0; i < raw.length; i += 2) bytes += raw[i]!.length + raw[i + 1]!.length + 4;
      if (bytes > MAX_HEADER_BYTES) throw headersTooLarge(`The request headers are ${bytes} bytes.`);
    });
  },
  { name: "request-limits" },
);

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};

/**
 * Fastify's `clientErrorHandler`: what Node's parser refuses, in the Dataverse shape, then
 * the socket is closed (as Node and Fastify do: the stream is past repair).
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  let answer: ODataError;
  if (error.code === "HPE_HEADER_OVERFLOW") {
    answer = headersTooLarge(`The request line and headers are larger than ${MAX_HEADER_SIZE} bytes.`);
  } else if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    answer = new ODataError(408, ErrorCodes.generic, "The request did not arrive in time (REQUEST_TIMEOUT_MS).");
  } else {
    answer = new ODataError(400, ErrorCodes.generic, "The request is not valid HTTP/1.1 and could not be read.");
  }
  this.log.debug({ err: error }, "client error");
  if (socket.writable) {
    const body = JSON.stringify(answer.toBody());
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_TEXT[answer.status]}\r\n` +
        `Content-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
