/**
 * The app in-process while its database goes away: an unreachable database answers 503
 * with Retry-After; connections the server closes do not end the process.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config/config.js";
import { DatabaseOutage } from "../../src/db/connection-errors.js";
import { type Database, poolOptions } from "../../src/db/database.js";
import { type TestApp, createTestApp } from "../helpers/app.js";

describe("an unreachable database", () => {
  const warnings: string[] = [];
  let app: Awaited<ReturnType<typeof buildApp>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    // Port 1 on loopback: nothing listens there, every connect is refused at once.
    const config = loadConfig({
      LOG_LEVEL: "silent",
      DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none",
      RETRY_AFTER_SECONDS: "7",
      // With a token check, the first lookup (the organisation) already meets the outage.
    });
    pool = new pg.Pool(poolOptions(config.DATABASE_URL!, config));
    const outage = new DatabaseOutage({ warn: (_o, m) => warnings.push(String(m)), info: () => {} });
    pool.on("error", (error) => outage.failed(error));
    const db: Database = {
      pool,
      url: config.DATABASE_URL!,
      migrations: { applied: [], alreadyApplied: ["20261122022640_init"] },
      outage,
      close: () => pool.end(),
    };
    app = await buildApp({ config, db, logger: false });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await pool.end();
  });

  it("answers reads and writes with 503, Retry-After and a Dataverse error, warning once", async () => {
    const requests = [
      { method: "GET" as const, url: "/api/data/v9.2/msdyn_ciproviders" },
      { method: "POST" as const, url: "/api/data/v9.2/msdyn_ciproviders", payload: { msdyn_name: "p" } },
      { method: "GET" as const, url: "/api/data/v9.2/msdyn_conversationsdata(msdyn_conversationid='c')" },
    ];
    for (const request of requests) {
      const res = await app.inject(request);
      expect(res.statusCode, request.url).toBe(503);
      expect(res.headers["retry-after"]).toBe("7");
      expect(res.json()).toEqual({
        error: { code: "0x80044150", message: expect.stringMatching(/database is temporarily unavailable/) },
      });
    }
    expect(warnings).toEqual(["database unreachable; answering 503 until it is back"]);
  });

  it("says not ready", async () => {
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: "not ready", reason: "database unreachable" });
  });
});

describe("connections the database closes", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it("are replaced: idle ones terminated with pg_terminate_backend end nothing but themselves", async () => {
    // Fill the pool with idle connections, then have the server end them all.
    await Promise.all(Array.from({ length: 4 }, () => t.app.inject({ method: "GET", url: "/api/data/v9.2/msdyn_ciproviders" })));
    expect(t.db.pool.idleCount).toBeGreaterThan(0);
    const { rows } = await t.testDb.pool.query(
      "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    expect(rows[0].n).toBeGreaterThan(0);
    // Bounded wait for the pool to notice the closed sockets.
    for (let i = 0; i < 50 && t.db.pool.idleCount > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));

    const res = await t.app.inject({ method: "GET", url: "/api/data/v9.2/msdyn_ciproviders" });
    expect(res.statusCode).toBe(200);
    const ready = await t.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
  });
});
