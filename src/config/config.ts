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
  /**
   * Milliseconds the service waits for the answer to any one statement before it gives the
   * connection up (pg's client-side query_timeout): a database that goes silent mid-query (a
   * network partition: the connection stays open, nothing answers) then costs a request this
   * long, not TCP keepalive's minutes. Unset: DB_STATEMENT_TIMEOUT_MS + 5 s (none when that is
   * 0). 0 = none.
   */
  DB_QUERY_TIMEOUT_MS: z.coerce.number().int().min(0).optional(),
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
  /**
   * Most rows of bulk writes (CreateMultiple, UpdateMultiple, UpsertMultiple,
   * msdyn_LogAnalyticsEvent) being written at once, from their validation to their commit,
   * over all organisations (src/db/admission.ts); beyond it a new one gets 503 with
   * Retry-After before it is validated. Rows, not requests,
   * are what the database spends its time on: 20,000 is about 2 s of work on 2 cores, so what
   * is admitted under overload is answered well within a client's timeout.
   */
  MAX_ROWS_IN_FLIGHT: z.coerce.number().int().positive().default(20_000),
  /**
   * Most requests in flight at once (received, not yet answered); beyond it new requests get
   * 503 before their body is read. The bound on memory and on work for clients that will
   * time out: 1,000 clients each sending a 1,000-event CreateMultiple at once would otherwise
   * all be read, parsed and queued (issue 18).
   */
  MAX_REQUESTS_IN_FLIGHT: z.coerce.number().int().positive().default(256),
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
  /**
   * Milliseconds after which a claimed Idempotency-Key with no answer counts as abandoned (its
   * server stopped): a retry then learns from the audit log whether the write committed.
   * Longer than any request runs.
   */
  IDEMPOTENCY_PENDING_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(5 * 60 * 1000),
  /** Largest answer kept for an Idempotency-Key, in bytes (its column holds 1 MiB); a larger one's retry gets 409. */
  IDEMPOTENCY_MAX_ANSWER_BYTES: z.coerce.number().int().positive().max(1_048_576).default(1_048_576),
  /**
   * How callers are authenticated (issue 11): `builtin` (the default) is the server's own
   * OAuth 2.0 issuer (client credentials); `oidc` trusts the external OpenID Connect issuer
   * of OIDC_ISSUER for the default organisation (other organisations set theirs through
   * the admin API); `none` lets anyone in as the administrator CALLER_USER_ID, and is
   * refused unless HOST is a loopback address.
   */
  AUTH_MODE: z.enum(["builtin", "oidc", "none"]).default("builtin"),
  /** The server's public base URL (`https://cif.example.com`), when clients reach it through a proxy; else each request's own. */
  PUBLIC_URL: z
    .string()
    .regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, "must be an http:// or https:// URL")
    .transform((url) => url.replace(/\/+$/, ""))
    .optional(),
  /** Lifetime of the built-in issuer's tokens, in seconds (Entra's are 60 to 90 minutes). */
  TOKEN_LIFETIME_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
  /** Seconds of clock skew allowed when checking a token's exp and nbf. */
  AUTH_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(600).default(60),
  /** AUTH_MODE=oidc: the default organisation's issuer (`https://login.microsoftonline.com/<tenant>/v2.0`). */
  OIDC_ISSUER: z.string().url().optional(),
  /** AUTH_MODE=oidc: the audience tokens must carry (default: the organisation's URL). */
  OIDC_AUDIENCE: z.string().min(1).optional(),
  /** AUTH_MODE=oidc: the issuer's JWKS URL (default: from its discovery document). */
  OIDC_JWKS_URL: z.string().url().optional(),
  /** AUTH_MODE=oidc: accepted signature algorithms, comma-separated. */
  OIDC_ALGORITHMS: z
    .string()
    .default("RS256")
    .transform((text) =>
      text
        .split(",")
        .map((a) => a.trim())
        .filter(Boolean),
    )
    .refine(
      (list) => list.length > 0 && list.every((a) => /^(RS|PS|ES)(256|384|512)$|^EdDSA$/.test(a)),
      "must be asymmetric JWS algorithms such as RS256",
    ),
  /**
   * Dataverse's service-protection limits per principal: `off` (the default), or
   * `dataverse` (6,000 requests and 1,200,000 ms of execution per 300 s, 52 at once);
   * the three numbers below override Dataverse's.
   */
  SERVICE_PROTECTION: z.enum(["off", "dataverse"]).default("off"),
  SERVICE_PROTECTION_REQUESTS: z.coerce.number().int().positive().optional(),
  SERVICE_PROTECTION_EXECUTION_MS: z.coerce.number().int().positive().optional(),
  SERVICE_PROTECTION_CONCURRENT: z.coerce.number().int().positive().optional(),
  /** Token requests per minute per client IP address (against secret guessing). */
  TOKEN_REQUESTS_PER_MINUTE: z.coerce.number().int().positive().default(60),
  /** Minutes an organisation's database pool may stay idle before it is closed (the default organisation's never is). */
  ORGANIZATION_POOL_IDLE_MINUTES: z.coerce.number().int().positive().default(10),
  /**
   * The audit log (issue 12): every API call as an Azure Monitor ApiEvent in CIEventsAudit
   * / CIEventsOperational, a write's record committed with the write. `off` logs nothing.
   */
  AUDIT_LOG: z.enum(["on", "off"]).default("on"),
  /** The records' `resourceId`; `{organizationId}` is replaced by the organisation's id. */
  AUDIT_RESOURCE_ID: z
    .string()
    .regex(/^\/\S+$/, "must be a resource path such as /SUBSCRIPTIONS/<id>/RESOURCEGROUPS/<group>/PROVIDERS/<name>/…")
    .default(
      "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/SELF-HOSTED/PROVIDERS/CIF.ANALYTICS/ORGANIZATIONS/{organizationId}",
    ),
  /** Longest an operational record (a read, a refusal) waits in memory before it is written. */
  AUDIT_FLUSH_MS: z.coerce.number().int().min(10).max(1000).default(1000),
  /** Records held in memory while their database is away; beyond it the oldest are dropped. */
  AUDIT_MAX_BUFFERED: z.coerce.number().int().positive().default(100_000),
  /** How often each log destination is given what it has not had yet. */
  AUDIT_FORWARD_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  /** Records per send to a destination. */
  AUDIT_FORWARD_BATCH: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Days the audit tables keep a record. */
  AUDIT_RETENTION_DAYS: z.coerce.number().int().positive().max(3650).default(90),
  /** Minutes between retention runs (the first runs this long after start). */
  AUDIT_RETENTION_INTERVAL_MINUTES: z.coerce.number().positive().max(10_080).default(60),
  /** Rows a retention run deletes per statement (each its own transaction). */
  AUDIT_RETENTION_BATCH: z.coerce.number().int().min(1).max(100_000).default(5000),
  /** The analytics API (issue 14): `off` serves no /api/v2/analytics route and derives no metrics. */
  ANALYTICS: z.enum(["on", "off"]).default("on"),
  /** Milliseconds between the refresher's looks at the conversations whose tree changed. */
  ANALYTICS_REFRESH_MS: z.coerce.number().int().min(10).max(60_000).default(200),
  /** Conversations re-derived per refresher transaction. */
  ANALYTICS_REFRESH_BATCH: z.coerce.number().int().min(1).max(20_000).default(500),
  /** The service-level goal: `<target %>/<threshold seconds>`, e.g. 80/20 = 80 % answered within 20 s. */
  ANALYTICS_SERVICE_LEVEL: z
    .string()
    .default("80/20")
    .transform((text, ctx) => parseServiceLevel(text, ctx)),
  /** Per-queue goals as JSON, `{"<queueId>": "90/30"}`; other queues take ANALYTICS_SERVICE_LEVEL. */
  ANALYTICS_QUEUE_SERVICE_LEVELS: z
    .string()
    .default("{}")
    .transform((text, ctx) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        ctx.addIssue({ code: "custom", message: 'must be a JSON object such as {"<queueId>": "90/30"}' });
        return z.NEVER;
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        ctx.addIssue({ code: "custom", message: 'must be a JSON object such as {"<queueId>": "90/30"}' });
        return z.NEVER;
      }
      return Object.fromEntries(Object.entries(parsed).map(([queue, goal]) => [queue, parseServiceLevel(String(goal), ctx)]));
    }),
  /** Whether abandoned conversations count in oServiceLevel's denominator (Genesys' default: they do). */
  ANALYTICS_SERVICE_LEVEL_ABANDONS: z.enum(["include", "exclude"]).default("include"),
  /**
   * The column the direction dimension (inbound / outbound) is read from, as
   * `<table>.<column>` of msdyn_sessiondata or msdyn_conversationdata: CIF has no direction
   * column, so providers put it where they can. A value containing "inbound" or "outbound" counts.
   */
  ANALYTICS_DIRECTION_COLUMN: z
    .string()
    .regex(
      /^(msdyn_sessiondata|msdyn_conversationdata)\.msdyn_[a-z0-9]+$/,
      "must be msdyn_sessiondata.<column> or msdyn_conversationdata.<column>",
    )
    .default("msdyn_sessiondata.msdyn_sessioncreationreason"),
  /**
   * Minutes without any event after which an agent who never logged CifSessionEnd counts as
   * signed out at their last event, and a session still open is no longer waiting or handled.
   */
  ANALYTICS_AGENT_IDLE_MINUTES: z.coerce.number().int().min(1).max(10_080).default(240),
  /**
   * How far before (and after) a users query's interval an agent's events are replayed, so a
   * state begun before the interval is seen; at least ANALYTICS_AGENT_IDLE_MINUTES.
   */
  ANALYTICS_AGENT_LOOKBACK_HOURS: z.coerce.number().int().min(1).max(720).default(24),
  /**
   * Export jobs (POST /api/v2/analytics/…/details/jobs) this server runs at once; 0: it
   * takes submissions but runs none (another server does). Each holds one connection of its
   * organisation's pool while it runs, and at most ANALYTICS_JOB_PAGE records in memory.
   */
  ANALYTICS_JOB_CONCURRENCY: z.coerce.number().int().min(0).max(16).default(1),
  /** Records an export job derives and writes per transaction (its checkpoint). */
  ANALYTICS_JOB_PAGE: z.coerce.number().int().min(1).max(5000).default(500),
  /**
   * Seconds a finished job (FULFILLED, FAILED, CANCELLED) keeps its results; then it is
   * EXPIRED and its results are deleted. Its row goes EXPIRED_JOB_DAYS (7) later.
   */
  ANALYTICS_JOB_EXPIRY_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .default(86_400),
  /** Milliseconds an export job pauses between pages, leaving the database to live traffic (0: none). */
  ANALYTICS_JOB_PAUSE_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  /** How often an idle job worker looks for queued jobs, in milliseconds (at least 500). */
  ANALYTICS_JOB_POLL_MS: z.coerce.number().int().min(500).max(60_000).default(2_000),
  /** AUTH_MODE=none: the user recorded as owner / created-by / modified-by. */
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

/** `80/20` → 80 % within 20 s. */
function parseServiceLevel(text: string, ctx: z.RefinementCtx): { target: number; thresholdMs: number } {
  const match = /^(\d{1,3}(?:\.\d+)?)\/(\d{1,5})$/.exec(text.trim());
  const percent = match ? Number(match[1]) : NaN;
  if (!match || percent <= 0 || percent > 100) {
    ctx.addIssue({
      code: "custom",
      message: `must be <target %>/<threshold seconds> such as 80/20 (got ${JSON.stringify(text)})`,
    });
    return { target: 0.8, thresholdMs: 20_000 };
  }
  return { target: percent / 100, thresholdMs: Number(match[2]) * 1000 };
}

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
  if (result.success) {
    const config = result.data;
    if (config.AUTH_MODE === "none" && !isLoopbackHost(config.HOST)) {
      throw new ConfigError(
        `Invalid configuration: AUTH_MODE: "none" lets anyone write and erase everything, so it is refused unless HOST is a loopback address (got HOST ${JSON.stringify(config.HOST)})`,
      );
    }
    const { DB_QUERY_TIMEOUT_MS: query, DB_STATEMENT_TIMEOUT_MS: statement } = config;
    if (query !== undefined && query > 0 && (statement === 0 || query <= statement)) {
      // Cut first by the client, a statement the server still runs would hold its locks and
      // its connection's slot with nobody waiting for it.
      throw new ConfigError(
        `Invalid configuration: DB_QUERY_TIMEOUT_MS: must be longer than DB_STATEMENT_TIMEOUT_MS (${statement === 0 ? "0, none" : statement}), so that PostgreSQL cancels a slow statement before the service gives its connection up (got ${query})`,
      );
    }
    if (config.AUTH_MODE === "oidc" && !config.OIDC_ISSUER) {
      throw new ConfigError("Invalid configuration: OIDC_ISSUER: required when AUTH_MODE is oidc");
    }
    return config;
  }
  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0]);
    // Never echo a connection URL: it may hold a password.
    const got = key === "DATABASE_URL" ? "" : ` (got ${JSON.stringify(present[key])})`;
    return `${key}: ${issue.message}${got}`;
  });
  throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
}

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}
