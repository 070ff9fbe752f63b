/**
 * Applies `prisma/migrations/<name>/migration.sql` at start-up.
 *
 * `prisma migrate deploy` cannot run on machines without internet access (it downloads
 * a schema engine, and its JS engine trips over prisma/orm#27403), so we apply the same
 * files ourselves and record them in `_prisma_migrations` exactly as Prisma does. A
 * machine that later runs `prisma migrate deploy` sees the same history.
 */
import { createHash, randomUUID } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import type pg from "pg";

export const DEFAULT_MIGRATIONS_DIR = path.resolve(import.meta.dirname, "../../prisma/migrations");

// Any constant works; it only has to be the same for every instance of this service.
const MIGRATION_LOCK_KEY = 72_707_369_001;

export interface MigrationFile {
  name: string;
  checksum: string;
  sql: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  override name = "MigrationError";
}

/** The table Prisma creates, column for column. */
const CREATE_HISTORY_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export async function readMigrations(dir = DEFAULT_MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(path.join(dir, name, "migration.sql"));
      // Prisma's checksum: SHA-256 of the file's bytes, lower-case hex.
      return { name, checksum: createHash("sha256").update(bytes).digest("hex"), sql: bytes.toString("utf8") };
    }),
  );
}

interface HistoryRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/**
 * Applies every migration not yet recorded, each in its own transaction, holding a
 * session-level advisory lock so that concurrent starts serialise. Refuses to go on when
 * an applied file has changed or a previous (Prisma) run left a failed migration.
 */
export async function applyMigrations(
  pool: pg.Pool,
  dir = DEFAULT_MIGRATIONS_DIR,
  /** A schema of their own (the control tables' `cif_control`), with its own history table; else the default search path. */
  schema?: string,
): Promise<MigrationResult> {
  const migrations = await readMigrations(dir);
  const client = await pool.connect();
  // One lock per schema: the control schema's migrations need not wait for the records'.
  const lockKey = schema ? MIGRATION_LOCK_KEY + 1 : MIGRATION_LOCK_KEY;
  try {
    await client.query("SELECT pg_advisory_lock($1)", [lockKey]);
    try {
      if (schema) {
        const quoted = `"${schema.replaceAll('"', '""')}"`;
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
        // Session-level on purpose, and reset below before the connection goes back to the pool.
        await client.query(`SET search_path TO ${quoted}`);
      }
      await client.query(CREATE_HISTORY_TABLE);
      const { rows } = await client.query<HistoryRow>(
        `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at`,
      );
      const done = new Map<string, HistoryRow>();
      for (const row of rows) {
        if (row.rolled_back_at) continue;
        if (!row.finished_at) {
          throw new MigrationError(
            `Migration ${row.migration_name} is recorded as started but not finished in _prisma_migrations; ` +
              `fix the database by hand, then mark it rolled back (prisma migrate resolve --rolled-back ${row.migration_name}).`,
          );
        }
        done.set(row.migration_name, row);
      }

      const result: MigrationResult = { applied: [], alreadyApplied: [] };
      for (const migration of migrations) {
        const recorded = done.get(migration.name);
        if (recorded) {
          if (recorded.checksum !== migration.checksum) {
            throw new MigrationError(
              `Migration ${migration.name} was changed after it was applied (checksum ${migration.checksum} ` +
                `does not match the recorded ${recorded.checksum}). Restore the file and put changes in a new migration.`,
            );
          }
          result.alreadyApplied.push(migration.name);
          continue;
        }
        await applyOne(client, migration);
        result.applied.push(migration.name);
      }
      return result;
    } finally {
      if (schema) await client.query("RESET search_path");
      await client.query("SELECT pg_advisory_unlock($1)", [lockKey]);
    }
  } finally {
    client.release();
  }
}

async function applyOne(client: pg.PoolClient, migration: MigrationFile): Promise<void> {
  const id = randomUUID();
  await client.query("BEGIN");
  try {
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), 0)`,
      [id, migration.checksum, migration.name],
    );
    // One statement at a time: Citus forwards a DDL statement's whole query string to the
    // workers, where a multi-statement string cannot be prepared.
    for (const statement of splitStatements(migration.sql)) await client.query(statement);
    await client.query(`UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`, [
      id,
    ]);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    const reason = error instanceof Error ? error.message : String(error);
    throw new MigrationError(`Migration ${migration.name} failed and was rolled back: ${reason}`, { cause: error });
  }
}

/**
 * The statements of a SQL script, each without its trailing semicolon: semicolons inside
 * quoted strings and identifiers, dollar-quoted bodies and comments do not end a statement.
 * Comment-only pieces are left out.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  let code = false; // whether the current piece holds anything but comments and blanks
  const push = (end: number) => {
    const text = sql.slice(start, end).trim();
    if (code && text) statements.push(text);
    start = end + 1;
    code = false;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) throw new MigrationError("Unterminated /* comment in a migration");
      i = end + 2;
    } else if (c === "'" || c === '"') {
      code = true;
      let j = i + 1;
      // A doubled quote is the quote itself.
      while (j < sql.length && !(sql[j] === c && sql[j + 1] !== c)) j += sql[j] === c ? 2 : 1;
      if (j >= sql.length) throw new MigrationError(`Unterminated ${c} quote in a migration`);
      i = j + 1;
    } else if (c === "$" && /^\$[A-Za-z_]*\$/.test(sql.slice(i))) {
      code = true;
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i))![0];
      const end = sql.indexOf(tag, i + tag.length);
      if (end < 0) throw new MigrationError(`Unterminated ${tag} quote in a migration`);
      i = end + tag.length;
    } else if (c === ";") {
      push(i);
      i++;
    } else {
      if (!/\s/.test(c)) code = true;
      i++;
    }
  }
  push(sql.length);
  return statements;
}

/** The names among `expected` not recorded as applied (for /readyz). */
export async function pendingMigrations(pool: pg.Pool, expected: readonly string[]): Promise<string[]> {
  const { rows } = await pool.query<{ migration_name: string }>(
    `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  const applied = new Set(rows.map((r) => r.migration_name));
  return expected.filter((name) => !applied.has(name));
}
