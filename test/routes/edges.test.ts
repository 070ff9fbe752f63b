/**
 * The edges a new user met (issue 17): bodiless requests with a JSON Content-Type,
 * text/plain, __proto__ keys, invalid UTF-8, HEAD, OPTIONS with Allow, CORS preflight,
 * and POST WhoAmI().
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestApp, createTestApp } from "../helpers/app.js";

const ROOT = "/api/data/v9.2";
const JSON_TYPE = { "content-type": "application/json" };

describe("edges", () => {
  let t: TestApp;
  let providerId: string;
  beforeAll(async () => {
    t = await createTestApp();
    const res = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, payload: { msdyn_name: "Edges" } });
    expect(res.statusCode, res.body).toBe(204);
    providerId = /\(([0-9a-f-]{36})\)$/.exec(String(res.headers["odata-entityid"]))![1]!;
  });
  afterAll(async () => {
    await t?.close();
  });

  it("DELETE and GET with Content-Type: application/json and no body are accepted", async () => {
    const created = await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_ciproviders`,
      payload: { msdyn_name: "To delete" },
    });
    const url = String(created.headers["odata-entityid"]).replace(/^http:\/\/[^/]+/, "");
    const got = await t.app.inject({ method: "GET", url, headers: JSON_TYPE });
    expect(got.statusCode, got.body).toBe(200);
    const deleted = await t.app.inject({ method: "DELETE", url, headers: JSON_TYPE });
    expect(deleted.statusCode, deleted.body).toBe(204);
    expect((await t.app.inject({ method: "GET", url })).statusCode).toBe(404);
    // A POST still needs its body.
    const empty = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, headers: JSON_TYPE });
    expect(empty.statusCode).toBe(400);
  });

  it("text/plain gets 415 like other unsupported types", async () => {
    for (const type of ["text/plain", "text/plain; charset=utf-8", "application/xml"]) {
      const res = await t.app.inject({
        method: "POST",
        url: `${ROOT}/msdyn_ciproviders`,
        headers: { "content-type": type },
        payload: '{"msdyn_name":"x"}',
      });
      expect(res.statusCode, type).toBe(415);
      expect(Object.keys(res.json())).toEqual(["error"]);
    }
  });

  it("a __proto__ or constructor.prototype key gets a message naming it", async () => {
    for (const [payload, key] of [
      ['{"msdyn_name":"a","__proto__":{"x":1}}', "__proto__"],
      ['{"msdyn_name":"a","nested":{"\\u005f_proto__":{}}}', "__proto__"],
      ['{"constructor":{"prototype":{"x":1}}}', "constructor.prototype"],
    ]) {
      const res = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, headers: JSON_TYPE, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toBe(`The request body has a property named '${key}', which is not allowed.`);
    }
    // Plain invalid JSON keeps its message.
    const bad = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, headers: JSON_TYPE, payload: "{nope" });
    expect(bad.json().error.message).toContain("not valid JSON");
  });

  it("invalid UTF-8 in a body is a 400, not replaced silently", async () => {
    const payload = Buffer.concat([Buffer.from('{"msdyn_name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const res = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, headers: JSON_TYPE, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toBe("The request body is not valid UTF-8.");
    const valid = await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_ciproviders`,
      headers: JSON_TYPE,
      payload: Buffer.from('{"msdyn_name":"Zoë ✓"}'),
    });
    expect(valid.statusCode, valid.body).toBe(204);
  });

  describe("invalid UTF-8 inside $batch parts", () => {
    const BAD = Buffer.from([0xc3, 0x28]);
    const post = (name: Buffer | string) =>
      Buffer.concat([
        Buffer.from(
          `Content-Type: application/http\r\n\r\nPOST ${ROOT}/msdyn_ciproviders HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"msdyn_name":"`,
        ),
        Buffer.from(name),
        Buffer.from(`"}\r\n`),
      ]);
    const batch = (...parts: Buffer[]) =>
      Buffer.concat([...parts.flatMap((p) => [Buffer.from("--b\r\n"), p]), Buffer.from("--b--\r\n")]);
    const changeSet = (...parts: Buffer[]) =>
      Buffer.concat([
        Buffer.from("Content-Type: multipart/mixed; boundary=cs\r\n\r\n"),
        ...parts.flatMap((p) => [Buffer.from("--cs\r\n"), p]),
        Buffer.from("--cs--\r\n"),
      ]);
    const send = (payload: Buffer) =>
      t.app.inject({
        method: "POST",
        url: `${ROOT}/$batch`,
        headers: { "content-type": "multipart/mixed; boundary=b" },
        payload,
      });
    const named = async (name: string) =>
      (
        await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_ciproviders?$filter=msdyn_name eq '${name}'&$select=msdyn_name` })
      ).json<{ value: unknown[] }>().value;

    it("is a 400 naming the part, and no part runs", async () => {
      const first = `Batch-${Date.now()}`;
      for (const [payload, part] of [
        [batch(post(first), post(Buffer.concat([Buffer.from("Bad"), BAD]))), "part 2 "],
        [batch(post(first), changeSet(post("ok"), post(BAD))), "part 2.2 "],
        [batch(changeSet(post(BAD))), "part 1.1 "],
      ] as const) {
        const res = await send(payload);
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json()).toEqual({ error: { code: "0x80048d19", message: expect.stringContaining(part) as string } });
        expect(res.json().error.message).toContain("not valid UTF-8");
      }
      expect(await named(first)).toEqual([]);
    });

    it("valid multi-byte UTF-8 in a part is stored as sent", async () => {
      const name = `Zoë ✓ 🎧 ${Date.now()}`;
      const res = await send(batch(changeSet(post(name))));
      expect(res.statusCode, res.body).toBe(200);
      expect(res.body).toContain("204 No Content");
      expect(await named(name)).toEqual([expect.objectContaining({ msdyn_name: name })]);
    });
  });

  it("POST WhoAmI() is a 405 with a code and Allow: GET", async () => {
    const res = await t.app.inject({ method: "POST", url: `${ROOT}/WhoAmI()`, payload: {} });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe("GET");
    expect(res.json().error.code).toBe("0x80040216");
  });

  it("HEAD works where GET does, without a body", async () => {
    for (const path of [
      "",
      "msdyn_ciproviders",
      `msdyn_ciproviders(${providerId})`,
      `msdyn_ciproviders(${providerId})/msdyn_name`,
      "msdyn_ciproviders/$count",
      "$metadata",
      "WhoAmI()",
    ]) {
      const get = await t.app.inject({ method: "GET", url: `${ROOT}/${path}` });
      const head = await t.app.inject({ method: "HEAD", url: `${ROOT}/${path}` });
      expect(head.statusCode, path).toBe(get.statusCode);
      expect(head.statusCode, path).toBe(200);
      expect(head.body, path).toBe("");
      expect(head.headers["content-type"], path).toBe(get.headers["content-type"]);
    }
  });

  it.each([
    ["", "GET, HEAD"],
    ["$metadata", "GET, HEAD"],
    ["WhoAmI()", "GET, HEAD"],
    ["$batch", "POST"],
    ["msdyn_LogAnalyticsEvent", "POST"],
    ["msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple", "POST"],
    ["msdyn_ciproviders", "GET, HEAD, POST"],
    ["msdyn_ciproviders/$count", "GET, HEAD"],
    ["msdyn_ciproviders(00000000-0000-0000-0000-000000000001)", "GET, HEAD, PATCH, DELETE"],
    ["msdyn_ciproviders(00000000-0000-0000-0000-000000000001)/msdyn_name", "GET, HEAD, PUT, DELETE"],
  ])("OPTIONS %s answers 204 with Allow: %s", async (path, allow) => {
    const res = await t.app.inject({ method: "OPTIONS", url: `${ROOT}/${path}` });
    expect(res.statusCode, res.body).toBe(204);
    expect(res.headers.allow).toBe(allow);
  });

  it("OPTIONS on an unknown set is a 404; without CORS_ORIGINS no CORS headers are sent", async () => {
    expect((await t.app.inject({ method: "OPTIONS", url: `${ROOT}/nothing` })).statusCode).toBe(404);
    const res = await t.app.inject({
      method: "GET",
      url: `${ROOT}/msdyn_ciproviders`,
      headers: { origin: "http://localhost:5173" },
    });
    expect(res.headers).not.toHaveProperty("access-control-allow-origin");
  });
});

describe("GUIDs in braces are accepted everywhere and normalised", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });
  const braced = (id: string) => `{${id.toUpperCase()}}`;

  it("in keys, bodies, @odata.bind, bulk targets and the provider ids of conversations and events", async () => {
    const created = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, payload: { msdyn_name: "Braces" } });
    const id = /\(([0-9a-f-]{36})\)$/.exec(String(created.headers["odata-entityid"]))![1]!;
    for (const key of [braced(id), `msdyn_ciproviderid=${braced(id)}`]) {
      const res = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_ciproviders(${encodeURIComponent(key)})` });
      expect(res.statusCode, key).toBe(200);
      expect(res.json().msdyn_ciproviderid).toBe(id);
    }
    expect(
      (
        await t.app.inject({
          method: "PATCH",
          url: `${ROOT}/msdyn_ciproviders(${braced(id)})`,
          payload: { msdyn_enableanalytics: true },
        })
      ).statusCode,
    ).toBe(204);

    const bulkId = "0a6f3d2e-1111-4222-8333-444455556666";
    const bulk = await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_ciproviders/Microsoft.Dynamics.CRM.CreateMultiple`,
      payload: {
        Targets: [
          { "@odata.type": "Microsoft.Dynamics.CRM.msdyn_ciprovider", msdyn_ciproviderid: braced(bulkId), msdyn_name: "Bulk" },
        ],
      },
    });
    expect(bulk.statusCode, bulk.body).toBe(200);
    expect(bulk.json().Ids).toEqual([bulkId]);

    const conversation = `c-braces-${Date.now()}`;
    const conv = await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_conversationsdata`,
      headers: { prefer: "return=representation" },
      payload: {
        msdyn_conversationid: conversation,
        msdyn_providerid: braced(id),
        "ownerid@odata.bind": `/systemusers(${braced(t.config.CALLER_USER_ID)})`,
      },
    });
    expect(conv.statusCode, conv.body).toBe(201);
    expect(conv.json().msdyn_providerid).toBe(id);
    expect(conv.json()._ownerid_value).toBe(t.config.CALLER_USER_ID);
    await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_sessionsdata`,
      payload: { msdyn_conversationid: conversation, msdyn_providersessionid: "s-1" },
    });
    const event = await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_kpieventsdata`,
      headers: { prefer: "return=representation" },
      payload: {
        msdyn_conversationid: conversation,
        msdyn_providersessionid: "s-1",
        msdyn_kpieventname: "SessionStarted",
        msdyn_ProviderId: braced(id),
      },
    });
    expect(event.statusCode, event.body).toBe(201);
    expect(event.json().msdyn_ProviderId).toBe(id);

    const correlationId = "7d3c9a1e-2f4b-4c6d-8e9f-0a1b2c3d4e5f";
    const logged = await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_LogAnalyticsEvent`,
      payload: {
        correlationId: braced(correlationId),
        eventName: "SessionStarted",
        data: { conversationId: conversation, providerSessionId: "s-1", events: [{}] },
      },
    });
    expect(logged.statusCode, logged.body).toBe(200);
    expect(logged.headers["x-ms-correlation-request-id"]).toBe(correlationId);
  });
});

describe("bounded, exact error messages", () => {
  let t: TestApp;
  beforeAll(async () => {
    // One record may be 1 MB by default (RECORD_BODY_LIMIT); these bodies are 9 MB on purpose.
    t = await createTestApp({ RECORD_BODY_LIMIT: String(10 * 1024 * 1024) });
  });
  afterAll(async () => {
    await t?.close();
  });
  const big = "x".repeat(9_000_000);

  it.each([
    ["a property value", { msdyn_sortorder: big }],
    ["a property name", { [big]: 1 }],
    ["an @odata.type", { "@odata.type": big }],
  ])("%s of 9 MB is echoed as a short prefix", async (_what, payload) => {
    const res = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, payload });
    expect(res.statusCode).toBe(400);
    expect(res.body.length).toBeLessThan(1000);
    expect(res.json().error.message).toMatch(/xxxx"?… \(9000000 characters\)/);
  });

  it("bulk targets and actions are bounded too", async () => {
    const bulk = await t.app.inject({
      method: "POST",
      url: `${ROOT}/msdyn_ciproviders/Microsoft.Dynamics.CRM.UpdateMultiple`,
      payload: { Targets: [{ "@odata.type": "Microsoft.Dynamics.CRM.msdyn_ciprovider", msdyn_ciproviderid: big }] },
    });
    expect(bulk.statusCode).toBe(400);
    expect(bulk.body.length).toBeLessThan(1000);
    const action = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_InitLogAnalytics`, payload: { [big]: 1 } });
    expect(action.statusCode).toBe(400);
    expect(action.body.length).toBeLessThan(3000);
  });

  it("a quoted key is not quoted twice", async () => {
    const res = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_ciproviders('abc')` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/^'abc' is not a valid key for msdyn_ciproviders/);
    const bare = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_ciproviders(abc)` });
    expect(bare.json().error.message).toMatch(/^'abc' is not a valid key/);
    const top = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_ciproviders?$top='5'` });
    expect(top.json().error.message).toBe("$top must be a whole number, got '5'.");
  });
});

describe("CORS with CORS_ORIGINS", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ CORS_ORIGINS: "http://localhost:5173, https://app.example" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("answers a preflight from a listed origin, and adds the headers to the real request", async () => {
    const preflight = await t.app.inject({
      method: "OPTIONS",
      url: `${ROOT}/msdyn_ciproviders`,
      headers: {
        origin: "http://localhost:5173",
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "content-type,prefer",
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
    expect(String(preflight.headers["access-control-allow-methods"])).toContain("PATCH");
    expect(String(preflight.headers["access-control-allow-headers"])).toBe("content-type,prefer");
    const real = await t.app.inject({
      method: "GET",
      url: `${ROOT}/msdyn_ciproviders`,
      headers: { origin: "https://app.example" },
    });
    expect(real.headers["access-control-allow-origin"]).toBe("https://app.example");
    expect(String(real.headers["access-control-expose-headers"])).toContain("OData-EntityId");
  });

  it("gives an unlisted origin no CORS headers", async () => {
    const res = await t.app.inject({
      method: "GET",
      url: `${ROOT}/msdyn_ciproviders`,
      headers: { origin: "http://evil.example" },
    });
    expect(res.headers).not.toHaveProperty("access-control-allow-origin");
  });
});
