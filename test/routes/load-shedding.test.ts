/** Load shedding: beyond DB_MAX_WAITING requests waiting for the database, new ones get 503 at once. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestApp, createTestApp } from "../helpers/app.js";

describe("load shedding", () => {
  let t: TestApp;
  beforeAll(async () => {
    // No audit log: its flushes would wait for the one connection too, and be counted below.
    t = await createTestApp({ DB_POOL_SIZE: "1", DB_MAX_WAITING: "1", RETRY_AFTER_SECONDS: "3", AUDIT_LOG: "off" });
  });
  afterAll(async () => {
    await t.close();
  });

  it("answers 503 with Retry-After while too many requests wait for the database, and serves again after", async () => {
    const url = "/api/data/v9.2/msdyn_ciproviders";
    // Once, so the organisation lookup is cached and only the reads below wait for the connection.
    expect((await t.app.inject({ method: "GET", url })).statusCode).toBe(200);
    const held = await t.db.pool.connect();
    const waiting = [t.app.inject({ method: "GET", url }), t.app.inject({ method: "GET", url })];
    // Bounded wait until both wait for the one connection.
    for (let i = 0; i < 100 && t.db.pool.waitingCount < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(t.db.pool.waitingCount).toBe(2);

    const shed = await t.app.inject({ method: "POST", url, payload: { msdyn_name: "not stored" } });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers["retry-after"]).toBe("3");
    expect(shed.json()).toEqual({
      error: { code: "0x80072326", message: expect.stringMatching(/overloaded \(2 requests waiting for the database\)/) },
    });
    const alive = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(alive.statusCode).toBe(200);

    held.release();
    expect((await Promise.all(waiting)).map((res) => res.statusCode)).toEqual([200, 200]);
    const after = await t.app.inject({ method: "GET", url });
    expect(after.statusCode).toBe(200);
    expect(after.json().value.map((row: { msdyn_name: string }) => row.msdyn_name)).not.toContain("not stored");
  });
});

describe("load shedding by requests in flight", () => {
  let t: TestApp;
  beforeAll(async () => {
    // No audit log: its flushes would wait for the one connection too, and be counted below.
    t = await createTestApp({ DB_POOL_SIZE: "1", MAX_REQUESTS_IN_FLIGHT: "2", RETRY_AFTER_SECONDS: "3", AUDIT_LOG: "off" });
  });
  afterAll(async () => {
    await t.close();
  });

  it("answers 503 beyond MAX_REQUESTS_IN_FLIGHT unanswered requests, before reading the body, and serves again once they are answered", async () => {
    const url = "/api/data/v9.2/msdyn_ciproviders";
    expect((await t.app.inject({ method: "GET", url })).statusCode).toBe(200);
    const held = await t.db.pool.connect();
    const inFlight = [t.app.inject({ method: "GET", url }), t.app.inject({ method: "GET", url })];
    // Bounded wait until both are in flight (waiting for the one connection).
    for (let i = 0; i < 100 && t.db.pool.waitingCount < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(t.db.pool.waitingCount).toBe(2);

    const shed = await t.app.inject({ method: "POST", url, payload: { msdyn_name: "not stored" } });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers["retry-after"]).toBe("3");
    expect(shed.json()).toEqual({
      error: { code: "0x80072326", message: expect.stringMatching(/overloaded \(2 requests in flight\)/) },
    });
    expect((await t.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);

    held.release();
    expect((await Promise.all(inFlight)).map((res) => res.statusCode)).toEqual([200, 200]);
    // Answered requests (and the shed one) no longer count: sequential requests all pass.
    for (let i = 0; i < 5; i++) expect((await t.app.inject({ method: "GET", url })).statusCode).toBe(200);
  });
});
