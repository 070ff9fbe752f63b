/** Bodies that cannot stall the server: a nesting-depth limit and a per-route size limit. */
import { postBatch } from "../helpers/records.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertJsonDepth } from "../../src/odata/json-depth.js";
import { type TestApp, createTestApp } from "../helpers/app.js";

const API = "/api/data/v9.2";

describe("JSON bodies", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ RECORD_BODY_LIMIT: "2048" });
  });
  afterAll(async () => {
    await t.close();
  });

  it("answers a 10,000-level nested value with 400", async () => {
    const deep = `{"Targets":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    const res = await t.app.inject({
      method: "POST",
      url: `${API}/msdyn_ciproviders/Microsoft.Dynamics.CRM.CreateMultiple`,
      headers: { "content-type": "application/json" },
      payload: deep,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/deeper than 64 levels \(JSON_MAX_DEPTH\)/);
  });

  it("answers nesting in a $batch part with 400", async () => {
    const deep = `{"msdyn_name":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    const body = [
      "--b",
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      "",
      `POST ${API}/msdyn_ciproviders HTTP/1.1`,
      "Content-Type: application/json",
      "",
      deep,
      "--b--",
      "",
    ].join("\r\n");
    const res = await postBatch(t, body);
    expect(res.body).toMatch(/deeper than 64 levels/);
    expect(res.statusCode).toBeLessThan(500);
  });

  it("counts brackets inside strings as text", () => {
    expect(() => assertJsonDepth(`{"a":"${"[".repeat(1000)}"}`, 2)).not.toThrow();
    expect(() => assertJsonDepth(`{"a":"\\"[[[[["}`, 1)).not.toThrow();
    expect(() => assertJsonDepth(`[[[]]]`, 2)).toThrow(/deeper than 2/);
  });

  it("limits a one-record body to RECORD_BODY_LIMIT, and leaves the bulk actions BODY_LIMIT", async () => {
    const big = { msdyn_name: "x".repeat(4000) };
    const one = await t.app.inject({ method: "POST", url: `${API}/msdyn_ciproviders`, payload: big });
    expect(one.statusCode).toBe(413);
    expect(one.json().error.message).toMatch(/limit of 2048 bytes for one record \(RECORD_BODY_LIMIT\)/);

    const bulk = await t.app.inject({
      method: "POST",
      url: `${API}/msdyn_ciproviders/Microsoft.Dynamics.CRM.CreateMultiple`,
      payload: {
        Targets: [{ "@odata.type": "Microsoft.Dynamics.CRM.msdyn_ciprovider", msdyn_name: "p", msdyn_label: "y".repeat(3000) }],
      },
    });
    expect(bulk.statusCode, bulk.body).not.toBe(413);
  });
});
