/** Configuration from the environment, validated once at start-up. */
import { availableParallelism } from "node:os";
import { z } from "zod";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const ConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, "must be a postgres:// or postgresql:// URL")
    .optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  BODY_LIMIT: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  /** Where the embedded PostgreSQL keeps its cluster when DATABASE_URL is not set. */
  DATA_DIR: z.string().min(1).default(".data"),
  /**
   * PostgreSQL connections in the pool. Twice the cores: more connections than the
   * database can run at once only queue inside it (on 2 cores, 4 beat 20 in \`npm run bench\`).
   */
  DB_POOL_SIZE: z.coerce
    .number()
    .int()
    .positive()
    .max(1000)
    .default(2 * availableParallelism()),
  /**
   * How many batches of new KPI events, and of msdyn_InitLogAnalytics upserts, may be in
   * the database at once (group commit, src/db/group-commit.ts); while they are, what
   * arrives waits and goes in with the next batch.
   */
  INGEST_BATCHES_IN_FLIGHT: z.coerce.number().int().positive().max(64).default(1),
  /** Most records one CreateMultiple / UpdateMultiple / UpsertMultiple request may carry in `Targets`. */
  BULK_MAX_TARGETS: z.coerce.number().int().positive().default(1000),
  /** Milliseconds to wait for a new PostgreSQL connection before giving up on it (then 503). */
  DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
  /** PostgreSQL statement_timeout for the service's connections, in milliseconds (0 = none). */
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
  /** How long start-up keeps retrying an unreachable database, in milliseconds, before it exits. */
  DB_STARTUP_WAIT_MS: z.coerce.number().int().min(0).default(60_000),
  /** Seconds a client is told to wait (Retry-After) when the database is unreachable or the server is overloaded. */
  RETRY_AFTER_SECONDS: z.coerce.number().int().positive().default(5),
  /** Milliseconds a whole request (headers and body) may take to arrive; a dribbled body is cut off with 408. */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  /** Milliseconds the request headers may take to arrive (slowloris). */
  HEADERS_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Milliseconds an idle socket may stay open (Node's server.timeout; also ends stalled uploads). */
  CONNECTION_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  /** Milliseconds an idle keep-alive connection is kept open between requests. */
  KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
  /** Most open client connections at once; more are closed on arrival. */
  MAX_CONNECTIONS: z.coerce.number().int().positive().default(1024),
  /** Milliseconds graceful shutdown lets in-flight requests finish before it closes every connection. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  /** Largest JSON body on routes that take one record (bulk actions and $batch keep BODY_LIMIT), in bytes. */
  RECORD_BODY_LIMIT: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** Deepest nesting of arrays and objects accepted in a JSON body (deeper: 400). */
  JSON_MAX_DEPTH: z.coerce.number().int().positive().max(10_000).default(64),
  /** Most KPI events / upserts waiting in the group commit; beyond it new writes get 503. */
  INGEST_MAX_QUEUED_ROWS: z.coerce.number().int().positive().default(20_000),
  /** Requests waiting for a database connection beyond which new requests get 503 before their body is read. */
  DB_MAX_WAITING: z.coerce.number().int().positive().default(256),
  /** Event-loop delay, in milliseconds, beyond which new requests get 503 (0 = unchecked). */
  MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).default(1_000),
  /** Resident memory, in bytes, beyond which new requests get 503 (0 = unchecked). */
  MAX_RSS_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(1024 * 1024 * 1024),
  /** Milliseconds an Idempotency-Key and its first answer are kept (src/plugins/idempotency.ts). */
  IDEMPOTENCY_TTL_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 60 * 60 * 1000),
  /** Most Idempotency-Keys kept at once; beyond it the oldest are forgotten. */
  IDEMPOTENCY_MAX_KEYS: z.coerce.number().int().positive().default(10_000),
  /** Most bytes of first answers kept for Idempotency-Keys; beyond it the oldest are forgotten. */
  IDEMPOTENCY_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** The user recorded as owner / created-by / modified-by until authentication exists. */
  CALLER_USER_ID: z.string().regex(GUID, "must be a GUID").default("6f3c1a52-2b9e-4f0a-9d51-3c2e8a7b4d10"),
  BUSINESS_UNIT_ID: z.string().regex(GUID, "must be a GUID").default("0b7c5e1d-8a3f-4c26-b9d4-1e5f7a2c9e30"),
  ORGANIZATION_ID: z.string().regex(GUID, "must be a GUID").default("c4d2e8f1-5b7a-4e93-8c06-2f1a9d3b7e50"),
  /** Browser origins that may call the API (CORS), comma-separated (`http://localhost:5173`), or `*`; unset: none. */
  CORS_ORIGINS: z
    .string()
    .default("")
    .transform((text) =>
      text
        .split(",")
        .map((o) => o.trim())
        .filter(Boolean),
    )
    .refine(
      (list) => list.every((o) => o === "*" || /^https?:\/\/[^\s/,]+$/.test(o)),
      "must be origins such as http://localhost:5173, comma-separated, or *",
    ),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Reads the configuration; a bad value throws a ConfigError whose one-line message
 * names the variable, e.g. `Invalid configuration: PORT: must be ... (got "abc")`.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable counts as unset, as most shells and compose files produce them.
  const present = Object.fromEntries(Object.keys(ConfigSchema.shape).flatMap((key) => (env[key] ? [[key, env[key]]] : [])));
  const result = ConfigSchema.safeParse(present);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0]);
    // Never echo a connection URL: it may hold a password.
    const got = key === "DATABASE_URL" ? "" : ` (got ${JSON.stringify(present[key])})`;
    return `${key}: ${issue.message}${got}`;
  });
  throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
}
