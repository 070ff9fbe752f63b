/** `POST /api/data/v9.x/$batch`: HTTP in, the batch orchestration (src/service/batch.ts) out. */
import type { FastifyPluginAsync } from "fastify";
import { assertApiVersion } from "../odata/api-version.js";
import { decodeBatchBody } from "../odata/batch.js";
import { ErrorCodes, badRequest } from "../odata/errors.js";
import { runBatch } from "../service/batch.js";
import { serviceRoot } from "./service-root.js";

export const batchRoutes: FastifyPluginAsync = async (app) => {
  // The body stays text: the multipart parser works on it. Decoded here, so invalid UTF-8 is refused naming its part.
  app.addContentTypeParser("multipart/mixed", { parseAs: "buffer" }, (request, body: Buffer, done) => {
    try {
      done(null, decodeBatchBody(body, request.headers["content-type"]));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.post<{ Params: { version: string } }>("/$batch", { schema: { hide: true } }, async (request, reply) => {
    const { version } = request.params;
    assertApiVersion(version);
    if (typeof request.body !== "string") {
      throw badRequest("A $batch request needs Content-Type: multipart/mixed; boundary=… and a body.", ErrorCodes.payloadError);
    }
    request.observe({ kind: "operation", name: "$batch" });
    const result = await runBatch(
      {
        body: request.body,
        contentType: request.headers["content-type"],
        prefer: [request.headers.prefer ?? []].flat().join(","),
        origin: `${request.protocol}://${request.host}`,
        root: serviceRoot(request, version),
        jsonMaxDepth: app.config.JSON_MAX_DEPTH,
      },
      request.odata,
      request.observe,
    );
    return reply.code(result.status).header("content-type", result.contentType).send(result.body);
  });
};
