/** A database of the test file's own, cloned from the migrated template (or empty). */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { withDatabase } from "./database-url.js";
import { useResource } from "./lifecycle.js";

export interface TestDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** Runs `fn` with a client of the server's maintenance database (outside every pool). */
export async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject("adminUrl") });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** `migrated: false` gives an empty database, for the migration runner's own tests. */
export async function createTestDatabase({ migrated = true } = {}): Promise<TestDatabase> {
  const name = `cif_test_${randomBytes(6).toString("hex")}`;
  const template = migrated ? ` TEMPLATE "${inject("templateDatabase")}"` : "";
  // Cloning a template fails while another session is connected to it; retry briefly.
  for (let attempt = 0; ; attempt++) {
    try {
      await withAdminClient((c) => c.query(`CREATE DATABASE "${name}"${template}`));
      break;
    } catch (error) {
      if ((error as { code?: string }).code !== "55006" || attempt > 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const url = withDatabase(inject("adminUrl"), name);
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  let dropping = false;
  // pool.end() ends only idle connections: one a test still holds is cut by the DROP below,
  // which is expected then; any other loss of a connection is reported.
  pool.on("error", (error) => {
    if (!dropping) console.warn(`test database ${name}: a connection failed: ${error.message}`);
  });
  return {
    name,
    url,
    pool,
    async drop() {
      dropping = true;
      await pool.end();
      await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

/** Registers `beforeAll(createTestDatabase)` and `afterAll(drop)`; the handle is usable once the database is made. */
export const useTestDatabase = (options: { migrated?: boolean } = {}): TestDatabase =>
  useResource(
    "the test database",
    () => createTestDatabase(options),
    (db) => db.drop(),
  );
