/** Load shedding: beyond DB_MAX_WAITING requests waiting for the database, new ones get 503 at once. */
import { randomUUID } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestApp, createTestApp } from "../helpers/app.js";

describe("load shedding", () => {
  let t: TestApp;
  beforeAll(async () => {
    // No audit log nor analytics: the log's flushes and the refresher would wait for the one connection too, and be counted below.
    t = await createTestApp({
      DB_POOL_SIZE: "1",
      DB_MAX_WAITING: "1",
      RETRY_AFTER_SECONDS: "3",
      AUDIT_LOG: "off",
      ANALYTICS: "off",
    });
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
    // No audit log nor analytics: the log's flushes and the refresher would wait for the one connection too, and be counted below.
    t = await createTestApp({
      DB_POOL_SIZE: "1",
      MAX_REQUESTS_IN_FLIGHT: "2",
      RETRY_AFTER_SECONDS: "3",
      AUDIT_LOG: "off",
      ANALYTICS: "off",
    });
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

describe("load shedding by rows in flight", () => {
  let t: TestApp;
  beforeAll(async () => {
    // No audit log, no analytics: their background work would wait for the one connection too.
    t = await createTestApp({
      DB_POOL_SIZE: "1",
      MAX_ROWS_IN_FLIGHT: "3",
      RETRY_AFTER_SECONDS: "3",
      AUDIT_LOG: "off",
      ANALYTICS: "off",
    });
  });
  afterAll(async () => {
    await t.close();
  });

  const url = "/api/data/v9.2/msdyn_ciproviders";
  const createMultiple = (names: string[]) =>
    t.app.inject({
      method: "POST",
      url: `${url}/Microsoft.Dynamics.CRM.CreateMultiple`,
      payload: { Targets: names.map((msdyn_name) => ({ "@odata.type": "Microsoft.Dynamics.CRM.msdyn_ciprovider", msdyn_name })) },
    });

  it("answers 503 to a bulk write whose rows would pass MAX_ROWS_IN_FLIGHT, before it is validated, and admits what fits", async () => {
    expect((await t.app.inject({ method: "GET", url })).statusCode).toBe(200);
    const held = await t.db.pool.connect();
    let released = false;
    const release = () => {
      if (!released) held.release();
      released = true;
    };
    const first = createMultiple(["rows a1", "rows a2"]);
    let third: ReturnType<typeof createMultiple>;
    try {
      // Bounded wait until the first write waits for the one connection: its 2 rows are in flight.
      for (let i = 0; i < 100 && t.db.pool.waitingCount < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(t.db.pool.waitingCount).toBe(1);

      // 2 + 2 > 3: refused at once, although only one request is in flight and none is queued.
      const shed = await createMultiple(["rows b1", "rows b2"]);
      expect(shed.statusCode).toBe(503);
      expect(shed.headers["retry-after"]).toBe("3");
      expect(shed.json()).toEqual({
        error: { code: "0x80072326", message: expect.stringMatching(/overloaded \(2 rows being written\)/) },
      });
      // A target the validation would refuse is not looked at either: the answer is the same 503.
      expect((await createMultiple(["rows c1", "x".repeat(100_000)])).statusCode).toBe(503);
      // 2 + 1 fits.
      third = createMultiple(["rows d1"]);
    } finally {
      release();
    }
    expect((await first).statusCode).toBe(200);
    expect((await third).statusCode).toBe(200);
    const names = (await t.app.inject({ method: "GET", url })).json().value.map((row: { msdyn_name: string }) => row.msdyn_name);
    expect(names).toEqual(expect.arrayContaining(["rows a1", "rows a2", "rows d1"]));
    expect(names).not.toContain("rows b1");
    // Settled rows no longer count.
    expect((await createMultiple(["rows e1", "rows e2", "rows e3"])).statusCode).toBe(200);
  });
  it("admits UpdateMultiple and UpsertMultiple by their rows too", async () => {
    const held = await t.db.pool.connect();
    let first: ReturnType<typeof createMultiple>;
    try {
      first = createMultiple(["rows f1", "rows f2"]);
      for (let i = 0; i < 100 && t.db.pool.waitingCount < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(t.db.pool.waitingCount).toBe(1);
      for (const action of ["UpdateMultiple", "UpsertMultiple"]) {
        const shed = await t.app.inject({
          method: "POST",
          url: `${url}/Microsoft.Dynamics.CRM.${action}`,
          payload: {
            Targets: [randomUUID(), randomUUID()].map((id) => ({
              "@odata.type": "Microsoft.Dynamics.CRM.msdyn_ciprovider",
              msdyn_ciproviderid: id,
              msdyn_name: "not written",
            })),
          },
        });
        expect(shed.statusCode, action).toBe(503);
        expect(shed.json().error.message, action).toMatch(/overloaded \(2 rows being written\)/);
      }
    } finally {
      held.release();
    }
    expect((await first).statusCode).toBe(200);
  });
});

describe("a shed request whose body is still arriving", () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp({ DB_POOL_SIZE: "1", MAX_REQUESTS_IN_FLIGHT: "1", AUDIT_LOG: "off", ANALYTICS: "off" });
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    port = (t.app.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await t.close();
  });

  /** What arrives on `socket` until `until` matches it (bounded by the socket's end). */
  const readUntil = (socket: net.Socket, until: RegExp, seen: { text: string }) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (until.test(seen.text)) {
          socket.off("data", onData);
          resolve(seen.text);
        }
      };
      const onData = (chunk: Buffer) => {
        seen.text += chunk.toString("latin1");
        check();
      };
      socket.on("data", onData);
      socket.once("close", () => reject(new Error(`closed after: ${seen.text.slice(0, 200)}`)));
      check();
    });

  it("gets its 503 and keeps its connection: the body is read and discarded, not answered with a reset", async () => {
    const url = "/api/data/v9.2/msdyn_ciproviders";
    expect((await t.app.inject({ method: "GET", url })).statusCode).toBe(200);
    const held = await t.db.pool.connect();
    const inFlight = t.app.inject({ method: "GET", url });
    for (let i = 0; i < 100 && t.db.pool.waitingCount < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(t.db.pool.waitingCount).toBe(1);

    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    const seen = { text: "" };
    try {
      const body = JSON.stringify({ msdyn_name: "x".repeat(200_000) });
      // The headers and a first part of the body; the 503 comes before the rest is sent.
      socket.write(
        `POST ${url} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 1000)}`,
      );
      const first = await readUntil(socket, /\r\n\r\n[\s\S]*"error"[\s\S]*\}\}/, seen);
      expect(first).toMatch(/^HTTP\/1\.1 503/);
      expect(first).toMatch(/retry-after: \d+/i);
      expect(first).not.toMatch(/connection: close/i);
      // The rest of the body, then another request on the same connection.
      seen.text = "";
      socket.write(body.slice(1000));
      socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
      const second = await readUntil(socket, /\r\n\r\n[\s\S]*\}/, seen);
      expect(second).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      socket.destroy();
      held.release();
    }
    expect((await inFlight).statusCode).toBe(200);
  });
});
