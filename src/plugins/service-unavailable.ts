/**
 * The 503 answers of a service that is temporarily unable to serve: the database is
 * unreachable, or the server sheds load. Both carry `Retry-After`, so Dataverse clients
 * (which honour it for service-protection limits) wait and try again.
 */
import { ODataError } from "../odata/errors.js";

export const UnavailableCodes = {
  /**
   * Dataverse's "Generic SQL error" (0x80044150, -2147204784): what Dataverse itself
   * reports when its SQL tier fails, the nearest code to "the database is unreachable".
   */
  database: "0x80044150",
  /**
   * Dataverse's service-protection "Number of concurrent requests exceeded the limit"
   * (0x80072326): the code whose documented meaning is "too much at once, retry after
   * Retry-After". Dataverse sends it with 429 (a caller's own limit); ours is the whole
   * server's, hence 503.
   */
  overloaded: "0x80072326",
} as const;

export function databaseUnavailable(retryAfterSeconds: number): ODataError {
  return new ODataError(
    503,
    UnavailableCodes.database,
    "The database is temporarily unavailable. Retry after the time in the Retry-After header.",
    { "retry-after": String(retryAfterSeconds) },
  );
}

export function serverOverloaded(retryAfterSeconds: number, what: string): ODataError {
  return new ODataError(
    503,
    UnavailableCodes.overloaded,
    `The server is overloaded (${what}); the request was not started. Retry after the time in the Retry-After header.`,
    { "retry-after": String(retryAfterSeconds) },
  );
}
