/** The Web API root of a request, and the `:version` parameter every route under it takes. */
import type { FastifyRequest } from "fastify";
import { z } from "zod";

export const ApiVersionParams = z.object({ version: z.string().describe("v9.0, v9.1 or v9.2") });

/** e.g. `http://127.0.0.1:3000/api/data/v9.2/` */
export function serviceRoot(request: FastifyRequest, version: string): string {
  return `${request.protocol}://${request.host}/api/data/${version}/`;
}
