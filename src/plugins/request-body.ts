/**
 * How request bodies are read. Fastify's own JSON parser does the parsing (prototype
 * poisoning refused); around it:
 * - a DELETE, GET, HEAD or OPTIONS with `Content-Type: application/json` and no body has no
 *   body (@odata/client sends that header on every request);
 * - a body that is not valid UTF-8 is a 400, not text with replacement characters;
 * - a `__proto__` (or `constructor.prototype`) key gets a message that names it;
 * - `text/plain` has no parser, so it gets the 415 every other unsupported type gets.
 */
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { assertJsonDepth } from "../odata/json-depth.js";
import { ErrorCodes, badRequest } from "../odata/errors.js";

const BODYLESS_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS"]);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The forbidden key a body that JSON.parse reads holds, if any (only run once Fastify's parser refused it). */
function poisonedKey(text: string): string | undefined {
  let found: string | undefined;
  try {
    JSON.parse(text, (key, value: unknown) => {
      if (key === "__proto__") found ??= "__proto__";
      else if (key === "constructor" && typeof value === "object" && value !== null && "prototype" in value)
        found ??= "constructor.prototype";
      return value;
    });
  } catch {
    return undefined;
  }
  return found;
}

export const requestBodyPlugin = fp(
  async (app) => {
    const parseJson = app.getDefaultJsonParser("error", "error");
    app.removeContentTypeParser(["application/json", "text/plain"]);
    app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request: FastifyRequest, body: Buffer, done) => {
      if (body.length === 0 && BODYLESS_METHODS.has(request.method)) {
        done(null, undefined);
        return;
      }
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        done(badRequest("The request body is not valid UTF-8.", ErrorCodes.payloadError), undefined);
        return;
      }
      try {
        assertJsonDepth(text, app.config.JSON_MAX_DEPTH);
      } catch (error) {
        done(error as Error, undefined);
        return;
      }
      // Fastify's own parser answers through the callback (its return value carries nothing).
      void parseJson(request, text, (error, value) => {
        if (!error) return done(null, value);
        const key = poisonedKey(text);
        done(
          key
            ? badRequest(`The request body has a property named '${key}', which is not allowed.`, ErrorCodes.payloadError)
            : error,
          undefined,
        );
      });
    });
  },
  { name: "request-body" },
);
