/** Transactions and savepoints on the pg driver. */
import type pg from "pg";

export type Queryable = Pick<pg.ClientBase, "query">;

/** Runs `fn` in one transaction on a client of its own. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Runs `write` under a savepoint when `inTransaction` (else as it is): a refused statement
 * is rolled back alone, so the transaction stays usable, e.g. to explain the refusal on
 * the same connection, seeing the transaction's own rows. The error is rethrown.
 */
export async function withSavepoint<T>(db: Queryable, inTransaction: boolean, write: () => Promise<T>): Promise<T> {
  if (!inTransaction) return write();
  await db.query("SAVEPOINT record_write");
  try {
    const result = await write();
    await db.query("RELEASE SAVEPOINT record_write");
    return result;
  } catch (error) {
    await db.query("ROLLBACK TO SAVEPOINT record_write");
    throw error;
  }
}
