/**
 * FetchXML through the real npm client `dynamics-web-api` (v2.5.0), unmodified, against the
 * app on loopback: fetch() one page at a time with its PagingInfo, and fetchAll(), which
 * reads the paging cookie annotation and sends it back until no more records follow.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamicsWebApi } from "dynamics-web-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestApp, createTestApp } from "../helpers/app.js";

const EVENTS = 10;
const PAGING = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords";
type Row = Record<string, unknown>;

describe("dynamics-web-api (v2.5.0) fetch() and fetchAll() against the emulator", () => {
  let t: TestApp;
  let api: DynamicsWebApi;
  const conversationId = `c-${randomUUID()}`;
  const requests: string[] = [];
  const events = (count?: number, order = `<order attribute="importsequencenumber" descending="true" />`) =>
    `<fetch${count ? ` count="${count}"` : ""}><entity name="msdyn_kpieventdata"><attribute name="importsequencenumber" />${order}` +
    `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${conversationId}" /></filter>` +
    `<link-entity name="msdyn_sessiondata" from="msdyn_providersessionid" to="msdyn_providersessionid" alias="s"><attribute name="msdyn_queuename" /></link-entity>` +
    `</entity></fetch>`;

  beforeAll(async () => {
    t = await createTestApp();
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    t.app.server.prependListener("request", (request: IncomingMessage) => requests.push(`${request.method} ${request.url}`));
    const { port } = t.app.server.address() as AddressInfo;
    api = new DynamicsWebApi({ serverUrl: `http://127.0.0.1:${port}`, dataApi: { version: "9.2" } });
    const providerId = await api.create<Row, string>({ collection: "msdyn_ciproviders", data: { msdyn_name: "Contoso" } });
    await api.update({ collection: "msdyn_ciproviders", key: providerId, data: { msdyn_enableanalytics: true } });
    await api.create({
      collection: "msdyn_conversationsdata",
      data: { msdyn_conversationid: conversationId, msdyn_providerid: providerId },
    });
    await api.create({
      collection: "msdyn_sessionsdata",
      data: { msdyn_conversationid: conversationId, msdyn_providersessionid: "s-1", msdyn_queuename: "q1" },
    });
    for (let n = 1; n <= EVENTS; n++) {
      await api.create({
        collection: "msdyn_kpieventsdata",
        data: {
          msdyn_conversationid: conversationId,
          msdyn_providersessionid: "s-1",
          msdyn_kpieventname: n % 2 ? "SessionStarted" : "SessionClosed",
          importsequencenumber: n,
        },
      });
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it("fetch() returns one page with PagingInfo; the next page from its cookie follows on", async () => {
    const first = await api.fetch<Row>({ collection: "msdyn_kpieventsdata", fetchXml: events(4), includeAnnotations: PAGING });
    expect(first.value.map((r) => r.importsequencenumber)).toEqual([10, 9, 8, 7]);
    // The client turns link-entity attributes (s_x002e_msdyn_queuename) into an object per alias.
    expect(first.value[0]).toMatchObject({ s: { msdyn_queuename: "q1" } });
    expect(first.PagingInfo).toMatchObject({ nextPage: 2, cookie: expect.stringContaining("&lt;cookie page=&quot;1&quot;&gt;") });
    const second = await api.fetch<Row>({
      collection: "msdyn_kpieventsdata",
      fetchXml: events(4),
      includeAnnotations: PAGING,
      pageNumber: first.PagingInfo!.nextPage,
      pagingCookie: first.PagingInfo!.cookie,
    });
    expect(second.value.map((r) => r.importsequencenumber)).toEqual([6, 5, 4, 3]);
    const third = await api.fetch<Row>({
      collection: "msdyn_kpieventsdata",
      fetchXml: events(4),
      includeAnnotations: PAGING,
      pageNumber: second.PagingInfo!.nextPage,
      pagingCookie: second.PagingInfo!.cookie,
    });
    expect(third.value.map((r) => r.importsequencenumber)).toEqual([2, 1]);
    expect(third.PagingInfo).toBeUndefined();
  });

  it("fetchAll() pages through every row once, in order, sending the paging cookie back", async () => {
    const before = requests.length;
    const all = await api.fetchAll<Row>({ collection: "msdyn_kpieventsdata", fetchXml: events(3), includeAnnotations: PAGING });
    expect(all.value.map((r) => r.importsequencenumber)).toEqual(Array.from({ length: EVENTS }, (_, i) => EVENTS - i));
    const pages = requests.slice(before).filter((line) => line.startsWith("GET /api/data/v9.2/msdyn_kpieventsdata?fetchXml="));
    expect(pages).toHaveLength(4);
    expect(pages.slice(1).every((line) => decodeURIComponent(line).includes("paging-cookie="))).toBe(true);
  });

  it("fetchAll() pages a query without a cookie (distinct) by page number", async () => {
    const xml =
      `<fetch count="1" distinct="true"><entity name="msdyn_kpieventdata"><attribute name="msdyn_kpieventname" /><order attribute="msdyn_kpieventname" />` +
      `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${conversationId}" /></filter></entity></fetch>`;
    const all = await api.fetchAll<Row>({ collection: "msdyn_kpieventsdata", fetchXml: xml, includeAnnotations: PAGING });
    expect(all.value).toEqual([{ msdyn_kpieventname: "SessionClosed" }, { msdyn_kpieventname: "SessionStarted" }]);
  });

  it("fetch() runs an aggregate query", async () => {
    const xml =
      `<fetch aggregate="true"><entity name="msdyn_kpieventdata"><attribute name="msdyn_kpieventname" alias="name" groupby="true" />` +
      `<attribute name="importsequencenumber" alias="total" aggregate="sum" /><order alias="name" />` +
      `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${conversationId}" /></filter></entity></fetch>`;
    const result = await api.fetch<Row>({ collection: "msdyn_kpieventsdata", fetchXml: xml });
    expect(result.value).toEqual([
      { name: "SessionClosed", total: 30 },
      { name: "SessionStarted", total: 25 },
    ]);
  });

  it("an unsupported element rejects with 400 and a message naming it", async () => {
    await expect(
      api.fetch({
        collection: "msdyn_kpieventsdata",
        fetchXml: `<fetch><entity name="msdyn_kpieventdata"><bogus /></entity></fetch>`,
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining("<bogus>") });
  });
});
