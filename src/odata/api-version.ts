/** The Web API versions this service answers under /api/data/. */
import { resourceNotFound } from "./errors.js";

export const SUPPORTED_API_VERSIONS = ["v9.0", "v9.1", "v9.2"] as const;

export function assertApiVersion(version: string): void {
  if (!(SUPPORTED_API_VERSIONS as readonly string[]).includes(version)) throw resourceNotFound(version);
}
