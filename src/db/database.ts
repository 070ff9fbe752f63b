/**
 * The service's database: the configured DATABASE_URL, or an embedded PostgreSQL under
 * DATA_DIR. Opening it applies pending migrations; one pg pool serves the SQL of the
 * Web API. (Prisma owns the schema and the migrations; its client is constructed only
 * where a module uses it for ordinary CRUD, none yet, so no idle client is kept.)
 */
import path from "node:path";
import pg from "pg";
import type { Config } from "../config/config.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./embedded-postgres.js";
import { DEFAULT_MIGRATIONS_DIR, type MigrationResult, applyMigrations } from "./migrations.js";

export const EMBEDDED_DATABASE_NAME = "cif_analytics";

export interface Database {
  pool: pg.Pool;
  /** Names of the migrations this code base expects applied. */
  migrations: MigrationResult;
  embedded?: EmbeddedDatabase;
  close(): Promise<void>;
}

interface Logger {
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
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
  config: Pick<Config, "DATABASE_URL" | "DATA_DIR" | "DB_POOL_SIZE">,
  log: Logger,
  migrationsDir = DEFAULT_MIGRATIONS_DIR,
): Promise<Database> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    const dataDir = path.resolve(config.DATA_DIR, "postgres");
    const started = Date.now();
    embedded = await startEmbeddedPostgres({ dataDir, log: (message) => log.debug({ postgres: message }) });
    await createDatabaseIfMissing(embedded.adminUrl, EMBEDDED_DATABASE_NAME);
    url = embedded.urlFor(EMBEDDED_DATABASE_NAME);
    log.info({ dataDir, ms: Date.now() - started }, "embedded PostgreSQL started");
  }

  const pool = new pg.Pool({ connectionString: url, max: config.DB_POOL_SIZE });
  try {
    const migrations = await applyMigrations(pool, migrationsDir);
    log.info(migrations, "database migrations checked");
    return {
      pool,
      migrations,
      embedded,
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
