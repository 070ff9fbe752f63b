/** What an OData request answers, as plain data: the HTTP route and `$batch` parts send it alike. */
export interface ODataResponse {
  status: number;
  headers: Record<string, string>;
  /** JSON (an object), text (a string) or nothing. */
  body?: unknown;
}
