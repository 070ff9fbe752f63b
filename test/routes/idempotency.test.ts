/** Idempotency-Key: a retried write gets the first answer and creates no second row. */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.js";
import { type Database, openDatabase } from "../../src/db/database.js";
import { type TestApp, createTestApp } from "../helpers/app.js";

const API = "/api/data/v9.2";

describe("Idempotency-Key", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const count = async (name: string) =>
    (await t.testDb.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM msdyn_ciprovider WHERE msdyn_name = $1", [name]))
      .rows[0]!.n;

  it("replays the first answer to a retry and stores one row", async () => {
    const send = () =>
      t.app.inject({
        method: "POST",
        url: `${API}/msdyn_ciproviders`,
        headers: { "idempotency-key": "retry-1", prefer: "return=representation" },
        payload: { msdyn_name: "once" },
      });
    const first = await send();
    expect(first.statusCode).toBe(201);
    const again = await send();
    expect(again.statusCode).toBe(201);
    expect(again.headers["idempotency-replayed"]).toBe("true");
    expect(again.headers["odata-entityid"]).toBe(first.headers["odata-entityid"]);
    expect(again.json()).toEqual(first.json());
    expect(await count("once")).toBe(1);
  });

  it("keeps keys apart by key, and does nothing for requests without one", async () => {
    const post = (headers: Record<string, string>) =>
      t.app.inject({ method: "POST", url: `${API}/msdyn_ciproviders`, headers, payload: { msdyn_name: "apart" } });
    await post({ "idempotency-key": "a" });
    await post({ "idempotency-key": "b" });
    await post({});
    await post({});
    expect(await count("apart")).toBe(4);
  });

  it("replays a refusal (4xx) too, and ignores reads", async () => {
    const read = await t.app.inject({ method: "GET", url: `${API}/msdyn_ciproviders`, headers: { "idempotency-key": "r" } });
    expect(read.headers["idempotency-replayed"]).toBeUndefined();
    const bad = () =>
      t.app.inject({
        method: "POST",
        url: `${API}/msdyn_ciproviders`,
        headers: { "idempotency-key": "bad" },
        payload: { nope: 1 },
      });
    const first = await bad();
    expect(first.statusCode).toBe(400);
    const again = await bad();
    expect(again.headers["idempotency-replayed"]).toBe("true");
  });
});

describe("Idempotency-Key across a restart (a second app on the same database)", () => {
  let t: TestApp;
  let second: { app: FastifyInstance; db: Database } | undefined;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await second?.app.close();
    await second?.db.close();
    await t.close();
  });

  const post = (app: FastifyInstance, key: string, name: string) =>
    app.inject({
      method: "POST",
      url: `${API}/msdyn_ciproviders`,
      headers: { "idempotency-key": key, prefer: "return=representation" },
      payload: { msdyn_name: name },
    });
  const count = async (name: string) =>
    (await t.testDb.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM msdyn_ciprovider WHERE msdyn_name = $1", [name]))
      .rows[0]!.n;
  /** The claim of the last keyed request, as a crash would have left it: claimed by a server now gone, long ago, no answer. */
  const abandonLastClaim = async () =>
    t.testDb.pool.query(
      `UPDATE cif_idempotencykey SET status = NULL, headers = NULL, body = NULL, bodybytes = NULL,
              instanceid = 'a server that was killed', createdon = now() - interval '1 hour'
        WHERE cif_idempotencykeyid = (SELECT cif_idempotencykeyid FROM cif_idempotencykey ORDER BY createdon DESC LIMIT 1)
        RETURNING requestevent`,
    );

  it("replays the first answer after the server that gave it has stopped, and stores one row", async () => {
    const first = await post(t.app, "restart-1", "durable");
    expect(first.statusCode).toBe(201);
    expect(first.headers["idempotency-replayed"]).toBeUndefined();
    // The first server stops; another starts on the same database.
    await t.app.close();
    const db = await openDatabase(t.config, { info() {}, debug() {} });
    const app = await buildApp({ config: t.config, db, logger: false });
    await app.ready();
    await app.identity.ready();
    second = { app, db };

    const again = await post(second.app, "restart-1", "durable");
    expect(again.statusCode).toBe(201);
    expect(again.headers["idempotency-replayed"]).toBe("true");
    expect(again.headers["odata-entityid"]).toBe(first.headers["odata-entityid"]);
    expect(again.json()).toEqual(first.json());
    expect(await count("durable")).toBe(1);
  });

  it("a crash after the write committed, before its answer was kept: the retry gets 409 and writes nothing", async () => {
    expect((await post(second!.app, "crash-after-commit", "committed")).statusCode).toBe(201);
    const { rows } = await abandonLastClaim();
    // The write's Audit record committed with it: it tells the retry that the write was stored.
    expect(
      (await t.testDb.pool.query("SELECT 1 FROM cieventsaudit WHERE cieventsauditid = $1", [rows[0].requestevent])).rowCount,
    ).toBe(1);

    const retry = await post(second!.app, "crash-after-commit", "committed");
    expect(retry.statusCode).toBe(409);
    expect(retry.json().error.message).toMatch(/was stored, but its answer was lost/);
    expect(await count("committed")).toBe(1);
  });

  it("a crash before the write committed: the retry takes the claim over and writes once", async () => {
    expect((await post(second!.app, "crash-before-commit", "uncommitted")).statusCode).toBe(201);
    const { rows } = await abandonLastClaim();
    // As if the write and its Audit record had been rolled back by the crash.
    await t.testDb.pool.query("DELETE FROM msdyn_ciprovider WHERE msdyn_name = 'uncommitted'");
    await t.testDb.pool.query("DELETE FROM cieventsaudit WHERE cieventsauditid = $1", [rows[0].requestevent]);

    const retry = await post(second!.app, "crash-before-commit", "uncommitted");
    expect(retry.statusCode).toBe(201);
    expect(retry.headers["idempotency-replayed"]).toBeUndefined();
    expect(await count("uncommitted")).toBe(1);
    const replay = await post(second!.app, "crash-before-commit", "uncommitted");
    expect(replay.headers["idempotency-replayed"]).toBe("true");
    expect(await count("uncommitted")).toBe(1);
  });

  it("a claim another server holds, recent and unanswered, is still running: 409 with Retry-After", async () => {
    expect((await post(second!.app, "elsewhere", "elsewhere")).statusCode).toBe(201);
    await t.testDb.pool.query(
      `UPDATE cif_idempotencykey SET status = NULL, body = NULL, instanceid = 'another live server', createdon = now()
        WHERE cif_idempotencykeyid = (SELECT cif_idempotencykeyid FROM cif_idempotencykey ORDER BY createdon DESC LIMIT 1)`,
    );
    const retry = await post(second!.app, "elsewhere", "elsewhere");
    expect(retry.statusCode).toBe(409);
    expect(retry.headers["retry-after"]).toBe("1");
    expect(retry.json().error.message).toMatch(/still in progress/);
  });

  it("expires: a key older than IDEMPOTENCY_TTL_MS runs again", async () => {
    expect((await post(second!.app, "expiring", "expiring")).statusCode).toBe(201);
    await t.testDb.pool.query(
      `UPDATE cif_idempotencykey SET expireson = now() - interval '1 second'
        WHERE cif_idempotencykeyid = (SELECT cif_idempotencykeyid FROM cif_idempotencykey ORDER BY createdon DESC LIMIT 1)`,
    );
    const again = await post(second!.app, "expiring", "expiring");
    expect(again.statusCode).toBe(201);
    expect(again.headers["idempotency-replayed"]).toBeUndefined();
    expect(await count("expiring")).toBe(2);
  });
});

describe("Idempotency-Key claims whose outcome no Audit record can tell", () => {
  const abandonLastClaim = (t: TestApp) =>
    t.testDb.pool.query(
      `UPDATE cif_idempotencykey SET status = NULL, headers = NULL, body = NULL, bodybytes = NULL,
              instanceid = 'a server that was killed', createdon = now() - interval '1 hour'
        WHERE cif_idempotencykeyid = (SELECT cif_idempotencykeyid FROM cif_idempotencykey ORDER BY createdon DESC LIMIT 1)`,
    );
  const count = async (t: TestApp, name: string) =>
    (await t.testDb.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM msdyn_ciprovider WHERE msdyn_name = $1", [name]))
      .rows[0]!.n;

  describe("with AUDIT_LOG=off", () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp({ AUDIT_LOG: "off" });
    });
    afterAll(async () => {
      await t.close();
    });

    it("answers 409 rather than risk a second write", async () => {
      const post = () =>
        t.app.inject({
          method: "POST",
          url: `${API}/msdyn_ciproviders`,
          headers: { "idempotency-key": "unaudited" },
          payload: { msdyn_name: "unaudited" },
        });
      expect((await post()).statusCode).toBe(204);
      await abandonLastClaim(t);
      const retry = await post();
      expect(retry.statusCode).toBe(409);
      expect(retry.json().error.message).toMatch(/whether it was stored cannot be told/);
      expect(await count(t, "unaudited")).toBe(1);
    });
  });

  describe("for $batch, whose parts commit records of their own", () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp();
    });
    afterAll(async () => {
      await t.close();
    });

    it("answers 409 rather than run the parts again", async () => {
      const CRLF = "\r\n";
      const part = [
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "",
        `POST ${API}/msdyn_ciproviders HTTP/1.1`,
        "Content-Type: application/json",
        "",
        JSON.stringify({ msdyn_name: "batched" }),
      ].join(CRLF);
      const send = () =>
        t.app.inject({
          method: "POST",
          url: `${API}/$batch`,
          headers: { "content-type": "multipart/mixed; boundary=b", "idempotency-key": "batch-1" },
          payload: `--b${CRLF}${part}${CRLF}--b--${CRLF}`,
        });
      expect((await send()).statusCode).toBe(200);
      expect(await count(t, "batched")).toBe(1);
      await abandonLastClaim(t);
      const retry = await send();
      expect(retry.statusCode).toBe(409);
      expect(retry.json().error.message).toMatch(/whether it was stored cannot be told/);
      expect(await count(t, "batched")).toBe(1);
    });
  });
});
