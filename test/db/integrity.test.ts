/**
 * The database itself refuses orphans and cascades deletes (DESIGN.md "Integrity:
 * parents before events"), whatever code path writes.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ANALYTICS_KPI_EVENT_DEFINITIONS, SYSTEM_KPI_EVENT_DEFINITIONS, SYSTEM_USER_ID } from "../../src/model/tables.js";
import { useTestDatabase } from "../helpers/database.js";
import { definitionId } from "../helpers/records.js";

const OWNER = SYSTEM_USER_ID;
const SESSION_STARTED = definitionId("SessionStarted");

describe("database integrity constraints", () => {
  const db = useTestDatabase();

  const q = (sql: string, params: unknown[] = []) => db.pool.query(sql, params);
  const conversation = (id: string) =>
    q(`INSERT INTO msdyn_conversationdata (msdyn_conversationid, ownerid) VALUES ($1, $2)`, [id, OWNER]);
  const session = (conversationId: string, sessionId: string) =>
    q(`INSERT INTO msdyn_sessiondata (msdyn_conversationid, msdyn_providersessionid, ownerid) VALUES ($1, $2, $3)`, [
      conversationId,
      sessionId,
      OWNER,
    ]);
  const participant = (conversationId: string, sessionId: string, participantId: string) =>
    q(
      `INSERT INTO msdyn_sessionparticipantdata (msdyn_conversationid, msdyn_providersessionid, msdyn_participantid, ownerid)
       VALUES ($1, $2, $3, $4)`,
      [conversationId, sessionId, participantId, OWNER],
    );
  const event = (conversationId: string, sessionId: string, participantId: string | null, definitionId = SESSION_STARTED) =>
    q(
      `INSERT INTO msdyn_kpieventdata (msdyn_conversationid, msdyn_providersessionid, msdyn_participantid, msdyn_kpieventid, ownerid)
       VALUES ($1, $2, $3, $4, $5)`,
      [conversationId, sessionId, participantId, definitionId, OWNER],
    );
  const count = async (table: string, conversationId: string) =>
    Number((await q(`SELECT count(*) FROM ${table} WHERE msdyn_conversationid = $1`, [conversationId])).rows[0].count);

  async function family() {
    const c = `c-${randomUUID()}`;
    await conversation(c);
    await session(c, "s1");
    await participant(c, "s1", "agent-1");
    await event(c, "s1", "agent-1");
    await event(c, "s1", null);
    return c;
  }

  it("seeds the ten system KPI event definitions and the analytics' custom ones", async () => {
    const { rows } = await q(
      `SELECT msdyn_kpieventdefinitionid AS id, msdyn_name AS name, msdyn_eventdisplayname AS "displayName",
              msdyn_eventdescription AS description, msdyn_eventtype, statecode
         FROM msdyn_kpieventdefinition ORDER BY msdyn_name`,
    );
    expect(rows).toEqual(
      [
        ...SYSTEM_KPI_EVENT_DEFINITIONS.map((d) => ({ ...d, description: null, msdyn_eventtype: 100000000 })),
        ...ANALYTICS_KPI_EVENT_DEFINITIONS.map((d) => ({ ...d, msdyn_eventtype: 100000001 })),
      ]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((d) => ({ ...d, statecode: 0 })),
    );
  });

  it("refuses a session whose conversation does not exist", async () => {
    await expect(session("no-such-conversation", "s1")).rejects.toMatchObject({
      code: "23503",
      constraint: "fk_msdyn_sessiondata_msdyn_conversation",
    });
  });

  it("refuses a participant whose session does not exist", async () => {
    const c = `c-${randomUUID()}`;
    await conversation(c);
    await expect(participant(c, "no-such-session", "p1")).rejects.toMatchObject({
      code: "23503",
      constraint: "fk_msdyn_sessionparticipantdata_msdyn_session",
    });
  });

  it("refuses a KPI event without an existing conversation and session of it", async () => {
    const c = await family();
    await expect(event("no-such-conversation", "s1", null)).rejects.toMatchObject({
      constraint: "fk_msdyn_kpieventdata_msdyn_session",
    });
    await expect(event(c, "no-such-session", null)).rejects.toMatchObject({
      constraint: "fk_msdyn_kpieventdata_msdyn_session",
    });
    // The session id exists, but in another conversation.
    const other = `c-${randomUUID()}`;
    await conversation(other);
    await session(other, "s-other");
    await expect(event(c, "s-other", null)).rejects.toMatchObject({ constraint: "fk_msdyn_kpieventdata_msdyn_session" });
  });

  it("refuses a KPI event naming a participant that is not in its session", async () => {
    const c = await family();
    await expect(event(c, "s1", "no-such-agent")).rejects.toMatchObject({
      constraint: "fk_msdyn_kpieventdata_msdyn_participant",
    });
  });

  it("refuses a KPI event whose definition does not exist, and one without a definition", async () => {
    const c = await family();
    await expect(event(c, "s1", null, randomUUID())).rejects.toMatchObject({
      constraint: "fk_msdyn_kpieventdata_msdyn_definition",
    });
    await expect(
      q(`INSERT INTO msdyn_kpieventdata (msdyn_conversationid, msdyn_providersessionid, ownerid) VALUES ($1, 's1', $2)`, [
        c,
        OWNER,
      ]),
    ).rejects.toMatchObject({ code: "23502", column: "msdyn_kpieventid" });
  });

  it("keeps natural keys unique", async () => {
    const c = await family();
    await expect(conversation(c)).rejects.toMatchObject({ code: "23505", constraint: "ak_msdyn_conversationdata_natural_key" });
    await expect(session(c, "s1")).rejects.toMatchObject({ constraint: "ak_msdyn_sessiondata_natural_key" });
    await expect(participant(c, "s1", "agent-1")).rejects.toMatchObject({
      constraint: "ak_msdyn_sessionparticipantdata_natural_key",
    });
    await expect(
      q(`INSERT INTO msdyn_kpieventdefinition (msdyn_name, ownerid) VALUES ('SessionStarted', $1)`, [OWNER]),
    ).rejects.toMatchObject({ constraint: "ak_msdyn_kpieventdefinition_natural_key" });
  });

  it("deletes a conversation's sessions, participants and events with it", async () => {
    const c = await family();
    const keep = await family();

    await q(`DELETE FROM msdyn_conversationdata WHERE msdyn_conversationid = $1`, [c]);

    for (const table of ["msdyn_sessiondata", "msdyn_sessionparticipantdata", "msdyn_kpieventdata"]) {
      expect(await count(table, c), table).toBe(0);
    }
    expect(await count("msdyn_kpieventdata", keep)).toBe(2);
  });

  it("deletes a session's participants and events with it", async () => {
    const c = await family();
    await session(c, "s2");
    await event(c, "s2", null);

    await q(`DELETE FROM msdyn_sessiondata WHERE msdyn_conversationid = $1 AND msdyn_providersessionid = 's1'`, [c]);

    expect(await count("msdyn_sessionparticipantdata", c)).toBe(0);
    expect(await count("msdyn_kpieventdata", c)).toBe(1);
    expect(await count("msdyn_conversationdata", c)).toBe(1);
  });

  it("refuses to delete a definition that events use", async () => {
    const c = await family();
    const custom = randomUUID();
    await q(`INSERT INTO msdyn_kpieventdefinition (msdyn_kpieventdefinitionid, msdyn_name, ownerid) VALUES ($1, $2, $3)`, [
      custom,
      `Custom-${custom}`,
      OWNER,
    ]);
    await event(c, "s1", null, custom);

    await expect(q(`DELETE FROM msdyn_kpieventdefinition WHERE msdyn_kpieventdefinitionid = $1`, [custom])).rejects.toMatchObject(
      {
        code: "23503",
        constraint: "fk_msdyn_kpieventdata_msdyn_definition",
      },
    );
  });

  it("refuses to change a parent's natural key while children use it", async () => {
    const c = await family();
    await expect(
      q(`UPDATE msdyn_conversationdata SET msdyn_conversationid = 'renamed' WHERE msdyn_conversationid = $1`, [c]),
    ).rejects.toMatchObject({ code: "23503" });
  });

  it("gives every insert and update a new, growing versionnumber and touches modifiedon", async () => {
    const c = `c-${randomUUID()}`;
    await conversation(c);
    const read = async () =>
      (await q(`SELECT versionnumber, modifiedon, createdon FROM msdyn_conversationdata WHERE msdyn_conversationid = $1`, [c]))
        .rows[0];
    const first = await read();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await q(`UPDATE msdyn_conversationdata SET msdyn_channel = 'voice' WHERE msdyn_conversationid = $1`, [c]);
    const second = await read();

    expect(BigInt(first.versionnumber)).toBeGreaterThan(0n);
    expect(BigInt(second.versionnumber)).toBeGreaterThan(BigInt(first.versionnumber));
    expect(second.modifiedon.getTime()).toBeGreaterThan(first.modifiedon.getTime());
    expect(second.createdon).toEqual(first.createdon);
  });
});
