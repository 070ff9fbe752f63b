/**
 * A database that goes silent while the service serves (a network partition: the TCP
 * connections stay open, nothing answers), through a loopback proxy that stops forwarding:
 * every request still ends, with 503 and Retry-After in Dataverse's shape, the silent
 * connections are given up, and once the database answers again the service serves again
 * by itself.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config/config.js";
import { type Database, openDatabase } from "../../src/db/database.js";
import { type TestDatabase, createTestDatabase } from "../helpers/database.js";
import { type SilentProxy, startSilentProxy } from "../helpers/silent-proxy.js";

const API = "/api/data/v9.2";
const quiet = { info() {}, debug() {}, warn() {} };

/** `promise`, or a failure naming `what` if it has not settled after `ms` (a hang, not a speed check). */
async function settlesWithin<T>(what: string, promise: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe("a database that goes silent while the service serves", () => {
  let testDb: TestDatabase;
  let proxy: SilentProxy;
  let db: Database;
  let app: FastifyInstance;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    const target = new URL(testDb.url);
    proxy = await startSilentProxy({ host: target.hostname, port: Number(target.port) });
    const url = new URL(testDb.url);
    url.port = String(proxy.port);
    const config = loadConfig({
      LOG_LEVEL: "silent",
      AUTH_MODE: "none",
      DATABASE_URL: url.toString(),
      DB_POOL_SIZE: "2",
      DB_STATEMENT_TIMEOUT_MS: "1000",
      DB_QUERY_TIMEOUT_MS: "1500",
      DB_CONNECT_TIMEOUT_MS: "1000",
      RETRY_AFTER_SECONDS: "3",
    });
    db = await openDatabase(config, quiet);
    app = await buildApp({ config, db, logger: false });
    await app.ready();
    await app.identity.ready();
  });
  afterAll(async () => {
    proxy?.resume();
    await app?.close();
    await db?.close();
    await proxy?.close();
    await testDb?.drop();
  });

  const list = () => app.inject({ method: "GET", url: `${API}/msdyn_ciproviders` });
  const create = (name: string) => app.inject({ method: "POST", url: `${API}/msdyn_ciproviders`, payload: { msdyn_name: name } });

  it("answers 503 with Retry-After while silent, gives the silent connections up, and recovers by itself", async () => {
    expect((await list()).statusCode).toBe(200);
    expect((await create("before")).statusCode).toBe(204);

    proxy.silence();
    // Every kind of request ends: a read, a write, readiness; again and again while silent.
    for (let round = 0; round < 3; round++) {
      for (const [what, send] of [
        ["GET", list],
        ["POST", () => create(`during-${round}`)],
      ] as const) {
        const res = await settlesWithin(`${what} during the partition`, send());
        expect(res.statusCode, `${what}: ${res.body}`).toBe(503);
        expect(res.headers["retry-after"]).toBe("3");
        expect(res.json()).toEqual({
          error: { code: "0x80044150", message: expect.stringMatching(/database is temporarily unavailable/) },
        });
      }
    }
    const ready = await settlesWithin("/readyz during the partition", app.inject({ method: "GET", url: "/readyz" }));
    expect(ready.statusCode).toBe(503);
    // The connections that went silent were closed by the service, not kept for later requests.
    expect(proxy.closedByClient()).toBeGreaterThan(0);

    proxy.resume();
    let status = 0;
    // Bounded: at most 50 tries, 200 ms apart.
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await settlesWithin("GET after the partition", list())).statusCode;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(status).toBe(200);
    expect((await create("after")).statusCode).toBe(204);
    expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    expect(db.pool.totalCount).toBeLessThanOrEqual(2);
    const { rows } = await testDb.pool.query<{ msdyn_name: string }>(
      "SELECT msdyn_name FROM msdyn_ciprovider WHERE msdyn_name IN ('before', 'after') ORDER BY msdyn_name",
    );
    expect(rows.map((r) => r.msdyn_name)).toEqual(["after", "before"]);
  }, 120_000);

  it("gives up a connection whose statement went unanswered inside a transaction, so the pool never hands it out again", async () => {
    const client = await db.pool.connect();
    await client.query("BEGIN");
    const port = (client as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
    proxy.silence();
    await expect(settlesWithin("a statement in a transaction", client.query("SELECT 1"))).rejects.toThrow(/Query read timeout/);
    // Released as the transaction helpers release after a failed ROLLBACK: without an error.
    await client.query("ROLLBACK").catch(() => {});
    client.release();
    // Bounded wait for the socket's close to reach the proxy.
    for (let i = 0; i < 50 && !proxy.hasClosed(port); i++) await new Promise((r) => setTimeout(r, 20));
    expect(proxy.hasClosed(port)).toBe(true);
    proxy.resume();
    expect((await settlesWithin("a query after the partition", db.pool.query("SELECT 1 AS one"))).rows).toEqual([{ one: 1 }]);
  }, 60_000);
});
