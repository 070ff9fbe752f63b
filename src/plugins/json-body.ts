/**
 * JSON bodies that cannot stall the server:
 *
 * - a nesting-depth limit (JSON_MAX_DEPTH), checked by one pass over the text before it
 *   is parsed: 10 MB of `[[[[…` would otherwise become millions of nested arrays whose
 *   recursive handling (validation, `$batch` references) stalls the event loop or
 *   overflows the stack. Hand-written because neither JSON.parse nor secure-json-parse
 *   (Fastify's parser, used here after the check) has a depth option, and a streaming
 *   parser would cost far more than this scan;
 * - a smaller body limit (RECORD_BODY_LIMIT) on the routes that take one record; bulk
 *   actions, the logging actions and $batch keep BODY_LIMIT.
 */
import { Transform } from "node:stream";
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { ErrorCodes, ODataError, badRequest } from "../http/errors.js";
import { TABLES } from "../model/tables.js";

/** Throws a 400 when `text` nests arrays/objects deeper than `maxDepth`. */
export function assertJsonDepth(text: string, maxDepth: number): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Jump to the closing quote natively (indexOf), skipping escaped ones: string
      // contents are most of a body, and a character loop over them costs as much as parsing.
      let end = text.indexOf('"', i + 1);
      while (end !== -1) {
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (end === -1) return; // unterminated: JSON.parse reports it
      i = end;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) {
        throw badRequest(`The request body nests arrays and objects deeper than ${maxDepth} levels (JSON_MAX_DEPTH).`, ErrorCodes.payloadError);
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
}

const ENTITY_SETS = new Set(TABLES.map((table) => table.entitySetName));

/** Whether the request writes one record: an entity-set path that is not a bound action. */
export function takesOneRecord(url: string): boolean {
  const path = url.split("?")[0] ?? "";
  const match = /^\/api\/data\/v9\.\d\/([^/(]+)/.exec(path);
  if (!match || !ENTITY_SETS.has(decodeURIComponent(match[1]!))) return false;
  return !path.includes("Microsoft.Dynamics.CRM.");
}

function tooLarge(limit: number) {
  return new ODataError(413, ErrorCodes.generic, `The request body is larger than the limit of ${limit} bytes for one record (RECORD_BODY_LIMIT).`);
}

export const jsonBodyPlugin = fp(
  async (app) => {
    const { config } = app;
    // Fastify's own parser (secure-json-parse, __proto__ refused) after the depth check.
    const parse = app.getDefaultJsonParser("error", "ignore");
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "string" }, (request: FastifyRequest, body: string | Buffer, done) => {
      const text = String(body);
      try {
        assertJsonDepth(text, config.JSON_MAX_DEPTH);
      } catch (error) {
        done(error as Error, undefined);
        return;
      }
      parse(request, text, done);
    });

    app.addHook("preParsing", async (request, _reply, payload) => {
      if (!takesOneRecord(request.url)) return payload;
      const limit = config.RECORD_BODY_LIMIT;
      const declared = Number(request.headers["content-length"]);
      if (declared > limit) throw tooLarge(limit);
      let received = 0;
      // Chunked bodies declare no length: counted as they arrive.
      return payload.pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            received += chunk.length;
            callback(received > limit ? tooLarge(limit) : null, chunk);
          },
        }),
      );
    });
  },
  { name: "json-body", dependencies: [] },
);
