/**
 * The service's database: the configured DATABASE_URL, or an embedded PostgreSQL under
 * DATA_DIR. Opening it applies pending migrations; one pg pool serves the SQL of the
 * Web API. (Prisma owns the schema and the migrations; its client is constructed only
 * where a module uses it for ordinary CRUD, none yet, so no idle client is kept.)
 */
import path from "node:path";
import pg from "pg";
import type { Config } from "../config/config.js";
import { DatabaseOutage, describeConnectionError, isConnectionError } from "./connection-errors.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./embedded-postgres.js";
import { DEFAULT_MIGRATIONS_DIR, type MigrationResult, applyMigrations } from "./migrations.js";

export const EMBEDDED_DATABASE_NAME = "cif_analytics";

/** The control tables' schema (organisations, principals, keys) and its migrations. */
export const CONTROL_SCHEMA = "cif_control";
export const CONTROL_MIGRATIONS_DIR = path.resolve(import.meta.dirname, "../../prisma/control/migrations");

/** The URL of the same server with another database name. */
export function withDatabaseName(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

export interface Database {
  pool: pg.Pool;
  /** The main database's URL (the default organisation's records and the control schema). */
  url: string;
  /** Names of the migrations this code base expects applied. */
  migrations: MigrationResult;
  embedded?: EmbeddedDatabase;
  /** Whether the database is currently unreachable (one warning per outage, src/db/connection-errors.ts). */
  outage: DatabaseOutage;
  close(): Promise<void>;
}

interface Logger {
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
}

/** Start-up gave up on the database; its message is the one line the process exits with. */
export class DatabaseUnreachableError extends Error {
  override name = "DatabaseUnreachableError";
}

type PoolSettings = Pick<Config, "DB_POOL_SIZE" | "DB_CONNECT_TIMEOUT_MS" | "DB_STATEMENT_TIMEOUT_MS" | "DB_QUERY_TIMEOUT_MS">;

/** pg's error when `query_timeout` passed with no answer. */
const isQueryReadTimeout = (error: unknown) => error instanceof Error && error.message === "Query read timeout";

/**
 * A pg client that gives its connection up when a statement's answer did not come within
 * `query_timeout`. pg itself only rejects the query: the statement stays the connection's
 * active one, so the next query would queue behind an answer that may never come (a silent
 * partition). Destroying the socket ends the client ('error', then not queryable), so the
 * pool discards it on release and opens a fresh connection for the next request.
 */
export class BoundedClient extends pg.Client {
  // pg's query() has many overloads (callback, promise, submittable); this wraps them all.
  override query(...args: unknown[]): never {
    const last = args.at(-1);
    if (typeof last === "function") {
      args[args.length - 1] = (error: unknown, result: unknown) => {
        if (isQueryReadTimeout(error)) this.giveUp();
        (last as (e: unknown, r: unknown) => void)(error, result);
      };
    }
    const result = (super.query as (...a: unknown[]) => unknown)(...args);
    if (result instanceof Promise) {
      result.catch((error: unknown) => {
        if (isQueryReadTimeout(error)) this.giveUp();
      });
    }
    return result as never;
  }

  private giveUp(): void {
    (this as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  }
}

/** The client-side bound on any one statement's answer: DB_QUERY_TIMEOUT_MS, else statement_timeout + 5 s. */
export function queryTimeoutMs(config: Partial<Pick<Config, "DB_STATEMENT_TIMEOUT_MS" | "DB_QUERY_TIMEOUT_MS">>): number {
  if (config.DB_QUERY_TIMEOUT_MS !== undefined) return config.DB_QUERY_TIMEOUT_MS;
  return config.DB_STATEMENT_TIMEOUT_MS ? config.DB_STATEMENT_TIMEOUT_MS + 5_000 : 0;
}

/** The pool's options: every wait on the database is bounded, and dead peers are noticed. */
export function poolOptions(url: string, config: Partial<PoolSettings> & Pick<Config, "DB_POOL_SIZE">): pg.PoolConfig {
  const queryTimeout = queryTimeoutMs(config);
  return {
    connectionString: url,
    max: config.DB_POOL_SIZE,
    // Bounds both a new connection and the wait for a free one in the pool.
    connectionTimeoutMillis: config.DB_CONNECT_TIMEOUT_MS ?? 5_000,
    // Sent as a start-up parameter, so it holds for every statement on every connection.
    ...(config.DB_STATEMENT_TIMEOUT_MS ? { statement_timeout: config.DB_STATEMENT_TIMEOUT_MS } : {}),
    // The client's own bound, for a database that no longer answers at all.
    ...(queryTimeout ? { query_timeout: queryTimeout, Client: BoundedClient } : {}),
    // TCP keepalive: a connection to a database that vanished (failover, partition) is
    // found dead by the kernel instead of waiting forever for an answer.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/**
 * Retries `SELECT 1` with exponential backoff (0.25 s doubling to 5 s) until it answers
 * or `waitMs` has passed, logging one line per failed attempt.
 */
export async function waitForDatabase(pool: pg.Pool, waitMs: number, log: Logger): Promise<void> {
  const started = Date.now();
  let delay = 250;
  // Bounded by time; the attempt count only appears in the log.
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query("SELECT 1");
      if (attempt > 1) log.info({ attempt, ms: Date.now() - started }, "database reachable");
      return;
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      const elapsed = Date.now() - started;
      const { code, message } = describeConnectionError(error);
      if (elapsed + delay > waitMs) {
        throw new DatabaseUnreachableError(
          `The database is unreachable (${code ? `${code}: ` : ""}${message}); gave up after ${attempt} attempts in ${Math.round(elapsed / 1000)} s (DB_STARTUP_WAIT_MS=${waitMs}). Check DATABASE_URL and that the server is running.`,
        );
      }
      (log.warn ?? log.info).call(
        log,
        { attempt, db: { code, message }, retryInMs: delay },
        "database not reachable yet; retrying",
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}

export async function createDatabaseIfMissing(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await admin.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } catch (error) {
    // Another instance may have created it between our check and our CREATE.
    if ((error as { code?: string }).code !== "42P04") throw error;
  } finally {
    await admin.end();
  }
}

export async function openDatabase(
  config: Pick<Config, "DATABASE_URL" | "DATA_DIR" | "DB_POOL_SIZE"> & Partial<PoolSettings & Pick<Config, "DB_STARTUP_WAIT_MS">>,
  log: Logger,
  migrationsDir = DEFAULT_MIGRATIONS_DIR,
): Promise<Database> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    const dataDir = path.resolve(config.DATA_DIR, "postgres");
    const started = Date.now();
    embedded = await startEmbeddedPostgres({
      dataDir,
      log: (message) => log.debug({ postgres: message }),
      notice: (message) => log.info({ dataDir }, message),
    });
    await createDatabaseIfMissing(embedded.adminUrl, EMBEDDED_DATABASE_NAME);
    url = embedded.urlFor(EMBEDDED_DATABASE_NAME);
    log.info({ dataDir, ms: Date.now() - started }, "embedded PostgreSQL started");
  }

  const pool = new pg.Pool(poolOptions(url, config));
  const outage = new DatabaseOutage({ warn: (o, m) => (log.warn ?? log.info).call(log, o, m), info: (o, m) => log.info(o, m) });
  // Without a listener, an idle client closed by the server (a restart, a failover,
  // pg_terminate_backend, idle_session_timeout) is an unhandled 'error' that ends the process.
  pool.on("error", (error) => outage.failed(error));
  pool.on("connect", (client) => {
    outage.recovered();
    // A checked-out client's connection error is also raised on the client: reported, not fatal.
    client.on("error", (error) => outage.failed(error));
  });
  try {
    await waitForDatabase(pool, config.DB_STARTUP_WAIT_MS ?? 0, log);
    const migrations = await applyMigrations(pool, migrationsDir);
    const control = await applyMigrations(pool, CONTROL_MIGRATIONS_DIR, CONTROL_SCHEMA);
    log.info({ ...migrations, control }, "database migrations checked");
    return {
      pool,
      url,
      migrations,
      embedded,
      outage,
      async close() {
        await pool.end();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await pool.end();
    await embedded?.stop();
    throw error;
  }
}
