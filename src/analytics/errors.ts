/**
 * Errors of the analytics API in Genesys Cloud's shape: `{message, code, status,
 * messageParams, contextId, details, errors}`. The error handler fills `contextId` with the
 * request's correlation id and turns the identity layer's refusals (401, 403, 429, 503)
 * into this shape too, for paths under /api/v2/.
 */

export interface GenesysErrorBody {
  message: string;
  code: string;
  status: number;
  messageParams: Record<string, string>;
  contextId: string;
  details: { errorCode?: string; fieldName?: string; entityId?: string; entityName?: string }[];
  errors: GenesysErrorBody[];
}

export class AnalyticsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly messageParams: Record<string, string> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(contextId: string): GenesysErrorBody {
    const field = this.messageParams.field;
    return {
      message: this.message,
      code: this.code,
      status: this.status,
      messageParams: this.messageParams,
      contextId,
      details: field ? [{ errorCode: this.code, fieldName: field }] : [],
      errors: [],
    };
  }
}

/** A 400; `messageParams.field` names the field at fault (also given as `details[0].fieldName`). */
export const analyticsBadRequest = (message: string, messageParams: { field?: string } = {}) =>
  new AnalyticsError(400, "bad.request", message, messageParams);

export const analyticsNotFound = (message: string) => new AnalyticsError(404, "not.found", message);

/** Genesys' code for a status, for refusals made before the analytics code runs. */
export function genesysCodeOf(status: number): string {
  switch (status) {
    case 400:
      return "bad.request";
    case 401:
      return "authentication.required";
    case 403:
      return "missing.any.permissions";
    case 404:
      return "not.found";
    case 405:
      return "method.not.allowed";
    case 413:
      return "request.entity.too.large";
    case 415:
      return "unsupported.media.type";
    case 429:
      return "too.many.requests";
    case 503:
      return "service.unavailable";
    default:
      return status >= 500 ? "internal.server.error" : "bad.request";
  }
}
