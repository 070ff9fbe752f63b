/**
 * DESIGN.md "Integrity: parents before events" and "Provider enablement", through the
 * HTTP API: missing parents are refused with a 400 that names them and writes nothing,
 * KPI event definitions are resolved by id or name, providers gate new KPI events, and
 * deletes cascade.
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import {
  type Body,
  OBJECT_DOES_NOT_EXIST,
  PRIVILEGE_DENIED,
  createdId,
  definitionId,
  expectError,
  records,
} from "../helpers/records.js";

const SESSION_STARTED = definitionId("SessionStarted");
const SESSION_CLOSED = definitionId("SessionClosed");

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("parents before events, and provider enablement", () => {
  const t = useTestApp();
  const { post, patch, del, get, provider, setAnalytics, conversation, session, participant, family } = records(t);

  // -------------------------------------------------------------------------
  // Helpers

  async function count(sql: string, params: unknown[] = []): Promise<number> {
    const { rows } = await t.testDb.pool.query<{ n: string }>(sql, params);
    return Number(rows[0]!.n);
  }
  const countWhere = (table: string, conversationId: string) =>
    count(`SELECT count(*) AS n FROM ${table} WHERE msdyn_conversationid = $1`, [conversationId]);
  const conversations = (c: string) => countWhere("msdyn_conversationdata", c);
  const sessions = (c: string) => countWhere("msdyn_sessiondata", c);
  const participants = (c: string) => countWhere("msdyn_sessionparticipantdata", c);
  const events = (c: string) => countWhere("msdyn_kpieventdata", c);
  const eventRow = async (id: string) =>
    (await t.testDb.pool.query(`SELECT * FROM msdyn_kpieventdata WHERE msdyn_kpieventdataid = $1`, [id])).rows[0] as
      Record<string, unknown> | undefined;

  const expectMissingParent = (res: LightMyRequestResponse, ...fragments: string[]): string =>
    expectError(res, 400, OBJECT_DOES_NOT_EXIST, ...fragments);
  const expectRefusedByProvider = (res: LightMyRequestResponse): string => expectError(res, 403, PRIVILEGE_DENIED);

  const kpiEvent = (c: string, s = "s-1", extra: Body = {}): Body => ({
    msdyn_conversationid: c,
    msdyn_providersessionid: s,
    msdyn_kpieventname: "SessionStarted",
    ...extra,
  });

  // -------------------------------------------------------------------------

  describe("missing parents are refused, named, and nothing is written", () => {
    it("a session whose conversation does not exist", async () => {
      const c = `missing-${randomUUID()}`;
      const res = await post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
      const message = expectMissingParent(res, `msdyn_conversationid = '${c}'`);
      expect(message).toMatch(/conversation/i);
      expect(await sessions(c)).toBe(0);
      expect(await conversations(c)).toBe(0);
    });

    it("a participant whose session does not exist", async () => {
      const c = await conversation();
      const res = await post("msdyn_sessionparticipantsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: "no-such-session",
        msdyn_participantid: "agent-1",
      });
      const message = expectMissingParent(res, `msdyn_conversationid = '${c}'`, `msdyn_providersessionid = 'no-such-session'`);
      expect(message).toMatch(/session/i);
      expect(await participants(c)).toBe(0);
      expect(await sessions(c)).toBe(0);
    });

    it("a KPI event whose conversation does not exist names the conversation, not the session", async () => {
      const c = `missing-${randomUUID()}`;
      const res = await post("msdyn_kpieventsdata", kpiEvent(c));
      const message = expectMissingParent(res, `msdyn_conversationid = '${c}'`);
      expect(message).toMatch(/conversation/i);
      expect(message).not.toMatch(/msdyn_providersessionid|msdyn_sessiondata/);
      expect(await events(c)).toBe(0);
    });

    it("a KPI event whose session does not exist (the conversation does) names the session", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const res = await post("msdyn_kpieventsdata", kpiEvent(c, "no-such-session"));
      const message = expectMissingParent(res, `msdyn_conversationid = '${c}'`, `msdyn_providersessionid = 'no-such-session'`);
      expect(message).toMatch(/session/i);
      expect(await events(c)).toBe(0);
    });

    it("a KPI event naming a participant that is not in its session", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const res = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_participantid: "stranger" }));
      const message = expectMissingParent(res, `msdyn_participantid = 'stranger'`);
      expect(message).toMatch(/participant/i);
      expect(await events(c)).toBe(0);

      // The same participant id in its own session is fine.
      const ok = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_participantid: "agent-1" }));
      expect(ok.statusCode, ok.body).toBe(204);
      expect(await events(c)).toBe(1);
    });

    it("the same refusals through a PATCH upsert that creates the row", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const missing = `missing-${randomUUID()}`;

      const newSession = await patch(`msdyn_sessionsdata(${randomUUID()})`, {
        msdyn_conversationid: missing,
        msdyn_providersessionid: "s-1",
      });
      expectMissingParent(newSession, `msdyn_conversationid = '${missing}'`);
      expect(await sessions(missing)).toBe(0);

      const byAlternateKey = await patch(`msdyn_sessionsdata(msdyn_conversationid='${missing}',msdyn_providersessionid='s-9')`, {
        msdyn_name: "by alternate key",
      });
      expectMissingParent(byAlternateKey, `msdyn_conversationid = '${missing}'`);
      expect(await sessions(missing)).toBe(0);

      const newParticipant = await patch(`msdyn_sessionparticipantsdata(${randomUUID()})`, {
        msdyn_conversationid: c,
        msdyn_providersessionid: "no-such-session",
        msdyn_participantid: "agent-2",
      });
      expectMissingParent(newParticipant, `msdyn_conversationid = '${c}'`, `msdyn_providersessionid = 'no-such-session'`);
      expect(await participants(c)).toBe(1);

      const eventWithoutConversation = await patch(`msdyn_kpieventsdata(${randomUUID()})`, kpiEvent(missing));
      const message = expectMissingParent(eventWithoutConversation, `msdyn_conversationid = '${missing}'`);
      expect(message).not.toMatch(/msdyn_providersessionid/);

      const eventWithoutSession = await patch(`msdyn_kpieventsdata(${randomUUID()})`, kpiEvent(c, "no-such-session"));
      expectMissingParent(eventWithoutSession, `msdyn_providersessionid = 'no-such-session'`);

      const eventWithStranger = await patch(
        `msdyn_kpieventsdata(${randomUUID()})`,
        kpiEvent(c, "s-1", { msdyn_participantid: "stranger" }),
      );
      expectMissingParent(eventWithStranger, `msdyn_participantid = 'stranger'`);

      expect(await events(c)).toBe(0);
      expect(await events(missing)).toBe(0);
    });

    it("the same refusals through a PATCH that changes a key of an existing row", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const eventId = createdId(await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_participantid: "agent-1" })));
      const before = await eventRow(eventId);

      // Moving the event to a session that does not exist.
      const toMissingSession = await patch(`msdyn_kpieventsdata(${eventId})`, { msdyn_providersessionid: "no-such-session" });
      expectMissingParent(toMissingSession, `msdyn_providersessionid = 'no-such-session'`);

      // Moving it to a conversation that does not exist names the conversation.
      const missing = `missing-${randomUUID()}`;
      const toMissingConversation = await patch(`msdyn_kpieventsdata(${eventId})`, { msdyn_conversationid: missing });
      expectMissingParent(toMissingConversation, `msdyn_conversationid = '${missing}'`);

      // Naming a participant that is not in the session.
      const toStranger = await patch(`msdyn_kpieventsdata(${eventId})`, { msdyn_participantid: "stranger" });
      expectMissingParent(toStranger, `msdyn_participantid = 'stranger'`);

      expect(await eventRow(eventId)).toEqual(before);

      // Moving a session (without children) to a conversation that does not exist.
      const lonelySession = await session(c, "s-lonely");
      const sessionMoved = await patch(`msdyn_sessionsdata(${lonelySession})`, { msdyn_conversationid: missing });
      expectMissingParent(sessionMoved, `msdyn_conversationid = '${missing}'`);
      expect(await sessions(c)).toBe(2);
      expect(await sessions(missing)).toBe(0);

      // Moving a participant to a session that does not exist.
      const participantId = await participant(c, "s-lonely", "agent-9");
      const participantMoved = await patch(`msdyn_sessionparticipantsdata(${participantId})`, {
        msdyn_providersessionid: "no-such-session",
      });
      expectMissingParent(participantMoved, `msdyn_providersessionid = 'no-such-session'`);
      expect(
        await count(
          `SELECT count(*) AS n FROM msdyn_sessionparticipantdata WHERE msdyn_sessionparticipantdataid = $1 AND msdyn_providersessionid = 's-lonely'`,
          [participantId],
        ),
      ).toBe(1);
    });
  });

  // -------------------------------------------------------------------------

  describe("a KPI event's definition", () => {
    it("is found by msdyn_kpieventname alone; the server fills msdyn_kpieventid", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const id = createdId(await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_kpieventname: "SessionClosed" })));
      const row = await eventRow(id);
      expect(row?.msdyn_kpieventid).toBe(SESSION_CLOSED);
      expect(row?.msdyn_kpieventname).toBe("SessionClosed");

      const read = await get(`msdyn_kpieventsdata(${id})?$select=msdyn_kpieventid,msdyn_kpieventname`);
      expect(read.statusCode).toBe(200);
      expect(read.json()).toMatchObject({ msdyn_kpieventid: SESSION_CLOSED, msdyn_kpieventname: "SessionClosed" });
    });

    it("is found by msdyn_kpieventid alone; the server fills msdyn_kpieventname", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const body = { msdyn_conversationid: c, msdyn_providersessionid: "s-1", msdyn_kpieventid: SESSION_CLOSED };
      const id = createdId(await post("msdyn_kpieventsdata", body));
      const row = await eventRow(id);
      expect(row?.msdyn_kpieventid).toBe(SESSION_CLOSED);
      expect(row?.msdyn_kpieventname).toBe("SessionClosed");
    });

    it("takes both when they agree and refuses them when they disagree", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const agree = await post(
        "msdyn_kpieventsdata",
        kpiEvent(c, "s-1", { msdyn_kpieventid: SESSION_STARTED, msdyn_kpieventname: "SessionStarted" }),
      );
      expect(agree.statusCode, agree.body).toBe(204);
      expect(await events(c)).toBe(1);

      const disagree = await post(
        "msdyn_kpieventsdata",
        kpiEvent(c, "s-1", { msdyn_kpieventid: SESSION_STARTED, msdyn_kpieventname: "SessionClosed" }),
      );
      expect(disagree.statusCode, disagree.body).toBe(400);
      expect(await events(c)).toBe(1);
    });

    it("refuses an unknown name, an unknown id, and neither", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const unknownName = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_kpieventname: "NoSuchEvent" }));
      expect(unknownName.statusCode, unknownName.body).toBe(400);
      expect(unknownName.json().error.message).toContain("NoSuchEvent");

      const unknownGuid = randomUUID();
      const unknownId = await post("msdyn_kpieventsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: "s-1",
        msdyn_kpieventid: unknownGuid,
      });
      expect(unknownId.statusCode, unknownId.body).toBe(400);
      expect(unknownId.json().error.message).toContain(unknownGuid);

      const neither = await post("msdyn_kpieventsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
      expect(neither.statusCode, neither.body).toBe(400);
      expect(neither.json().error.message).toMatch(/msdyn_kpieventid|msdyn_kpieventname/);

      expect(await events(c)).toBe(0);
    });

    it("takes no new events while deactivated, and takes them again once reactivated", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const name = `Custom-${randomUUID()}`;
      const definition = createdId(await post("msdyn_kpieventdefinitions", { msdyn_name: name, msdyn_eventtype: 100000001 }));

      const first = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_kpieventname: name }));
      expect(first.statusCode, first.body).toBe(204);

      const deactivate = await patch(`msdyn_kpieventdefinitions(${definition})`, { statecode: 1 });
      expect(deactivate.statusCode, deactivate.body).toBe(204);

      const byName = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_kpieventname: name }));
      expect(byName.statusCode, byName.body).toBe(400);
      const byId = await post("msdyn_kpieventsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: "s-1",
        msdyn_kpieventid: definition,
      });
      expect(byId.statusCode, byId.body).toBe(400);
      expect(await events(c)).toBe(1);

      const reactivate = await patch(`msdyn_kpieventdefinitions(${definition})`, { statecode: 0 });
      expect(reactivate.statusCode, reactivate.body).toBe(204);
      const again = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_kpieventname: name }));
      expect(again.statusCode, again.body).toBe(204);
      expect(await events(c)).toBe(2);
    });

    it("cannot be deleted while events use it; an unused custom one can", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const usedName = `Used-${randomUUID()}`;
      const used = createdId(await post("msdyn_kpieventdefinitions", { msdyn_name: usedName }));
      createdId(await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_kpieventname: usedName })));

      const refused = await del(`msdyn_kpieventdefinitions(${used})`);
      expect(refused.statusCode, refused.body).toBe(405);
      expect(refused.json().error.message).toMatch(/deactivate/i);
      expect(
        await count(`SELECT count(*) AS n FROM msdyn_kpieventdefinition WHERE msdyn_kpieventdefinitionid = $1`, [used]),
      ).toBe(1);
      expect(await events(c)).toBe(1);

      const unused = createdId(await post("msdyn_kpieventdefinitions", { msdyn_name: `Unused-${randomUUID()}` }));
      const deleted = await del(`msdyn_kpieventdefinitions(${unused})`);
      expect(deleted.statusCode, deleted.body).toBe(204);
      expect(
        await count(`SELECT count(*) AS n FROM msdyn_kpieventdefinition WHERE msdyn_kpieventdefinitionid = $1`, [unused]),
      ).toBe(0);
    });
  });

  // -------------------------------------------------------------------------

  describe("provider enablement", () => {
    it("refuses events of a provider without analytics, naming it and the PATCH, until it is enabled", async () => {
      const providerId = createdId(await post("msdyn_ciproviders", { msdyn_name: "Contoso" }));
      const c = await conversation(providerId);
      await session(c);

      const refused = await post("msdyn_kpieventsdata", kpiEvent(c));
      const message = expectRefusedByProvider(refused);
      expect(message).toContain("Contoso");
      expect(message).toContain(`msdyn_ciproviders(${providerId})`);
      expect(message).toContain("msdyn_enableanalytics");
      expect(await events(c)).toBe(0);

      const enable = await patch(`msdyn_ciproviders(${providerId})`, { msdyn_enableanalytics: true });
      expect(enable.statusCode, enable.body).toBe(204);

      const accepted = await post("msdyn_kpieventsdata", kpiEvent(c));
      expect(accepted.statusCode, accepted.body).toBe(204);
      expect(await events(c)).toBe(1);
    });

    it("takes the event's own msdyn_ProviderId before the conversation's", async () => {
      const enabled = await provider({ name: "Enabled", enabled: true });
      const disabled = await provider({ name: "Disabled", enabled: false });

      // Conversation enabled, event names a disabled provider: refused.
      const c1 = await conversation(enabled);
      await session(c1);
      const refused = await post("msdyn_kpieventsdata", kpiEvent(c1, "s-1", { msdyn_ProviderId: disabled }));
      expect(expectRefusedByProvider(refused)).toContain(disabled);
      expect(await events(c1)).toBe(0);

      // Conversation disabled, event names an enabled provider: accepted.
      const c2 = await conversation(disabled);
      await session(c2);
      const accepted = await post("msdyn_kpieventsdata", kpiEvent(c2, "s-1", { msdyn_ProviderId: enabled }));
      expect(accepted.statusCode, accepted.body).toBe(204);
      expect(await events(c2)).toBe(1);
    });

    it("refuses a provider id that does not exist", async () => {
      const c = await conversation();
      await session(c);
      const ghost = randomUUID();
      const onEvent = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_ProviderId: ghost }));
      expect(expectRefusedByProvider(onEvent)).toContain(ghost);

      const c2 = await conversation(ghost);
      await session(c2);
      const onConversation = await post("msdyn_kpieventsdata", kpiEvent(c2));
      expect(expectRefusedByProvider(onConversation)).toContain(ghost);

      expect(await events(c)).toBe(0);
      expect(await events(c2)).toBe(0);
    });

    it("refuses an event when neither it nor its conversation names a provider", async () => {
      const c = await conversation();
      await session(c);
      const res = await post("msdyn_kpieventsdata", kpiEvent(c));
      expectRefusedByProvider(res);
      expect(await events(c)).toBe(0);
    });

    it.each(["CifSessionStart", "CifSessionEnd", "SessionFocusIn", "SessionFocusOut"])(
      "accepts the agent-behaviour event %s with analytics off",
      async (name) => {
        const disabled = await provider({ name: "Off", enabled: false });
        const c = await conversation(disabled);
        await session(c);
        const withDisabledProvider = await post("msdyn_kpieventsdata", kpiEvent(c, "s-1", { msdyn_kpieventname: name }));
        expect(withDisabledProvider.statusCode, withDisabledProvider.body).toBe(204);

        const bare = await conversation();
        await session(bare);
        const withoutProvider = await post("msdyn_kpieventsdata", kpiEvent(bare, "s-1", { msdyn_kpieventname: name }));
        expect(withoutProvider.statusCode, withoutProvider.body).toBe(204);

        // A non-exempt event in the same place is refused.
        const other = await post("msdyn_kpieventsdata", kpiEvent(c));
        expect(other.statusCode, other.body).toBe(403);
        expect(await events(c)).toBe(1);
        expect(await events(bare)).toBe(1);
      },
    );

    it("stops new events when analytics is turned off again, and keeps the stored ones", async () => {
      const providerId = await provider({ name: "Toggle", enabled: true });
      const c = await conversation(providerId);
      await session(c);
      for (let i = 0; i < 3; i++) {
        const res = await post("msdyn_kpieventsdata", kpiEvent(c));
        expect(res.statusCode, res.body).toBe(204);
      }
      expect(await events(c)).toBe(3);

      await setAnalytics(providerId, false);
      const refused = await post("msdyn_kpieventsdata", kpiEvent(c));
      expectRefusedByProvider(refused);
      expect(await events(c)).toBe(3);
    });
  });

  // -------------------------------------------------------------------------

  describe("cascading deletes", () => {
    async function bigFamily() {
      const { c } = await family({ participantId: "agent-1" });
      await session(c, "s-2");
      await participant(c, "s-1", "customer-1");
      await participant(c, "s-2", "agent-2");
      for (const [s, p] of [
        ["s-1", "agent-1"],
        ["s-1", "customer-1"],
        ["s-1", null],
        ["s-2", "agent-2"],
        ["s-2", null],
      ] as const) {
        const extra = p ? { msdyn_participantid: p } : {};
        createdId(await post("msdyn_kpieventsdata", kpiEvent(c, s, extra)));
      }
      return c;
    }

    it("deleting a conversation by its alternate key removes its sessions, participants and events", async () => {
      const c = await bigFamily();
      const bystander = await bigFamily();
      expect([await sessions(c), await participants(c), await events(c)]).toEqual([2, 3, 5]);

      const res = await del(`msdyn_conversationsdata(msdyn_conversationid='${c}')`);
      expect(res.statusCode, res.body).toBe(204);
      expect([await conversations(c), await sessions(c), await participants(c), await events(c)]).toEqual([0, 0, 0, 0]);
      expect([
        await conversations(bystander),
        await sessions(bystander),
        await participants(bystander),
        await events(bystander),
      ]).toEqual([1, 2, 3, 5]);
    });

    it("deleting a session removes its participants and events but not the conversation", async () => {
      const c = await bigFamily();
      const res = await del(`msdyn_sessionsdata(msdyn_conversationid='${c}',msdyn_providersessionid='s-1')`);
      expect(res.statusCode, res.body).toBe(204);

      const inSession = (table: string, s: string) =>
        count(`SELECT count(*) AS n FROM ${table} WHERE msdyn_conversationid = $1 AND msdyn_providersessionid = $2`, [c, s]);
      expect(await conversations(c)).toBe(1);
      expect([await inSession("msdyn_sessiondata", "s-1"), await inSession("msdyn_sessionparticipantdata", "s-1")]).toEqual([
        0, 0,
      ]);
      expect(await inSession("msdyn_kpieventdata", "s-1")).toBe(0);
      // The other session of the conversation keeps its rows.
      expect([
        await inSession("msdyn_sessiondata", "s-2"),
        await inSession("msdyn_sessionparticipantdata", "s-2"),
        await inSession("msdyn_kpieventdata", "s-2"),
      ]).toEqual([1, 1, 2]);
    });
  });

  // -------------------------------------------------------------------------

  it("a KPI event racing its conversation's delete never leaves an orphan nor fails with 500", { timeout: 120_000 }, async () => {
    const providerId = await provider({ name: "Racer", enabled: true });
    const ROUNDS = 50;
    const outcomes = { accepted: 0, refused: 0 };
    const raced: string[] = [];

    for (let round = 0; round < ROUNDS; round++) {
      const c = await conversation(providerId);
      await session(c);
      raced.push(c);
      // Vary the interleaving: both at once, or one of them a little later (0–2 ms after a timer tick).
      const lag = (round % 6) / 2;
      const startCreate = round % 3 === 2 ? sleep(lag) : Promise.resolve();
      const startDelete = round % 3 === 1 ? sleep(lag) : Promise.resolve();
      const [created, deleted] = await Promise.all([
        startCreate.then(() => post("msdyn_kpieventsdata", kpiEvent(c))),
        startDelete.then(() => del(`msdyn_conversationsdata(msdyn_conversationid='${c}')`)),
      ]);

      expect(deleted.statusCode, `round ${round}: ${deleted.body}`).toBe(204);
      if (created.statusCode === 204) {
        outcomes.accepted++;
      } else {
        expect(created.statusCode, `round ${round}: ${created.body}`).toBe(400);
        expect(created.json().error.code).toBe(OBJECT_DOES_NOT_EXIST);
        outcomes.refused++;
      }
      // Whichever won, the delete left nothing of the conversation behind.
      expect(await events(c), `round ${round}`).toBe(0);
    }

    expect(outcomes.accepted + outcomes.refused).toBe(ROUNDS);
    const orphans = await count(
      `SELECT count(*) AS n FROM msdyn_kpieventdata e
        WHERE NOT EXISTS (SELECT 1 FROM msdyn_sessiondata s
                           WHERE s.msdyn_conversationid = e.msdyn_conversationid
                             AND s.msdyn_providersessionid = e.msdyn_providersessionid)
           OR NOT EXISTS (SELECT 1 FROM msdyn_conversationdata c WHERE c.msdyn_conversationid = e.msdyn_conversationid)`,
    );
    expect(orphans).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM msdyn_kpieventdata WHERE msdyn_conversationid = ANY($1)`, [raced])).toBe(0);
  });
});
