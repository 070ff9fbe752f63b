/**
 * FetchXML over HTTP (`GET {set}?fetchXml=…`): attributes, conditions, nested filters,
 * link-entity over the parent links (inner and outer), aggregates with date grouping,
 * distinct, top, paging with the paging cookie and simple paging, and the 400s.
 */
import { postBatch } from "../helpers/records.js";
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_KPI_EVENT_DEFINITIONS } from "../../src/model/tables.js";
import { type TestApp, createTestApp } from "../helpers/app.js";

const ROOT = "/api/data/v9.2";
const PAGING = `odata.include-annotations="Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords"`;
const SESSION_STARTED = SYSTEM_KPI_EVENT_DEFINITIONS.find((d) => d.name === "SessionStarted")!.id;
type Json = Record<string, unknown>;

describe("FetchXML", () => {
  let t: TestApp;
  const cF = `fx-${randomUUID()}`;
  const cG = `fy-${randomUUID()}`;
  const recent = new Date(Date.now() - 60_000).toISOString();

  const get = (
    fetchXml: string,
    headers: Record<string, string> = {},
    set = "msdyn_kpieventsdata",
    extra: Record<string, string> = {},
  ) => t.app.inject({ method: "GET", url: `${ROOT}/${set}`, query: { fetchXml, ...extra }, headers });
  async function rows(fetchXml: string, headers: Record<string, string> = {}): Promise<Json[]> {
    const res = await get(fetchXml, headers);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().value as Json[];
  }
  /** The events (by importsequencenumber) a condition on this fixture's events selects. */
  async function seqs(filter: string, order = `<order attribute="importsequencenumber" />`): Promise<number[]> {
    const found = await rows(
      `<fetch><entity name="msdyn_kpieventdata"><attribute name="importsequencenumber" />${order}` +
        `<filter><condition attribute="msdyn_conversationid" operator="in"><value>${cF}</value><value>${cG}</value></condition>${filter}</filter>` +
        `</entity></fetch>`,
    );
    return found.map((r) => r.importsequencenumber as number);
  }
  function expectBadRequest(res: LightMyRequestResponse, ...fragments: string[]) {
    expect(res.statusCode, res.body).toBe(400);
    const body = res.json();
    expect(Object.keys(body)).toEqual(["error"]);
    for (const fragment of fragments) expect(body.error.message).toContain(fragment);
  }

  beforeAll(async () => {
    t = await createTestApp();
    const owner = t.config.CALLER_USER_ID;
    const q = (sql: string, values: unknown[]) => t.testDb.pool.query(sql, values);
    for (const [c, channel] of [
      [cF, "chat"],
      [cG, "voice"],
    ]) {
      await q(`INSERT INTO msdyn_conversationdata (msdyn_conversationid, msdyn_channel, ownerid) VALUES ($1, $2, $3)`, [
        c,
        channel,
        owner,
      ]);
    }
    for (const [c, s, queue] of [
      [cF, "s-1", "q1"],
      [cF, "s-2", "q2"],
      [cG, "s-1", "q1"],
    ]) {
      await q(
        `INSERT INTO msdyn_sessiondata (msdyn_conversationid, msdyn_providersessionid, msdyn_queuename, ownerid) VALUES ($1, $2, $3, $4)`,
        [c, s, queue, owner],
      );
    }
    const events: Array<[string, string, string, string | null, string | null, number]> = [
      [cF, "s-1", "SessionStarted", "Alpha", "2020-01-10T08:00:00Z", 10],
      [cF, "s-1", "SessionClosed", "alpha beta", "2020-01-11T09:00:00Z", 20],
      [cF, "s-2", "NotificationReceived", null, null, 30],
      [cF, "s-2", "SessionStarted", "Gamma_x", recent, 40],
      [cG, "s-1", "SessionStarted", "beta", "2020-02-01T12:00:00Z", 50],
    ];
    for (const [c, s, name, reason, ts, seq] of events) {
      await q(
        `INSERT INTO msdyn_kpieventdata (msdyn_kpieventid, msdyn_conversationid, msdyn_providersessionid, msdyn_kpieventname,
           msdyn_kpieventreason, msdyn_eventtimestamp, importsequencenumber, ownerid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [SESSION_STARTED, c, s, name, reason, ts, seq, owner],
      );
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it("returns the attributes asked for, with @odata.etag and the primary key, leaving nulls out", async () => {
    const res = await get(
      `<fetch><entity name="msdyn_kpieventdata"><attribute name="msdyn_kpieventreason" /><attribute name="importsequencenumber" alias="seq" />` +
        `<order attribute="importsequencenumber" descending="true" />` +
        `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${cF}" /></filter></entity></fetch>`,
    );
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body["@odata.context"]).toBe(
      "http://localhost:80/api/data/v9.2/$metadata#msdyn_kpieventsdata(msdyn_kpieventreason,seq)",
    );
    expect(body).not.toHaveProperty("@Microsoft.Dynamics.CRM.morerecords");
    const value = body.value as Json[];
    expect(value.map((r) => r.seq)).toEqual([40, 30, 20, 10]);
    expect(Object.keys(value[0]!).sort()).toEqual(["@odata.etag", "msdyn_kpieventdataid", "msdyn_kpieventreason", "seq"]);
    expect(Object.keys(value[1]!).sort()).toEqual(["@odata.etag", "msdyn_kpieventdataid", "seq"]);
    expect(value[0]!["@odata.etag"]).toMatch(/^W\/"\d+"$/);
  });

  it("without <attribute> returns every column (lookups as _x_value)", async () => {
    const [row] = await rows(
      `<fetch top="1"><entity name="msdyn_kpieventdata"><filter><condition attribute="importsequencenumber" operator="eq" value="10" /><condition attribute="msdyn_conversationid" operator="eq" value="${cF}" /></filter></entity></fetch>`,
    );
    expect(row).toMatchObject({
      msdyn_kpieventname: "SessionStarted",
      msdyn_eventtimestamp: "2020-01-10T08:00:00Z",
      _ownerid_value: t.config.CALLER_USER_ID,
    });
  });

  it.each([
    [`<condition attribute="importsequencenumber" operator="eq" value="20" />`, [20]],
    [`<condition attribute="importsequencenumber" operator="ne" value="20" />`, [10, 30, 40, 50]],
    [`<condition attribute="importsequencenumber" operator="gt" value="20" />`, [30, 40, 50]],
    [`<condition attribute="importsequencenumber" operator="ge" value="20" />`, [20, 30, 40, 50]],
    [`<condition attribute="importsequencenumber" operator="lt" value="20" />`, [10]],
    [`<condition attribute="importsequencenumber" operator="le" value="20" />`, [10, 20]],
    [`<condition attribute="msdyn_kpieventreason" operator="like" value="alpha%" />`, [10, 20]],
    [`<condition attribute="msdyn_kpieventreason" operator="like" value="%bet_" />`, [20, 50]],
    [`<condition attribute="msdyn_kpieventreason" operator="not-like" value="%alpha%" />`, [40, 50]],
    [
      `<condition attribute="msdyn_kpieventname" operator="in"><value>SessionClosed</value><value>NotificationReceived</value></condition>`,
      [20, 30],
    ],
    [
      `<condition attribute="importsequencenumber" operator="not-in"><value>10</value><value>20</value></condition>`,
      [30, 40, 50],
    ],
    [
      `<condition attribute="importsequencenumber" operator="between"><value>20</value><value>40</value></condition>`,
      [20, 30, 40],
    ],
    [`<condition attribute="msdyn_kpieventreason" operator="null" />`, [30]],
    [`<condition attribute="msdyn_eventtimestamp" operator="not-null" />`, [10, 20, 40, 50]],
    [`<condition attribute="msdyn_eventtimestamp" operator="last-x-hours" value="2" />`, [40]],
    [`<condition attribute="msdyn_eventtimestamp" operator="last-x-days" value="3" />`, [40]],
    [`<condition attribute="msdyn_eventtimestamp" operator="on-or-after" value="2020-01-11" />`, [20, 40, 50]],
    [`<condition attribute="msdyn_eventtimestamp" operator="on-or-before" value="2020-01-11" />`, [10, 20]],
    [`<condition attribute="msdyn_eventtimestamp" operator="today" />`, [40]],
    [
      `<filter type="or"><condition attribute="importsequencenumber" operator="eq" value="10" /><filter><condition attribute="msdyn_kpieventname" operator="eq" value="SessionStarted" /><condition attribute="importsequencenumber" operator="gt" value="40" /></filter></filter>`,
      [10, 50],
    ],
  ])("%s", async (condition, expected) => {
    // "today" and "last-x-…" hold for the row made a minute ago, unless this runs across midnight UTC.
    expect(await seqs(condition)).toEqual(expected);
  });

  it("orders with nulls first ascending and last descending", async () => {
    const order = (descending: boolean) => `<order attribute="msdyn_eventtimestamp" descending="${descending}" />`;
    expect(await seqs("", order(false))).toEqual([30, 10, 20, 50, 40]);
    expect(await seqs("", order(true))).toEqual([40, 50, 20, 10, 30]);
  });

  it("links to a parent (inner): its filter narrows the rows, its attributes come back as <alias>_x002e_<name>", async () => {
    const found = await rows(
      `<fetch><entity name="msdyn_kpieventdata"><attribute name="importsequencenumber" /><order attribute="importsequencenumber" />` +
        `<filter><condition attribute="msdyn_conversationid" operator="in"><value>${cF}</value><value>${cG}</value></condition></filter>` +
        `<link-entity name="msdyn_sessiondata" from="msdyn_providersessionid" to="msdyn_providersessionid" alias="s">` +
        `<attribute name="msdyn_queuename" /><attribute name="msdyn_providersessionid" alias="sessionName" />` +
        `<filter><condition attribute="msdyn_queuename" operator="eq" value="q1" /></filter></link-entity></entity></fetch>`,
    );
    // Joined on the whole session link (conversation and session ids), not on the one column named.
    expect(found.map((r) => [r.importsequencenumber, r.s_x002e_msdyn_queuename, r.sessionName])).toEqual([
      [10, "q1", "s-1"],
      [20, "q1", "s-1"],
      [50, "q1", "s-1"],
    ]);
  });

  it("an outer link keeps rows without a match; a condition can name a link with entityname", async () => {
    const xml = (filter: string) =>
      `<fetch><entity name="msdyn_conversationdata"><attribute name="msdyn_channel" /><order attribute="msdyn_channel" />` +
      `<filter><condition attribute="msdyn_conversationid" operator="in"><value>${cF}</value><value>${cG}</value></condition>${filter}</filter>` +
      `<link-entity name="msdyn_sessiondata" from="msdyn_conversationid" to="msdyn_conversationid" link-type="outer" alias="s">` +
      `<attribute name="msdyn_providersessionid" /><order attribute="msdyn_providersessionid" />` +
      `<filter><condition attribute="msdyn_queuename" operator="eq" value="q2" /></filter></link-entity></entity></fetch>`;
    const res = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_conversationsdata`, query: { fetchXml: xml("") } });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json().value as Json[]).map((r) => [r.msdyn_channel, r.s_x002e_msdyn_providersessionid])).toEqual([
      ["chat", "s-2"],
      ["voice", undefined],
    ]);
    const named = await t.app.inject({
      method: "GET",
      url: `${ROOT}/msdyn_conversationsdata`,
      query: { fetchXml: xml(`<condition entityname="s" attribute="msdyn_providersessionid" operator="null" />`) },
    });
    expect((named.json().value as Json[]).map((r) => r.msdyn_channel)).toEqual(["voice"]);
  });

  it("a link to children returns one row per child", async () => {
    const res = await t.app.inject({
      method: "GET",
      url: `${ROOT}/msdyn_conversationsdata`,
      query: {
        fetchXml:
          `<fetch><entity name="msdyn_conversationdata"><attribute name="msdyn_channel" />` +
          `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${cF}" /></filter>` +
          `<link-entity name="msdyn_kpieventdata" from="msdyn_conversationid" to="msdyn_conversationid" alias="e">` +
          `<attribute name="importsequencenumber" alias="seq" /><order attribute="importsequencenumber" /></link-entity></entity></fetch>`,
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json().value as Json[]).map((r) => [r.msdyn_channel, r.seq])).toEqual([
      ["chat", 10],
      ["chat", 20],
      ["chat", 30],
      ["chat", 40],
    ]);
  });

  it("aggregates: count, countcolumn, sum, avg, min, max, grouped, ordered by alias", async () => {
    const found = await rows(
      `<fetch aggregate="true"><entity name="msdyn_kpieventdata">` +
        `<attribute name="msdyn_kpieventname" alias="name" groupby="true" />` +
        `<attribute name="msdyn_kpieventdataid" alias="n" aggregate="count" />` +
        `<attribute name="msdyn_kpieventreason" alias="reasons" aggregate="countcolumn" />` +
        `<attribute name="importsequencenumber" alias="total" aggregate="sum" />` +
        `<attribute name="importsequencenumber" alias="mean" aggregate="avg" />` +
        `<attribute name="importsequencenumber" alias="low" aggregate="min" />` +
        `<attribute name="msdyn_eventtimestamp" alias="latest" aggregate="max" />` +
        `<order alias="n" descending="true" />` +
        `<filter><condition attribute="msdyn_conversationid" operator="in"><value>${cF}</value><value>${cG}</value></condition></filter>` +
        `</entity></fetch>`,
    );
    expect(found).toEqual([
      { name: "SessionStarted", n: 3, reasons: 3, total: 100, mean: 100 / 3, low: 10, latest: expect.stringMatching(/^\d{4}-/) },
      { name: "NotificationReceived", n: 1, reasons: 0, total: 30, mean: 30, low: 30 },
      { name: "SessionClosed", n: 1, reasons: 1, total: 20, mean: 20, low: 20, latest: "2020-01-11T09:00:00Z" },
    ]);
  });

  it("aggregates group by date parts (UTC) and over a link", async () => {
    const found = await rows(
      `<fetch aggregate="true"><entity name="msdyn_kpieventdata">` +
        `<attribute name="msdyn_eventtimestamp" alias="year" groupby="true" dategrouping="year" />` +
        `<attribute name="msdyn_eventtimestamp" alias="month" groupby="true" dategrouping="month" />` +
        `<attribute name="msdyn_eventtimestamp" alias="day" groupby="true" dategrouping="day" />` +
        `<attribute name="msdyn_eventtimestamp" alias="week" groupby="true" dategrouping="week" />` +
        `<attribute name="msdyn_kpieventdataid" alias="n" aggregate="count" />` +
        `<filter><condition attribute="msdyn_eventtimestamp" operator="on-or-before" value="2020-12-31" /></filter>` +
        `<link-entity name="msdyn_conversationdata" from="msdyn_conversationid" to="msdyn_conversationid" alias="c">` +
        `<attribute name="msdyn_channel" alias="channel" groupby="true" />` +
        `<filter><condition attribute="msdyn_conversationid" operator="in"><value>${cF}</value><value>${cG}</value></condition></filter>` +
        `</link-entity></entity></fetch>`,
    );
    expect(found).toEqual([
      { year: 2020, month: 1, day: 10, week: 2, channel: "chat", n: 1 },
      { year: 2020, month: 1, day: 11, week: 2, channel: "chat", n: 1 },
      { year: 2020, month: 2, day: 1, week: 5, channel: "voice", n: 1 },
    ]);
  });

  it("distinct returns each combination once, without @odata.etag", async () => {
    const found = await rows(
      `<fetch distinct="true"><entity name="msdyn_kpieventdata"><attribute name="msdyn_kpieventname" /><order attribute="msdyn_kpieventname" />` +
        `<filter><condition attribute="msdyn_conversationid" operator="in"><value>${cF}</value><value>${cG}</value></condition></filter></entity></fetch>`,
    );
    expect(found).toEqual([
      { msdyn_kpieventname: "NotificationReceived" },
      { msdyn_kpieventname: "SessionClosed" },
      { msdyn_kpieventname: "SessionStarted" },
    ]);
  });

  it("top limits the rows and never pages", async () => {
    const res = await get(
      `<fetch top="2"><entity name="msdyn_kpieventdata"><attribute name="importsequencenumber" /><order attribute="importsequencenumber" /><filter><condition attribute="msdyn_conversationid" operator="eq" value="${cF}" /></filter></entity></fetch>`,
      { prefer: PAGING },
    );
    expect(res.json().value.map((r: Json) => r.importsequencenumber)).toEqual([10, 20]);
    expect(res.json()["@Microsoft.Dynamics.CRM.morerecords"]).toBe(false);
    expect(res.json()).not.toHaveProperty("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie");
  });

  it("works inside $batch too", async () => {
    const xml = `<fetch top="1"><entity name="msdyn_kpieventdata"><attribute name="importsequencenumber" /><order attribute="importsequencenumber" /><filter><condition attribute="msdyn_conversationid" operator="eq" value="${cF}" /></filter></entity></fetch>`;
    const part = [
      `GET ${ROOT}/msdyn_kpieventsdata?fetchXml=${encodeURIComponent(xml)} HTTP/1.1`,
      "Accept: application/json",
      "",
      "",
    ].join("\r\n");
    const payload = `--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n${part}\r\n--b--\r\n`;
    const res = await postBatch(t, payload);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain("HTTP/1.1 200");
    expect(res.body).toContain('"importsequencenumber":10');
  });

  describe("paging", () => {
    const xml = (page: number, cookie?: string, order = `<order attribute="msdyn_eventtimestamp" descending="true" />`) =>
      `<fetch count="2" page="${page}"${cookie === undefined ? "" : ` paging-cookie="${cookie.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")}"`}>` +
      `<entity name="msdyn_kpieventdata"><attribute name="importsequencenumber" />${order}` +
      `<filter><condition attribute="msdyn_conversationid" operator="in"><value>${cF}</value><value>${cG}</value></condition></filter></entity></fetch>`;
    const cookieOf = (annotation: string) => {
      const match = /^<cookie pagenumber="(\d+)" pagingcookie="([^"]+)" istracking="False" \/>$/.exec(annotation);
      expect(match, annotation).not.toBeNull();
      return { next: Number(match![1]), cookie: decodeURIComponent(decodeURIComponent(match![2]!)) };
    };

    it("pages of count rows with the paging cookie and morerecords, as Dataverse returns them, each row once", async () => {
      const seen: number[] = [];
      let res = await get(xml(1), { prefer: PAGING });
      for (let page = 1; page <= 10; page++) {
        expect(res.statusCode, res.body).toBe(200);
        expect(res.headers["preference-applied"]).toBe(PAGING);
        const body = res.json();
        seen.push(...body.value.map((r: Json) => r.importsequencenumber as number));
        if (!body["@Microsoft.Dynamics.CRM.morerecords"]) {
          expect(body).not.toHaveProperty("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie");
          break;
        }
        const { next, cookie } = cookieOf(body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]);
        expect(next).toBe(page + 1);
        expect(cookie).toMatch(new RegExp(`^<cookie page="${page}">.+</cookie>$`));
        res = await get(xml(next, cookie), { prefer: PAGING });
      }
      expect(seen).toEqual([40, 50, 20, 10, 30]);
    });

    it("without the annotations asked for, neither comes back", async () => {
      const body = (await get(xml(1))).json();
      expect(body.value).toHaveLength(2);
      expect(body).not.toHaveProperty("@Microsoft.Dynamics.CRM.morerecords");
      expect(body).not.toHaveProperty("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie");
    });

    it("simple paging (page without cookie, or a cookie of another page) gives the same pages", async () => {
      const page2 = (await get(xml(2))).json().value.map((r: Json) => r.importsequencenumber);
      expect(page2).toEqual([20, 10]);
      const first = (await get(xml(1), { prefer: PAGING })).json();
      const { cookie } = cookieOf(first["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]);
      expect((await get(xml(3, cookie))).json().value.map((r: Json) => r.importsequencenumber)).toEqual([30]);
      expect((await get(xml(4))).json().value).toEqual([]);
    });

    it("queries without a cookie (distinct, aggregates) still say morerecords and the next page number", async () => {
      const res = await get(
        `<fetch count="1" distinct="true"><entity name="msdyn_kpieventdata"><attribute name="msdyn_kpieventname" /><order attribute="msdyn_kpieventname" />` +
          `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${cF}" /></filter></entity></fetch>`,
        { prefer: PAGING },
      );
      expect(res.json()["@Microsoft.Dynamics.CRM.morerecords"]).toBe(true);
      expect(res.json()["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]).toBe(`<cookie pagenumber="2" istracking="False" />`);
    });

    it("a tampered or foreign paging cookie is a 400", async () => {
      const first = (await get(xml(1), { prefer: PAGING })).json();
      const { cookie } = cookieOf(first["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]);
      expectBadRequest(await get(xml(2, cookie.replace('last="', 'last="x'))), "paging-cookie");
      expectBadRequest(await get(xml(2, cookie, `<order attribute="importsequencenumber" />`)), "paging-cookie");
      expectBadRequest(await get(xml(2, "<cookie/>")), "paging-cookie");
    });

    it("simple paging stops at 50,000 rows", async () => {
      expectBadRequest(await get(xml(25_001)), "50000");
    });
  });

  describe("refusals", () => {
    const entity = (inner: string, fetch = "<fetch>") => `${fetch}<entity name="msdyn_kpieventdata">${inner}</entity></fetch>`;
    it.each([
      [entity(`<attribute name="nope" />`), "nope"],
      [entity(`<attribute name="msdyn_name" frob="1" />`), "frob"],
      [entity(`<unknown-element />`), "unknown-element"],
      [entity("", `<fetch returntotalrecordcount="true">`), "returntotalrecordcount"],
      [`<fetch><entity name="msdyn_sessiondata" /></fetch>`, "msdyn_sessiondata"],
      [`<fetch><entity name="msdyn_kpieventdata"></fetch>`, "not well-formed"],
      [`<entity name="msdyn_kpieventdata" />`, "<fetch>"],
      [entity(`<filter><condition attribute="msdyn_name" operator="begins-with" value="a" /></filter>`), "begins-with"],
      [entity(`<filter type="xor"><condition attribute="msdyn_name" operator="eq" value="a" /></filter>`), "xor"],
      [entity(`<filter><condition attribute="importsequencenumber" operator="eq" value="ten" /></filter>`), "ten"],
      [entity(`<filter><condition attribute="msdyn_name" operator="between"><value>a</value></condition></filter>`), "two"],
      [entity(`<link-entity name="msdyn_ciprovider" from="msdyn_ciproviderid" to="msdyn_kpieventid" />`), "msdyn_ciprovider"],
      [
        entity(
          `<link-entity name="msdyn_sessiondata" from="msdyn_providersessionid" to="msdyn_providersessionid" link-type="exists" />`,
        ),
        "exists",
      ],
      [entity(`<attribute name="msdyn_name" aggregate="count" alias="n" />`), 'aggregate="true"'],
      [entity(`<attribute name="msdyn_name" aggregate="sum" alias="n" />`, `<fetch aggregate="true">`), "sum"],
      [entity(`<attribute name="msdyn_name" groupby="true" />`, `<fetch aggregate="true">`), "alias"],
      [entity("", `<fetch top="1" count="2">`), "top"],
      [entity("", `<fetch count="5001">`), "count"],
      [`<!DOCTYPE fetch [<!ENTITY a "b">]><fetch><entity name="msdyn_kpieventdata" /></fetch>`, "DOCTYPE"],
    ])("%s is a 400 naming what is wrong", async (xml, fragment) => {
      expectBadRequest(await get(xml), fragment);
    });

    it("savedQuery and userQuery get a clear 400; fetchXml does not combine with $ options", async () => {
      const id = randomUUID();
      for (const option of ["savedQuery", "userQuery"]) {
        const res = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_kpieventsdata?${option}=${id}` });
        expectBadRequest(res, option, "no saved views");
      }
      expectBadRequest(await get(entity(""), {}, "msdyn_kpieventsdata", { $select: "msdyn_name" }), "$select");
    });

    it("an echoed value is cut short", async () => {
      // Long, yet within the 32,768 characters a URL may have (src/plugins/request-limits.ts).
      const long = "x".repeat(30_000);
      const res = await get(entity(`<attribute name="${long}" />`));
      expectBadRequest(res, "xxxx");
      expect(res.body.length).toBeLessThan(1000);
    });
  });
});
