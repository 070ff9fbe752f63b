/** The Web API root: `/api/data/v9.x/`, as absolute URLs on the request's own base. */
import type { FastifyRequest } from "fastify";
import { resourceNotFound } from "./errors.js";

export const SUPPORTED_API_VERSIONS = ["v9.0", "v9.1", "v9.2"] as const;

export function assertApiVersion(version: string): void {
  if (!(SUPPORTED_API_VERSIONS as readonly string[]).includes(version)) throw resourceNotFound(version);
}

/** e.g. `http://127.0.0.1:3000/api/data/v9.2/` */
export function serviceRoot(request: FastifyRequest, version: string): string {
  return `${request.protocol}://${request.host}/api/data/${version}/`;
}
