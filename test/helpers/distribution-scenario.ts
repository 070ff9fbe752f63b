/**
 * The operations of issue 13, with the exact status and message of each: creates,
 * CreateMultiple, UpsertMultiple, UpdateMultiple, both logging actions, a `$batch` change
 * set with `PATCH $1`, PATCH/PUT/DELETE by GUID and by alternate key, cascaded deletes,
 * query options, `$apply` and `$expand`, and every refusal mapped from a constraint
 * (missing parent 400, duplicate 412, definition in use 405, `Targets[i]` in bulk refusals).
 * The same tests run on plain PostgreSQL (test/channel-analytics/distribution-scenario.test.ts)
 * and, when CITUS_URL is set, on a Citus cluster (test/citus/citus.test.ts), so the answers
 * are the same on both.
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { expect, it } from "vitest";
import type { TestApp } from "./app.js";
import { OBJECT_DOES_NOT_EXIST, ROOT, createdId, definitionId, entityIdOf, expectError, records } from "./records.js";

const CRLF = "\r\n";
const DUPLICATE_RECORD = "0x80040237";

const ok = (res: LightMyRequestResponse, status = 204) => expect(res.statusCode, res.body).toBe(status);

export function distributionScenario(t: TestApp): void {
  const { post, patch, get, del, provider, conversation, session, participant, family } = records(t);
  const put = (path: string, body: unknown) =>
    t.app.inject({ method: "PUT", url: `${ROOT}/${path}`, payload: body as object, headers: {} });
  const etag = async (path: string) => (await get(path)).json<{ "@odata.etag": string }>()["@odata.etag"];
  const count = async (table: string, c: string) =>
    Number(
      (await t.db.pool.query(`SELECT count(*) AS n FROM ${table} WHERE msdyn_conversationid = $1`, [c])).rows[0].n as string,
    );
  const typed = (body: Record<string, unknown>) => ({ "@odata.type": "Microsoft.Dynamics.CRM.msdyn_kpieventdata", ...body });
  const event = (c: string, extra: Record<string, unknown> = {}) => ({
    msdyn_conversationid: c,
    msdyn_providersessionid: "s-1",
    msdyn_kpieventname: "SessionStarted",
    msdyn_eventtimestamp: "2026-12-04T10:00:00Z",
    ...extra,
  });

  it("creates every table's rows and reads them back by GUID and by alternate key", async () => {
    const { c } = await family({ participantId: "agent-1" });
    const id = createdId(await post("msdyn_kpieventsdata", event(c, { msdyn_participantid: "agent-1" })));
    const byId = await get(`msdyn_kpieventsdata(${id})`);
    ok(byId, 200);
    expect(byId.json()).toMatchObject({ msdyn_kpieventid: definitionId("SessionStarted"), msdyn_conversationid: c });
    const byKey = await get(`msdyn_sessionsdata(msdyn_conversationid='${c}',msdyn_providersessionid='s-1')`);
    ok(byKey, 200);
    expect(byKey.json()).toMatchObject({ msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
  });

  it("refuses a missing parent with 400, naming it", async () => {
    const missing = `c-${randomUUID()}`;
    const res = await post("msdyn_sessionsdata", { msdyn_conversationid: missing, msdyn_providersessionid: "s-1" });
    expect(expectError(res, 400, OBJECT_DOES_NOT_EXIST)).toBe(
      `msdyn_sessiondata was not saved: its conversation does not exist (no msdyn_conversationdata with msdyn_conversationid = '${missing}'). Create the conversation first.`,
    );
    const { c } = await family();
    const noSession = await post("msdyn_kpieventsdata", event(c, { msdyn_providersessionid: "s-9" }));
    expect(expectError(noSession, 400, OBJECT_DOES_NOT_EXIST)).toBe(
      `msdyn_kpieventdata was not saved: its session does not exist (no msdyn_sessiondata with msdyn_conversationid = '${c}', msdyn_providersessionid = 's-9'). Create the session first.`,
    );
    const noParticipant = await post("msdyn_kpieventsdata", event(c, { msdyn_participantid: "nobody" }));
    expect(expectError(noParticipant, 400, OBJECT_DOES_NOT_EXIST)).toBe(
      `msdyn_kpieventdata was not saved: its session participant does not exist (no msdyn_sessionparticipantdata with msdyn_conversationid = '${c}', msdyn_providersessionid = 's-1', msdyn_participantid = 'nobody'). Create the session participant first.`,
    );
  });

  it("refuses duplicates with 412: an alternate key, a GUID in its conversation, a GUID of another conversation", async () => {
    const c = await conversation();
    const again = await post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_name: c });
    expect(expectError(again, 412, "0x80060892")).toBe(
      "A record with the same value for msdyn_conversationid already exists (alternate key of msdyn_conversationdata).",
    );
    const id = randomUUID();
    createdId(
      await post("msdyn_sessionsdata", { msdyn_sessiondataid: id, msdyn_conversationid: c, msdyn_providersessionid: "a" }),
    );
    const sameConversation = await post("msdyn_sessionsdata", {
      msdyn_sessiondataid: id,
      msdyn_conversationid: c,
      msdyn_providersessionid: "b",
    });
    expect(expectError(sameConversation, 412, DUPLICATE_RECORD)).toBe("A record with matching key values already exists.");
    const other = await conversation();
    const otherConversation = await post("msdyn_sessionsdata", {
      msdyn_sessiondataid: id,
      msdyn_conversationid: other,
      msdyn_providersessionid: "a",
    });
    expect(expectError(otherConversation, 412, DUPLICATE_RECORD)).toBe("A record with matching key values already exists.");
    expect(await count("msdyn_sessiondata", other)).toBe(0);
  });

  it("updates by GUID with PATCH and PUT, with ETags, and by alternate key", async () => {
    const { c } = await family();
    const id = createdId(await post("msdyn_kpieventsdata", event(c)));
    const before = await etag(`msdyn_kpieventsdata(${id})`);
    ok(await patch(`msdyn_kpieventsdata(${id})`, { msdyn_kpieventreason: "first" }, { "If-Match": before }));
    const after = await etag(`msdyn_kpieventsdata(${id})`);
    expect(after).not.toBe(before);
    const stale = await patch(`msdyn_kpieventsdata(${id})`, { msdyn_kpieventreason: "second" }, { "If-Match": before });
    expect(expectError(stale, 412, "0x80060882")).toBe(
      "The version of the existing record doesn't match the RowVersion property provided.",
    );
    ok(await put(`msdyn_kpieventsdata(${id})/msdyn_kpieventreason`, { value: "put" }));
    expect((await get(`msdyn_kpieventsdata(${id})`)).json()).toMatchObject({ msdyn_kpieventreason: "put" });
    ok(await patch(`msdyn_sessionsdata(msdyn_conversationid='${c}',msdyn_providersessionid='s-1')`, { msdyn_queuename: "Q" }));
    const conversationId = entityIdOf(
      await patch(`msdyn_conversationsdata(msdyn_conversationid='${c}')`, { msdyn_channel: "v" }),
    );
    ok(await patch(`msdyn_conversationsdata(${conversationId})`, { msdyn_channel: "voice" }));
    expect((await get(`msdyn_conversationsdata(${conversationId})`)).json()).toMatchObject({ msdyn_channel: "voice" });
    const missing = await patch(`msdyn_sessionsdata(${randomUUID()})`, { msdyn_queuename: "Q" }, { "If-Match": "*" });
    expectError(missing, 404, OBJECT_DOES_NOT_EXIST);
  });

  it("creates by PATCH to a new GUID and by alternate key (upsert)", async () => {
    const c = await conversation();
    const id = randomUUID();
    ok(await patch(`msdyn_sessionsdata(${id})`, { msdyn_conversationid: c, msdyn_providersessionid: "new" }));
    expect((await get(`msdyn_sessionsdata(${id})`)).json()).toMatchObject({ msdyn_providersessionid: "new" });
    ok(await patch(`msdyn_sessionsdata(msdyn_conversationid='${c}',msdyn_providersessionid='by-key')`, { msdyn_queuename: "Q" }));
    expect(await count("msdyn_sessiondata", c)).toBe(2);
  });

  it("deletes by GUID and by alternate key, cascading to the conversation's tree", async () => {
    const { c } = await family({ participantId: "agent-1" });
    const eventId = createdId(await post("msdyn_kpieventsdata", event(c, { msdyn_participantid: "agent-1" })));
    ok(await del(`msdyn_kpieventsdata(${eventId})`));
    expectError(await get(`msdyn_kpieventsdata(${eventId})`), 404, OBJECT_DOES_NOT_EXIST);
    createdId(await post("msdyn_kpieventsdata", event(c, { msdyn_participantid: "agent-1" })));
    ok(await del(`msdyn_sessionsdata(msdyn_conversationid='${c}',msdyn_providersessionid='s-1')`));
    expect([await count("msdyn_sessionparticipantdata", c), await count("msdyn_kpieventdata", c)]).toEqual([0, 0]);
    await session(c, "s-1");
    await participant(c, "s-1", "agent-1");
    createdId(await post("msdyn_kpieventsdata", event(c)));
    const conversationId = (await get(`msdyn_conversationsdata(msdyn_conversationid='${c}')`)).json<{
      msdyn_conversationdataid: string;
    }>().msdyn_conversationdataid;
    ok(await del(`msdyn_conversationsdata(${conversationId})`));
    const left = await Promise.all(
      ["msdyn_conversationdata", "msdyn_sessiondata", "msdyn_sessionparticipantdata", "msdyn_kpieventdata"].map((x) =>
        count(x, c),
      ),
    );
    expect(left).toEqual([0, 0, 0, 0]);
  });

  it("refuses to delete a definition in use with 405, and deactivates it instead", async () => {
    const { c } = await family();
    const definition = createdId(await post("msdyn_kpieventdefinitions", { msdyn_name: `Custom-${randomUUID()}` }));
    createdId(await post("msdyn_kpieventsdata", event(c, { msdyn_kpieventname: undefined, msdyn_kpieventid: definition })));
    expect(expectError(await del(`msdyn_kpieventdefinitions(${definition})`), 405)).toBe(
      `The msdyn_kpieventdefinition cannot be deleted because msdyn_kpieventdata rows use it. Deactivate it instead (PATCH with {"statecode": 1}).`,
    );
    ok(await patch(`msdyn_kpieventdefinitions(${definition})`, { statecode: 1 }));
    expect((await get(`msdyn_kpieventdefinitions(${definition})`)).json()).toMatchObject({ statecode: 1, statuscode: 2 });
  });

  it("CreateMultiple, UpdateMultiple and UpsertMultiple, naming Targets[i] in a refusal", async () => {
    const { c } = await family();
    const missing = `c-${randomUUID()}`;
    const refused = await post("msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple", {
      Targets: [typed(event(c)), typed(event(missing))],
    });
    expect(expectError(refused, 400, OBJECT_DOES_NOT_EXIST)).toBe(
      `Targets[1]: msdyn_kpieventdata was not saved: its conversation does not exist (no msdyn_conversationdata with msdyn_conversationid = '${missing}'). Create the conversation first.`,
    );
    expect(await count("msdyn_kpieventdata", c)).toBe(0);
    const session = (conversationId: string, s: string) => ({
      "@odata.type": "Microsoft.Dynamics.CRM.msdyn_sessiondata",
      msdyn_conversationid: conversationId,
      msdyn_providersessionid: s,
    });
    const noConversation = await post("msdyn_sessionsdata/Microsoft.Dynamics.CRM.CreateMultiple", {
      Targets: [session(c, "s-2"), session(missing, "s-1")],
    });
    expect(expectError(noConversation, 400, OBJECT_DOES_NOT_EXIST)).toBe(
      `Targets[1]: msdyn_sessiondata was not saved: its conversation does not exist (no msdyn_conversationdata with msdyn_conversationid = '${missing}'). Create the conversation first.`,
    );
    const twice = await post("msdyn_sessionsdata/Microsoft.Dynamics.CRM.CreateMultiple", {
      Targets: [session(c, "s-3"), session(c, "s-1")],
    });
    expect(expectError(twice, 412, "0x80060892")).toBe(
      "Targets[1]: A record with the same value for msdyn_conversationid, msdyn_providersessionid already exists (alternate key of msdyn_sessiondata).",
    );
    expect(await count("msdyn_sessiondata", c)).toBe(1);
    const created = await post("msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple", {
      Targets: [typed(event(c)), typed(event(c))],
    });
    ok(created, 200);
    const ids = created.json<{ Ids: string[] }>().Ids;
    ok(
      await post("msdyn_kpieventsdata/Microsoft.Dynamics.CRM.UpdateMultiple", {
        Targets: ids.map((id) => typed({ msdyn_kpieventdataid: id, msdyn_kpieventreason: "bulk" })),
      }),
    );
    const reasons = await t.db.pool.query(`SELECT msdyn_kpieventreason FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1`, [
      c,
    ]);
    expect(reasons.rows).toEqual([{ msdyn_kpieventreason: "bulk" }, { msdyn_kpieventreason: "bulk" }]);
    const sessions = await post("msdyn_sessionsdata/Microsoft.Dynamics.CRM.UpsertMultiple", {
      Targets: [
        {
          "@odata.type": "Microsoft.Dynamics.CRM.msdyn_sessiondata",
          msdyn_conversationid: c,
          msdyn_providersessionid: "s-1",
          msdyn_queuename: "Q1",
        },
        {
          "@odata.type": "Microsoft.Dynamics.CRM.msdyn_sessiondata",
          msdyn_conversationid: c,
          msdyn_providersessionid: "s-2",
          msdyn_queuename: "Q2",
        },
      ],
    });
    ok(sessions);
    expect(await count("msdyn_sessiondata", c)).toBe(2);
  });

  it("msdyn_InitLogAnalytics and msdyn_LogAnalyticsEvent", async () => {
    const providerId = await provider({ enabled: true });
    const c = `c-${randomUUID()}`;
    const init = await post("msdyn_InitLogAnalytics", {
      data: {
        conversation: {
          conversationId: c,
          providerId,
          session: { providerSessionId: "s-1", participants: [{ participantId: "agent-1", type: "Agent" }] },
        },
      },
      correlationId: randomUUID(),
    });
    ok(init, 200);
    const logged = await post("msdyn_LogAnalyticsEvent", {
      data: {
        conversationId: c,
        providerSessionId: "s-1",
        participantId: "agent-1",
        events: [{ kpiEventName: "SessionStarted", kpiEventReason: "r", eventTimestamp: "2026-12-04T10:00:00Z" }],
      },
      eventName: "SessionStarted",
      correlationId: randomUUID(),
    });
    ok(logged, 200);
    expect(await count("msdyn_kpieventdata", c)).toBe(1);
    const missing = `c-${randomUUID()}`;
    const refused = await post("msdyn_LogAnalyticsEvent", {
      data: { conversationId: missing, providerSessionId: "s-1", events: [{ kpiEventName: "SessionStarted" }] },
      eventName: "SessionStarted",
      correlationId: randomUUID(),
    });
    expect(expectError(refused, 400, OBJECT_DOES_NOT_EXIST)).toContain(
      `no msdyn_conversationdata with msdyn_conversationid = '${missing}'`,
    );
  });

  it("a $batch change set that creates a row and PATCHes it as $1", async () => {
    const c = `c-${randomUUID()}`;
    const part = (request: string, id: number) =>
      ["Content-Type: application/http", "Content-Transfer-Encoding: binary", `Content-ID: ${id}`, "", request].join(CRLF);
    const requests = [
      [
        `POST ${ROOT}/msdyn_conversationsdata HTTP/1.1`,
        "Content-Type: application/json",
        "",
        JSON.stringify({ msdyn_conversationid: c, msdyn_name: c }),
      ].join(CRLF),
      [`PATCH $1 HTTP/1.1`, "Content-Type: application/json", "", JSON.stringify({ msdyn_channel: "voice" })].join(CRLF),
    ];
    const inner = requests.map((r, i) => `--cs${CRLF}${part(r, i + 1)}`).join(CRLF);
    const payload = `--b${CRLF}Content-Type: multipart/mixed; boundary=cs${CRLF}${CRLF}${inner}${CRLF}--cs--${CRLF}--b--${CRLF}`;
    const res = await t.app.inject({
      method: "POST",
      url: `${ROOT}/$batch`,
      headers: { "content-type": "multipart/mixed;boundary=b" },
      payload,
    });
    ok(res, 200);
    expect(res.body).not.toContain("HTTP/1.1 4");
    expect(res.body).not.toContain("HTTP/1.1 5");
    const { rows } = await t.db.pool.query(`SELECT msdyn_channel FROM msdyn_conversationdata WHERE msdyn_conversationid = $1`, [
      c,
    ]);
    expect(rows).toEqual([{ msdyn_channel: "voice" }]);
  });

  it("queries: $filter, $select, $orderby, $top, $count, $apply and $expand", async () => {
    const { c } = await family();
    for (const reason of ["b", "a", "c"])
      createdId(await post("msdyn_kpieventsdata", event(c, { msdyn_kpieventreason: reason })));
    const list = await get(
      `msdyn_kpieventsdata?$select=msdyn_kpieventreason&$filter=msdyn_conversationid eq '${c}'&$orderby=msdyn_kpieventreason desc&$top=2&$count=true`,
    );
    ok(list, 200);
    const body = list.json<{ "@odata.count": number; value: Array<{ msdyn_kpieventreason: string }> }>();
    expect(body["@odata.count"]).toBe(3);
    expect(body.value.map((v) => v.msdyn_kpieventreason)).toEqual(["c", "b"]);
    const grouped = await get(
      `msdyn_kpieventsdata?$apply=filter(msdyn_conversationid eq '${c}')/groupby((msdyn_kpieventname),aggregate($count as n))`,
    );
    ok(grouped, 200);
    expect(grouped.json<{ value: unknown[] }>().value).toEqual([
      expect.objectContaining({ msdyn_kpieventname: "SessionStarted", n: 3 }),
    ]);
    // Parents on different shards, each with its own children, the first $top of them.
    const { c: other } = await family();
    createdId(await post("msdyn_kpieventsdata", event(other, { msdyn_kpieventreason: "z" })));
    const expanded = await get(
      `msdyn_conversationsdata?$filter=msdyn_conversationid eq '${c}' or msdyn_conversationid eq '${other}'&$orderby=msdyn_conversationid` +
        `&$expand=msdyn_sessions($select=msdyn_providersessionid),msdyn_kpievents($select=msdyn_kpieventreason;$orderby=msdyn_kpieventreason;$top=2)`,
    );
    ok(expanded, 200);
    type Expanded = {
      msdyn_conversationid: string;
      msdyn_sessions: unknown[];
      msdyn_kpievents: Array<{ msdyn_kpieventreason: string }>;
    };
    const rows = expanded.json<{ value: Expanded[] }>().value;
    expect(rows.map((r) => r.msdyn_conversationid)).toEqual([c, other].sort());
    const of = (conversationId: string) => rows.find((r) => r.msdyn_conversationid === conversationId)!;
    expect(of(c).msdyn_sessions).toEqual([expect.objectContaining({ msdyn_providersessionid: "s-1" })]);
    expect(of(c).msdyn_kpievents.map((e) => e.msdyn_kpieventreason)).toEqual(["a", "b"]);
    expect(of(other).msdyn_kpievents.map((e) => e.msdyn_kpieventreason)).toEqual(["z"]);
  });
}
