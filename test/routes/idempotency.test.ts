/** Idempotency-Key: a retried write gets the first answer and creates no second row. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
