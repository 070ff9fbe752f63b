/** The Web API root of a request, and the `:version` parameter every route under it takes. */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { organizationPrefixOf } from "../plugins/identity.js";

export const ApiVersionParams = z.object({ version: z.string().describe("v9.0, v9.1 or v9.2") });

/** e.g. `http://127.0.0.1:3000/api/data/v9.2/`, or `http://127.0.0.1:3000/org/contoso/api/data/v9.2/` through a prefix. */
export function serviceRoot(request: FastifyRequest, version: string): string {
  return `${request.protocol}://${request.host}${organizationPrefixOf(request) ?? ""}/api/data/${version}/`;
}
