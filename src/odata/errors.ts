/**
 * Errors as data: every failure the API reports is an ODataError carrying the HTTP
 * status, the Dataverse hex code and the message, rendered as
 * `{"error":{"code","message"}}` (shared/reference/dataverse-webapi.md §5).
 */

/** Dataverse platform error codes we use. */
export const ErrorCodes = {
  generic: "0x0",
  objectDoesNotExist: "0x80040217",
  duplicateRecord: "0x80040237",
  invalidArgument: "0x80040203",
  resourceNotFound: "0x8006088a",
  concurrencyVersionMismatch: "0x80060882",
  stringTooLong: "0x80044331",
  badRequest: "0x80060888",
  payloadError: "0x80048d19",
  privilegeDenied: "0x80040220",
  notSupported: "0x80040216",
  unexpected: "0x80040216",
} as const;

/** Messages longer than this are cut. */
export const MAX_MESSAGE_LENGTH = 2000;

export class ODataError extends Error {
  override name = "ODataError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    // The last bound on what a message can echo; the values in it are cut shorter where they are quoted.
    super(message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH)}…` : message);
  }

  /** The same error, its message saying where it happened (`Targets[3]: …`). */
  at(where: string): ODataError {
    return new ODataError(this.status, this.code, `${where}: ${this.message}`, this.headers);
  }

  /** The same error with more response headers. */
  withHeaders(headers: Record<string, string>): ODataError {
    return new ODataError(this.status, this.code, this.message, { ...this.headers, ...headers });
  }

  toBody(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export const badRequest = (message: string, code: string = ErrorCodes.generic) => new ODataError(400, code, message);

export const resourceNotFound = (segment: string) =>
  new ODataError(404, ErrorCodes.resourceNotFound, `Resource not found for the segment '${segment}'.`);

export const methodNotAllowed = (method: string, resource: string, allowed: readonly string[]) =>
  new ODataError(
    405,
    ErrorCodes.notSupported,
    `The HTTP method '${method}' is not supported by '${resource}'. Supported: ${allowed.join(", ")}.`,
    { allow: allowed.join(", ") },
  );
