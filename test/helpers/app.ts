/** The real app on a test database of its own, for `app.inject` tests. */
import type { FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.js";
import { type Config, loadConfig } from "../../src/config/config.js";
import { type Database, openDatabase } from "../../src/db/database.js";
import { type TestDatabase, createTestDatabase } from "./database.js";
import { useResource } from "./lifecycle.js";

export interface TestApp {
  app: FastifyInstance;
  db: Database;
  testDb: TestDatabase;
  config: Config;
  close(): Promise<void>;
}

const quiet = { info() {}, debug() {} };

/** `database`: where the app's database comes from (a Citus cluster's, test/helpers/citus.ts); a clone of the template by default. */
export async function createTestApp(
  env: Record<string, string> = {},
  database: () => Promise<TestDatabase> = createTestDatabase,
): Promise<TestApp> {
  const testDb = await database();
  // Tests of other features run without tokens (AUTH_MODE=none); the identity tests and the
  // dynamics-web-api contract tests pass AUTH_MODE=builtin.
  const config = loadConfig({ LOG_LEVEL: "silent", AUTH_MODE: "none", ...env, DATABASE_URL: testDb.url });
  const db = await openDatabase(config, quiet);
  const app = await buildApp({ config, db, logger: false });
  await app.ready();
  // As src/server.ts does before it listens: signing keys and the first-start bootstrap.
  await app.identity.ready();
  return {
    app,
    db,
    testDb,
    config,
    async close() {
      await app.close();
      await db.close();
      await testDb.drop();
    },
  };
}

/**
 * Registers `beforeAll(createTestApp)` and `afterAll(close)` in the calling `describe` and
 * returns a handle to the app; use it inside tests and hooks, once the app is up.
 */
export const useTestApp = (env: Record<string, string> = {}): TestApp =>
  useResource(
    "the test app",
    () => createTestApp(env),
    (t) => t.close(),
  );
