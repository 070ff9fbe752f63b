/**
 * Idempotent retries: a write sent with an `Idempotency-Key` header is done once; the same
 * key again (same principal, method and URL) gets the first answer replayed, with
 * `Idempotency-Replayed: true`, and creates no second row. A client that timed out can
 * therefore retry safely, across restarts of the service too.
 *
 * Keys live in the organisation's own database (`cif_idempotencykey`, src/model/tables.ts)
 * for IDEMPOTENCY_TTL_MS:
 * - the key is claimed (a committed row, no answer yet) before the write runs, so no write
 *   can exist without its key, and two servers cannot both run it;
 * - its answer is stored before it is sent, so a replay after a restart gets it;
 * - a crash between the write's commit and storing the answer leaves a claim without an
 *   answer. Whether its write committed is then told by the request's Audit record, which
 *   commits in the write's own transaction on every write path (issue 12): committed, the
 *   retry gets 409 (done, its answer lost; nothing is done twice); not committed, the retry
 *   takes the claim over and runs. Without the audit log (AUDIT_LOG=off), and for `$batch`
 *   (whose parts commit records of their own), nothing tells, so such a key answers 409
 *   until it expires.
 * Only answers below 500 are kept (a 503 or 500 frees the key for the retry). A retry that
 * arrives while the first is still running gets 409 with Retry-After; a claim older than
 * IDEMPOTENCY_PENDING_MS with no answer counts as abandoned (its server has gone).
 * Self-contained (hooks only), so the OData request handler knows nothing of it.
 */
import { createHash, randomUUID } from "node:crypto";
import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { Queryable } from "../db/transactions.js";
import { INTERNAL_TABLES, LOG_TABLES } from "../model/tables.js";
import { ErrorCodes, ODataError } from "../odata/errors.js";

export const IDEMPOTENCY_HEADER = "idempotency-key";

const WRITES = new Set(["POST", "PATCH", "PUT", "DELETE"]);
const REPLAYED_HEADERS = [
  "content-type",
  "odata-entityid",
  "location",
  "etag",
  "preference-applied",
  "x-ms-correlation-request-id",
];
const KEYS = INTERNAL_TABLES.IdempotencyKey.logicalName;
const AUDIT = LOG_TABLES.Audit;
/** Expired keys deleted per purge statement; a purge runs at most once a minute per database. */
const PURGE_BATCH = 1000;
const PURGE_EVERY_MS = 60_000;

interface Claim {
  db: Queryable;
  id: string;
  settled: boolean;
}

interface StoredKey {
  id: string;
  status: number | null;
  headers: string | null;
  body: string | null;
  requestevent: string | null;
  instanceid: string;
  pending_ms: number;
}

declare module "fastify" {
  interface FastifyRequest {
    idempotencyClaim?: Claim;
  }
}

const conflict = (message: string) => new ODataError(409, ErrorCodes.generic, message);

export const idempotencyPlugin = fp(
  async (app) => {
    const { IDEMPOTENCY_TTL_MS: ttl, IDEMPOTENCY_PENDING_MS: pendingMs, IDEMPOTENCY_MAX_ANSWER_BYTES: maxBytes } = app.config;
    const auditOn = app.config.AUDIT_LOG === "on";
    // This process's claims: those still running here are never taken over.
    const instance = randomUUID();
    const running = new Set<string>();
    const purgedAt = new WeakMap<Queryable, number>();

    const purge = (db: Queryable) => {
      const now = Date.now();
      if ((purgedAt.get(db) ?? 0) > now - PURGE_EVERY_MS) return;
      purgedAt.set(db, now);
      db.query(
        `DELETE FROM ${KEYS} WHERE cif_idempotencykeyid IN (SELECT cif_idempotencykeyid FROM ${KEYS} WHERE expireson < now() LIMIT ${PURGE_BATCH})`,
      ).catch((error: unknown) => app.log.debug({ err: error }, "idempotency key purge failed"));
    };

    /** Claims the key for this request: a new row, or an expired or abandoned one taken over. */
    async function claim(db: Queryable, keyHash: string, requestEvent: string | null): Promise<string | StoredKey> {
      const claimed = await db.query<{ id: string }>(
        `INSERT INTO ${KEYS} (keyhash, requestevent, instanceid, expireson)
         VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
         ON CONFLICT (keyhash) DO UPDATE
           SET cif_idempotencykeyid = gen_random_uuid(), requestevent = EXCLUDED.requestevent, instanceid = EXCLUDED.instanceid,
               status = NULL, headers = NULL, body = NULL, bodybytes = NULL, createdon = now(), expireson = EXCLUDED.expireson
           WHERE ${KEYS}.expireson <= now()
         RETURNING cif_idempotencykeyid AS id`,
        [keyHash, requestEvent, instance, ttl],
      );
      if (claimed.rows[0]) return claimed.rows[0].id;
      const { rows } = await db.query<StoredKey>(
        `SELECT cif_idempotencykeyid AS id, status, headers, body, requestevent, instanceid,
                (extract(epoch FROM now() - createdon) * 1000)::float8 AS pending_ms
           FROM ${KEYS} WHERE keyhash = $1`,
        [keyHash],
      );
      // Gone between the two statements (expired and purged): claim it anew.
      return rows[0] ?? claim(db, keyHash, requestEvent);
    }

    /** Whether the write of an abandoned claim committed (its request's Audit record did), if that can be known. */
    async function committed(db: Queryable, stored: StoredKey): Promise<boolean | undefined> {
      if (!auditOn || !stored.requestevent) return undefined;
      const { rowCount } = await db.query(`SELECT 1 FROM ${AUDIT.logicalName} WHERE ${AUDIT.primaryKey} = $1`, [
        stored.requestevent,
      ]);
      return (rowCount ?? 0) > 0;
    }

    async function takeOver(db: Queryable, stored: StoredKey, requestEvent: string | null): Promise<string | undefined> {
      const { rows } = await db.query<{ id: string }>(
        `UPDATE ${KEYS} SET cif_idempotencykeyid = gen_random_uuid(), requestevent = $2, instanceid = $3, createdon = now()
          WHERE cif_idempotencykeyid = $1 AND status IS NULL
          RETURNING cif_idempotencykeyid AS id`,
        [stored.id, requestEvent, instance],
      );
      return rows[0]?.id;
    }

    const keyHashOf = (request: FastifyRequest, key: string) =>
      createHash("sha256")
        .update(
          JSON.stringify([request.identity?.organization.id, request.identity?.principalId, request.method, request.url, key]),
        )
        .digest("hex");

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
      // Only requests of an organisation (its database holds the keys) have them.
      if (!request.identity || !request.odata) return;
      const db = request.odata.db;
      // A $batch's writes commit its parts' records, not the request's own: its claim cannot
      // learn from the audit log whether a part was stored, so none is recorded.
      const isBatch = /\/\$batch(\?|$)/.test(request.url);
      const requestEvent = isBatch ? null : (request.audit?.draft().eventId ?? null);
      purge(db);
      const keyHash = keyHashOf(request, header);
      let outcome = await claim(db, keyHash, requestEvent);
      if (typeof outcome !== "string") {
        const stored = outcome;
        if (stored.status !== null) {
          if (stored.body === null) {
            const error = conflict(
              "The request with this Idempotency-Key was done, but its answer was too large to keep: read the records back instead of retrying it.",
            );
            return reply.code(409).send(error.toBody());
          }
          return reply
            .code(stored.status)
            .headers(JSON.parse(stored.headers ?? "{}") as Record<string, string>)
            .header("idempotency-replayed", "true")
            .send(stored.body);
        }
        const abandoned = !running.has(stored.id) && (stored.instanceid === instance || stored.pending_ms > pendingMs);
        if (!abandoned) {
          const error = conflict("A request with this Idempotency-Key is still in progress; retry after it finishes.");
          return reply.code(409).header("retry-after", "1").send(error.toBody());
        }
        const wrote = await committed(db, stored);
        if (wrote !== false) {
          const error = conflict(
            wrote
              ? "The request with this Idempotency-Key was stored, but its answer was lost (the server stopped before sending it): read the records back instead of retrying it."
              : "The request with this Idempotency-Key did not finish, and whether it was stored cannot be told (no Audit record tells: AUDIT_LOG=off, or a $batch): read the records back instead of retrying it.",
          );
          return reply.code(409).send(error.toBody());
        }
        const taken = await takeOver(db, stored, requestEvent);
        if (!taken) {
          const error = conflict("A request with this Idempotency-Key is still in progress; retry after it finishes.");
          return reply.code(409).header("retry-after", "1").send(error.toBody());
        }
        outcome = taken;
      }
      running.add(outcome);
      request.idempotencyClaim = { db, id: outcome, settled: false };
    });

    app.addHook("onSend", async (request, reply, payload) => {
      const claimOf = request.idempotencyClaim;
      if (!claimOf || claimOf.settled) return payload;
      claimOf.settled = true;
      running.delete(claimOf.id);
      if (reply.statusCode >= 500) {
        await claimOf.db
          .query(`DELETE FROM ${KEYS} WHERE cif_idempotencykeyid = $1`, [claimOf.id])
          .catch((error: unknown) => app.log.warn({ err: error }, "could not free an Idempotency-Key"));
        return payload;
      }
      const headers: Record<string, string> = {};
      for (const name of REPLAYED_HEADERS) {
        const value = reply.getHeader(name);
        if (value !== undefined) headers[name] = String(value);
      }
      const text =
        payload === null || payload === undefined
          ? ""
          : typeof payload === "string" || Buffer.isBuffer(payload)
            ? String(payload)
            : undefined;
      const bytes = text === undefined ? undefined : Buffer.byteLength(text);
      const body = bytes !== undefined && bytes <= maxBytes ? text : null;
      // Stored before the answer goes: a replay after a restart finds it. If it cannot be
      // stored the answer still goes (the write is done); the claim stays unanswered, and the
      // audit log later tells a retry that it was stored.
      await claimOf.db
        .query(
          `UPDATE ${KEYS} SET status = $2, headers = $3, body = $4, bodybytes = $5, expireson = now() + $6 * interval '1 millisecond'
            WHERE cif_idempotencykeyid = $1`,
          [claimOf.id, reply.statusCode, JSON.stringify(headers), body, bytes ?? null, ttl],
        )
        .catch((error: unknown) => app.log.warn({ err: error }, "could not store the answer of an Idempotency-Key"));
      return payload;
    });

    // A request whose response ended before its answer was stored (its client gone) keeps
    // its claim; its handler may still be writing, so only after IDEMPOTENCY_PENDING_MS does
    // a retry here learn from the audit log whether it wrote.
    app.addHook("onResponse", async (request) => {
      const claimOf = request.idempotencyClaim;
      if (claimOf && !claimOf.settled) setTimeout(() => running.delete(claimOf.id), pendingMs).unref();
    });
  },
  { name: "idempotency" },
);
