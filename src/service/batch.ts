/**
 * `$batch` orchestration: runs each part through the same OData pipeline as a plain
 * request. A change set is one transaction (any failure rolls it all back); `Content-ID`
 * references (`$1`) resolve to the URLs of rows created earlier in it. Without
 * `Prefer: odata.continue-on-error` the first failure ends the batch (400). Every part is
 * observed on its own (received, its stages, its outcome).
 */
import { assertApiVersion } from "../odata/api-version.js";
import {
  type BatchRequest,
  type BatchResponseItem,
  type BatchResponsePart,
  parseBatch,
  writeBatchResponse,
} from "../odata/batch.js";
import { ErrorCodes, ODataError, badRequest } from "../odata/errors.js";
import { assertJsonDepth } from "../odata/json-depth.js";
import { ODATA_JSON } from "../odata/media-types.js";
import { parsePrefer } from "../odata/prefer.js";
import { type WriteAudit, insertAuditRows, settleAudits } from "../channel-analytics/write-audit.js";
import { type BatchPartRef, type Observer, forPart } from "../observe/observation.js";
import { handleODataRequest } from "./handle-request.js";
import type { ODataRequest, RequestContext } from "./odata-request.js";
import type { RequestContexts } from "./request-contexts.js";

/** Thrown inside a change set to roll it back while keeping the failing part's response. */
class ChangeSetFailed extends Error {
  constructor(readonly response: BatchResponsePart) {
    super("change set failed");
  }
}

const API_PATH = /^(?:https?:\/\/[^/]+)?\/api\/data\/(v9\.\d)\/(.*)$/;

export interface BatchInput {
  /** The multipart body. */
  body: string;
  contentType: string | undefined;
  prefer: string | undefined;
  /** `http://host`, for absolute part URLs. */
  origin: string;
  /** The root relative part URLs resolve against. */
  root: string;
  /** How deep a part's JSON body may nest (JSON_MAX_DEPTH). */
  jsonMaxDepth: number;
}

export interface BatchOutput {
  status: number;
  body: string;
  contentType: string;
}

/** Resolves a part's URL (absolute, /api/data/…, relative or `$n/…`) to a root and a target. */
function resolve(input: BatchInput, url: string, references: Map<string, string>): { root: string; target: string } {
  let resolved = url;
  const reference = /^\$(\w+)(.*)$/.exec(url);
  if (reference) {
    const entity = references.get(reference[1]!);
    if (!entity)
      throw badRequest(`Content-ID Reference: '$${reference[1]}' does not exist in the batch context.`, ErrorCodes.badRequest);
    resolved = `${entity}${reference[2]}`;
  }
  const match = API_PATH.exec(resolved);
  if (match) {
    assertApiVersion(match[1]!);
    return { root: `${input.origin}/api/data/${match[1]}/`, target: match[2]! };
  }
  if (/^https?:\/\//.test(resolved) || resolved.startsWith("/")) {
    throw badRequest(`The $batch part URL '${url}' is not under /api/data/v9.x/.`, ErrorCodes.badRequest);
  }
  return { root: input.root, target: resolved };
}

/** Replaces `"$n"` string values (e.g. in @odata.bind) with the referenced row's URL. */
function substitute(value: unknown, references: Map<string, string>): unknown {
  if (typeof value === "string" && /^\$\w+$/.test(value)) return references.get(value.slice(1)) ?? value;
  if (Array.isArray(value)) return value.map((v) => substitute(v, references));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, references)]));
  }
  return value;
}

export async function runBatch(input: BatchInput, contexts: RequestContexts, observe: Observer): Promise<BatchOutput> {
  const items = parseBatch(input.body, input.contentType);
  const continueOnError = parsePrefer(input.prefer).continueOnError;
  const { jsonMaxDepth } = input;
  let index = 0;

  const execute = async (
    part: BatchRequest,
    contextFor: (observe: Observer, ref: BatchPartRef) => RequestContext,
    references: Map<string, string>,
    changeSet?: number,
  ): Promise<BatchResponsePart & { ref: BatchPartRef }> => {
    const ref: BatchPartRef = { index: ++index, contentId: part.contentId, url: part.url, changeSet };
    const observePart = forPart(observe, ref);
    const started = performance.now();
    observePart({ kind: "received", method: part.method, target: part.url, caller: contexts.caller });
    const response = await executePart(part, contextFor(observePart, ref), references).catch((error: unknown) => {
      observePart({ kind: "outcome", status: 500, ms: performance.now() - started });
      throw error;
    });
    const errorCode = response.status >= 400 ? errorCodeOf(response.body) : undefined;
    observePart({ kind: "outcome", status: response.status, ms: performance.now() - started, errorCode });
    return { ...response, ref };
  };

  const executePart = async (
    part: BatchRequest,
    context: RequestContext,
    references: Map<string, string>,
  ): Promise<BatchResponsePart> => {
    try {
      if (/\$batch(\?|$)/.test(part.url)) throw badRequest("A $batch cannot contain another $batch.", ErrorCodes.badRequest);
      const { root, target } = resolve(input, part.url, references);
      let body: unknown;
      if (part.body) {
        assertJsonDepth(part.body, jsonMaxDepth);
        try {
          body = substitute(JSON.parse(part.body), references);
        } catch {
          throw badRequest(
            `The body of the $batch part '${part.method} ${part.url}' is not valid JSON.`,
            ErrorCodes.payloadError,
          );
        }
      }
      const request: ODataRequest = { method: part.method, target, headers: part.headers, body, root };
      const response = await handleODataRequest(request, context);
      const headers: Record<string, string> = { "OData-Version": "4.0", ...response.headers };
      if (headers["OData-EntityId"]) {
        headers.Location = headers["OData-EntityId"];
        if (part.contentId !== undefined) references.set(part.contentId, headers["OData-EntityId"]);
      }
      let text: string | undefined;
      if (typeof response.body === "string") text = response.body;
      else if (response.body !== undefined) {
        headers["Content-Type"] = `${ODATA_JSON}; odata.streaming=true`;
        text = JSON.stringify(response.body);
      }
      return { status: response.status, headers, body: text, contentId: part.contentId };
    } catch (error) {
      if (!(error instanceof ODataError)) throw error;
      return {
        status: error.status,
        headers: { "Content-Type": ODATA_JSON, "OData-Version": "4.0" },
        body: JSON.stringify(error.toBody()),
        contentId: part.contentId,
      };
    }
  };

  const results: BatchResponseItem[] = [];
  let failed = false;
  let changeSets = 0;
  for (const item of items) {
    if (failed && !continueOnError) break;
    if (item.kind === "request") {
      const response = await execute(item.request, (o, ref) => contexts.standalone(o, undefined, ref), new Map());
      results.push({ kind: "response", response });
      failed ||= response.status >= 400;
      continue;
    }
    const changeSet = ++changeSets;
    // The parts' audit records commit with the change set (src/channel-analytics/write-audit.ts).
    const audits: WriteAudit[] = [];
    try {
      const committed = contexts.inTransaction(observe, async (transactionContext) => {
        const references = new Map<string, string>();
        const done: BatchResponsePart[] = [];
        for (const part of item.requests) {
          const response = await execute(part, (o) => ({ ...transactionContext, observe: o }), references, changeSet);
          if (response.status >= 400) throw new ChangeSetFailed(response);
          done.push(response);
          const audit = contexts.auditOf(response.ref);
          if (audit) audits.push(audit);
        }
        await insertAuditRows(transactionContext.db, audits);
        return done;
      });
      const responses = await settleAudits(audits, committed);
      results.push({ kind: "changeSet", responses });
    } catch (error) {
      if (!(error instanceof ChangeSetFailed)) throw error;
      // The set was rolled back: only its failing response is reported.
      results.push({ kind: "changeSet", responses: [error.response] });
      failed = true;
    }
  }

  const { body, contentType } = writeBatchResponse(results);
  return { status: failed && !continueOnError ? 400 : 200, body, contentType };
}

function errorCodeOf(body: string | undefined): string | undefined {
  try {
    return (JSON.parse(body ?? "") as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
