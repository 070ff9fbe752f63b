/**
 * `POST /api/data/v9.x/$batch`: runs each part through the same OData pipeline as a
 * plain request. A change set is one transaction (any failure rolls it all back);
 * `Content-ID` references (`$1`) resolve to the URLs of rows created earlier in it.
 * Without `Prefer: odata.continue-on-error` the first failure ends the batch (400).
 */
import type { FastifyPluginAsync } from "fastify";
import { ErrorCodes, ODataError, badRequest } from "../http/errors.js";
import { assertJsonDepth } from "../plugins/json-body.js";
import { assertApiVersion, serviceRoot } from "../http/service-root.js";
import { type BatchRequest, type BatchResponseItem, type BatchResponsePart, parseBatch, writeBatchResponse } from "../odata/batch.js";
import { parsePrefer } from "../odata/prefer.js";
import { type ODataRequest, type RequestContext, handleODataRequest } from "../odata/request-handler.js";
import { ODATA_JSON } from "../plugins/odata-headers.js";
import { requestContexts } from "./entity-sets.js";

/** Thrown inside a change set to roll it back while keeping the failing part's response. */
class ChangeSetFailed extends Error {
  constructor(readonly response: BatchResponsePart) {
    super("change set failed");
  }
}

const API_PATH = /^(?:https?:\/\/[^/]+)?\/api\/data\/(v9\.\d)\/(.*)$/;

export const batchRoutes: FastifyPluginAsync = async (app) => {
  // The body stays text: the multipart parser works on it.
  app.addContentTypeParser("multipart/mixed", { parseAs: "string" }, (_request, body, done) => done(null, body));

  app.post<{ Params: { version: string } }>("/$batch", { schema: { hide: true } }, async (request, reply) => {
    const { version } = request.params;
    assertApiVersion(version);
    if (typeof request.body !== "string") {
      throw badRequest("A $batch request needs Content-Type: multipart/mixed; boundary=… and a body.", ErrorCodes.payloadError);
    }
    const items = parseBatch(request.body, request.headers["content-type"]);
    const continueOnError = parsePrefer(request.headers.prefer).continueOnError;
    const origin = `${request.protocol}://${request.host}`;
    const defaultRoot = serviceRoot(request, version);
    const contexts = requestContexts(app);

    /** Resolves a part's URL (absolute, /api/data/…, relative or `$n/…`) to a root and a target. */
    const resolve = (url: string, references: Map<string, string>): { root: string; target: string } => {
      let resolved = url;
      const reference = /^\$(\w+)(.*)$/.exec(url);
      if (reference) {
        const entity = references.get(reference[1]!);
        if (!entity) throw badRequest(`Content-ID Reference: '$${reference[1]}' does not exist in the batch context.`, ErrorCodes.badRequest);
        resolved = `${entity}${reference[2]}`;
      }
      const match = API_PATH.exec(resolved);
      if (match) {
        assertApiVersion(match[1]!);
        return { root: `${origin}/api/data/${match[1]}/`, target: match[2]! };
      }
      if (/^https?:\/\//.test(resolved) || resolved.startsWith("/")) {
        throw badRequest(`The $batch part URL '${url}' is not under /api/data/v9.x/.`, ErrorCodes.badRequest);
      }
      return { root: defaultRoot, target: resolved };
    };

    /** Replaces `"$n"` string values (e.g. in @odata.bind) with the referenced row's URL. */
    const substitute = (value: unknown, references: Map<string, string>): unknown => {
      if (typeof value === "string" && /^\$\w+$/.test(value)) return references.get(value.slice(1)) ?? value;
      if (Array.isArray(value)) return value.map((v) => substitute(v, references));
      if (value && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, references)]));
      }
      return value;
    };

    const execute = async (part: BatchRequest, context: RequestContext, references: Map<string, string>): Promise<BatchResponsePart> => {
      const respondWith = (error: ODataError): BatchResponsePart => ({
        status: error.status,
        headers: { "Content-Type": ODATA_JSON, "OData-Version": "4.0" },
        body: JSON.stringify(error.toBody()),
        contentId: part.contentId,
      });
      try {
        if (/\$batch(\?|$)/.test(part.url)) throw badRequest("A $batch cannot contain another $batch.", ErrorCodes.badRequest);
        const { root, target } = resolve(part.url, references);
        let body: unknown;
        if (part.body) {
          assertJsonDepth(part.body, app.config.JSON_MAX_DEPTH);
          try {
            body = substitute(JSON.parse(part.body), references);
          } catch {
            throw badRequest(`The body of the $batch part '${part.method} ${part.url}' is not valid JSON.`, ErrorCodes.payloadError);
          }
        }
        // A logger of its own per part: an action's bindings (its correlation id) stay on its lines.
        const log = request.log.child({ batchPart: part.contentId ?? part.url });
        const odataRequest: ODataRequest = { method: part.method, target, headers: part.headers, body, root, log };
        const response = await handleODataRequest(odataRequest, context);
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
        if (error instanceof ODataError) return respondWith(error);
        throw error;
      }
    };

    const results: BatchResponseItem[] = [];
    let failed = false;
    for (const item of items) {
      if (failed && !continueOnError) break;
      if (item.kind === "request") {
        const response = await execute(item.request, contexts.standalone, new Map());
        results.push({ kind: "response", response });
        failed ||= response.status >= 400;
        continue;
      }
      try {
        const responses = await contexts.inTransaction(async (context) => {
          const references = new Map<string, string>();
          const done: BatchResponsePart[] = [];
          for (const part of item.requests) {
            const response = await execute(part, context, references);
            if (response.status >= 400) throw new ChangeSetFailed(response);
            done.push(response);
          }
          return done;
        });
        results.push({ kind: "changeSet", responses });
      } catch (error) {
        if (!(error instanceof ChangeSetFailed)) throw error;
        // The set was rolled back: only its failing response is reported.
        results.push({ kind: "changeSet", responses: [error.response] });
        failed = true;
      }
    }

    const { body, contentType } = writeBatchResponse(results);
    return reply
      .code(failed && !continueOnError ? 400 : 200)
      .header("content-type", contentType)
      .send(body);
  });
};
