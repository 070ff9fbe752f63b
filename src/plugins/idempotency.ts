/**
 * Idempotent retries: a write sent with an `Idempotency-Key` header is done once; the same
 * key again (same method and URL) gets the first answer replayed, with
 * `Idempotency-Replayed: true`, and creates no second row. A client that timed out can
 * therefore retry safely.
 *
 * Keys live in this process's memory for IDEMPOTENCY_TTL_MS, at most IDEMPOTENCY_MAX_KEYS
 * of them holding at most IDEMPOTENCY_MAX_BYTES of answers (the oldest go first): a
 * bounded cache, not a ledger; a restart forgets them. In memory rather than in a table
 * because a write and its key would otherwise need one transaction through every write
 * path (group commit included); that is the next step should keys have to survive restarts.
 * Only answers below 500 are kept (a 503 or 500 leaves the key free for the retry). A
 * retry that arrives while the first is still running gets 409 with Retry-After.
 * Self-contained (hooks only), so the OData request handler knows nothing of it.
 */
import fp from "fastify-plugin";
import { ErrorCodes, ODataError } from "../odata/errors.js";

export const IDEMPOTENCY_HEADER = "idempotency-key";

interface Stored {
  expires: number;
  /** Absent while the first request runs. */
  answer?: { status: number; headers: Record<string, string>; body: string };
}

const WRITES = new Set(["POST", "PATCH", "PUT", "DELETE"]);
const REPLAYED_HEADERS = [
  "content-type",
  "odata-entityid",
  "location",
  "etag",
  "preference-applied",
  "x-ms-correlation-request-id",
];

declare module "fastify" {
  interface FastifyRequest {
    idempotencyKey?: string;
  }
}

export const idempotencyPlugin = fp(
  async (app) => {
    const { IDEMPOTENCY_TTL_MS: ttl, IDEMPOTENCY_MAX_KEYS: maxKeys, IDEMPOTENCY_MAX_BYTES: maxBytes } = app.config;
    // A Map keeps insertion order: its first entries are the oldest.
    const keys = new Map<string, Stored>();
    let bytes = 0;
    const forget = (key: string) => {
      bytes -= keys.get(key)?.answer?.body.length ?? 0;
      keys.delete(key);
    };
    const evict = (now: number) => {
      for (const [key, stored] of keys) {
        if (stored.expires > now && keys.size <= maxKeys && bytes <= maxBytes) break;
        forget(key);
      }
    };

    app.addHook("onRequest", async (request, reply) => {
      const header = request.headers[IDEMPOTENCY_HEADER];
      if (typeof header !== "string" || !header || !WRITES.has(request.method)) return;
      if (header.length > 200) {
        const error = new ODataError(
          400,
          ErrorCodes.invalidArgument,
          "The Idempotency-Key header is longer than 200 characters.",
        );
        return reply.code(400).send(error.toBody());
      }
      const key = `${request.method} ${request.url} ${header}`;
      const now = Date.now();
      evict(now);
      const stored = keys.get(key);
      if (stored && stored.expires > now) {
        if (!stored.answer) {
          const error = new ODataError(
            409,
            ErrorCodes.generic,
            "A request with this Idempotency-Key is still in progress; retry after it finishes.",
          );
          return reply.code(409).header("retry-after", "1").send(error.toBody());
        }
        return reply
          .code(stored.answer.status)
          .headers(stored.answer.headers)
          .header("idempotency-replayed", "true")
          .send(stored.answer.body);
      }
      keys.set(key, { expires: now + ttl });
      request.idempotencyKey = key;
    });

    app.addHook("onSend", async (request, reply, payload) => {
      const key = request.idempotencyKey;
      if (!key) return payload;
      if (
        reply.statusCode >= 500 ||
        (payload !== null && payload !== undefined && typeof payload !== "string" && !Buffer.isBuffer(payload))
      ) {
        forget(key);
        return payload;
      }
      const headers: Record<string, string> = {};
      for (const name of REPLAYED_HEADERS) {
        const value = reply.getHeader(name);
        if (value !== undefined) headers[name] = String(value);
      }
      const body = payload === null || payload === undefined ? "" : String(payload);
      forget(key);
      keys.set(key, { expires: Date.now() + ttl, answer: { status: reply.statusCode, headers, body } });
      bytes += body.length;
      evict(Date.now());
      return payload;
    });

    // A request that fails before onSend (client gone) frees its key.
    app.addHook("onResponse", async (request) => {
      const key = request.idempotencyKey;
      if (key && keys.has(key) && !keys.get(key)?.answer) forget(key);
    });
  },
  { name: "idempotency" },
);
