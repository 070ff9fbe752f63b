/**
 * The entity-set contract over HTTP (shared/reference/dataverse-webapi.md §0–§5):
 * create, retrieve, single properties, alternate keys, upsert with its preconditions,
 * delete, input validation, methods, headers and the caller's columns.
 *
 * KPI-event rules and provider gating have tests of their own (test/channel-analytics/).
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { describe, expect, it } from "vitest";
import { SYSTEM_KPI_EVENT_DEFINITIONS, tableByLogicalName } from "../../src/model/tables.js";
import { type TestApp, createTestApp, useTestApp } from "../helpers/app.js";
import { GUID_PATTERN as GUID, ODATA_JSON, createdId, entityIdOf, expectError } from "../helpers/records.js";

type Method = "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
type Json = Record<string, unknown>;

const VERSIONS = ["v9.0", "v9.1", "v9.2"] as const;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;
const SESSION_STARTED_ID = "1d30a3cb-1bd9-e911-a838-000d3a375590";

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

describe("entity sets", () => {
  const t = useTestApp();

  // -------------------------------------------------------------------------
  // Helpers

  interface CallOptions {
    /** A JSON body (sent as application/json). */
    body?: unknown;
    /** A body sent verbatim as application/json (for malformed JSON). */
    raw?: string;
    headers?: Record<string, string>;
    version?: string;
    app?: TestApp;
  }

  async function call(method: Method, path: string, options: CallOptions = {}): Promise<LightMyRequestResponse> {
    const { body, raw, headers = {}, version = "v9.2", app = t } = options;
    const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
    return app.app.inject({
      method,
      url: `/api/data/${version}/${path}`,
      headers: payload === undefined ? headers : { "content-type": "application/json", ...headers },
      ...(payload === undefined ? {} : { payload }),
    });
  }

  async function count(table: string, app: TestApp = t): Promise<number> {
    const { rows } = await app.testDb.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`);
    return rows[0]!.n;
  }

  async function dbRow(table: string, primaryKey: string, id: string): Promise<Json | undefined> {
    const { rows } = await t.testDb.pool.query<Json>(`SELECT * FROM "${table}" WHERE "${primaryKey}" = $1`, [id]);
    return rows[0];
  }

  const createProvider = async (body: Json = {}): Promise<string> =>
    createdId(
      await call("POST", "msdyn_ciproviders", { body: { msdyn_name: "Contoso Voice", msdyn_label: "Contoso", ...body } }),
    );
  const createConversation = async (conversationId: string, body: Json = {}): Promise<string> =>
    createdId(await call("POST", "msdyn_conversationsdata", { body: { msdyn_conversationid: conversationId, ...body } }));
  const createSession = async (conversationId: string, sessionId: string, body: Json = {}): Promise<string> =>
    createdId(
      await call("POST", "msdyn_sessionsdata", {
        body: { msdyn_conversationid: conversationId, msdyn_providersessionid: sessionId, ...body },
      }),
    );

  async function getRow(path: string): Promise<Json> {
    const res = await call("GET", path);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  /** Property names of every column of a table, as Dataverse names them (lookups as `_x_value`). */
  const propertyNamesOf = (logicalName: string) =>
    tableByLogicalName(logicalName).columns.map((c) => (c.type === "lookup" ? `_${c.name}_value` : c.name));

  // -------------------------------------------------------------------------

  describe.each(VERSIONS)("under /api/data/%s", (version) => {
    const root = `http://localhost:80/api/data/${version}/`;

    it("POST {set} answers 204 with the absolute OData-EntityId of the new row, and GET on that URL reads it", async () => {
      const before = await count("msdyn_ciprovider");
      const res = await call("POST", "msdyn_ciproviders", {
        version,
        body: { msdyn_name: `Provider ${version}`, msdyn_label: "P" },
      });

      expect(res.statusCode, res.body).toBe(204);
      expect(res.body).toBe("");
      expect(res.headers["odata-version"]).toBe("4.0");
      const entityId = res.headers["odata-entityid"] as string;
      expect(entityId).toMatch(new RegExp(`^${escapeRegExp(root)}msdyn_ciproviders\\(${GUID}\\)$`));
      const id = entityIdOf(res);
      expect(await count("msdyn_ciprovider")).toBe(before + 1);
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_name).toBe(`Provider ${version}`);

      const get = await t.app.inject({ method: "GET", url: new URL(entityId).pathname });
      expect(get.statusCode, get.body).toBe(200);
      expect(get.json()).toMatchObject({
        "@odata.context": `${root}$metadata#msdyn_ciproviders/$entity`,
        msdyn_ciproviderid: id,
        msdyn_name: `Provider ${version}`,
        msdyn_label: "P",
      });
    });

    it("POST with Prefer: return=representation answers 201 with the row, its context and its etag", async () => {
      const conversationId = uniqueId("rep");
      const res = await call("POST", "msdyn_conversationsdata", {
        version,
        headers: { prefer: "return=representation" },
        body: { msdyn_conversationid: conversationId, msdyn_name: "Call", msdyn_channel: "voice" },
      });

      expect(res.statusCode, res.body).toBe(201);
      expect(res.headers["preference-applied"]).toBe("return=representation");
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      const body = res.json();
      expect(body["@odata.context"]).toBe(`${root}$metadata#msdyn_conversationsdata/$entity`);
      expect(body).toMatchObject({
        msdyn_conversationid: conversationId,
        msdyn_name: "Call",
        msdyn_channel: "voice",
        msdyn_accountid: null,
        statecode: 0,
        statuscode: 1,
      });
      expect(body.msdyn_conversationdataid).toMatch(new RegExp(`^${GUID}$`));
      const stored = await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", body.msdyn_conversationdataid);
      expect(stored?.msdyn_conversationid).toBe(conversationId);
      expect(body["@odata.etag"]).toBe(`W/"${String(stored?.versionnumber)}"`);
      expect(body["@odata.etag"]).toBe(`W/"${body.versionnumber}"`);
    });

    it("POST with return=representation honours $select (the primary key always comes back)", async () => {
      const name = uniqueId("Custom");
      const res = await call("POST", "msdyn_kpieventdefinitions?$select=msdyn_name,msdyn_eventtype", {
        version,
        headers: { prefer: "return=representation" },
        body: { msdyn_name: name, msdyn_eventdisplayname: "Custom event", msdyn_eventtype: 100000001 },
      });

      expect(res.statusCode, res.body).toBe(201);
      expect(res.headers["preference-applied"]).toBe("return=representation");
      const body = res.json();
      expect(body["@odata.context"]).toBe(
        `${root}$metadata#msdyn_kpieventdefinitions(msdyn_name,msdyn_eventtype,msdyn_kpieventdefinitionid)/$entity`,
      );
      expect(Object.keys(body).sort()).toEqual(
        ["@odata.context", "@odata.etag", "msdyn_eventtype", "msdyn_kpieventdefinitionid", "msdyn_name"].sort(),
      );
      expect(body).toMatchObject({ msdyn_name: name, msdyn_eventtype: 100000001 });
      const stored = await dbRow("msdyn_kpieventdefinition", "msdyn_kpieventdefinitionid", body.msdyn_kpieventdefinitionid);
      expect(stored?.msdyn_eventdisplayname).toBe("Custom event");
      expect(body["@odata.etag"]).toBe(`W/"${String(stored?.versionnumber)}"`);
    });

    it("GET by alternate key reads a seeded KPI event definition", async () => {
      const res = await call("GET", "msdyn_kpieventdefinitions(msdyn_name='SessionStarted')", { version });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({
        "@odata.context": `${root}$metadata#msdyn_kpieventdefinitions/$entity`,
        msdyn_kpieventdefinitionid: SESSION_STARTED_ID,
        msdyn_name: "SessionStarted",
      });
    });

    it("PATCH upserts, PUT and GET a property, DELETE removes", async () => {
      const id = randomUUID();
      const created = await call("PATCH", `msdyn_ciproviders(${id})`, {
        version,
        body: { msdyn_name: "Upserted", msdyn_label: "U" },
      });
      expect(created.statusCode, created.body).toBe(204);
      expect(created.headers["odata-entityid"]).toBe(`${root}msdyn_ciproviders(${id})`);

      const put = await call("PUT", `msdyn_ciproviders(${id})/msdyn_label`, { version, body: { value: "Changed" } });
      expect(put.statusCode, put.body).toBe(204);
      const property = await call("GET", `msdyn_ciproviders(${id})/msdyn_label`, { version });
      expect(property.statusCode, property.body).toBe(200);
      expect(property.json()).toEqual({
        "@odata.context": `${root}$metadata#msdyn_ciproviders(${id})/msdyn_label`,
        value: "Changed",
      });

      const removed = await call("DELETE", `msdyn_ciproviders(${id})`, { version });
      expect(removed.statusCode, removed.body).toBe(204);
      expectError(await call("GET", `msdyn_ciproviders(${id})`, { version }), 404, "0x80040217");
    });
  });

  // -------------------------------------------------------------------------

  describe("POST {set}", () => {
    it("uses a primary key given in the body; posting it again is 412 0x80040237 and writes nothing", async () => {
      const id = randomUUID();
      const first = await call("POST", "msdyn_ciproviders", { body: { msdyn_ciproviderid: id, msdyn_name: "First" } });
      expect(first.statusCode, first.body).toBe(204);
      expect(first.headers["odata-entityid"]).toBe(`http://localhost:80/api/data/v9.2/msdyn_ciproviders(${id})`);
      expect((await getRow(`msdyn_ciproviders(${id})`)).msdyn_ciproviderid).toBe(id);

      const before = await count("msdyn_ciprovider");
      const again = await call("POST", "msdyn_ciproviders", { body: { msdyn_ciproviderid: id, msdyn_name: "Second" } });
      expectError(again, 412, "0x80040237");
      expect(await count("msdyn_ciprovider")).toBe(before);
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_name).toBe("First");
    });

    it("creates a conversation, a session of it and a participant of that session", async () => {
      const conversationId = uniqueId("c");
      const conversation = await createConversation(conversationId, { msdyn_name: "Chat" });
      const session = await createSession(conversationId, "s-1", { msdyn_name: "Session 1" });
      const participant = await call("POST", "msdyn_sessionparticipantsdata", {
        body: {
          msdyn_conversationid: conversationId,
          msdyn_providersessionid: "s-1",
          msdyn_participantid: "agent-7",
          msdyn_participantname: "Agent 7",
        },
      });
      expect(participant.statusCode, participant.body).toBe(204);
      const participantId = entityIdOf(participant);

      expect((await getRow(`msdyn_conversationsdata(${conversation})`)).msdyn_conversationid).toBe(conversationId);
      expect(await getRow(`msdyn_sessionsdata(${session})`)).toMatchObject({
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: "s-1",
      });
      expect(await getRow(`msdyn_sessionparticipantsdata(${participantId})`)).toMatchObject({
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: "s-1",
        msdyn_participantid: "agent-7",
        msdyn_participantname: "Agent 7",
      });
    });

    it("sets createdon from overriddencreatedon", async () => {
      const id = await createProvider({ overriddencreatedon: "2019-05-06T07:08:09Z" });
      const row = await getRow(`msdyn_ciproviders(${id})`);
      expect(row.createdon).toBe("2019-05-06T07:08:09Z");
      expect(new Date(row.modifiedon as string).getFullYear()).toBeGreaterThan(2019);

      const plain = await getRow(`msdyn_ciproviders(${await createProvider()})`);
      expect(Math.abs(Date.now() - new Date(plain.createdon as string).getTime())).toBeLessThan(60_000);
    });
  });

  // -------------------------------------------------------------------------

  describe("GET {set}(<key>)", () => {
    it("returns every column, nulls included, lookups as _x_value, with @odata.etag and an ETag header", async () => {
      const conversationId = uniqueId("full");
      const id = await createConversation(conversationId, {
        msdyn_name: "Full",
        msdyn_conversationtimestamp: "2026-11-22T09:30:00Z",
      });
      const res = await call("GET", `msdyn_conversationsdata(${id})`);

      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(
        ["@odata.context", "@odata.etag", ...propertyNamesOf("msdyn_conversationdata")].sort(),
      );
      expect(body["@odata.context"]).toBe("http://localhost:80/api/data/v9.2/$metadata#msdyn_conversationsdata/$entity");
      const stored = await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id);
      expect(body["@odata.etag"]).toBe(`W/"${String(stored?.versionnumber)}"`);
      expect(res.headers.etag).toBe(body["@odata.etag"]);
      expect(body).toMatchObject({
        msdyn_conversationdataid: id,
        msdyn_conversationid: conversationId,
        msdyn_name: "Full",
        msdyn_conversationtimestamp: "2026-11-22T09:30:00Z",
        msdyn_channel: null,
        msdyn_accountid: null,
        msdyn_customattribute5: null,
        _ownerid_value: t.config.CALLER_USER_ID,
        _owningbusinessunit_value: t.config.BUSINESS_UNIT_ID,
        _createdby_value: t.config.CALLER_USER_ID,
        _modifiedby_value: t.config.CALLER_USER_ID,
        _createdonbehalfby_value: null,
        _modifiedonbehalfby_value: null,
        overriddencreatedon: null,
        importsequencenumber: null,
        statecode: 0,
        statuscode: 1,
        versionnumber: Number(stored?.versionnumber),
      });
      expect(body.createdon).toMatch(DATE_TIME);
      expect(body.modifiedon).toMatch(DATE_TIME);
      // The navigation property and the raw column names are not properties.
      expect(body).not.toHaveProperty("ownerid");
      expect(body).not.toHaveProperty("createdby");
    });

    it("returns every column of an organization-owned table (msdyn_ciproviders)", async () => {
      const id = await createProvider();
      const body = await getRow(`msdyn_ciproviders(${id})`);
      expect(Object.keys(body).sort()).toEqual(["@odata.context", "@odata.etag", ...propertyNamesOf("msdyn_ciprovider")].sort());
      expect(body).toMatchObject({
        msdyn_enableanalytics: false,
        msdyn_clicktoact: false,
        msdyn_ciproviderapiversion: 0,
        msdyn_landingurl: null,
        _msdyn_channelprovidericon_value: null,
        _organizationid_value: t.config.ORGANIZATION_ID,
      });
    });

    it("reads a row by `<primarykey>=<guid>` too", async () => {
      const id = await createProvider({ msdyn_name: "Named key" });
      expect((await getRow(`msdyn_ciproviders(msdyn_ciproviderid=${id})`)).msdyn_name).toBe("Named key");
    });

    it("$select limits the columns; the primary key is always included", async () => {
      const conversationId = uniqueId("sel");
      const id = await createConversation(conversationId, { msdyn_name: "Selected", msdyn_channel: "chat" });

      const res = await call("GET", `msdyn_conversationsdata(${id})?$select=msdyn_name,msdyn_channel`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body["@odata.context"]).toBe(
        "http://localhost:80/api/data/v9.2/$metadata#msdyn_conversationsdata(msdyn_name,msdyn_channel,msdyn_conversationdataid)/$entity",
      );
      expect(Object.keys(body).sort()).toEqual(
        ["@odata.context", "@odata.etag", "msdyn_channel", "msdyn_conversationdataid", "msdyn_name"].sort(),
      );
      expect(body).toMatchObject({ msdyn_name: "Selected", msdyn_channel: "chat", msdyn_conversationdataid: id });
      expect(res.headers.etag).toBe(body["@odata.etag"]);

      const lookup = await getRow(`msdyn_conversationsdata(${id})?$select=_ownerid_value`);
      expect(Object.keys(lookup).sort()).toEqual(
        ["@odata.context", "@odata.etag", "_ownerid_value", "msdyn_conversationdataid"].sort(),
      );
      expect(lookup._ownerid_value).toBe(t.config.CALLER_USER_ID);
    });

    it.each(["msdyn_nope", "MSDYN_NAME", "ownerid"])("an unknown $select name (%s) is 400", async (name) => {
      const id = await createConversation(uniqueId("badsel"));
      const res = await call("GET", `msdyn_conversationsdata(${id})?$select=msdyn_name,${name}`);
      const message = expectError(res, 400);
      expect(message).toBe(`Could not find a property named '${name}' on type 'Microsoft.Dynamics.CRM.msdyn_conversationdata'.`);
    });

    it("If-None-Match with the current etag is 304 without a body; a stale etag or `null` gets the row", async () => {
      const id = await createProvider();
      const first = await call("GET", `msdyn_ciproviders(${id})`);
      const etag = first.headers.etag as string;
      expect(etag).toMatch(/^W\/"\d+"$/);

      const notModified = await call("GET", `msdyn_ciproviders(${id})`, { headers: { "if-none-match": etag } });
      expect(notModified.statusCode).toBe(304);
      expect(notModified.body).toBe("");
      expect(notModified.headers["odata-version"]).toBe("4.0");
      expect(notModified.headers.etag).toBe(etag);

      const browser = await call("GET", `msdyn_ciproviders(${id})`, { headers: { "if-none-match": "null" } });
      expect(browser.statusCode).toBe(200);
      expect(browser.json().msdyn_ciproviderid).toBe(id);

      expect((await call("PATCH", `msdyn_ciproviders(${id})`, { body: { msdyn_label: "new" } })).statusCode).toBe(204);
      const stale = await call("GET", `msdyn_ciproviders(${id})`, { headers: { "if-none-match": etag } });
      expect(stale.statusCode).toBe(200);
      expect(stale.json().msdyn_label).toBe("new");
      expect(stale.headers.etag).not.toBe(etag);
    });

    it("GET {set}(<key>)/<property> answers {@odata.context, value}; a null property is 204", async () => {
      const conversationId = uniqueId("prop");
      const id = await createConversation(conversationId, { msdyn_name: "Prop" });
      const root = "http://localhost:80/api/data/v9.2/";

      const name = await call("GET", `msdyn_conversationsdata(${id})/msdyn_name`);
      expect(name.statusCode, name.body).toBe(200);
      expect(name.headers["content-type"]).toBe(ODATA_JSON);
      expect(name.json()).toEqual({
        "@odata.context": `${root}$metadata#msdyn_conversationsdata(${id})/msdyn_name`,
        value: "Prop",
      });

      const owner = await call("GET", `msdyn_conversationsdata(${id})/_ownerid_value`);
      expect(owner.statusCode, owner.body).toBe(200);
      expect(owner.json()).toEqual({
        "@odata.context": `${root}$metadata#msdyn_conversationsdata(${id})/_ownerid_value`,
        value: t.config.CALLER_USER_ID,
      });

      const byAlternateKey = await call("GET", `msdyn_conversationsdata(msdyn_conversationid='${conversationId}')/msdyn_name`);
      expect(byAlternateKey.statusCode, byAlternateKey.body).toBe(200);
      expect(byAlternateKey.json().value).toBe("Prop");

      const empty = await call("GET", `msdyn_conversationsdata(${id})/msdyn_accountid`);
      expect(empty.statusCode).toBe(204);
      expect(empty.body).toBe("");
      expect(empty.headers["odata-version"]).toBe("4.0");
    });

    it("a missing row is 404 0x80040217 `<logicalname> With Id = <guid> Does Not Exist`", async () => {
      const id = randomUUID();
      const res = await call("GET", `msdyn_ciproviders(${id})`);
      expectError(res, 404);
      expect(res.json()).toEqual({ error: { code: "0x80040217", message: `msdyn_ciprovider With Id = ${id} Does Not Exist` } });

      const session = await call("GET", `msdyn_sessionsdata(${id})`);
      expect(session.json()).toEqual({
        error: { code: "0x80040217", message: `msdyn_sessiondata With Id = ${id} Does Not Exist` },
      });

      expectError(
        await call("GET", `msdyn_ciproviders(${id})/msdyn_name`),
        404,
        "0x80040217",
        `msdyn_ciprovider With Id = ${id} Does Not Exist`,
      );
    });
  });

  // -------------------------------------------------------------------------

  describe("alternate keys", () => {
    it("msdyn_conversationsdata(msdyn_conversationid='…') for GET, PATCH and DELETE", async () => {
      const conversationId = uniqueId("c-42");
      const id = await createConversation(conversationId, { msdyn_name: "Alt" });
      const path = `msdyn_conversationsdata(msdyn_conversationid='${conversationId}')`;

      const row = await getRow(path);
      expect(row).toMatchObject({ msdyn_conversationdataid: id, msdyn_name: "Alt" });

      const patch = await call("PATCH", path, { body: { msdyn_channel: "sms" } });
      expect(patch.statusCode, patch.body).toBe(204);
      expect(patch.headers["odata-entityid"]).toBe(`http://localhost:80/api/data/v9.2/msdyn_conversationsdata(${id})`);
      expect((await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id))?.msdyn_channel).toBe("sms");

      const removed = await call("DELETE", path);
      expect(removed.statusCode, removed.body).toBe(204);
      expect(await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id)).toBeUndefined();
      expectError(await call("GET", path), 404, "0x80040217");
    });

    it("msdyn_sessionsdata(msdyn_conversationid='…',msdyn_providersessionid='…') for GET, PATCH and DELETE", async () => {
      const conversationId = uniqueId("c");
      await createConversation(conversationId);
      const id = await createSession(conversationId, "s");
      // Another session of the same conversation must not be touched.
      const other = await createSession(conversationId, "s2");
      const path = `msdyn_sessionsdata(msdyn_conversationid='${conversationId}',msdyn_providersessionid='s')`;

      expect((await getRow(path)).msdyn_sessiondataid).toBe(id);
      // The parts may come in any order.
      expect(
        (await getRow(`msdyn_sessionsdata(msdyn_providersessionid='s',msdyn_conversationid='${conversationId}')`))
          .msdyn_sessiondataid,
      ).toBe(id);

      const patch = await call("PATCH", path, { body: { msdyn_queuename: "Billing" } });
      expect(patch.statusCode, patch.body).toBe(204);
      expect((await dbRow("msdyn_sessiondata", "msdyn_sessiondataid", id))?.msdyn_queuename).toBe("Billing");
      expect((await dbRow("msdyn_sessiondata", "msdyn_sessiondataid", other))?.msdyn_queuename).toBeNull();

      expect((await call("DELETE", path)).statusCode).toBe(204);
      expect(await dbRow("msdyn_sessiondata", "msdyn_sessiondataid", id)).toBeUndefined();
      expect(await dbRow("msdyn_sessiondata", "msdyn_sessiondataid", other)).toBeDefined();
    });

    it("msdyn_sessionparticipantsdata by its three-part key", async () => {
      const conversationId = uniqueId("c");
      await createConversation(conversationId);
      await createSession(conversationId, "s");
      const created = await call("POST", "msdyn_sessionparticipantsdata", {
        body: { msdyn_conversationid: conversationId, msdyn_providersessionid: "s", msdyn_participantid: "p-1" },
      });
      expect(created.statusCode, created.body).toBe(204);
      const id = entityIdOf(created);
      const path =
        `msdyn_sessionparticipantsdata(msdyn_conversationid='${conversationId}',` +
        `msdyn_providersessionid='s',msdyn_participantid='p-1')`;

      expect((await getRow(path)).msdyn_sessionparticipantdataid).toBe(id);
      expect((await call("PATCH", path, { body: { msdyn_participantmode: "consult" } })).statusCode).toBe(204);
      expect((await getRow(`msdyn_sessionparticipantsdata(${id})`)).msdyn_participantmode).toBe("consult");
      expect((await call("DELETE", path)).statusCode).toBe(204);
      expectError(await call("GET", `msdyn_sessionparticipantsdata(${id})`), 404, "0x80040217");
    });

    it("msdyn_kpieventdefinitions(msdyn_name='…') finds each of the ten seeded system definitions", async () => {
      expect(SYSTEM_KPI_EVENT_DEFINITIONS).toHaveLength(10);
      for (const definition of SYSTEM_KPI_EVENT_DEFINITIONS) {
        const row = await getRow(`msdyn_kpieventdefinitions(msdyn_name='${definition.name}')`);
        expect(row).toMatchObject({
          msdyn_kpieventdefinitionid: definition.id,
          msdyn_name: definition.name,
          msdyn_eventdisplayname: definition.displayName,
          msdyn_eventtype: 100000000,
        });
      }
    });

    it("msdyn_kpieventdefinitions(msdyn_name='…') for PATCH and DELETE", async () => {
      const patch = await call("PATCH", "msdyn_kpieventdefinitions(msdyn_name='SessionStarted')", {
        body: { msdyn_eventdescription: "A session started." },
      });
      expect(patch.statusCode, patch.body).toBe(204);
      expect(entityIdOf(patch)).toBe(SESSION_STARTED_ID);
      expect(
        (await dbRow("msdyn_kpieventdefinition", "msdyn_kpieventdefinitionid", SESSION_STARTED_ID))?.msdyn_eventdescription,
      ).toBe("A session started.");

      const name = uniqueId("ToDelete");
      const created = await call("POST", "msdyn_kpieventdefinitions", { body: { msdyn_name: name } });
      expect(created.statusCode, created.body).toBe(204);
      const removed = await call("DELETE", `msdyn_kpieventdefinitions(msdyn_name='${name}')`);
      expect(removed.statusCode, removed.body).toBe(204);
      expect(await dbRow("msdyn_kpieventdefinition", "msdyn_kpieventdefinitionid", entityIdOf(created))).toBeUndefined();
    });

    it("a doubled quote inside a key literal stands for one quote ('O''Brien')", async () => {
      const conversationId = `O'Brien-${randomUUID().slice(0, 8)}`;
      const id = await createConversation(conversationId, { msdyn_name: "Irish" });
      const path = `msdyn_conversationsdata(msdyn_conversationid='${conversationId.replace("'", "''")}')`;

      expect(await getRow(path)).toMatchObject({ msdyn_conversationdataid: id, msdyn_conversationid: conversationId });
      expect((await call("PATCH", path, { body: { msdyn_name: "Still Irish" } })).statusCode).toBe(204);
      expect((await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id))?.msdyn_name).toBe("Still Irish");
      expect((await call("DELETE", path)).statusCode).toBe(204);
      expect(await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id)).toBeUndefined();
    });

    it("a percent-encoded key literal is decoded", async () => {
      const conversationId = `call ${randomUUID().slice(0, 8)}`;
      const id = await createConversation(conversationId);
      const row = await getRow(`msdyn_conversationsdata(msdyn_conversationid=%27${encodeURIComponent(conversationId)}%27)`);
      expect(row.msdyn_conversationdataid).toBe(id);
    });

    it.each([
      ["msdyn_conversationsdata(msdyn_name='x')", "msdyn_conversationdata"],
      ["msdyn_conversationsdata(msdyn_conversationid='x',msdyn_name='y')", "msdyn_conversationdata"],
      ["msdyn_sessionsdata(msdyn_conversationid='x')", "msdyn_sessiondata"],
      ["msdyn_sessionsdata(msdyn_providersessionid='x',msdyn_participantid='y')", "msdyn_sessiondata"],
      ["msdyn_ciproviders(msdyn_name='x')", "msdyn_ciprovider"],
    ])("a key naming the wrong columns, %s, is 400 for GET, PATCH and DELETE", async (path, logicalName) => {
      const table = tableByLogicalName(logicalName);
      const before = await count(logicalName);
      const fragment = `The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.${logicalName}'`;
      expectError(await call("GET", path), 400, undefined, fragment);
      expectError(await call("PATCH", path, { body: { [table.primaryName]: "x" } }), 400, undefined, fragment);
      expectError(await call("DELETE", path), 400, undefined, fragment);
      expect(await count(logicalName)).toBe(before);
    });

    it.each([
      "msdyn_ciproviders(abc)",
      "msdyn_ciproviders(msdyn_ciproviderid=abc)",
      "msdyn_ciproviders('abc')",
      "msdyn_ciproviders(12345678-1234)",
    ])("a key that is not a GUID, %s, is 400 for GET, PATCH and DELETE", async (path) => {
      const before = await count("msdyn_ciprovider");
      expectError(await call("GET", path), 400);
      expectError(await call("PATCH", path, { body: { msdyn_name: "x" } }), 400);
      expectError(await call("DELETE", path), 400);
      expect(await count("msdyn_ciprovider")).toBe(before);
    });

    it("a missing row by alternate key is 404 0x80040217", async () => {
      expectError(await call("GET", `msdyn_conversationsdata(msdyn_conversationid='${uniqueId("nobody")}')`), 404, "0x80040217");
      expectError(await call("DELETE", `msdyn_kpieventdefinitions(msdyn_name='${uniqueId("Nothing")}')`), 404, "0x80040217");
    });
  });

  // -------------------------------------------------------------------------

  describe("PATCH {set}(<key>)", () => {
    it("changes only the given columns", async () => {
      const id = await createProvider({ msdyn_name: "Keep", msdyn_label: "Old", msdyn_sortorder: 3 });
      const res = await call("PATCH", `msdyn_ciproviders(${id})`, { body: { msdyn_label: "New", msdyn_enableanalytics: true } });
      expect(res.statusCode, res.body).toBe(204);
      expect(res.body).toBe("");
      expect(res.headers["odata-entityid"]).toBe(`http://localhost:80/api/data/v9.2/msdyn_ciproviders(${id})`);
      expect(await getRow(`msdyn_ciproviders(${id})`)).toMatchObject({
        msdyn_name: "Keep",
        msdyn_label: "New",
        msdyn_sortorder: 3,
        msdyn_enableanalytics: true,
      });
    });

    it("creates a missing row by GUID, with that id", async () => {
      const id = randomUUID();
      const before = await count("msdyn_conversationdata");
      const conversationId = uniqueId("upsert");
      const res = await call("PATCH", `msdyn_conversationsdata(${id})`, {
        body: { msdyn_conversationid: conversationId, msdyn_name: "New" },
      });
      expect(res.statusCode, res.body).toBe(204);
      expect(res.headers["odata-entityid"]).toBe(`http://localhost:80/api/data/v9.2/msdyn_conversationsdata(${id})`);
      expect(await count("msdyn_conversationdata")).toBe(before + 1);
      expect(await getRow(`msdyn_conversationsdata(${id})`)).toMatchObject({
        msdyn_conversationdataid: id,
        msdyn_conversationid: conversationId,
        msdyn_name: "New",
        _ownerid_value: t.config.CALLER_USER_ID,
      });
    });

    it("creates a missing row by alternate key, copying the key values in", async () => {
      const conversationId = uniqueId("alt-upsert");
      const conversation = await call("PATCH", `msdyn_conversationsdata(msdyn_conversationid='${conversationId}')`, {
        body: { msdyn_name: "By key" },
      });
      expect(conversation.statusCode, conversation.body).toBe(204);
      const conversationRowId = entityIdOf(conversation);
      expect(await getRow(`msdyn_conversationsdata(${conversationRowId})`)).toMatchObject({
        msdyn_conversationid: conversationId,
        msdyn_name: "By key",
      });

      const session = await call(
        "PATCH",
        `msdyn_sessionsdata(msdyn_conversationid='${conversationId}',msdyn_providersessionid='s-9')`,
        {
          body: { msdyn_queuename: "Sales" },
        },
      );
      expect(session.statusCode, session.body).toBe(204);
      expect(await getRow(`msdyn_sessionsdata(${entityIdOf(session)})`)).toMatchObject({
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: "s-9",
        msdyn_queuename: "Sales",
      });

      const quoted = `D'Arcy-${randomUUID().slice(0, 8)}`;
      const withQuote = await call("PATCH", `msdyn_conversationsdata(msdyn_conversationid='${quoted.replace("'", "''")}')`, {
        body: {},
      });
      expect(withQuote.statusCode, withQuote.body).toBe(204);
      expect((await getRow(`msdyn_conversationsdata(${entityIdOf(withQuote)})`)).msdyn_conversationid).toBe(quoted);
    });

    it("If-Match: * updates only: 204 on an existing row, 404 and nothing created on a missing one", async () => {
      const id = await createProvider({ msdyn_label: "before" });
      const update = await call("PATCH", `msdyn_ciproviders(${id})`, {
        headers: { "if-match": "*" },
        body: { msdyn_label: "after" },
      });
      expect(update.statusCode, update.body).toBe(204);
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_label).toBe("after");

      const missing = randomUUID();
      const before = await count("msdyn_ciprovider");
      const res = await call("PATCH", `msdyn_ciproviders(${missing})`, {
        headers: { "if-match": "*" },
        body: { msdyn_name: "ghost" },
      });
      expectError(res, 404, "0x80040217", `msdyn_ciprovider With Id = ${missing} Does Not Exist`);
      expect(await count("msdyn_ciprovider")).toBe(before);

      const conversationId = uniqueId("ghost");
      const byKey = await call("PATCH", `msdyn_conversationsdata(msdyn_conversationid='${conversationId}')`, {
        headers: { "if-match": "*" },
        body: { msdyn_name: "ghost" },
      });
      expectError(byKey, 404, "0x80040217");
      expect(
        (await t.testDb.pool.query(`SELECT 1 FROM "msdyn_conversationdata" WHERE msdyn_conversationid = $1`, [conversationId]))
          .rowCount,
      ).toBe(0);
    });

    it("If-None-Match: * creates only: 204 on a missing row, 412 0x80040237 and nothing changed on an existing one", async () => {
      const id = randomUUID();
      const created = await call("PATCH", `msdyn_ciproviders(${id})`, {
        headers: { "if-none-match": "*" },
        body: { msdyn_name: "once" },
      });
      expect(created.statusCode, created.body).toBe(204);
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_name).toBe("once");

      const version = (await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.versionnumber;
      const again = await call("PATCH", `msdyn_ciproviders(${id})`, {
        headers: { "if-none-match": "*" },
        body: { msdyn_name: "twice" },
      });
      expectError(again, 412, "0x80040237");
      const row = await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id);
      expect(row?.msdyn_name).toBe("once");
      expect(row?.versionnumber).toBe(version);
    });

    it("If-Match with a stale etag is 412 0x80060882; the current etag succeeds and the version grows", async () => {
      const id = await createProvider({ msdyn_label: "v1" });
      const first = await call("GET", `msdyn_ciproviders(${id})`);
      const staleEtag = first.headers.etag as string;
      const staleVersion = first.json().versionnumber as number;
      expect((await call("PATCH", `msdyn_ciproviders(${id})`, { body: { msdyn_label: "v2" } })).statusCode).toBe(204);

      const current = await call("GET", `msdyn_ciproviders(${id})`);
      const currentEtag = current.headers.etag as string;
      const currentVersion = current.json().versionnumber as number;
      expect(currentVersion).toBeGreaterThan(staleVersion);

      const stale = await call("PATCH", `msdyn_ciproviders(${id})`, {
        headers: { "if-match": staleEtag },
        body: { msdyn_label: "lost" },
      });
      expectError(stale, 412, "0x80060882");
      const unchanged = await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id);
      expect(unchanged?.msdyn_label).toBe("v2");
      expect(Number(unchanged?.versionnumber)).toBe(currentVersion);

      const matching = await call("PATCH", `msdyn_ciproviders(${id})`, {
        headers: { "if-match": currentEtag },
        body: { msdyn_label: "v3" },
      });
      expect(matching.statusCode, matching.body).toBe(204);
      const after = await getRow(`msdyn_ciproviders(${id})`);
      expect(after.msdyn_label).toBe("v3");
      expect(after.versionnumber as number).toBeGreaterThan(currentVersion);
      expect(after["@odata.etag"]).toBe(`W/"${String(after.versionnumber)}"`);
    });

    it("Prefer: return=representation answers 200 with the updated row (and honours $select)", async () => {
      const id = await createProvider({ msdyn_label: "old" });
      const res = await call("PATCH", `msdyn_ciproviders(${id})`, {
        headers: { prefer: "return=representation" },
        body: { msdyn_label: "returned" },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["preference-applied"]).toBe("return=representation");
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      const body = res.json();
      expect(body["@odata.context"]).toBe("http://localhost:80/api/data/v9.2/$metadata#msdyn_ciproviders/$entity");
      expect(body).toMatchObject({ msdyn_ciproviderid: id, msdyn_label: "returned", msdyn_name: "Contoso Voice" });
      const stored = await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id);
      expect(body["@odata.etag"]).toBe(`W/"${String(stored?.versionnumber)}"`);

      const selected = await call("PATCH", `msdyn_ciproviders(${id})?$select=msdyn_label`, {
        headers: { prefer: "return=representation" },
        body: { msdyn_label: "selected" },
      });
      expect(selected.statusCode, selected.body).toBe(200);
      const selectedBody = selected.json();
      expect(selectedBody["@odata.context"]).toBe(
        "http://localhost:80/api/data/v9.2/$metadata#msdyn_ciproviders(msdyn_label,msdyn_ciproviderid)/$entity",
      );
      expect(Object.keys(selectedBody).sort()).toEqual(
        ["@odata.context", "@odata.etag", "msdyn_ciproviderid", "msdyn_label"].sort(),
      );
      expect(selectedBody.msdyn_label).toBe("selected");
    });

    it("ignores `If-None-Match: null` (it is not an etag)", async () => {
      const id = await createProvider({ msdyn_label: "before" });
      const res = await call("PATCH", `msdyn_ciproviders(${id})`, {
        headers: { "if-none-match": "null" },
        body: { msdyn_label: "after" },
      });
      expect(res.statusCode, res.body).toBe(204);
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_label).toBe("after");

      const missing = randomUUID();
      const created = await call("PATCH", `msdyn_ciproviders(${missing})`, {
        headers: { "if-none-match": "null" },
        body: { msdyn_name: "n" },
      });
      expect(created.statusCode, created.body).toBe(204);
      expect(await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", missing)).toBeDefined();
    });
  });

  // -------------------------------------------------------------------------

  describe("single properties", () => {
    it("PUT {set}(<key>)/<property> with {value} answers 204 and changes the column", async () => {
      const id = await createProvider({ msdyn_label: "old" });
      const res = await call("PUT", `msdyn_ciproviders(${id})/msdyn_label`, { body: { value: "new" } });
      expect(res.statusCode, res.body).toBe(204);
      expect(res.body).toBe("");
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_label).toBe("new");
      expect((await call("GET", `msdyn_ciproviders(${id})/msdyn_label`)).json().value).toBe("new");

      expect((await call("PUT", `msdyn_ciproviders(${id})/msdyn_enableanalytics`, { body: { value: true } })).statusCode).toBe(
        204,
      );
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_enableanalytics).toBe(true);

      const conversationId = uniqueId("put");
      await createConversation(conversationId);
      const byKey = await call("PUT", `msdyn_conversationsdata(msdyn_conversationid='${conversationId}')/msdyn_channel`, {
        body: { value: "email" },
      });
      expect(byKey.statusCode, byKey.body).toBe(204);
      expect((await getRow(`msdyn_conversationsdata(msdyn_conversationid='${conversationId}')`)).msdyn_channel).toBe("email");
    });

    it("PUT of a property of a missing row is 404 and creates nothing", async () => {
      const id = randomUUID();
      const before = await count("msdyn_ciprovider");
      expectError(await call("PUT", `msdyn_ciproviders(${id})/msdyn_label`, { body: { value: "x" } }), 404, "0x80040217");
      expect(await count("msdyn_ciprovider")).toBe(before);
    });

    it("PUT validates the value like any write", async () => {
      const id = await createProvider();
      const version = (await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.versionnumber;
      expectError(
        await call("PUT", `msdyn_ciproviders(${id})/msdyn_enableanalytics`, { body: { value: "yes" } }),
        400,
        undefined,
        "msdyn_enableanalytics",
        "Edm.Boolean",
      );
      expectError(
        await call("PUT", `msdyn_ciproviders(${id})/msdyn_name`, { body: { value: "x".repeat(101) } }),
        400,
        "0x80044331",
      );
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.versionnumber).toBe(version);
    });

    it("DELETE {set}(<key>)/<property> clears the column; GET of it is then 204", async () => {
      const conversationId = uniqueId("clear");
      const id = await createConversation(conversationId, { msdyn_name: "Named", msdyn_channel: "voice" });
      const res = await call("DELETE", `msdyn_conversationsdata(${id})/msdyn_name`);
      expect(res.statusCode, res.body).toBe(204);
      const row = await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id);
      expect(row?.msdyn_name).toBeNull();
      expect(row?.msdyn_channel).toBe("voice");

      const property = await call("GET", `msdyn_conversationsdata(${id})/msdyn_name`);
      expect(property.statusCode).toBe(204);
      expect(property.body).toBe("");
    });

    it("clearing a required column (msdyn_conversationid) is 400 and changes nothing", async () => {
      const conversationId = uniqueId("req");
      const id = await createConversation(conversationId);
      const version = (await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id))?.versionnumber;
      expectError(
        await call("DELETE", `msdyn_conversationsdata(${id})/msdyn_conversationid`),
        400,
        undefined,
        "msdyn_conversationid",
      );
      expectError(
        await call("PUT", `msdyn_conversationsdata(${id})/msdyn_conversationid`, { body: { value: null } }),
        400,
        undefined,
        "msdyn_conversationid",
      );
      const row = await dbRow("msdyn_conversationdata", "msdyn_conversationdataid", id);
      expect(row?.msdyn_conversationid).toBe(conversationId);
      expect(row?.versionnumber).toBe(version);
    });
  });

  // -------------------------------------------------------------------------

  describe("DELETE {set}(<key>)", () => {
    it("answers 204; the row is then 404", async () => {
      const id = await createProvider();
      const before = await count("msdyn_ciprovider");
      const res = await call("DELETE", `msdyn_ciproviders(${id})`);
      expect(res.statusCode, res.body).toBe(204);
      expect(res.body).toBe("");
      expect(await count("msdyn_ciprovider")).toBe(before - 1);
      expectError(
        await call("GET", `msdyn_ciproviders(${id})`),
        404,
        "0x80040217",
        `msdyn_ciprovider With Id = ${id} Does Not Exist`,
      );
    });

    it("a missing row is 404 0x80040217", async () => {
      const id = randomUUID();
      expectError(
        await call("DELETE", `msdyn_sessionsdata(${id})`),
        404,
        "0x80040217",
        `msdyn_sessiondata With Id = ${id} Does Not Exist`,
      );
    });

    it("a stale If-Match is 412 and keeps the row; the current etag deletes", async () => {
      const id = await createProvider({ msdyn_label: "v1" });
      const stale = (await call("GET", `msdyn_ciproviders(${id})`)).headers.etag as string;
      expect((await call("PATCH", `msdyn_ciproviders(${id})`, { body: { msdyn_label: "v2" } })).statusCode).toBe(204);

      expectError(await call("DELETE", `msdyn_ciproviders(${id})`, { headers: { "if-match": stale } }), 412, "0x80060882");
      expect(await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id)).toBeDefined();

      const current = (await call("GET", `msdyn_ciproviders(${id})`)).headers.etag as string;
      expect((await call("DELETE", `msdyn_ciproviders(${id})`, { headers: { "if-match": current } })).statusCode).toBe(204);
      expect(await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id)).toBeUndefined();
    });
  });

  // -------------------------------------------------------------------------

  describe("validation: a 400 that writes nothing", () => {
    /** POSTs a body that must be refused with 400, and checks that no row was written. */
    async function refusedPost(set: string, logicalName: string, body: unknown, code?: string, ...fragments: string[]) {
      const before = await count(logicalName);
      const res = await call("POST", set, { body });
      const message = expectError(res, 400, code, ...fragments);
      expect(await count(logicalName)).toBe(before);
      return message;
    }

    /** PATCHes an existing row with a body that must be refused with 400, and checks the row is unchanged. */
    async function refusedPatch(id: string, body: unknown, code?: string, ...fragments: string[]) {
      const before = await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id);
      const res = await call("PATCH", `msdyn_ciproviders(${id})`, { body });
      const message = expectError(res, 400, code, ...fragments);
      expect(await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id)).toEqual(before);
      return message;
    }

    it("an unknown property names it and the entity type", async () => {
      await refusedPost(
        "msdyn_ciproviders",
        "msdyn_ciprovider",
        { msdyn_name: "x", msdyn_nope: 1 },
        undefined,
        "msdyn_nope",
        "Microsoft.Dynamics.CRM.msdyn_ciprovider",
      );
      // Property names are case-sensitive.
      await refusedPost(
        "msdyn_ciproviders",
        "msdyn_ciprovider",
        { MSDYN_NAME: "x" },
        undefined,
        "MSDYN_NAME",
        "Microsoft.Dynamics.CRM.msdyn_ciprovider",
      );
      await refusedPost(
        "msdyn_conversationsdata",
        "msdyn_conversationdata",
        { msdyn_conversationid: uniqueId("c"), msdyn_sessionid: "x" },
        undefined,
        "msdyn_sessionid",
        "Microsoft.Dynamics.CRM.msdyn_conversationdata",
      );
      const id = await createProvider();
      await refusedPatch(
        id,
        { msdyn_label: "x", msdyn_nope: "y" },
        undefined,
        "msdyn_nope",
        "Microsoft.Dynamics.CRM.msdyn_ciprovider",
      );
    });

    it.each([
      ["a string for a boolean", "msdyn_enableanalytics", "yes", "Edm.Boolean"],
      ["a number for a boolean", "msdyn_enableanalytics", 1, "Edm.Boolean"],
      ["a number for a string", "msdyn_name", 42, "Edm.String"],
      ["an object for a string", "msdyn_label", { a: 1 }, "Edm.String"],
      ["a string for an integer", "msdyn_sortorder", "3", "Edm.Int32"],
      ["a fraction for an integer", "msdyn_sortorder", 1.5, "Edm.Int32"],
      ["a string for a picklist", "msdyn_ciproviderapiversion", "1", "Edm.Int32"],
      ["a bad date", "overriddencreatedon", "yesterday", "Edm.DateTimeOffset"],
    ])("%s (%s) is 400 naming the property and the Edm type", async (_what, property, value, edmType) => {
      await refusedPost(
        "msdyn_ciproviders",
        "msdyn_ciprovider",
        { msdyn_name: "typed", [property]: value },
        undefined,
        property,
        edmType,
      );
    });

    it.each(["not a date", "2026-13-45T10:00:00Z", "2026-02-30T10:00:00Z", "2026-11-22T25:00:00Z", "", "1700000000"])(
      "a bad date for msdyn_conversationtimestamp (%j) is 400 naming it and Edm.DateTimeOffset",
      async (value) => {
        await refusedPost(
          "msdyn_conversationsdata",
          "msdyn_conversationdata",
          { msdyn_conversationid: uniqueId("date"), msdyn_conversationtimestamp: value },
          undefined,
          "msdyn_conversationtimestamp",
          "Edm.DateTimeOffset",
        );
      },
    );

    it("a wrong type in a PATCH is 400 and changes nothing", async () => {
      const id = await createProvider();
      await refusedPatch(id, { msdyn_enableanalytics: "true" }, undefined, "msdyn_enableanalytics", "Edm.Boolean");
      await refusedPatch(id, { msdyn_label: "ok", msdyn_name: 7 }, undefined, "msdyn_name", "Edm.String");
    });

    it("a string over the column's max length is 400 0x80044331 naming the column and the limit", async () => {
      const message = await refusedPost(
        "msdyn_ciproviders",
        "msdyn_ciprovider",
        { msdyn_name: "x".repeat(101) },
        "0x80044331",
        "msdyn_name",
        "'100'",
      );
      expect(message).toBe(
        "A validation error occurred.  The length of the 'msdyn_name' attribute of the 'msdyn_ciprovider' entity exceeded the maximum allowed length of '100'.",
      );
      await refusedPost(
        "msdyn_conversationsdata",
        "msdyn_conversationdata",
        { msdyn_conversationid: uniqueId("long"), msdyn_additionaldata: "y".repeat(1001) },
        "0x80044331",
        "msdyn_additionaldata",
        "'1000'",
      );
      const id = await createProvider();
      await refusedPatch(id, { msdyn_label: "z".repeat(101) }, "0x80044331", "msdyn_label", "'100'");

      // Exactly at the limit is fine.
      const atLimit = await createProvider({ msdyn_name: "x".repeat(100) });
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", atLimit))?.msdyn_name).toHaveLength(100);
    });

    it.each([
      ["createdon", "2020-01-01T00:00:00Z"],
      ["modifiedon", "2020-01-01T00:00:00Z"],
      ["versionnumber", 5],
      ["_ownerid_value", "6f3c1a52-2b9e-4f0a-9d51-3c2e8a7b4d11"],
      ["_createdby_value", "6f3c1a52-2b9e-4f0a-9d51-3c2e8a7b4d11"],
    ])("the read-only column %s is 400 on POST and PATCH", async (property, value) => {
      await refusedPost(
        "msdyn_conversationsdata",
        "msdyn_conversationdata",
        { msdyn_conversationid: uniqueId("ro"), [property]: value },
        undefined,
        property,
      );
      const id = await createProvider();
      await refusedPatch(id, { msdyn_label: "x", [property]: value }, undefined, property);
    });

    it.each([
      ["importsequencenumber", 7],
      ["overriddencreatedon", "2021-03-04T05:06:07Z"],
    ])("the create-only column %s is allowed on POST, 400 in a PATCH of an existing row", async (property, value) => {
      const id = await createProvider({ [property]: value });
      expect(await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id)).toBeDefined();
      await refusedPatch(id, { [property]: value }, undefined, property);
    });

    it("the create-only importsequencenumber is stored on POST", async () => {
      const id = await createProvider({ importsequencenumber: 7 });
      expect((await getRow(`msdyn_ciproviders(${id})`)).importsequencenumber).toBe(7);
    });

    it("statecode on POST is 400", async () => {
      await refusedPost("msdyn_ciproviders", "msdyn_ciprovider", { msdyn_name: "state", statecode: 0 }, undefined, "statecode");
      await refusedPost(
        "msdyn_conversationsdata",
        "msdyn_conversationdata",
        { msdyn_conversationid: uniqueId("state"), statecode: 1 },
        undefined,
        "statecode",
      );
    });

    it("malformed JSON, or a body that is not an object, is 400", async () => {
      const before = await count("msdyn_ciprovider");
      expectError(await call("POST", "msdyn_ciproviders", { raw: '{"msdyn_name": "x",' }), 400);
      expectError(await call("POST", "msdyn_ciproviders", { raw: "{msdyn_name: 'x'}" }), 400);
      expectError(await call("POST", "msdyn_ciproviders", { body: [{ msdyn_name: "x" }] }), 400);
      expectError(await call("POST", "msdyn_ciproviders", { body: "msdyn_name" }), 400);
      expect(await count("msdyn_ciprovider")).toBe(before);

      const id = await createProvider({ msdyn_label: "kept" });
      expectError(await call("PATCH", `msdyn_ciproviders(${id})`, { raw: '{"msdyn_label": ' }), 400);
      expectError(await call("PUT", `msdyn_ciproviders(${id})/msdyn_label`, { raw: "{value: 1" }), 400);
      expect((await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id))?.msdyn_label).toBe("kept");
    });

    it("a body over BODY_LIMIT is 413", async () => {
      const small = await createTestApp({ BODY_LIMIT: "1024" });
      try {
        const res = await call("POST", "msdyn_ciproviders", {
          app: small,
          body: { msdyn_name: "big", msdyn_appselector: "a".repeat(2000) },
        });
        expectError(res, 413);
        expect(await count("msdyn_ciprovider", small)).toBe(0);

        const fits = await call("POST", "msdyn_ciproviders", { app: small, body: { msdyn_name: "small" } });
        expect(fits.statusCode, fits.body).toBe(204);
        expect(await count("msdyn_ciprovider", small)).toBe(1);
      } finally {
        await small.close();
      }
    });
  });

  // -------------------------------------------------------------------------

  describe("resources and methods", () => {
    it.each([
      ["GET", "accounts", "accounts"],
      ["POST", "accounts", "accounts"],
      ["GET", `accounts(${"0".repeat(8)}-0000-4000-8000-${"0".repeat(12)})`, "accounts"],
      ["PATCH", `accounts(${"0".repeat(8)}-0000-4000-8000-${"0".repeat(12)})`, "accounts"],
      ["GET", "MSDYN_CIPROVIDERS", "MSDYN_CIPROVIDERS"],
    ] as const)("an unknown entity set (%s %s) is 404 0x8006088a", async (method, path, segment) => {
      const res = await call(method, path, method === "GET" ? {} : { body: { name: "x" } });
      expectError(res, 404, "0x8006088a", `Resource not found for the segment '${segment}'.`);
    });

    it("an unknown property segment is 404", async () => {
      const id = await createProvider();
      expectError(await call("GET", `msdyn_ciproviders(${id})/msdyn_nope`), 404);
    });

    const allowed = (res: LightMyRequestResponse) =>
      String(res.headers.allow ?? "")
        .split(",")
        .map((m) => m.trim())
        .filter(Boolean);

    it.each([
      ["PUT", "row", ["GET", "PATCH", "DELETE"]],
      ["POST", "row", ["GET", "PATCH", "DELETE"]],
      ["PATCH", "collection", ["POST"]],
      ["DELETE", "collection", ["POST"]],
      ["PUT", "collection", ["POST"]],
      ["POST", "property", ["GET", "PUT", "DELETE"]],
      ["PATCH", "property", ["GET", "PUT", "DELETE"]],
    ] as const)("%s on a %s is 405 with an Allow header", async (method, kind, expected) => {
      const id = await createProvider({ msdyn_label: "unchanged" });
      const path =
        kind === "row"
          ? `msdyn_ciproviders(${id})`
          : kind === "collection"
            ? "msdyn_ciproviders"
            : `msdyn_ciproviders(${id})/msdyn_label`;
      const before = await count("msdyn_ciprovider");
      const stored = await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id);

      const res = await call(
        method,
        path,
        method === "DELETE" ? {} : { body: kind === "property" ? { value: "x" } : { msdyn_label: "x" } },
      );
      expectError(res, 405);
      const allow = allowed(res);
      for (const m of expected) expect(allow).toContain(m);
      expect(allow).not.toContain(method);

      expect(await count("msdyn_ciprovider")).toBe(before);
      expect(await dbRow("msdyn_ciprovider", "msdyn_ciproviderid", id)).toEqual(stored);
    });
  });

  // -------------------------------------------------------------------------

  describe("headers", () => {
    it("every response carries OData-Version: 4.0; JSON bodies are `application/json; odata.metadata=minimal`", async () => {
      const id = randomUUID();
      const responses: Array<[string, LightMyRequestResponse]> = [];
      const record = async (label: string, res: Promise<LightMyRequestResponse>) => {
        const r = await res;
        responses.push([label, r]);
        return r;
      };

      await record("POST 204", call("POST", "msdyn_ciproviders", { body: { msdyn_ciproviderid: id, msdyn_name: "h" } }));
      await record(
        "POST 201",
        call("POST", "msdyn_ciproviders", { headers: { prefer: "return=representation" }, body: { msdyn_name: "h" } }),
      );
      const get = await record("GET 200", call("GET", `msdyn_ciproviders(${id})`));
      await record(
        "GET 304",
        call("GET", `msdyn_ciproviders(${id})`, { headers: { "if-none-match": get.headers.etag as string } }),
      );
      await record("GET property 200", call("GET", `msdyn_ciproviders(${id})/msdyn_name`));
      await record("GET property 204", call("GET", `msdyn_ciproviders(${id})/msdyn_landingurl`));
      await record("PATCH 204", call("PATCH", `msdyn_ciproviders(${id})`, { body: { msdyn_label: "h" } }));
      await record(
        "PATCH 200",
        call("PATCH", `msdyn_ciproviders(${id})`, { headers: { prefer: "return=representation" }, body: { msdyn_label: "h2" } }),
      );
      await record("PUT property 204", call("PUT", `msdyn_ciproviders(${id})/msdyn_label`, { body: { value: "h3" } }));
      await record("DELETE property 204", call("DELETE", `msdyn_ciproviders(${id})/msdyn_label`));
      await record("400", call("POST", "msdyn_ciproviders", { body: { msdyn_nope: 1 } }));
      await record("400 JSON", call("POST", "msdyn_ciproviders", { raw: "{" }));
      await record("404 row", call("GET", `msdyn_ciproviders(${randomUUID()})`));
      await record("404 set", call("GET", "accounts"));
      await record("405", call("PATCH", "msdyn_ciproviders", { body: {} }));
      await record("412", call("PATCH", `msdyn_ciproviders(${id})`, { headers: { "if-match": 'W/"1"' }, body: {} }));
      await record("DELETE 204", call("DELETE", `msdyn_ciproviders(${id})`));

      for (const [label, res] of responses) {
        expect(res.headers["odata-version"], label).toBe("4.0");
        if (res.statusCode === 204 || res.statusCode === 304) {
          expect(res.body, label).toBe("");
        } else {
          expect(res.headers["content-type"], label).toBe(ODATA_JSON);
          expect(() => res.json(), label).not.toThrow();
        }
      }
    });
  });

  // -------------------------------------------------------------------------

  describe("the caller", () => {
    it("is recorded as owner, creator and modifier of new rows", async () => {
      const conversationId = uniqueId("caller");
      const id = await createConversation(conversationId);
      expect(await getRow(`msdyn_conversationsdata(${id})`)).toMatchObject({
        _ownerid_value: t.config.CALLER_USER_ID,
        _createdby_value: t.config.CALLER_USER_ID,
        _modifiedby_value: t.config.CALLER_USER_ID,
      });

      const upserted = await call(
        "PATCH",
        `msdyn_sessionsdata(msdyn_conversationid='${conversationId}',msdyn_providersessionid='s')`,
        { body: {} },
      );
      expect(upserted.statusCode, upserted.body).toBe(204);
      expect(await getRow(`msdyn_sessionsdata(${entityIdOf(upserted)})`)).toMatchObject({
        _ownerid_value: t.config.CALLER_USER_ID,
        _createdby_value: t.config.CALLER_USER_ID,
        _modifiedby_value: t.config.CALLER_USER_ID,
      });

      const provider = await getRow(`msdyn_ciproviders(${await createProvider()})`);
      expect(provider).toMatchObject({
        _createdby_value: t.config.CALLER_USER_ID,
        _modifiedby_value: t.config.CALLER_USER_ID,
        _organizationid_value: t.config.ORGANIZATION_ID,
      });
    });

    it("is recorded as modifier of a row the system created", async () => {
      expect((await getRow("msdyn_kpieventdefinitions(msdyn_name='SessionClosed')"))._modifiedby_value).not.toBe(
        t.config.CALLER_USER_ID,
      );
      const res = await call("PATCH", "msdyn_kpieventdefinitions(msdyn_name='SessionClosed')", {
        body: { msdyn_eventdescription: "closed" },
      });
      expect(res.statusCode, res.body).toBe(204);
      const row = await getRow("msdyn_kpieventdefinitions(msdyn_name='SessionClosed')");
      expect(row._modifiedby_value).toBe(t.config.CALLER_USER_ID);
      expect(row._createdby_value).not.toBe(t.config.CALLER_USER_ID);
    });

    it('a PATCH of "ownerid@odata.bind": "/systemusers(<guid>)" changes _ownerid_value', async () => {
      const id = await createConversation(uniqueId("owner"));
      const newOwner = randomUUID();
      const res = await call("PATCH", `msdyn_conversationsdata(${id})`, {
        body: { "ownerid@odata.bind": `/systemusers(${newOwner})` },
      });
      expect(res.statusCode, res.body).toBe(204);
      expect(await getRow(`msdyn_conversationsdata(${id})`)).toMatchObject({
        _ownerid_value: newOwner,
        _createdby_value: t.config.CALLER_USER_ID,
        _modifiedby_value: t.config.CALLER_USER_ID,
      });

      const other = randomUUID();
      const bare = await call("PATCH", `msdyn_conversationsdata(${id})`, {
        body: { "ownerid@odata.bind": `systemusers(${other})` },
      });
      expect(bare.statusCode, bare.body).toBe(204);
      expect((await getRow(`msdyn_conversationsdata(${id})`))._ownerid_value).toBe(other);
    });

    it('"ownerid@odata.bind" on POST sets the owner', async () => {
      const owner = randomUUID();
      const id = await createConversation(uniqueId("owned"), { "ownerid@odata.bind": `/systemusers(${owner})` });
      expect(await getRow(`msdyn_conversationsdata(${id})`)).toMatchObject({
        _ownerid_value: owner,
        _createdby_value: t.config.CALLER_USER_ID,
      });
    });
  });
});
