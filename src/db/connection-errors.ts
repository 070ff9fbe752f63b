/**
 * Telling a lost or unreachable database apart from every other failure, so that the
 * service answers it with 503 and `Retry-After` (the client should simply try again)
 * instead of a 500, and logs it once per outage instead of a stack trace per request.
 */

/** Node socket errors that mean the database cannot be reached or the connection broke. */
const SOCKET_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * SQLSTATEs of a database that is going away, not up yet or full (PostgreSQL appendix A):
 * class 08 is connection exceptions; 57P01-57P03 admin/crash shutdown and "cannot connect
 * now" (starting up or shutting down); 53300 too many connections; 57014 a statement
 * cancelled by statement_timeout, which under load means "slow now", not "wrong request".
 */
const SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", "57014"]);

/**
 * Prisma Client's codes for the same (the control tables go through it): P1001 cannot reach,
 * P1002 timed out, P1008 operation timed out, P1017 server closed the connection, P2024
 * no connection from the pool in time.
 */
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);

/** pg and pg-pool report a dropped or timed-out connection with these messages and no code. */
const MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection timeout/i,
  /client has encountered a connection error/i,
  /terminating connection/i,
  /server closed the connection unexpectedly/i,
  /cannot use a pool after calling end/i,
  /client was closed and is not queryable/i,
  /query read timeout/i,
];

/** Whether `error`, or an error it wraps (`cause`, Prisma's driver-adapter errors), is a database connection failure. */
export function isConnectionError(error: unknown): boolean {
  // Bounded walk: causes can in principle form a cycle.
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current && typeof current === "object"; depth++) {
    const { code, message, cause, errors } = current as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    if (typeof code === "string") {
      if (SOCKET_ERRORS.has(code) || SQLSTATES.has(code) || PRISMA_CODES.has(code) || code.startsWith("08")) return true;
    }
    if (typeof message === "string" && MESSAGES.some((pattern) => pattern.test(message))) return true;
    // An AggregateError (net.connect trying several addresses) holds the real errors.
    if (Array.isArray(errors) && errors.some((inner) => isConnectionError(inner))) return true;
    current = cause;
  }
  return false;
}

/** A short description of a connection error for the log: its code and message, no stack. */
export function describeConnectionError(error: unknown): { code?: string; message: string } {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return {
    ...(typeof code === "string" ? { code } : {}),
    message: typeof message === "string" && message ? message : String(error),
  };
}

interface OutageLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

/**
 * Whether the database is in an outage, as the last connection events tell: the first
 * failure logs one warning, the first success after it one info line, and nothing in
 * between however many requests fail.
 */
export class DatabaseOutage {
  private since: number | undefined;
  private failures = 0;

  constructor(private readonly log: OutageLogger) {}

  get active(): boolean {
    return this.since !== undefined;
  }

  failed(error: unknown): void {
    this.failures++;
    if (this.since !== undefined) return;
    this.since = Date.now();
    this.log.warn({ db: describeConnectionError(error) }, "database unreachable; answering 503 until it is back");
  }

  recovered(): void {
    if (this.since === undefined) return;
    this.log.info({ ms: Date.now() - this.since, failures: this.failures }, "database reachable again");
    this.since = undefined;
    this.failures = 0;
  }
}
