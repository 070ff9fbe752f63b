/**
 * The bulk actions bound to an entity set (shared/reference/dataverse-webapi.md §7):
 * CreateMultiple, UpdateMultiple and UpsertMultiple over HTTP. One request is one
 * transaction, a failure names its target, and every target obeys the rules of a plain
 * POST / PATCH (DESIGN.md "Integrity: parents before events", "Provider enablement").
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { describe, expect, it } from "vitest";
import { DEFAULT_BULK_MAX_TARGETS, createBulkActions } from "../../src/actions/bulk-actions.js";
import { ConfigError, loadConfig } from "../../src/config/config.js";
import { ODataError } from "../../src/odata/errors.js";
import { tableByEntitySet } from "../../src/model/tables.js";
import type { OperationContext } from "../../src/actions/action.js";
import { createTestApp, useTestApp } from "../helpers/app.js";
import {
  type Body,
  GUID,
  OBJECT_DOES_NOT_EXIST,
  PRIVILEGE_DENIED,
  ROOT,
  STRING_TOO_LONG,
  expectError,
  records,
} from "../helpers/records.js";

const KPI_EVENT = "Microsoft.Dynamics.CRM.msdyn_kpieventdata";
const CONVERSATION = "Microsoft.Dynamics.CRM.msdyn_conversationdata";
const SESSION = "Microsoft.Dynamics.CRM.msdyn_sessiondata";

type ErrorBody = { error: { code: string; message: string } };

describe("bulk actions: CreateMultiple, UpdateMultiple, UpsertMultiple", () => {
  const t = useTestApp();
  const { post, patch, provider, conversation, family } = records(t);

  // -------------------------------------------------------------------------
  // Helpers

  const bulk = (set: string, action: "CreateMultiple" | "UpdateMultiple" | "UpsertMultiple", body: unknown) =>
    post(`${set}/Microsoft.Dynamics.CRM.${action}`, body);
  const createMultiple = (set: string, targets: unknown[]) => bulk(set, "CreateMultiple", { Targets: targets });
  const updateMultiple = (set: string, targets: unknown[]) => bulk(set, "UpdateMultiple", { Targets: targets });
  const upsertMultiple = (set: string, targets: unknown[]) => bulk(set, "UpsertMultiple", { Targets: targets });

  function ids(res: LightMyRequestResponse): string[] {
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ "@odata.context": string; Ids: string[] }>();
    expect(body["@odata.context"]).toBe(`http://localhost:80${ROOT}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse`);
    for (const id of body.Ids) expect(id).toMatch(GUID);
    return body.Ids;
  }

  async function query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await t.testDb.pool.query(sql, params)).rows as T[];
  }
  const countWhere = async (table: string, conversationId: string) =>
    Number(
      (await query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE msdyn_conversationid = $1`, [conversationId]))[0]!.n,
    );
  const events = (c: string) => countWhere("msdyn_kpieventdata", c);
  const sessions = (c: string) => countWhere("msdyn_sessiondata", c);
  const conversationRow = async (c: string) =>
    (await query(`SELECT * FROM msdyn_conversationdata WHERE msdyn_conversationid = $1`, [c]))[0];

  const kpiEvent = (c: string, extra: Body = {}): Body => ({
    msdyn_conversationid: c,
    msdyn_providersessionid: "s-1",
    msdyn_kpieventname: "SessionStarted",
    ...extra,
  });
  const typed = (type: string, body: Body): Body => ({ "@odata.type": type, ...body });
  const kpiTarget = (c: string, extra: Body = {}) => typed(KPI_EVENT, kpiEvent(c, extra));

  // -------------------------------------------------------------------------

  describe("CreateMultiple", () => {
    it("creates 1,000 KPI events in one request and returns their ids in target order", { timeout: 120_000 }, async () => {
      const { c } = await family();
      const ownId = randomUUID();
      const targets = Array.from({ length: 1000 }, (_, i) =>
        kpiTarget(c, { msdyn_name: `e-${i}`, ...(i === 7 ? { msdyn_kpieventdataid: ownId } : {}) }),
      );
      const res = await createMultiple("msdyn_kpieventsdata", targets);
      const returned = ids(res);
      expect(returned).toHaveLength(1000);
      expect(new Set(returned).size).toBe(1000);
      expect(returned[7]).toBe(ownId);

      const stored = await query<{ msdyn_kpieventdataid: string; msdyn_name: string; msdyn_kpieventid: string }>(
        `SELECT msdyn_kpieventdataid, msdyn_name, msdyn_kpieventid FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1`,
        [c],
      );
      expect(stored).toHaveLength(1000);
      const nameById = new Map(stored.map((row) => [row.msdyn_kpieventdataid, row.msdyn_name]));
      returned.forEach((id, i) => expect(nameById.get(id)).toBe(`e-${i}`));
      // The writer's KPI rules ran: the definition id was filled from the name.
      expect(new Set(stored.map((row) => row.msdyn_kpieventid)).size).toBe(1);
      expect(stored[0]!.msdyn_kpieventid).toMatch(GUID);
    });

    it("stores nothing when target 500 names a missing session, and names Targets[500]", { timeout: 120_000 }, async () => {
      const { c } = await family();
      const targets = Array.from({ length: 1000 }, (_, i) =>
        kpiTarget(c, i === 500 ? { msdyn_providersessionid: "no-such-session" } : {}),
      );
      const message = expectError(await createMultiple("msdyn_kpieventsdata", targets), 400, OBJECT_DOES_NOT_EXIST);
      expect(message).toMatch(/^Targets\[500\]: /);
      expect(message).toContain("msdyn_providersessionid = 'no-such-session'");
      expect(await events(c)).toBe(0);
    });

    it("stores nothing when target 500 has a too-long string, keeping the writer's code", { timeout: 120_000 }, async () => {
      const { c } = await family();
      const targets = Array.from({ length: 1000 }, (_, i) => kpiTarget(c, i === 500 ? { msdyn_name: "x".repeat(101) } : {}));
      const message = expectError(await createMultiple("msdyn_kpieventsdata", targets), 400, STRING_TOO_LONG);
      expect(message).toMatch(/^Targets\[500\]: .*'msdyn_name'.*'100'/);
      expect(await events(c)).toBe(0);
    });

    it("refuses a target without @odata.type, or with another table's, naming its index", async () => {
      const { c } = await family();
      const missing = await createMultiple("msdyn_kpieventsdata", [kpiTarget(c), kpiTarget(c), kpiEvent(c)]);
      expect(expectError(missing, 400)).toMatch(/^Targets\[2\]: .*@odata\.type.*Microsoft\.Dynamics\.CRM\.msdyn_kpieventdata/);

      const wrong = await createMultiple("msdyn_kpieventsdata", [kpiTarget(c), typed(SESSION, kpiEvent(c))]);
      expect(expectError(wrong, 400)).toMatch(/^Targets\[1\]: .*Microsoft\.Dynamics\.CRM\.msdyn_sessiondata/);

      const notAString = await createMultiple("msdyn_kpieventsdata", [{ ...kpiEvent(c), "@odata.type": 42 }]);
      expect(expectError(notAString, 400)).toMatch(/^Targets\[0\]: /);

      // The leading '#' of the full OData form is accepted too.
      ids(await createMultiple("msdyn_kpieventsdata", [typed(`#${KPI_EVENT}`, kpiEvent(c))]));
      expect(await events(c)).toBe(1);
    });

    it("refuses a body without a Targets array, an empty one, and a target that is not an object", async () => {
      for (const body of [{}, { Targets: "x" }, { Targets: { a: 1 } }, { targets: [] }, []]) {
        expect(expectError(await bulk("msdyn_kpieventsdata", "CreateMultiple", body), 400)).toContain("Targets");
      }
      expect(expectError(await createMultiple("msdyn_kpieventsdata", []), 400)).toMatch(/empty/);
      expect(expectError(await createMultiple("msdyn_kpieventsdata", [null]), 400)).toMatch(/^Targets\[0\]: /);
      expect(expectError(await createMultiple("msdyn_kpieventsdata", [[1]]), 400)).toMatch(/^Targets\[0\]: /);
    });

    it(
      "refuses more than 1,000 targets (the default limit), saying the limit, and stores nothing",
      { timeout: 60_000 },
      async () => {
        const { c } = await family();
        const targets = Array.from({ length: 1001 }, () => kpiTarget(c));
        const message = expectError(await createMultiple("msdyn_kpieventsdata", targets), 400);
        expect(message).toContain("1001");
        expect(message).toContain("limit of 1000");
        expect(message).toContain("BULK_MAX_TARGETS");
        expect(await events(c)).toBe(0);
      },
    );

    it("refuses events of a provider without analytics with the 403 of a plain POST; agent-behaviour events pass", async () => {
      const { providerId, c } = await family({ enabled: false });
      const plain = expectError(await post("msdyn_kpieventsdata", kpiEvent(c)), 403, PRIVILEGE_DENIED);

      const agentEvent = kpiTarget(c, { msdyn_kpieventname: "CifSessionStart" });
      const res = await createMultiple("msdyn_kpieventsdata", [agentEvent, kpiTarget(c)]);
      const message = expectError(res, 403, PRIVILEGE_DENIED);
      expect(message).toBe(`Targets[1]: ${plain}`);
      expect(message).toContain(`msdyn_ciproviders(${providerId})`);
      // The accepted agent-behaviour event was rolled back with the rest.
      expect(await events(c)).toBe(0);

      expect(ids(await createMultiple("msdyn_kpieventsdata", [agentEvent, agentEvent]))).toHaveLength(2);
      expect(await events(c)).toBe(2);

      expect((await patch(`msdyn_ciproviders(${providerId})`, { msdyn_enableanalytics: true })).statusCode).toBe(204);
      expect(ids(await createMultiple("msdyn_kpieventsdata", [kpiTarget(c)]))).toHaveLength(1);
      expect(await events(c)).toBe(3);
    });

    it("refuses events whose parents are missing with the 400 0x80040217 of a plain POST", async () => {
      const { c } = await family();
      const missing = `missing-${randomUUID()}`;
      const plainConversation = expectError(await post("msdyn_kpieventsdata", kpiEvent(missing)), 400, OBJECT_DOES_NOT_EXIST);
      const bulkConversation = await createMultiple("msdyn_kpieventsdata", [kpiTarget(c), kpiTarget(missing)]);
      expect(expectError(bulkConversation, 400, OBJECT_DOES_NOT_EXIST)).toBe(`Targets[1]: ${plainConversation}`);

      const stranger = { msdyn_participantid: "stranger" };
      const plainParticipant = expectError(await post("msdyn_kpieventsdata", kpiEvent(c, stranger)), 400, OBJECT_DOES_NOT_EXIST);
      const bulkParticipant = await createMultiple("msdyn_kpieventsdata", [kpiTarget(c, stranger)]);
      expect(expectError(bulkParticipant, 400, OBJECT_DOES_NOT_EXIST)).toBe(`Targets[0]: ${plainParticipant}`);
      expect(await events(c)).toBe(0);
      expect(await events(missing)).toBe(0);
    });

    it("refuses a duplicate primary key within the request and stores nothing", async () => {
      const { c } = await family();
      const id = randomUUID();
      const res = await createMultiple("msdyn_kpieventsdata", [
        kpiTarget(c, { msdyn_kpieventdataid: id }),
        kpiTarget(c, { msdyn_kpieventdataid: id }),
      ]);
      expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expect(res.json<ErrorBody>().error.message).toMatch(/^Targets\[1\]: /);
      expect(await events(c)).toBe(0);
    });

    it("creates conversations and sessions, and refuses a session of a missing conversation", async () => {
      const providerId = await provider({ enabled: true });
      const [c1, c2] = [`c-${randomUUID()}`, `c-${randomUUID()}`];
      const conversationIds = ids(
        await createMultiple("msdyn_conversationsdata", [
          typed(CONVERSATION, { msdyn_conversationid: c1, msdyn_providerid: providerId }),
          typed(CONVERSATION, { msdyn_conversationid: c2, msdyn_providerid: providerId }),
        ]),
      );
      expect((await conversationRow(c1))!.msdyn_conversationdataid).toBe(conversationIds[0]);
      expect((await conversationRow(c2))!.msdyn_conversationdataid).toBe(conversationIds[1]);

      const sessionIds = ids(
        await createMultiple("msdyn_sessionsdata", [
          typed(SESSION, { msdyn_conversationid: c1, msdyn_providersessionid: "s-1" }),
          typed(SESSION, { msdyn_conversationid: c1, msdyn_providersessionid: "s-2" }),
        ]),
      );
      expect(sessionIds).toHaveLength(2);
      expect(await sessions(c1)).toBe(2);

      const missing = `missing-${randomUUID()}`;
      const res = await createMultiple("msdyn_sessionsdata", [
        typed(SESSION, { msdyn_conversationid: c2, msdyn_providersessionid: "s-1" }),
        typed(SESSION, { msdyn_conversationid: missing, msdyn_providersessionid: "s-1" }),
      ]);
      expect(expectError(res, 400, OBJECT_DOES_NOT_EXIST)).toMatch(
        new RegExp(`^Targets\\[1\\]: .*msdyn_conversationid = '${missing}'`),
      );
      expect(await sessions(c2)).toBe(0);

      // A duplicate alternate key is refused as by a plain POST.
      const duplicate = await createMultiple("msdyn_conversationsdata", [typed(CONVERSATION, { msdyn_conversationid: c1 })]);
      expect(duplicate.statusCode, duplicate.body).toBe(412);
      expect(duplicate.json<ErrorBody>().error.message).toMatch(/^Targets\[0\]: /);
    });

    it("answers 405 to other methods and 404 to an unknown entity set", async () => {
      const get = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple` });
      expect(get.statusCode).toBe(405);
      expect((await createMultiple("accounts", [{ "@odata.type": "Microsoft.Dynamics.CRM.account" }])).statusCode).toBe(404);
    });
  });

  // -------------------------------------------------------------------------

  describe("UpdateMultiple", () => {
    async function threeEvents(c: string): Promise<string[]> {
      return ids(
        await createMultiple(
          "msdyn_kpieventsdata",
          [0, 1, 2].map((i) => kpiTarget(c, { msdyn_name: `e-${i}` })),
        ),
      );
    }
    const names = async (eventIds: string[]) => {
      const rows = await query<{ msdyn_kpieventdataid: string; msdyn_name: string }>(
        `SELECT msdyn_kpieventdataid, msdyn_name FROM msdyn_kpieventdata WHERE msdyn_kpieventdataid = ANY($1::uuid[])`,
        [eventIds],
      );
      const byId = new Map(rows.map((row) => [row.msdyn_kpieventdataid, row.msdyn_name]));
      return eventIds.map((id) => byId.get(id));
    };

    it("updates the given columns of each row and answers 204", async () => {
      const { c } = await family();
      const eventIds = await threeEvents(c);
      const res = await updateMultiple(
        "msdyn_kpieventsdata",
        eventIds.map((id, i) => typed(KPI_EVENT, { msdyn_kpieventdataid: id, msdyn_name: `changed-${i}` })),
      );
      expect(res.statusCode, res.body).toBe(204);
      expect(res.body).toBe("");
      expect(await names(eventIds)).toEqual(["changed-0", "changed-1", "changed-2"]);
      const [row] = await query(
        `SELECT msdyn_kpieventname, versionnumber FROM msdyn_kpieventdata WHERE msdyn_kpieventdataid = $1`,
        [eventIds[0]],
      );
      expect(row!.msdyn_kpieventname).toBe("SessionStarted");
    });

    it("refuses a target without its primary key, naming the index, and changes nothing", async () => {
      const { c } = await family();
      const eventIds = await threeEvents(c);
      const res = await updateMultiple("msdyn_kpieventsdata", [
        typed(KPI_EVENT, { msdyn_kpieventdataid: eventIds[0], msdyn_name: "changed" }),
        typed(KPI_EVENT, { msdyn_name: "no key" }),
      ]);
      const message = expectError(res, 400);
      expect(message).toMatch(/^Targets\[1\]: .*msdyn_kpieventdataid/);
      expect(await names(eventIds)).toEqual(["e-0", "e-1", "e-2"]);

      const badKey = await updateMultiple("msdyn_kpieventsdata", [typed(KPI_EVENT, { msdyn_kpieventdataid: "nope" })]);
      expect(expectError(badKey, 400)).toMatch(/^Targets\[0\]: .*GUID/);
    });

    it("does not create a missing row: 404 naming the index, and the other updates are rolled back", async () => {
      const { c } = await family();
      const eventIds = await threeEvents(c);
      const ghost = randomUUID();
      const res = await updateMultiple("msdyn_kpieventsdata", [
        typed(KPI_EVENT, { msdyn_kpieventdataid: eventIds[0], msdyn_name: "changed" }),
        typed(KPI_EVENT, { msdyn_kpieventdataid: ghost, msdyn_name: "ghost" }),
      ]);
      const message = expectError(res, 404, OBJECT_DOES_NOT_EXIST);
      expect(message).toMatch(new RegExp(`^Targets\\[1\\]: .*${ghost}`));
      expect(await names(eventIds)).toEqual(["e-0", "e-1", "e-2"]);
      expect((await query(`SELECT 1 FROM msdyn_kpieventdata WHERE msdyn_kpieventdataid = $1`, [ghost])).length).toBe(0);
    });

    it("applies the integrity rules of a PATCH, all or nothing", async () => {
      const { c } = await family();
      const eventIds = await threeEvents(c);
      const res = await updateMultiple("msdyn_kpieventsdata", [
        typed(KPI_EVENT, { msdyn_kpieventdataid: eventIds[0], msdyn_name: "changed" }),
        typed(KPI_EVENT, { msdyn_kpieventdataid: eventIds[1], msdyn_providersessionid: "no-such-session" }),
      ]);
      expect(expectError(res, 400, OBJECT_DOES_NOT_EXIST)).toMatch(
        /^Targets\[1\]: .*msdyn_providersessionid = 'no-such-session'/,
      );
      expect(await names(eventIds)).toEqual(["e-0", "e-1", "e-2"]);

      const unknownDefinition = await updateMultiple("msdyn_kpieventsdata", [
        typed(KPI_EVENT, { msdyn_kpieventdataid: eventIds[2], msdyn_kpieventname: `NoSuchEvent-${randomUUID()}` }),
      ]);
      expect(unknownDefinition.statusCode).toBeGreaterThanOrEqual(400);
      expect(unknownDefinition.json<ErrorBody>().error.message).toMatch(/^Targets\[0\]: /);
    });

    it("updates sessions", async () => {
      const { c } = await family();
      const [sessionId] = (
        await query<{ msdyn_sessiondataid: string }>(
          `SELECT msdyn_sessiondataid FROM msdyn_sessiondata WHERE msdyn_conversationid = $1`,
          [c],
        )
      ).map((row) => row.msdyn_sessiondataid);
      const res = await updateMultiple("msdyn_sessionsdata", [
        typed(SESSION, { msdyn_sessiondataid: sessionId, msdyn_queuename: "Q1" }),
      ]);
      expect(res.statusCode, res.body).toBe(204);
      const [row] = await query(`SELECT msdyn_queuename FROM msdyn_sessiondata WHERE msdyn_sessiondataid = $1`, [sessionId]);
      expect(row!.msdyn_queuename).toBe("Q1");
    });
  });

  // -------------------------------------------------------------------------

  describe("UpsertMultiple", () => {
    it("finds rows by primary key: updates the existing one, creates the missing one with that key", async () => {
      const providerId = await provider({ enabled: true });
      const existing = await conversation(providerId);
      const existingId = (await conversationRow(existing))!.msdyn_conversationdataid as string;
      const newId = randomUUID();
      const fresh = `c-${randomUUID()}`;
      const res = await upsertMultiple("msdyn_conversationsdata", [
        typed(CONVERSATION, { msdyn_conversationdataid: existingId, msdyn_channel: "voice" }),
        typed(CONVERSATION, { msdyn_conversationdataid: newId, msdyn_conversationid: fresh, msdyn_channel: "chat" }),
      ]);
      expect(res.statusCode, res.body).toBe(204);
      expect(res.body).toBe("");
      expect((await conversationRow(existing))!.msdyn_channel).toBe("voice");
      expect(await conversationRow(fresh)).toMatchObject({ msdyn_conversationdataid: newId, msdyn_channel: "chat" });
    });

    it("finds rows by their alternate-key columns: updates or creates", async () => {
      const providerId = await provider({ enabled: true });
      const existing = await conversation(providerId);
      const before = await conversationRow(existing);
      const fresh = `c-${randomUUID()}`;
      const res = await upsertMultiple("msdyn_conversationsdata", [
        typed(CONVERSATION, { msdyn_conversationid: existing, msdyn_channel: "voice" }),
        typed(CONVERSATION, { msdyn_conversationid: fresh, msdyn_channel: "chat", msdyn_providerid: providerId }),
      ]);
      expect(res.statusCode, res.body).toBe(204);
      expect(await conversationRow(existing)).toMatchObject({
        msdyn_conversationdataid: before!.msdyn_conversationdataid,
        msdyn_channel: "voice",
      });
      expect(await conversationRow(fresh)).toMatchObject({ msdyn_channel: "chat", msdyn_providerid: providerId });

      // Sessions: both columns of the alternate key.
      const sessionsRes = await upsertMultiple("msdyn_sessionsdata", [
        typed(SESSION, { msdyn_conversationid: fresh, msdyn_providersessionid: "s-1", msdyn_queuename: "Q1" }),
        typed(SESSION, { msdyn_conversationid: fresh, msdyn_providersessionid: "s-1", msdyn_queuename: "Q2" }),
        typed(SESSION, { msdyn_conversationid: fresh, msdyn_providersessionid: "s-2" }),
      ]);
      expect(sessionsRes.statusCode, sessionsRes.body).toBe(204);
      const rows = await query(
        `SELECT msdyn_providersessionid, msdyn_queuename FROM msdyn_sessiondata WHERE msdyn_conversationid = $1 ORDER BY 1`,
        [fresh],
      );
      expect(rows).toEqual([
        { msdyn_providersessionid: "s-1", msdyn_queuename: "Q2" },
        { msdyn_providersessionid: "s-2", msdyn_queuename: null },
      ]);

      // An alternate-key value is checked like any other column value.
      const tooLong = await upsertMultiple("msdyn_conversationsdata", [
        typed(CONVERSATION, { msdyn_conversationid: "x".repeat(101) }),
      ]);
      expect(expectError(tooLong, 400, STRING_TOO_LONG)).toMatch(/^Targets\[0\]: /);
    });

    it("finds rows by @odata.id, with a GUID or the alternate key", async () => {
      const providerId = await provider({ enabled: true });
      const byGuid = await conversation(providerId);
      const byGuidId = (await conversationRow(byGuid))!.msdyn_conversationdataid as string;
      const byKey = await conversation(providerId);
      const fresh = `c-${randomUUID()}`;
      const freshId = randomUUID();
      const res = await upsertMultiple("msdyn_conversationsdata", [
        typed(CONVERSATION, { "@odata.id": `msdyn_conversationsdata(${byGuidId})`, msdyn_channel: "by guid" }),
        typed(CONVERSATION, { "@odata.id": `msdyn_conversationsdata(msdyn_conversationid='${byKey}')`, msdyn_channel: "by key" }),
        typed(CONVERSATION, {
          "@odata.id": `http://localhost:80${ROOT}/msdyn_conversationsdata(msdyn_conversationdataid=${freshId})`,
          msdyn_conversationid: fresh,
          msdyn_channel: "created",
        }),
      ]);
      expect(res.statusCode, res.body).toBe(204);
      expect((await conversationRow(byGuid))!.msdyn_channel).toBe("by guid");
      expect((await conversationRow(byKey))!.msdyn_channel).toBe("by key");
      expect(await conversationRow(fresh)).toMatchObject({ msdyn_conversationdataid: freshId, msdyn_channel: "created" });

      // The same, for a session: its alternate key has two columns.
      const sessionRes = await upsertMultiple("msdyn_sessionsdata", [
        typed(SESSION, {
          "@odata.id": `msdyn_sessionsdata(msdyn_conversationid='${byKey}',msdyn_providersessionid='s-9')`,
          msdyn_queuename: "Q9",
        }),
      ]);
      expect(sessionRes.statusCode, sessionRes.body).toBe(204);
      const [session] = await query(`SELECT msdyn_queuename FROM msdyn_sessiondata WHERE msdyn_conversationid = $1`, [byKey]);
      expect(session).toEqual({ msdyn_queuename: "Q9" });
    });

    it("refuses an @odata.id of another entity set or with a bad key, naming the index", async () => {
      const c = await conversation();
      const otherSet = await upsertMultiple("msdyn_conversationsdata", [
        typed(CONVERSATION, { msdyn_conversationid: c }),
        typed(CONVERSATION, { "@odata.id": `msdyn_sessionsdata(${randomUUID()})` }),
      ]);
      expect(expectError(otherSet, 400)).toMatch(/^Targets\[1\]: .*msdyn_sessionsdata/);

      const badKey = await upsertMultiple("msdyn_conversationsdata", [
        typed(CONVERSATION, { "@odata.id": "msdyn_conversationsdata(nope)" }),
      ]);
      expect(expectError(badKey, 400)).toMatch(/^Targets\[0\]: /);

      const notAUrl = await upsertMultiple("msdyn_conversationsdata", [typed(CONVERSATION, { "@odata.id": 17 })]);
      expect(expectError(notAUrl, 400)).toMatch(/^Targets\[0\]: .*@odata\.id/);
    });

    it("creates targets that carry no key, under the rules of a plain POST", async () => {
      const { c, providerId } = await family();
      const res = await upsertMultiple("msdyn_kpieventsdata", [
        kpiTarget(c, { msdyn_name: "a" }),
        kpiTarget(c, { msdyn_name: "b" }),
      ]);
      expect(res.statusCode, res.body).toBe(204);
      expect(await events(c)).toBe(2);

      const providers = await upsertMultiple("msdyn_ciproviders", [
        typed("Microsoft.Dynamics.CRM.msdyn_ciprovider", { msdyn_name: "New via upsert" }),
      ]);
      expect(providers.statusCode, providers.body).toBe(204);
      const [created] = await query(`SELECT count(*)::int AS n FROM msdyn_ciprovider WHERE msdyn_name = 'New via upsert'`);
      expect(created).toEqual({ n: 1 });

      // Provider gating and parents: refused as by a plain POST, all or nothing.
      const disabled = await family({ enabled: false });
      const gated = await upsertMultiple("msdyn_kpieventsdata", [kpiTarget(c), kpiTarget(disabled.c)]);
      expect(expectError(gated, 403, PRIVILEGE_DENIED)).toMatch(/^Targets\[1\]: /);
      const orphan = await upsertMultiple("msdyn_kpieventsdata", [kpiTarget(c), kpiTarget(`missing-${randomUUID()}`)]);
      expect(expectError(orphan, 400, OBJECT_DOES_NOT_EXIST)).toMatch(/^Targets\[1\]: /);
      expect(await events(c)).toBe(2);
      expect(providerId).toMatch(GUID);
    });

    it("rolls back every target when one fails", async () => {
      const providerId = await provider({ enabled: true });
      const existing = await conversation(providerId);
      const fresh = `c-${randomUUID()}`;
      const missing = `missing-${randomUUID()}`;
      const res = await upsertMultiple("msdyn_sessionsdata", [
        typed(SESSION, { msdyn_conversationid: existing, msdyn_providersessionid: "s-1" }),
        typed(SESSION, { msdyn_conversationid: missing, msdyn_providersessionid: "s-1" }),
      ]);
      expect(expectError(res, 400, OBJECT_DOES_NOT_EXIST)).toMatch(
        new RegExp(`^Targets\\[1\\]: .*msdyn_conversationid = '${missing}'`),
      );
      expect(await sessions(existing)).toBe(0);

      const mixed = await upsertMultiple("msdyn_conversationsdata", [
        typed(CONVERSATION, { msdyn_conversationid: existing, msdyn_channel: "changed" }),
        typed(CONVERSATION, { msdyn_conversationid: fresh }),
        typed(CONVERSATION, { msdyn_conversationid: `c-${randomUUID()}`, msdyn_channel: 42 }),
      ]);
      expect(expectError(mixed, 400)).toMatch(/^Targets\[2\]: .*msdyn_channel/);
      expect((await conversationRow(existing))!.msdyn_channel).toBeNull();
      expect(await conversationRow(fresh)).toBeUndefined();
    });
  });
});

describe("the limit on Targets", () => {
  const kpiEvents = tableByEntitySet("msdyn_kpieventsdata")!;
  /** A context whose transaction must not be reached: limits are checked first. */
  const context = {
    transaction: () => {
      throw new Error("no transaction expected");
    },
  } as unknown as OperationContext;
  const request = (targets: unknown[]) => ({
    body: { Targets: targets },
    root: "http://localhost/api/data/v9.2/",
  });

  it("is what createBulkActions is given, for every action", async () => {
    const actions = createBulkActions(3);
    const targets = Array.from({ length: 4 }, () => ({ "@odata.type": "Microsoft.Dynamics.CRM.msdyn_kpieventdata" }));
    for (const name of ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"]) {
      const action = actions.find((a) => a.name === name)!;
      const error = await action.handler({ ...request(targets), table: kpiEvents, context }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ODataError);
      expect((error as ODataError).status).toBe(400);
      expect((error as ODataError).message).toMatch(/4 records, more than the limit of 3 .*BULK_MAX_TARGETS/);
    }
  });

  it("must be a positive integer", () => {
    expect(() => createBulkActions(0)).toThrow(RangeError);
    expect(() => createBulkActions(1.5)).toThrow(RangeError);
    expect(DEFAULT_BULK_MAX_TARGETS).toBe(1000);
  });

  it("comes from BULK_MAX_TARGETS, 1000 by default, a positive integer", () => {
    expect(loadConfig({}).BULK_MAX_TARGETS).toBe(1000);
    expect(loadConfig({ BULK_MAX_TARGETS: "250" }).BULK_MAX_TARGETS).toBe(250);
    for (const bad of ["0", "-5", "1.5", "many"]) {
      expect(() => loadConfig({ BULK_MAX_TARGETS: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ BULK_MAX_TARGETS: bad })).toThrow(new RegExp(`BULK_MAX_TARGETS: .*\\(got "${bad}"\\)`));
    }
  });
  it("is applied by the app from its configuration", async () => {
    const small = await createTestApp({ BULK_MAX_TARGETS: "2" });
    try {
      const res = await small.app.inject({
        method: "POST",
        url: "/api/data/v9.2/msdyn_conversationsdata/Microsoft.Dynamics.CRM.CreateMultiple",
        payload: {
          Targets: ["a", "b", "c"].map((id) => ({
            "@odata.type": "Microsoft.Dynamics.CRM.msdyn_conversationdata",
            msdyn_conversationid: `limit-${id}`,
          })),
        },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/3 records, more than the limit of 2 .*BULK_MAX_TARGETS/);
    } finally {
      await small.close();
    }
  });
});
