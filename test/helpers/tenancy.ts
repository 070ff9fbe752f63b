/**
 * For the identity tests (roles, organisations): a Web API client bound to a bearer token
 * and an organisation's path prefix, `$batch` bodies and their parsed responses, and the
 * Dataverse privilege refusal.
 */
import type { LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import type { TestApp } from "./app.js";
import { INJECT_BASE, bearer } from "./identity.js";
import { type Body, type Headers, PRIVILEGE_DENIED, ROOT } from "./records.js";

const CRLF = "\r\n";

export interface ApiClient {
  /** The API root under the prefix, as the requests use it. */
  root: string;
  get(path: string, headers?: Headers): Promise<LightMyRequestResponse>;
  post(path: string, body: unknown, headers?: Headers): Promise<LightMyRequestResponse>;
  patch(path: string, body: unknown, headers?: Headers): Promise<LightMyRequestResponse>;
  del(path: string, headers?: Headers): Promise<LightMyRequestResponse>;
  /** A `$batch` of `items` (a string is a part, an array a change set), framed by `--b`. */
  batch(items: Array<string | string[]>, headers?: Headers): Promise<LightMyRequestResponse>;
  /** Any request under the prefix (for /api/admin/…). */
  inject(method: "GET" | "POST" | "PATCH" | "DELETE", url: string, body?: unknown): Promise<LightMyRequestResponse>;
}

export interface ClientOptions {
  /** `/org/<name>`: the organisation's path prefix. */
  prefix?: string;
  /** The Host header (an organisation found by its URL). */
  host?: string;
}

/** Requests with `token` (none: no Authorization header) to the organisation at `prefix` / `host`. */
export function apiClient(t: TestApp, token: string | undefined, { prefix = "", host }: ClientOptions = {}): ApiClient {
  const auth = (): Headers => ({ ...(token === undefined ? {} : bearer(token)), ...(host ? { host } : {}) });
  const send = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, body?: unknown, headers: Headers = {}) => {
    const json = body !== undefined && typeof body !== "string";
    return t.app.inject({
      method,
      url: `${prefix}${url}`,
      headers: { ...auth(), ...(json ? { "content-type": "application/json" } : {}), ...headers },
      ...(body === undefined ? {} : { payload: typeof body === "string" ? body : JSON.stringify(body) }),
    });
  };
  return {
    root: `${prefix}${ROOT}`,
    get: (path, headers) => send("GET", `${ROOT}/${path}`, undefined, headers),
    post: (path, body, headers) => send("POST", `${ROOT}/${path}`, body, headers),
    patch: (path, body, headers) => send("PATCH", `${ROOT}/${path}`, body, headers),
    del: (path, headers) => send("DELETE", `${ROOT}/${path}`, undefined, headers),
    batch: (items, headers = {}) =>
      send("POST", `${ROOT}/$batch`, batchBody(items), { "content-type": "multipart/mixed; boundary=b", ...headers }),
    inject: (method, url, body) => send(method, url, body),
  };
}

/** The URL an organisation is reached at through its prefix, for tokens (`tokenOf(app, p, organizationResource(…))`). */
export const organizationResource = (prefix: string) => `${INJECT_BASE}${prefix}`;

// ---------------------------------------------------------------------------
// $batch

/** One request of a `$batch` body (a relative URL resolves against the batch's root). */
export function batchRequest(method: string, url: string, body?: unknown, headers: Headers = {}): string {
  const lines = [`${method} ${url} HTTP/1.1`];
  if (body !== undefined) lines.push("Content-Type: application/json");
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push("", body === undefined ? "" : JSON.stringify(body));
  return lines.join(CRLF);
}

/** A multipart body framed by `--b`: a string is a part, an array a change set. */
export function batchBody(items: Array<string | string[]>): string {
  const part = (request: string, contentId?: number) =>
    [
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      ...(contentId ? [`Content-ID: ${contentId}`] : []),
      "",
      request,
    ].join(CRLF);
  const chunks = items.map((item, i) => {
    if (typeof item === "string") return `--b${CRLF}${part(item)}`;
    const cs = `changeset_${i}`;
    const inner = item.map((r, j) => `--${cs}${CRLF}${part(r, j + 1)}`).join(CRLF);
    return `--b${CRLF}Content-Type: multipart/mixed; boundary=${cs}${CRLF}${CRLF}${inner}${CRLF}--${cs}--`;
  });
  return `${chunks.join(CRLF)}${CRLF}--b--${CRLF}`;
}

export interface BatchPart {
  status: number;
  headers: Record<string, string>;
  /** The part's JSON body, if any. */
  json?: Body;
}

/** The responses of a `$batch` response body, in order (a failed change set has its failing part only). */
export function batchParts(res: LightMyRequestResponse): BatchPart[] {
  const parts: BatchPart[] = [];
  const pattern = /HTTP\/1\.1 (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n([^\r\n]*)(?=\r\n--)/g;
  for (const match of res.body.matchAll(pattern)) {
    const headers = Object.fromEntries(
      match[2]!
        .split(CRLF)
        .filter(Boolean)
        .map((line) => {
          const colon = line.indexOf(":");
          return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
        }),
    );
    const text = match[3]!;
    parts.push({ status: Number(match[1]), headers, ...(text ? { json: JSON.parse(text) as Body } : {}) });
  }
  return parts;
}

// ---------------------------------------------------------------------------
// Refusals

/** The body of an error response, `{ code, message }`. */
export function errorOf(res: LightMyRequestResponse | BatchPart): { code: string; message: string } {
  const body = "statusCode" in res ? res.json<Body>() : res.json;
  return (body as { error: { code: string; message: string } }).error;
}

/** Dataverse's PrivilegeDenied for `privilege` (prvCreatemsdyn_kpieventdata) on `entity`. */
export function expectPrivilegeDenied(
  res: LightMyRequestResponse | BatchPart,
  privilege: string,
  entity: string,
  principalId?: string,
): void {
  const status = "statusCode" in res ? res.statusCode : res.status;
  const text = "statusCode" in res ? res.body : JSON.stringify(res.json);
  expect(status, text).toBe(403);
  const error = errorOf(res);
  expect(error.code).toBe(PRIVILEGE_DENIED);
  expect(error.message).toContain(`is missing ${privilege} privilege for entity '${entity}'`);
  if (principalId) expect(error.message).toContain(`Principal user (Id=${principalId}, type=8`);
}

/** A refusal by a channel provider's row scope: 403 0x80040220 naming the caller's provider. */
export function expectOutOfScope(res: LightMyRequestResponse | BatchPart, providerId: string): void {
  const status = "statusCode" in res ? res.statusCode : res.status;
  const text = "statusCode" in res ? res.body : JSON.stringify(res.json);
  expect(status, text).toBe(403);
  const error = errorOf(res);
  expect(error.code).toBe(PRIVILEGE_DENIED);
  expect(error.message).toContain(`bound to msdyn_ciprovider ${providerId}`);
}

/** The GUID at the end of a 204 create's OData-EntityId. */
export function createdIdOf(res: LightMyRequestResponse): string {
  expect(res.statusCode, res.body).toBe(204);
  const match = /\(([0-9a-f-]{36})\)$/.exec(String(res.headers["odata-entityid"]));
  expect(match, String(res.headers["odata-entityid"])).not.toBeNull();
  return match![1]!;
}
