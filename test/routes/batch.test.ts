/** `$batch`: raw multipart bodies and the real dynamics-web-api client (startBatch/executeBatch). */
import { randomUUID } from "node:crypto";
import type { DynamicsWebApi } from "dynamics-web-api";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_BATCH_OPERATIONS } from "../../src/odata/batch.js";
import { useTestApp } from "../helpers/app.js";
import { listenWithWebApi, webApiProvider } from "../helpers/web-api.js";

const CRLF = "\r\n";

/** Builds a multipart body; an array item is a change set. */
function batchBody(boundary: string, items: Array<string | string[]>): string {
  const part = (request: string, contentId?: number) =>
    [
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      ...(contentId ? [`Content-ID: ${contentId}`] : []),
      "",
      request,
    ].join(CRLF);
  const chunks = items.map((item, i) => {
    if (typeof item === "string") return `--${boundary}${CRLF}${part(item)}`;
    const cs = `changeset_${i}`;
    const inner = item.map((r, j) => `--${cs}${CRLF}${part(r, j + 1)}`).join(CRLF);
    return `--${boundary}${CRLF}Content-Type: multipart/mixed; boundary=${cs}${CRLF}${CRLF}${inner}${CRLF}--${cs}--`;
  });
  return `${chunks.join(CRLF)}${CRLF}--${boundary}--${CRLF}`;
}

const post = (url: string, body: object) =>
  [`POST ${url} HTTP/1.1`, "Content-Type: application/json", "", JSON.stringify(body)].join(CRLF);
const get = (url: string) => [`GET ${url} HTTP/1.1`, "Accept: application/json", "", ""].join(CRLF);

describe("$batch", () => {
  const t = useTestApp();
  let api: DynamicsWebApi;
  let providerId: string;

  beforeAll(async () => {
    ({ api } = await listenWithWebApi(t));
    providerId = await webApiProvider(api, "Batch provider");
  });

  const count = async (sql: string, params: unknown[]) => Number((await t.testDb.pool.query(sql, params)).rows[0].n);
  const rowsOf = async (conversationId: string) => ({
    conversations: await count("SELECT count(*) AS n FROM msdyn_conversationdata WHERE msdyn_conversationid = $1", [
      conversationId,
    ]),
    sessions: await count("SELECT count(*) AS n FROM msdyn_sessiondata WHERE msdyn_conversationid = $1", [conversationId]),
    participants: await count("SELECT count(*) AS n FROM msdyn_sessionparticipantdata WHERE msdyn_conversationid = $1", [
      conversationId,
    ]),
    events: await count("SELECT count(*) AS n FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1", [conversationId]),
  });

  function family(conversationId: string) {
    return {
      conversation: { msdyn_conversationid: conversationId, msdyn_providerid: providerId },
      session: { msdyn_conversationid: conversationId, msdyn_providersessionid: "s1" },
      participant: { msdyn_conversationid: conversationId, msdyn_providersessionid: "s1", msdyn_participantid: "agent-1" },
      event: {
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: "s1",
        msdyn_participantid: "agent-1",
        msdyn_kpieventname: "SessionStarted",
      },
    };
  }

  it("runs a dynamics-web-api change set that creates a conversation, session, participant and KPI event", async () => {
    const c = `batch-${randomUUID()}`;
    const f = family(c);
    api.startBatch();
    void api.create({ collection: "msdyn_conversationsdata", data: f.conversation });
    void api.create({ collection: "msdyn_sessionsdata", data: f.session });
    void api.create({ collection: "msdyn_sessionparticipantsdata", data: f.participant });
    void api.create({ collection: "msdyn_kpieventsdata", data: f.event });
    const results = (await api.executeBatch()) as string[];

    expect(results).toHaveLength(4);
    for (const id of results) expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await rowsOf(c)).toEqual({ conversations: 1, sessions: 1, participants: 1, events: 1 });
  });

  it("rolls the whole change set back when its last operation fails, and the client sees the error", async () => {
    const c = `batch-${randomUUID()}`;
    const f = family(c);
    api.startBatch();
    void api.create({ collection: "msdyn_conversationsdata", data: f.conversation });
    void api.create({ collection: "msdyn_sessionsdata", data: f.session });
    void api.create({
      collection: "msdyn_kpieventsdata",
      data: { ...f.event, msdyn_providersessionid: "no-such-session", msdyn_participantid: null },
    });

    const failure = await api.executeBatch().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeDefined();
    // The client rejects with one Error per part; each carries the status and the JSON error.
    const errors = (Array.isArray(failure) ? failure : [failure]) as Array<{
      status?: number;
      error?: { code?: string; message?: string };
    }>;
    expect(errors.map((e) => [e.status, e.error?.code])).toContainEqual([400, "0x80040217"]);
    expect(errors.find((e) => e.status === 400)?.error?.message).toMatch(/session does not exist/);
    expect(await rowsOf(c)).toEqual({ conversations: 0, sessions: 0, participants: 0, events: 0 });
  });

  it("answers in the layout dynamics-web-api parses, with Content-ID, Location and OData-EntityId", async () => {
    const c = `batch-${randomUUID()}`;
    const f = family(c);
    const res = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed; boundary=batch_A1" },
      payload: batchBody("batch_A1", [
        [post("/api/data/v9.2/msdyn_conversationsdata", f.conversation), post("msdyn_sessionsdata", f.session)],
        get(
          `/api/data/v9.2/msdyn_sessionsdata?$select=msdyn_providersessionid&$filter=${encodeURIComponent(`msdyn_conversationid eq '${c}'`)}`,
        ),
      ]),
    });

    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^multipart\/mixed; boundary=batchresponse_[0-9a-f-]{36}$/);
    const body = res.body;
    expect(body.startsWith("--batchresponse_")).toBe(true);
    expect(body).toMatch(/Content-Type: multipart\/mixed; boundary=changesetresponse_/);
    expect(body).toContain("Content-ID: 1\r\n");
    expect(body).toContain("Content-ID: 2\r\n");
    expect(body.match(/HTTP\/1\.1 204 No Content/g)).toHaveLength(2);
    expect(body).toMatch(/Location: http:\/\/localhost:80\/api\/data\/v9\.2\/msdyn_conversationsdata\([0-9a-f-]{36}\)/);
    expect(body).toMatch(/OData-EntityId: http:\/\/localhost:80\/api\/data\/v9\.2\/msdyn_sessionsdata\([0-9a-f-]{36}\)/);
    expect(body).toContain("HTTP/1.1 200 OK");
    expect(body).toContain('"msdyn_providersessionid":"s1"');
    expect(body.trimEnd().endsWith("--")).toBe(true);
  });

  it("resolves $n references to rows created earlier in the change set", async () => {
    const c = `batch-${randomUUID()}`;
    const f = family(c);
    const res = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed;boundary=b" },
      payload: batchBody("b", [
        [
          post("/api/data/v9.2/msdyn_conversationsdata", f.conversation),
          [`PATCH $1 HTTP/1.1`, "Content-Type: application/json", "", JSON.stringify({ msdyn_channel: "voice" })].join(CRLF),
          [`PUT $1/msdyn_accountid HTTP/1.1`, "Content-Type: application/json", "", JSON.stringify({ value: "acc-9" })].join(
            CRLF,
          ),
        ],
      ]),
    });

    expect(res.statusCode, res.body).toBe(200);
    const { rows } = await t.testDb.pool.query(
      "SELECT msdyn_channel, msdyn_accountid FROM msdyn_conversationdata WHERE msdyn_conversationid = $1",
      [c],
    );
    expect(rows).toEqual([{ msdyn_channel: "voice", msdyn_accountid: "acc-9" }]);
  });

  it("refuses a reference to an unknown Content-ID and rolls its change set back", async () => {
    const c = `batch-${randomUUID()}`;
    const res = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed; boundary=b" },
      payload: batchBody("b", [
        [
          post("msdyn_conversationsdata", family(c).conversation),
          [`PATCH $7 HTTP/1.1`, "Content-Type: application/json", "", "{}"].join(CRLF),
        ],
      ]),
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain("Content-ID Reference: '$7' does not exist in the batch context.");
    expect((await rowsOf(c)).conversations).toBe(0);
  });

  it("stops at the first failure without continue-on-error, and goes on with it", async () => {
    const c1 = `batch-${randomUUID()}`;
    const c2 = `batch-${randomUUID()}`;
    const items = [
      post("msdyn_sessionsdata", { msdyn_conversationid: "missing", msdyn_providersessionid: "s" }),
      post("msdyn_conversationsdata", family(c1).conversation),
    ];
    const stopped = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed; boundary=b" },
      payload: batchBody("b", items),
    });
    expect(stopped.statusCode).toBe(400);
    expect(stopped.body).toContain("HTTP/1.1 400 Bad Request");
    expect((await rowsOf(c1)).conversations).toBe(0);

    const continued = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed; boundary=b", prefer: "odata.continue-on-error" },
      payload: batchBody("b", [items[0]!, post("msdyn_conversationsdata", family(c2).conversation)]),
    });
    expect(continued.statusCode).toBe(200);
    expect(continued.body).toContain("HTTP/1.1 400 Bad Request");
    expect(continued.body).toContain("HTTP/1.1 204 No Content");
    expect((await rowsOf(c2)).conversations).toBe(1);
  });

  it("keeps provider gating and integrity inside change sets", async () => {
    const disabled = (await api.create({ collection: "msdyn_ciproviders", data: { msdyn_name: "Off" } })) as unknown as string;
    const c = `batch-${randomUUID()}`;
    const f = family(c);
    const res = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed; boundary=b" },
      payload: batchBody("b", [
        [
          post("msdyn_conversationsdata", { ...f.conversation, msdyn_providerid: disabled }),
          post("msdyn_sessionsdata", f.session),
          post("msdyn_kpieventsdata", { ...f.event, msdyn_participantid: null }),
        ],
      ]),
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain("HTTP/1.1 403 Forbidden");
    expect(res.body).toContain(`msdyn_ciproviders(${disabled})`);
    expect(await rowsOf(c)).toEqual({ conversations: 0, sessions: 0, participants: 0, events: 0 });
  });

  it("refuses more than 1,000 operations", async () => {
    const parts = Array.from({ length: MAX_BATCH_OPERATIONS + 1 }, () => get("msdyn_ciproviders?$top=1"));
    const res = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed; boundary=b" },
      payload: batchBody("b", parts),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toBe("The $batch holds 1001 operations; at most 1000 are allowed.");
  });

  it.each([
    ["no boundary", "multipart/mixed", "--b\r\n\r\n--b--\r\n", /boundary parameter/],
    [
      "LF-only framing",
      "multipart/mixed; boundary=b",
      "--b\nContent-Type: application/http\n\nGET msdyn_ciproviders HTTP/1.1\n\n--b--\n",
      /CRLF/,
    ],
    [
      "no closing delimiter",
      "multipart/mixed; boundary=b",
      `--b${CRLF}Content-Type: application/http${CRLF}${CRLF}GET x HTTP/1.1${CRLF}`,
      /closing delimiter '--b--'/,
    ],
    [
      "a part that is not an HTTP request",
      "multipart/mixed; boundary=b",
      `--b${CRLF}Content-Type: text/plain${CRLF}${CRLF}hello${CRLF}--b--${CRLF}`,
      /application\/http/,
    ],
    [
      "a bad request line",
      "multipart/mixed; boundary=b",
      `--b${CRLF}Content-Type: application/http${CRLF}${CRLF}FETCH x${CRLF}--b--${CRLF}`,
      /request line/,
    ],
  ])("answers a malformed body (%s) with a 400 saying what is wrong", async (_name, contentType, payload, message) => {
    const res = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": contentType },
      payload,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(message);
  });

  it("refuses a GET inside a change set", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/api/data/v9.2/$batch",
      headers: { "content-type": "multipart/mixed; boundary=b" },
      payload: batchBody("b", [[get("msdyn_ciproviders")]]),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/GET requests go outside change sets/);
  });
});
