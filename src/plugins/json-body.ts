/**
 * JSON bodies that cannot stall the server (the nesting-depth limit, src/odata/json-depth.ts,
 * is checked by the JSON parser of ./request-body.ts and by `$batch` for its parts):
 *
 * - a smaller body limit (RECORD_BODY_LIMIT) on the routes that take one record; bulk
 *   actions, the logging actions and $batch keep BODY_LIMIT.
 */
import { Transform } from "node:stream";
import fp from "fastify-plugin";
import { WEB_API_TABLES } from "../model/tables.js";
import { ErrorCodes, ODataError } from "../odata/errors.js";

const ENTITY_SETS = new Set(WEB_API_TABLES.map((table) => table.entitySetName));

/** Whether the request writes one record: an entity-set path that is not a bound action. */
export function takesOneRecord(url: string): boolean {
  const path = url.split("?")[0] ?? "";
  const match = /^\/api\/data\/v9\.\d\/([^/(]+)/.exec(path);
  if (!match || !ENTITY_SETS.has(decodeURIComponent(match[1]!))) return false;
  return !path.includes("Microsoft.Dynamics.CRM.");
}

function tooLarge(limit: number) {
  return new ODataError(
    413,
    ErrorCodes.generic,
    `The request body is larger than the limit of ${limit} bytes for one record (RECORD_BODY_LIMIT).`,
  );
}

export const jsonBodyPlugin = fp(
  async (app) => {
    const { config } = app;
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
