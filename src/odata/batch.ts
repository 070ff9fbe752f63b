/**
 * `$batch` bodies (multipart/mixed, shared/reference/dataverse-webapi.md §6): parsing
 * into requests and change sets, and writing the response in the layout the
 * dynamics-web-api client parses. Pure; execution lives in the batch route.
 */
import { randomUUID } from "node:crypto";
import { ErrorCodes, ODataError } from "./errors.js";

export interface BatchRequest {
  method: string;
  /** As written on the request line: absolute, `/api/data/…`, relative, or `$n/…`. */
  url: string;
  headers: Record<string, string>;
  /** Raw body text ("" when none). */
  body: string;
  contentId?: string;
}

export type BatchItem = { kind: "request"; request: BatchRequest } | { kind: "changeSet"; requests: BatchRequest[] };

export interface BatchResponsePart {
  status: number;
  headers: Record<string, string>;
  body?: string;
  contentId?: string;
}

export type BatchResponseItem =
  { kind: "response"; response: BatchResponsePart } | { kind: "changeSet"; responses: BatchResponsePart[] };

export const MAX_BATCH_OPERATIONS = 1000;

const malformed = (message: string) => new ODataError(400, ErrorCodes.payloadError, `The $batch body is not valid: ${message}`);

export function boundaryOf(contentType: string | undefined): string {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  if (!contentType?.toLowerCase().startsWith("multipart/mixed") || !match) {
    throw malformed("the Content-Type must be multipart/mixed with a boundary parameter.");
  }
  return (match[1] ?? match[2])!;
}

/** Splits a multipart body into its parts (each part's text, headers included). */
function splitParts(body: string, boundary: string, where: string): string[] {
  const delimiter = `--${boundary}`;
  // LF-only framing is refused, as Dataverse refuses it.
  if (body.includes(`\n${delimiter}`) && !body.includes(`\r\n${delimiter}`)) {
    throw malformed(`${where} must use CRLF line endings.`);
  }
  const lines = body.split("\r\n");
  const parts: string[] = [];
  let current: string[] | undefined;
  let closed = false;
  for (const line of lines) {
    if (line.trimEnd() === `${delimiter}--`) {
      if (current) parts.push(current.join("\r\n"));
      closed = true;
      break;
    }
    if (line.trimEnd() === delimiter) {
      if (current) parts.push(current.join("\r\n"));
      current = [];
      continue;
    }
    current?.push(line);
  }
  if (!closed) throw malformed(`${where} has no closing delimiter '${delimiter}--'.`);
  if (parts.length === 0) throw malformed(`${where} holds no parts.`);
  return parts;
}

/** Splits `text` at its first blank line into headers (lower-case names) and the rest. */
function splitHeaders(text: string): { headers: Record<string, string>; rest: string; firstLine?: string } {
  const end = text.indexOf("\r\n\r\n");
  const head = end < 0 ? text : text.slice(0, end);
  const rest = end < 0 ? "" : text.slice(end + 4);
  const headers: Record<string, string> = {};
  for (const line of head.split("\r\n")) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    if (colon < 0) throw malformed(`the header line '${line}' has no ':'.`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, rest };
}

function parseHttpPart(text: string, index: string): BatchRequest {
  const { headers: partHeaders, rest } = splitHeaders(text.replace(/^(\r\n)+/, ""));
  if (!(partHeaders["content-type"] ?? "").toLowerCase().startsWith("application/http")) {
    throw malformed(`part ${index} must have Content-Type: application/http (or be a multipart/mixed change set).`);
  }
  const lineEnd = rest.indexOf("\r\n");
  const requestLine = (lineEnd < 0 ? rest : rest.slice(0, lineEnd)).trim();
  const match = /^(GET|POST|PATCH|PUT|DELETE)\s+(\S+)(?:\s+HTTP\/1\.[01])?$/.exec(requestLine);
  if (!match)
    throw malformed(
      `part ${index} does not start with a request line such as 'POST /api/data/v9.2/msdyn_conversationsdata HTTP/1.1' (got '${requestLine}').`,
    );
  const { headers, rest: body } = splitHeaders(lineEnd < 0 ? "" : rest.slice(lineEnd + 2));
  return {
    method: match[1]!,
    url: match[2]!,
    headers,
    // Clients add CRLFs after a body; they are framing, not data.
    body: body.replace(/(\r\n)+$/, "").trim(),
    contentId: partHeaders["content-id"] ?? headers["content-id"],
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The length of the longest prefix of `bytes` with no invalid UTF-8 sequence (a sequence cut at its end is not one). */
function validUtf8Length(bytes: Uint8Array): number {
  const valid = (n: number) => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  let low = 0;
  let high = bytes.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (valid(mid)) low = mid;
    else high = mid - 1;
  }
  return low;
}

/**
 * The part (`2`, or `3.1` inside a change set) that holds the character at `position`,
 * by the same framing splitParts reads: delimiter lines, and a change set's own boundary.
 */
function partAt(body: string, boundary: string, position: number): string | undefined {
  let offset = 0;
  let part = 0;
  let inner: { boundary?: string; inHeaders: boolean; seenHeader: boolean; index: number } | undefined;
  for (const line of body.split("\r\n")) {
    if (offset > position) break;
    offset += line.length + 2;
    const trimmed = line.trimEnd();
    if (trimmed === `--${boundary}--`) return undefined;
    if (trimmed === `--${boundary}`) {
      part++;
      inner = { inHeaders: true, seenHeader: false, index: 0 };
      continue;
    }
    if (!inner) continue;
    if (inner.inHeaders) {
      // Blank lines before a part's headers are framing (parseBatch skips them too).
      if (line === "") inner.inHeaders = !inner.seenHeader;
      inner.seenHeader ||= line !== "";
      const type = /^content-type:\s*multipart\/mixed.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(line);
      if (type) inner.boundary = type[1] ?? type[2];
      continue;
    }
    if (inner.boundary && trimmed === `--${inner.boundary}`) inner.index++;
  }
  if (!part) return undefined;
  return inner?.boundary && inner.index ? `${part}.${inner.index}` : String(part);
}

/**
 * A `$batch` body's bytes as text. Invalid UTF-8 is a 400 naming the part that holds it,
 * as a top-level body's is, instead of text with replacement characters.
 */
export function decodeBatchBody(bytes: Uint8Array, contentType: string | undefined): string {
  try {
    return utf8.decode(bytes);
  } catch {
    const at = validUtf8Length(bytes);
    const text = new TextDecoder("utf-8").decode(bytes);
    // The replaced text keeps the valid prefix as it is, so the bad byte is at the prefix's length.
    const position = new TextDecoder("utf-8").decode(bytes.subarray(0, at), { stream: true }).length;
    let part: string | undefined;
    try {
      part = partAt(text, boundaryOf(contentType), position);
    } catch {
      part = undefined;
    }
    throw malformed(
      `${part ? `part ${part}` : "the batch, outside its parts,"} is not valid UTF-8 (an invalid byte at offset ${at} of the body).`,
    );
  }
}

export function parseBatch(body: string, contentType: string | undefined): BatchItem[] {
  const boundary = boundaryOf(contentType);
  const items: BatchItem[] = [];
  splitParts(body, boundary, "the batch").forEach((part, i) => {
    const trimmed = part.replace(/^(\r\n)+/, "");
    const { headers, rest } = splitHeaders(trimmed);
    const type = headers["content-type"] ?? "";
    if (type.toLowerCase().startsWith("multipart/mixed")) {
      const requests = splitParts(rest, boundaryOf(type), `change set ${i + 1}`).map((p, j) =>
        parseHttpPart(p, `${i + 1}.${j + 1}`),
      );
      for (const request of requests) {
        if (request.method === "GET") throw malformed(`change set ${i + 1} contains a GET; GET requests go outside change sets.`);
      }
      items.push({ kind: "changeSet", requests });
    } else {
      items.push({ kind: "request", request: parseHttpPart(trimmed, String(i + 1)) });
    }
  });
  const operations = items.reduce((n, item) => n + (item.kind === "request" ? 1 : item.requests.length), 0);
  if (operations > MAX_BATCH_OPERATIONS) {
    throw new ODataError(
      400,
      ErrorCodes.badRequest,
      `The $batch holds ${operations} operations; at most ${MAX_BATCH_OPERATIONS} are allowed.`,
    );
  }
  return items;
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  412: "Precondition Failed",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
  501: "Not Implemented",
};

function writePart(response: BatchResponsePart): string {
  const lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"];
  if (response.contentId !== undefined) lines.push(`Content-ID: ${response.contentId}`);
  lines.push("", `HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? "Unknown"}`);
  for (const [name, value] of Object.entries(response.headers)) lines.push(`${name}: ${value}`);
  lines.push("", response.body ?? "");
  return lines.join("\r\n");
}

/** Returns the multipart body and its Content-Type. */
export function writeBatchResponse(items: BatchResponseItem[]): { body: string; contentType: string } {
  const boundary = `batchresponse_${randomUUID()}`;
  const chunks: string[] = [];
  for (const item of items) {
    if (item.kind === "response") {
      chunks.push(`--${boundary}\r\n${writePart(item.response)}`);
      continue;
    }
    const inner = `changesetresponse_${randomUUID()}`;
    const parts = item.responses.map((r) => `--${inner}\r\n${writePart(r)}`).join("\r\n");
    chunks.push(`--${boundary}\r\nContent-Type: multipart/mixed; boundary=${inner}\r\n\r\n${parts}\r\n--${inner}--`);
  }
  return { body: `${chunks.join("\r\n")}\r\n--${boundary}--\r\n`, contentType: `multipart/mixed; boundary=${boundary}` };
}
