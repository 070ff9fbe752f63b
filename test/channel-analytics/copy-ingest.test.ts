/**
 * Bulk writes through COPY (issue 19): CreateMultiple and msdyn_LogAnalyticsEvent of 100
 * events or more, and a group commit's batch that holds as many, are loaded with one
 * `COPY … FROM STDIN` in a transaction, after one lookup for the definitions and providers.
 * Every rule of a plain POST holds, all or nothing, and a refusal names its row: by the
 * rules (before the COPY), by a foreign key (after it, found by a query of the parents) or
 * by a row's own constraint (the line COPY's error names).
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { KpiEventRuleError } from "../../src/channel-analytics/kpi-event-rules.js";
import { RecordService } from "../../src/channel-analytics/records.js";
import { copyLineOf } from "../../src/channel-analytics/integrity-errors.js";
import { copyData } from "../../src/channel-analytics/store/copy-rows.js";
import { tableByLogicalName } from "../../src/model/tables.js";
import { ODataError } from "../../src/odata/errors.js";
import { useTestApp } from "../helpers/app.js";
import { type Body, OBJECT_DOES_NOT_EXIST, PRIVILEGE_DENIED, expectError, records } from "../helpers/records.js";

const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");
const SESSION = tableByLogicalName("msdyn_sessiondata");
const KPI_TYPE = "Microsoft.Dynamics.CRM.msdyn_kpieventdata";
const SESSION_TYPE = "Microsoft.Dynamics.CRM.msdyn_sessiondata";

describe("bulk writes through COPY", () => {
  const t = useTestApp();
  const { post, provider, family } = records(t);

  const count = async (sql: string, params: unknown[]) => Number((await t.testDb.pool.query(sql, params)).rows[0].n);
  const eventsOf = (c: string) => count("SELECT count(*) AS n FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1", [c]);
  const createMultiple = (set: string, targets: unknown[]) =>
    post(`${set}/Microsoft.Dynamics.CRM.CreateMultiple`, { Targets: targets });

  const event = (c: string, extra: Body = {}): Body => ({
    msdyn_conversationid: c,
    msdyn_providersessionid: "s-1",
    msdyn_kpieventname: "SessionStarted",
    ...extra,
  });
  const targets = (c: string, n: number, odd: (i: number) => Body | undefined) =>
    Array.from({ length: n }, (_, i) => ({ "@odata.type": KPI_TYPE, ...event(c, odd(i) ?? {}) }));

  /** A pool whose connections record the COPY statements they run. */
  function copyCountingPool(): { pool: pg.Pool; copies: string[] } {
    const real = t.db.pool;
    const copies: string[] = [];
    const pool: pg.Pool = Object.create(real);
    pool.query = real.query.bind(real);
    pool.connect = (async () => {
      const client = await real.connect();
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      return Object.assign(Object.create(client) as pg.PoolClient, {
        query: (...args: unknown[]) => {
          const text = (args[0] as { text?: unknown }).text;
          if (typeof text === "string" && text.startsWith("COPY ")) copies.push(text);
          return query(...args);
        },
        release: (error?: Error) => client.release(error),
      });
    }) as pg.Pool["connect"];
    return { pool, copies };
  }

  const caller = () => ({
    userId: t.config.CALLER_USER_ID,
    businessUnitId: t.config.BUSINESS_UNIT_ID,
    organizationId: t.config.ORGANIZATION_ID,
  });

  describe("CreateMultiple of KPI events", () => {
    it("names the target the rules refuse: an unknown definition, a provider without analytics", async () => {
      const { c } = await family();
      const unknown = await createMultiple(
        "msdyn_kpieventsdata",
        targets(c, 150, (i) => (i === 120 ? { msdyn_kpieventname: "NoSuchEvent" } : undefined)),
      );
      expect(expectError(unknown, 400, OBJECT_DOES_NOT_EXIST)).toMatch(/^Targets\[120\]: .*NoSuchEvent/);

      const gated = (await family({ enabled: false })).c;
      const mixed = await createMultiple(
        "msdyn_kpieventsdata",
        Array.from({ length: 150 }, (_, i) => ({ "@odata.type": KPI_TYPE, ...event(i === 130 ? gated : c) })),
      );
      expect(expectError(mixed, 403, PRIVILEGE_DENIED)).toMatch(/^Targets\[130\]: Analytics is not enabled/);
      expect(await eventsOf(c)).toBe(0);
      expect(await eventsOf(gated)).toBe(0);
    });

    it("names the target whose participant is missing (a foreign key, checked by the COPY)", async () => {
      const { c } = await family({ participantId: "agent-1" });
      const res = await createMultiple(
        "msdyn_kpieventsdata",
        targets(c, 150, (i) => ({ msdyn_participantid: i === 140 ? "stranger" : "agent-1" })),
      );
      expect(expectError(res, 400, OBJECT_DOES_NOT_EXIST)).toMatch(/^Targets\[140\]: .*msdyn_participantid = 'stranger'/);
      expect(await eventsOf(c)).toBe(0);
    });

    it("names the target whose primary key is taken, by another target or by a stored row (the line COPY names)", async () => {
      const { c } = await family();
      const twice = randomUUID();
      const duplicate = await createMultiple(
        "msdyn_kpieventsdata",
        targets(c, 150, (i) => (i === 101 || i === 149 ? { msdyn_kpieventdataid: twice } : undefined)),
      );
      expect(duplicate.statusCode, duplicate.body).toBe(412);
      expect(duplicate.json<{ error: { message: string } }>().error.message).toMatch(/^Targets\[149\]: /);

      const [stored] = (
        await createMultiple(
          "msdyn_kpieventsdata",
          targets(c, 1, () => undefined),
        )
      ).json<{ Ids: string[] }>().Ids;
      const taken = await createMultiple(
        "msdyn_kpieventsdata",
        targets(c, 150, (i) => (i === 110 ? { msdyn_kpieventdataid: stored } : undefined)),
      );
      expect(taken.statusCode, taken.body).toBe(412);
      expect(taken.json<{ error: { message: string } }>().error.message).toMatch(/^Targets\[110\]: /);
      expect(await eventsOf(c)).toBe(1);
    });

    it("stores what a plain POST stores, text with tabs, newlines and backslashes included", async () => {
      const { c } = await family();
      const awkward = "a\tb\nc\r\\d \\N é ☃";
      const body = event(c, {
        msdyn_additionaldata: awkward,
        msdyn_kpieventreason: "\\.",
        msdyn_eventtimestamp: "2026-11-22T09:30:00.123Z",
        overriddencreatedon: "2026-01-02T03:04:05Z",
      });
      const single = await post("msdyn_kpieventsdata", body, { prefer: "return=representation" });
      expect(single.statusCode, single.body).toBe(201);
      const res = await createMultiple(
        "msdyn_kpieventsdata",
        targets(c, 120, () => body),
      );
      expect(res.statusCode, res.body).toBe(200);
      const { rows } = await t.testDb.pool.query(
        `SELECT * FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1 ORDER BY versionnumber`,
        [c],
      );
      expect(rows).toHaveLength(121);
      const differing = (row: Record<string, unknown>) =>
        Object.fromEntries(
          Object.entries(row).filter(
            ([name]) =>
              !["msdyn_kpieventdataid", "versionnumber", "createdon", "modifiedon", "overriddencreatedon"].includes(name),
          ),
        );
      for (const row of rows.slice(1)) expect(differing(row)).toEqual(differing(rows[0]));
      expect(rows[120].msdyn_additionaldata).toBe(awkward);
      expect(rows[120].msdyn_kpieventreason).toBe("\\.");
      expect((rows[120].createdon as Date).toISOString()).toBe("2026-01-02T03:04:05.000Z");
    });
  });

  it("CreateMultiple of sessions: one COPY, and the target whose conversation is missing is named", async () => {
    const providerId = await provider({ enabled: true });
    const c = `c-${randomUUID()}`;
    expect(
      (await post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_name: c, msdyn_providerid: providerId }))
        .statusCode,
    ).toBe(204);
    const sessionTargets = (missingAt?: number) =>
      Array.from({ length: 120 }, (_, i) => ({
        "@odata.type": SESSION_TYPE,
        msdyn_conversationid: i === missingAt ? `missing-${randomUUID()}` : c,
        msdyn_providersessionid: `s-${i}-${randomUUID()}`,
        msdyn_queuename: `Queue\t${i}`,
      }));
    const refused = await createMultiple("msdyn_sessionsdata", sessionTargets(77));
    expect(expectError(refused, 400, OBJECT_DOES_NOT_EXIST)).toMatch(/^Targets\[77\]: .*its conversation does not exist/);
    expect(await count("SELECT count(*) AS n FROM msdyn_sessiondata WHERE msdyn_conversationid = $1", [c])).toBe(0);

    const ok = await createMultiple("msdyn_sessionsdata", sessionTargets());
    expect(ok.statusCode, ok.body).toBe(200);
    const queues = await t.testDb.pool.query("SELECT msdyn_queuename FROM msdyn_sessiondata WHERE msdyn_conversationid = $1", [
      c,
    ]);
    expect(queues.rows.map((r) => r.msdyn_queuename).sort()).toContain("Queue\t7");
    expect(queues.rows).toHaveLength(120);
  });

  describe("msdyn_LogAnalyticsEvent", () => {
    const call = (conversationId: string, events: Body[]) =>
      post("msdyn_LogAnalyticsEvent", {
        correlationId: randomUUID(),
        data: { conversationId, providerSessionId: "s-1", events },
      });

    it("stores a call of 150 events with one COPY, and names the event the rules refuse", async () => {
      const { c } = await family();
      const events = Array.from({ length: 150 }, (_, i) => ({ kpiEventName: "SessionStarted", kpiEventReason: `r\t${i}` }));
      const ok = await call(c, events);
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json<{ KpiEventDataIds: string[] }>().KpiEventDataIds).toHaveLength(150);
      const { rows } = await t.testDb.pool.query(
        "SELECT msdyn_kpieventreason FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1 AND msdyn_kpieventreason = $2",
        [c, "r\t149"],
      );
      expect(rows).toHaveLength(1);

      const refused = await call(
        c,
        events.map((e, i) => (i === 133 ? { ...e, kpiEventName: "NoSuchEvent" } : e)),
      );
      expect(expectError(refused, 400, OBJECT_DOES_NOT_EXIST)).toMatch(/^data\.events\[133\]: .*NoSuchEvent/);
      expect(await eventsOf(c)).toBe(150);
    });

    it("refuses a call of 150 events whose session is missing, storing none", async () => {
      const { c } = await family();
      const res = await post("msdyn_LogAnalyticsEvent", {
        correlationId: randomUUID(),
        data: {
          conversationId: c,
          providerSessionId: "no-such-session",
          events: Array(150).fill({ kpiEventName: "SessionStarted" }),
        },
      });
      expect(expectError(res, 400, OBJECT_DOES_NOT_EXIST)).toMatch(/^data\.events\[0\]: .*no-such-session/);
      expect(await eventsOf(c)).toBe(0);
    });
  });

  describe("on the group commit's service", () => {
    it("a group of 100 events or more goes in with one COPY; smaller ones share the batches' one statement", async () => {
      const good = (await family()).c;
      const gated = (await family({ enabled: false })).c;
      const { pool, copies } = copyCountingPool();
      const service = new RecordService(pool, { batchesInFlight: 1 });
      const write = (c: string, n: number) =>
        service.as(caller()).createMany(
          KPI_EVENT,
          Array.from({ length: n }, () => event(c)),
          (i) => `data.events[${i}]`,
        );
      const results = await Promise.allSettled([
        write(good, 10),
        write(good, 120),
        write(good, 10),
        write(gated, 150),
        write(good, 10),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled"]);
      const gate = (results[3] as PromiseRejectedResult).reason as ODataError;
      expect([gate.status, gate.code]).toEqual([403, PRIVILEGE_DENIED]);
      expect(gate.message).toMatch(/^data\.events\[0\]: Analytics is not enabled/);
      // The rules refused the gated group before its COPY: one COPY, the 120 events'.
      expect(copies).toHaveLength(1);
      expect(await eventsOf(good)).toBe(150);
      expect(await eventsOf(gated)).toBe(0);
    });
  });

  it("in a transaction: a refused COPY leaves it usable, and what it stored commits with it", async () => {
    const { c } = await family();
    const service = new RecordService(t.db.pool);
    const bodies = (session: string) => Array.from({ length: 100 }, () => event(c, { msdyn_providersessionid: session }));
    await service.as(caller()).transaction(async (writer) => {
      await writer.createMany(KPI_EVENT, bodies("s-1"), (i) => `Targets[${i}]`);
      const refused = await writer.createMany(KPI_EVENT, bodies("nope"), (i) => `Targets[${i}]`).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ODataError);
      expect((refused as ODataError).message).toMatch(/^Targets\[0\]: .*nope/);
      await writer.createMany(KPI_EVENT, bodies("s-1"), (i) => `Targets[${i}]`);
    });
    expect(await eventsOf(c)).toBe(200);
  });

  it("COPY's text format and the line its error names", () => {
    const rows = [
      new Map<string, unknown>([
        ["msdyn_name", "x\ty\\"],
        ["statecode", 0],
        ["msdyn_eventtimestamp", new Date(0)],
      ]),
    ];
    expect(copyData(KPI_EVENT, ["msdyn_name", "statecode", "msdyn_eventtimestamp", "msdyn_kpieventreason"], rows)).toBe(
      "x\\ty\\\\\t0\t1970-01-01T00:00:00.000Z\t\\N\n",
    );
    expect(copyLineOf({ where: 'COPY "msdyn_kpieventdata", line 7' })).toBe(6);
    expect(copyLineOf({ where: 'COPY msdyn_sessiondata, line 12: "…"' })).toBe(11);
    expect(copyLineOf({ where: 'SQL statement "SELECT 1 FROM ONLY …"' })).toBeUndefined();
    expect(copyLineOf(new KpiEventRuleError(0, new ODataError(400, "x", "y")))).toBeUndefined();
    expect(SESSION.logicalName).toBe("msdyn_sessiondata");
  });
});
