/**
 * The ingestion hot paths (issue 6) keep every rule of the slow ones:
 * - group commit (src/channel-analytics/kpi-event-ingest.ts): concurrent requests' KPI
 *   events go in with one statement, yet each request gets its own verdict, and a refused
 *   one never takes the others down nor half-writes;
 * - msdyn_InitLogAnalytics in one statement (RecordWriter.upsertByNaturalKeys), with the
 *   row-by-row path for what one statement cannot do.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { type NaturalKeyUpsert, RecordService } from "../../src/channel-analytics/records.js";
import { tableByLogicalName } from "../../src/model/tables.js";
import { useTestApp } from "../helpers/app.js";
import { type Body, OBJECT_DOES_NOT_EXIST, ROOT, createdId, records, postBatch } from "../helpers/records.js";

const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");
const CONVERSATION = tableByLogicalName("msdyn_conversationdata");
const SESSION = tableByLogicalName("msdyn_sessiondata");
const PARTICIPANT = tableByLogicalName("msdyn_sessionparticipantdata");

describe("ingestion hot paths", () => {
  const t = useTestApp();
  const { post, provider, family: familyOf } = records(t);
  const action = post;
  let enabled: string;
  let disabled: string;
  beforeAll(async () => {
    enabled = await provider({ enabled: true });
    disabled = await provider();
  });

  const count = async (sql: string, params: unknown[]) => Number((await t.testDb.pool.query(sql, params)).rows[0].n);
  const eventsOf = (c: string) => count("SELECT count(*) AS n FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1", [c]);

  /** Conversation c of the provider, with session s-1 and participant agent-1. */
  const family = async (providerId: string) => (await familyOf({ providerId, participantId: "agent-1" })).c;

  const event = (c: string, extra: Body = {}): Body => ({
    msdyn_conversationid: c,
    msdyn_providersessionid: "s-1",
    msdyn_participantid: "agent-1",
    msdyn_kpieventname: "SessionStarted",
    ...extra,
  });

  /** The pool, counting the statements sent through it. */
  function countingPool(): { pool: pg.Pool; statements: () => number } {
    let statements = 0;
    const real = t.db.pool;
    const pool = {
      query: (...args: unknown[]) => (statements++, (real.query as (...a: unknown[]) => unknown)(...args)),
    } as unknown as pg.Pool;
    return { pool, statements: () => statements };
  }

  const caller = () => ({
    userId: t.config.CALLER_USER_ID,
    businessUnitId: t.config.BUSINESS_UNIT_ID,
    organizationId: t.config.ORGANIZATION_ID,
  });

  describe("group commit of KPI events", () => {
    it("stores concurrent creates with fewer statements than requests, each with its own id", async () => {
      const c = await family(enabled);
      const { pool, statements } = countingPool();
      const records = new RecordService(pool, { batchesInFlight: 1 }).as(caller());
      const rows = await Promise.all(Array.from({ length: 20 }, () => records.create(KPI_EVENT, event(c), { keyOnly: true })));

      const ids = rows.map((row) => row.msdyn_kpieventdataid as string);
      expect(new Set(ids).size).toBe(20);
      expect(await eventsOf(c)).toBe(20);
      // The first goes alone; the 19 that arrive while it is in the database go together.
      expect(statements()).toBe(2);
    });

    it("gives each request of a batch its own verdict when the database refuses one of them", async () => {
      const c = await family(enabled);
      const { pool, statements } = countingPool();
      const records = new RecordService(pool, { batchesInFlight: 1 }).as(caller());
      const results = await Promise.allSettled([
        records.create(KPI_EVENT, event(c)),
        records.create(KPI_EVENT, event(c, { msdyn_kpieventname: "SessionClosed" })),
        records.create(KPI_EVENT, event(c, { msdyn_providersessionid: "no-such-session", msdyn_participantid: null })),
        records.create(KPI_EVENT, event(c, { msdyn_kpieventname: "NotificationReceived" })),
      ]);

      expect(
        results.map((r) => r.status),
        JSON.stringify(results.map((r) => (r.status === "rejected" ? String(r.reason) : ""))),
      ).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
      const refusal = (results[2] as PromiseRejectedResult).reason as { status: number; code: string; message: string };
      expect([refusal.status, refusal.code]).toEqual([400, OBJECT_DOES_NOT_EXIST]);
      expect(refusal.message).toContain("no-such-session");
      expect(await eventsOf(c)).toBe(3);
      // Alone, the batch of three (refused as a whole), then each of the three on its own.
      expect(statements()).toBeGreaterThan(2);
    });

    it("over HTTP: a burst of single-event POSTs, with a missing parent, a gated provider and an unknown definition among them", async () => {
      const good = await family(enabled);
      const gated = await family(disabled);
      const bodies: Array<{ body: Body; expect: [number, string | undefined] }> = [
        ...Array.from({ length: 24 }, (_, i) => ({
          body: event(good, { msdyn_eventtimestamp: new Date(Date.UTC(2026, 10, 22, 9, 0, i)).toISOString() }),
          expect: [204, undefined] as [number, undefined],
        })),
        {
          body: event(good, { msdyn_providersessionid: "missing", msdyn_participantid: null }),
          expect: [400, OBJECT_DOES_NOT_EXIST],
        },
        { body: event(gated), expect: [403, "0x80040220"] },
        { body: event(good, { msdyn_kpieventname: "NoSuchEvent" }), expect: [400, OBJECT_DOES_NOT_EXIST] },
      ];
      const responses = await Promise.all(bodies.map(({ body }) => post("msdyn_kpieventsdata", body)));

      responses.forEach((res, i) => {
        const [status, code] = bodies[i]!.expect;
        expect(res.statusCode, res.body).toBe(status);
        if (code) expect(res.json<{ error: { code: string } }>().error.code).toBe(code);
      });
      expect(new Set(responses.filter((r) => r.statusCode === 204).map((r) => r.headers["odata-entityid"])).size).toBe(24);
      expect(await eventsOf(good)).toBe(24);
      expect(await eventsOf(gated)).toBe(0);
    });

    it("keeps msdyn_LogAnalyticsEvent all or none per call when calls share a batch", async () => {
      const c = await family(enabled);
      const orphan = `orphan-${randomUUID()}`;
      const call = (conversationId: string) =>
        action("msdyn_LogAnalyticsEvent", {
          correlationId: randomUUID(),
          data: {
            conversationId,
            providerSessionId: "s-1",
            participantId: "agent-1",
            events: [
              { kpiEventName: "SessionStarted" },
              { kpiEventName: "SessionClosed" },
              { kpiEventName: "NotificationReceived" },
            ],
          },
        });
      const responses = await Promise.all([call(c), call(orphan), call(c), call(c)]);

      expect(
        responses.map((r) => r.statusCode),
        responses.map((r) => r.body).join("\n"),
      ).toEqual([200, 400, 200, 200]);
      expect(responses[1].json<{ error: { message: string } }>().error.message).toMatch(/^data\.events\[0\]: /);
      expect(await eventsOf(c)).toBe(9);
      expect(await eventsOf(orphan)).toBe(0);
    });

    it("answers a representation from a batched create when one is asked for", async () => {
      const c = await family(enabled);
      const responses = await Promise.all(
        Array.from({ length: 5 }, () =>
          t.app.inject({
            method: "POST",
            url: `${ROOT}/msdyn_kpieventsdata`,
            payload: event(c),
            headers: { prefer: "return=representation" },
          }),
        ),
      );
      for (const res of responses) {
        expect(res.statusCode, res.body).toBe(201);
        const row = res.json<Body>();
        expect(row).toMatchObject({ msdyn_conversationid: c, msdyn_kpieventname: "SessionStarted", statecode: 0 });
        expect(row.msdyn_kpieventid).toMatch(/^[0-9a-f-]{36}$/);
      }
    });
  });

  it("gives new rows time-ordered ids (UUID version 7), so inserts append to the primary-key index", async () => {
    const c = await family(enabled);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(createdId(await post("msdyn_kpieventsdata", event(c))));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    ids.push(createdId(await post("msdyn_conversationsdata", { msdyn_conversationid: `c-${randomUUID()}` })));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
  });

  describe("upserts by natural key in one statement", () => {
    const records = () => new RecordService(t.db.pool).as(caller());

    it("creates, then updates only the columns given, and says which", async () => {
      const c = `u-${randomUUID()}`;
      const first = await records().upsertByNaturalKeys([
        { table: CONVERSATION, key: { msdyn_conversationid: c }, body: { msdyn_name: c, msdyn_channel: "voice" } },
        {
          table: SESSION,
          key: { msdyn_conversationid: c, msdyn_providersessionid: "s-1" },
          body: { msdyn_queuename: "Support" },
        },
        {
          table: PARTICIPANT,
          key: { msdyn_conversationid: c, msdyn_providersessionid: "s-1", msdyn_participantid: "a" },
          body: { msdyn_name: "Ada" },
        },
        {
          table: PARTICIPANT,
          key: { msdyn_conversationid: c, msdyn_providersessionid: "s-1", msdyn_participantid: "b" },
          body: {},
        },
      ]);
      expect(first?.map((r) => r.created)).toEqual([true, true, true, true]);

      const second = await records().upsertByNaturalKeys([
        { table: CONVERSATION, key: { msdyn_conversationid: c }, body: { msdyn_channel: "chat" } },
        {
          table: PARTICIPANT,
          key: { msdyn_conversationid: c, msdyn_providersessionid: "s-1", msdyn_participantid: "a" },
          body: {},
        },
      ]);
      expect(second?.map((r) => r.created)).toEqual([false, false]);
      expect(second?.map((r) => r.id)).toEqual([first![0]!.id, first![2]!.id]);
      const { rows } = await t.testDb.pool.query(
        "SELECT msdyn_name, msdyn_channel FROM msdyn_conversationdata WHERE msdyn_conversationid = $1",
        [c],
      );
      expect(rows).toEqual([{ msdyn_name: c, msdyn_channel: "chat" }]);
      const participant = await t.testDb.pool.query(
        "SELECT msdyn_name FROM msdyn_sessionparticipantdata WHERE msdyn_conversationid = $1 AND msdyn_participantid = 'a'",
        [c],
      );
      expect(participant.rows).toEqual([{ msdyn_name: "Ada" }]);
    });

    const family3 = (c: string, participant = "a"): NaturalKeyUpsert[] => [
      { table: CONVERSATION, key: { msdyn_conversationid: c }, body: { msdyn_name: c } },
      { table: SESSION, key: { msdyn_conversationid: c, msdyn_providersessionid: "s-1" }, body: {} },
      {
        table: PARTICIPANT,
        key: { msdyn_conversationid: c, msdyn_providersessionid: "s-1", msdyn_participantid: participant },
        body: {},
      },
    ];

    it("shares one statement between concurrent calls, each answered with its own rows", async () => {
      const { pool, statements } = countingPool();
      const grouped = new RecordService(pool, { batchesInFlight: 1 }).as(caller());
      const conversations = Array.from({ length: 12 }, () => `g-${randomUUID()}`);
      const results = await Promise.all(conversations.map((c) => grouped.upsertByNaturalKeys(family3(c))));

      expect(statements()).toBe(2);
      for (const [i, c] of conversations.entries()) {
        const { rows } = await t.testDb.pool.query(
          "SELECT msdyn_conversationdataid AS id FROM msdyn_conversationdata WHERE msdyn_conversationid = $1",
          [c],
        );
        expect(results[i]).toHaveLength(3);
        expect(results[i]![0]).toEqual({ id: rows[0].id, created: true });
      }
    });

    it("runs a batch's calls one by one when one of them must take the row-by-row path or two name the same row", async () => {
      const grouped = new RecordService(t.db.pool, { batchesInFlight: 1 }).as(caller());
      const shared = `g-${randomUUID()}`;
      const stateful = `g-${randomUUID()}`;
      const [first, second, third, declined] = await Promise.all([
        grouped.upsertByNaturalKeys(family3(`g-${randomUUID()}`)),
        grouped.upsertByNaturalKeys(family3(shared, "a")),
        grouped.upsertByNaturalKeys(family3(shared, "b")),
        grouped.upsertByNaturalKeys([{ table: CONVERSATION, key: { msdyn_conversationid: stateful }, body: { statecode: 1 } }]),
      ]);
      expect(first).toHaveLength(3);
      expect(second![0]!.id).toBe(third![0]!.id);
      expect(second![2]!.id).not.toBe(third![2]!.id);
      expect(declined).toBeUndefined();
      expect(
        await count("SELECT count(*) AS n FROM msdyn_sessionparticipantdata WHERE msdyn_conversationid = $1", [shared]),
      ).toBe(2);
      expect(await count("SELECT count(*) AS n FROM msdyn_conversationdata WHERE msdyn_conversationid = $1", [stateful])).toBe(0);
    });

    it("declines, writing nothing, what needs the row-by-row path", async () => {
      const c = `u-${randomUUID()}`;
      const key = { msdyn_conversationid: c };
      const declined = [
        // State columns need the stored state.
        [{ table: CONVERSATION, key, body: { statecode: 1 } }],
        // Two items for one row.
        [
          { table: CONVERSATION, key, body: {} },
          { table: CONVERSATION, key, body: {} },
        ],
        // A parent that does not exist: the database refuses the statement.
        [{ table: SESSION, key: { msdyn_conversationid: c, msdyn_providersessionid: "s" }, body: {} }],
        // A body that is not valid.
        [{ table: CONVERSATION, key, body: { msdyn_nosuchcolumn: 1 } }],
      ];
      for (const items of declined) expect(await records().upsertByNaturalKeys(items)).toBeUndefined();
      expect(await count("SELECT count(*) AS n FROM msdyn_conversationdata WHERE msdyn_conversationid = $1", [c])).toBe(0);
    });

    it("msdyn_InitLogAnalytics in a $batch change set rolls back with it", async () => {
      const c = `i-${randomUUID()}`;
      const CRLF = "\r\n";
      const part = (n: number, url: string, body: Body) =>
        [
          "--cs",
          "Content-Type: application/http",
          "Content-Transfer-Encoding: binary",
          `Content-ID: ${n}`,
          "",
          `POST ${url} HTTP/1.1`,
          "Content-Type: application/json",
          "",
          JSON.stringify(body),
        ].join(CRLF);
      const init = {
        correlationId: randomUUID(),
        data: { conversation: { conversationId: c, providerId: enabled, session: { providerSessionId: "s-1" } } },
      };
      const payload = [
        "--b",
        "Content-Type: multipart/mixed; boundary=cs",
        "",
        part(1, `${ROOT}/msdyn_InitLogAnalytics`, init),
        part(2, `${ROOT}/msdyn_kpieventsdata`, {
          msdyn_conversationid: c,
          msdyn_providersessionid: "no-such-session",
          msdyn_kpieventname: "SessionStarted",
        }),
        "--cs--",
        "--b--",
        "",
      ].join(CRLF);
      const res = await postBatch(t, payload);

      // A failed change set fails the batch (as in test/routes/batch.test.ts).
      expect(res.statusCode, res.body).toBe(400);
      expect(res.body).toContain("HTTP/1.1 400");
      expect(res.body).toContain("no-such-session");
      expect(await count("SELECT count(*) AS n FROM msdyn_conversationdata WHERE msdyn_conversationid = $1", [c])).toBe(0);
    });
  });
});
