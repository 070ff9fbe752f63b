/**
 * A channel provider's caller (Caller.providerId) is confined to its own conversation
 * trees (src/channel-analytics/provider-scope.ts), on every write path of RecordService
 * and every read of the store, while callers without providerId see and write everything
 * as before, with the same statements.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { type RowScope, rowScope } from "../../src/channel-analytics/provider-scope.js";
import { type NaturalKeyUpsert, RecordService, RecordWriter } from "../../src/channel-analytics/records.js";
import { runFetchXml } from "../../src/channel-analytics/store/fetchxml-query.js";
import { aggregateRows, countRows, expandRows, queryPage } from "../../src/channel-analytics/store/record-query.js";
import type { Row } from "../../src/channel-analytics/store/record-store.js";
import type { Queryable } from "../../src/db/transactions.js";
import type { Caller } from "../../src/model/caller.js";
import { propertyName } from "../../src/model/properties.js";
import { type TableDef, tableByLogicalName } from "../../src/model/tables.js";
import { ODataError } from "../../src/odata/errors.js";
import { parseFetchXml } from "../../src/odata/fetchxml.js";
import { parseCollectionQuery } from "../../src/odata/query-options.js";
import { useTestDatabase } from "../helpers/database.js";
import { OBJECT_DOES_NOT_EXIST, PRIVILEGE_DENIED } from "../helpers/records.js";

const CONVERSATION = tableByLogicalName("msdyn_conversationdata");
const SESSION = tableByLogicalName("msdyn_sessiondata");
const PARTICIPANT = tableByLogicalName("msdyn_sessionparticipantdata");
const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");
const DEFINITION = tableByLogicalName("msdyn_kpieventdefinition");
const PROVIDER = tableByLogicalName("msdyn_ciprovider");

type Body = Record<string, unknown>;

/** A conversation's tree: conversation c with session s-1, participant agent-1 and one SessionStarted event. */
interface Family {
  c: string;
  conversationId: string;
  sessionId: string;
  participantId: string;
  eventId: string;
}

describe("a channel provider's row scope", () => {
  const db = useTestDatabase();
  const base: Caller = { userId: randomUUID(), businessUnitId: randomUUID(), organizationId: randomUUID() };
  let p1: string;
  let p2: string;
  /** P1's family, created by P1 itself; P2's, created by P2. */
  let mine: Family;
  let theirs: Family;

  const service = () => new RecordService(db.pool);
  const admin = () => service().as(base);
  const provider = (providerId: string) => service().as({ ...base, providerId });
  const asP1 = () => provider(p1);
  const scopeP1 = (): RowScope => rowScope({ ...base, providerId: p1 })!;

  const count = async (sql: string, params: unknown[]) => Number((await db.pool.query(sql, params)).rows[0].n);
  const countOf = (table: TableDef, c: string) =>
    count(`SELECT count(*) AS n FROM ${table.logicalName} WHERE msdyn_conversationid = $1`, [c]);
  const stored = async (table: TableDef, id: string) =>
    (await db.pool.query<Row>(`SELECT * FROM ${table.logicalName} WHERE ${table.primaryKey} = $1`, [id])).rows[0];

  const event = (c: string, extra: Body = {}): Body => ({
    msdyn_conversationid: c,
    msdyn_providersessionid: "s-1",
    msdyn_participantid: "agent-1",
    msdyn_kpieventname: "SessionStarted",
    ...extra,
  });

  async function family(records: ReturnType<typeof admin>, conversation: Body = {}): Promise<Family> {
    const c = `c-${randomUUID()}`;
    const id = (row: Row, table: TableDef) => row[table.primaryKey] as string;
    const conversationRow = await records.create(CONVERSATION, { msdyn_conversationid: c, msdyn_name: c, ...conversation });
    const session = await records.create(SESSION, { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
    const participant = await records.create(PARTICIPANT, {
      msdyn_conversationid: c,
      msdyn_providersessionid: "s-1",
      msdyn_participantid: "agent-1",
      msdyn_name: "Agent",
    });
    const kpiEvent = await records.create(KPI_EVENT, event(c));
    return {
      c,
      conversationId: id(conversationRow, CONVERSATION),
      sessionId: id(session, SESSION),
      participantId: id(participant, PARTICIPANT),
      eventId: id(kpiEvent, KPI_EVENT),
    };
  }

  /** The refusal of a write by the scope: 403 0x80040220, naming the caller's provider; returns the message. */
  async function refused(write: Promise<unknown>, ...fragments: string[]): Promise<string> {
    const error = await write.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    return refusal(error, ...fragments);
  }

  function refusal(error: unknown, ...fragments: string[]): string {
    expect(error, "the write is refused").toBeInstanceOf(ODataError);
    const { status, code, message } = error as ODataError;
    expect([status, code], message).toEqual([403, PRIVILEGE_DENIED]);
    expect(message).toContain(`bound to msdyn_ciprovider ${p1}`);
    for (const fragment of fragments) expect(message).toContain(fragment);
    return message;
  }

  async function missing(operation: Promise<unknown>): Promise<void> {
    const error = await operation.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error, "the row is missing").toBeInstanceOf(ODataError);
    expect([(error as ODataError).status, (error as ODataError).code]).toEqual([404, OBJECT_DOES_NOT_EXIST]);
  }

  beforeAll(async () => {
    // The helper's teardown ends the pool and then drops the database WITH (FORCE): a
    // client still closing then gets "terminating connection" as an idle-client error.
    db.pool.on("error", () => {});
    const newProvider = async () =>
      (await admin().create(PROVIDER, { msdyn_name: `Provider ${randomUUID()}`, msdyn_enableanalytics: true }))
        .msdyn_ciproviderid as string;
    p1 = await newProvider();
    p2 = await newProvider();
    // Each provider's own family (its events name no provider: the scope fills it in).
    mine = await family(asP1(), { msdyn_providerid: p1 });
    theirs = await family(provider(p2), { msdyn_providerid: p2 });
  });

  describe("writes", () => {
    it("creates the provider's own tree, filling in its provider on the conversation and the events", async () => {
      expect((await stored(CONVERSATION, mine.conversationId))!.msdyn_providerid).toBe(p1);
      expect((await stored(KPI_EVENT, mine.eventId))!.msdyn_ProviderId).toBe(p1);
      expect(await stored(SESSION, mine.sessionId)).toBeDefined();
      expect(await stored(PARTICIPANT, mine.participantId)).toBeDefined();
      const filled = await asP1().create(CONVERSATION, { msdyn_conversationid: `c-${randomUUID()}` });
      expect(filled.msdyn_providerid).toBe(p1);
      // Its own id, in upper case, is its own too.
      const c = `c-${randomUUID()}`;
      const row = await asP1().create(CONVERSATION, { msdyn_conversationid: c, msdyn_providerid: p1.toUpperCase() });
      expect(row.msdyn_providerid).toBe(p1);
    });

    it("refuses a conversation of another provider, and stores nothing", async () => {
      const c = `c-${randomUUID()}`;
      const message = await refused(
        asP1().create(CONVERSATION, { msdyn_conversationid: c, msdyn_providerid: p2 }),
        `msdyn_conversationdata '${c}' with msdyn_providerid '${p2}'`,
      );
      expect(message).toContain(`set it to ${p1}`);
      expect(await countOf(CONVERSATION, c)).toBe(0);
    });

    it("refuses sessions, participants and KPI events under another provider's conversation, naming it", async () => {
      const before = await Promise.all([SESSION, PARTICIPANT, KPI_EVENT].map((table) => countOf(table, theirs.c)));
      await refused(
        asP1().create(SESSION, { msdyn_conversationid: theirs.c, msdyn_providersessionid: "s-2" }),
        `cannot write msdyn_sessiondata of conversation '${theirs.c}', which belongs to another provider.`,
      );
      await refused(
        asP1().create(PARTICIPANT, { msdyn_conversationid: theirs.c, msdyn_providersessionid: "s-1", msdyn_participantid: "x" }),
        `msdyn_sessionparticipantdata of conversation '${theirs.c}'`,
      );
      const message = await refused(asP1().create(KPI_EVENT, event(theirs.c)));
      expect(message).toBe(
        `The caller is bound to msdyn_ciprovider ${p1} and cannot write msdyn_kpieventdata of conversation '${theirs.c}', ` +
          "which belongs to another provider.",
      );
      // keyOnly takes the same statement.
      await refused(asP1().create(KPI_EVENT, event(theirs.c), { keyOnly: true }), theirs.c);
      expect(await Promise.all([SESSION, PARTICIPANT, KPI_EVENT].map((table) => countOf(table, theirs.c)))).toEqual(before);
    });

    it("refuses a KPI event of its own conversation that names another provider", async () => {
      const before = await countOf(KPI_EVENT, mine.c);
      await refused(asP1().create(KPI_EVENT, event(mine.c, { msdyn_ProviderId: p2 })), `msdyn_ProviderId '${p2}'`);
      expect(await countOf(KPI_EVENT, mine.c)).toBe(before);
    });

    it("refuses another provider's conversation before saying anything of it, such as its analytics flag", async () => {
      const quiet = (await admin().create(PROVIDER, { msdyn_name: "Quiet" })).msdyn_ciproviderid as string;
      const c = `c-${randomUUID()}`;
      await admin().create(CONVERSATION, { msdyn_conversationid: c, msdyn_providerid: quiet });
      await admin().create(SESSION, { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
      const body = { msdyn_conversationid: c, msdyn_providersessionid: "s-1", msdyn_kpieventname: "SessionStarted" };
      const unscoped = (await admin()
        .create(KPI_EVENT, body)
        .catch((reason: unknown) => reason)) as ODataError;
      expect(unscoped.message).toContain("Analytics is not enabled for provider 'Quiet'");
      for (const message of [
        await refused(asP1().create(KPI_EVENT, body), `of conversation '${c}', which belongs to another provider`),
        await refused(asP1().upsert(KPI_EVENT, { kind: "id", id: randomUUID() }, body), `of conversation '${c}'`),
        await refused(asP1().create(KPI_EVENT, { ...body, msdyn_kpieventname: "NoSuchEvent" }), `of conversation '${c}'`),
      ]) {
        expect(message).not.toContain("Quiet");
      }
    });

    it("keeps today's error for rows of a conversation that does not exist", async () => {
      const errorOf = (write: Promise<unknown>) =>
        write.then(
          () => undefined,
          (reason: unknown) => reason as ODataError,
        );
      const disabled = (await admin().create(PROVIDER, { msdyn_name: "Disabled" })).msdyn_ciproviderid as string;
      const c = `c-${randomUUID()}`;
      const writes = [
        (records: ReturnType<typeof admin>) => records.create(KPI_EVENT, event(c)),
        (records: ReturnType<typeof admin>) => records.create(KPI_EVENT, event(c, { msdyn_kpieventname: "CifSessionStart" })),
        (records: ReturnType<typeof admin>) => records.createMany(KPI_EVENT, [event(c)], (i) => `data.events[${i}]`),
        (records: ReturnType<typeof admin>) =>
          records.create(SESSION, { msdyn_conversationid: c, msdyn_providersessionid: "s-1" }),
        (records: ReturnType<typeof admin>) =>
          records.upsert(
            PARTICIPANT,
            { kind: "alternate", values: { msdyn_conversationid: c, msdyn_providersessionid: "s-1", msdyn_participantid: "a" } },
            {},
          ),
        (records: ReturnType<typeof admin>) => records.upsert(KPI_EVENT, { kind: "id", id: randomUUID() }, event(c)),
      ];
      for (const write of writes) {
        const today = await errorOf(write(admin()));
        expect([today?.status, today?.code], today?.message).toEqual([400, OBJECT_DOES_NOT_EXIST]);
        expect(today!.message).toContain("its conversation does not exist");
        for (const providerId of [p1, disabled]) {
          const scoped = await errorOf(write(provider(providerId)));
          expect([scoped?.status, scoped?.code, scoped?.message]).toEqual([today!.status, today!.code, today!.message]);
        }
      }
      expect(await countOf(KPI_EVENT, c)).toBe(0);
    });

    it("refuses upserts of another provider's rows, and of its own conversation into another provider", async () => {
      const conversation = { kind: "alternate" as const, values: { msdyn_conversationid: theirs.c } };
      await refused(
        asP1().upsert(CONVERSATION, conversation, { msdyn_channel: "hijacked" }),
        `msdyn_conversationdata '${theirs.c}', which belongs to another provider`,
      );
      // Even with a precondition that would fail: the scope is checked first.
      await refused(
        asP1().upsert(CONVERSATION, { kind: "id", id: theirs.conversationId }, { msdyn_channel: "x" }, { ifMatch: 'W/"1"' }),
      );
      await refused(asP1().upsert(SESSION, { kind: "id", id: theirs.sessionId }, { msdyn_queuename: "hijacked" }), theirs.c);
      await refused(asP1().upsert(PARTICIPANT, { kind: "id", id: theirs.participantId }, { msdyn_name: "hijacked" }), theirs.c);
      await refused(asP1().upsert(KPI_EVENT, { kind: "id", id: theirs.eventId }, { msdyn_kpieventreason: "hijacked" }), theirs.c);
      // Creating a missing row under their conversation by upsert.
      await refused(
        asP1().upsert(
          SESSION,
          { kind: "alternate", values: { msdyn_conversationid: theirs.c, msdyn_providersessionid: "s-9" } },
          {},
        ),
        `msdyn_sessiondata of conversation '${theirs.c}'`,
      );
      // Its own conversation may not be handed over.
      await refused(
        asP1().upsert(CONVERSATION, { kind: "id", id: mine.conversationId }, { msdyn_providerid: p2 }),
        `with msdyn_providerid '${p2}'`,
      );
      await refused(asP1().upsert(CONVERSATION, { kind: "id", id: mine.conversationId }, { msdyn_providerid: null }));

      expect((await stored(CONVERSATION, theirs.conversationId))!.msdyn_channel).toBeNull();
      expect((await stored(SESSION, theirs.sessionId))!.msdyn_queuename).toBeNull();
      expect((await stored(PARTICIPANT, theirs.participantId))!.msdyn_name).toBe("Agent");
      expect((await stored(KPI_EVENT, theirs.eventId))!.msdyn_kpieventreason).toBeNull();
      expect(await countOf(SESSION, theirs.c)).toBe(1);
      expect((await stored(CONVERSATION, mine.conversationId))!.msdyn_providerid).toBe(p1);
    });

    it("upserts its own rows", async () => {
      const { row, created } = await asP1().upsert(
        CONVERSATION,
        { kind: "id", id: mine.conversationId },
        { msdyn_channel: "chat" },
      );
      expect([created, row.msdyn_channel, row.msdyn_providerid]).toEqual([false, "chat", p1]);
      const session = await asP1().upsert(
        SESSION,
        { kind: "alternate", values: { msdyn_conversationid: mine.c, msdyn_providersessionid: "s-up" } },
        { msdyn_queuename: "Support" },
      );
      expect(session.created).toBe(true);
      const updated = await asP1().upsert(KPI_EVENT, { kind: "id", id: mine.eventId }, { msdyn_kpieventreason: "ok" });
      expect(updated.row.msdyn_kpieventreason).toBe("ok");
    });

    it("refuses setting a property of another provider's row, or its own conversation's provider", async () => {
      const channel = CONVERSATION.columns.find((c) => c.name === "msdyn_channel")!;
      const providerColumn = CONVERSATION.columns.find((c) => c.name === "msdyn_providerid")!;
      const reason = KPI_EVENT.columns.find((c) => c.name === "msdyn_kpieventreason")!;
      await refused(asP1().setProperty(CONVERSATION, { kind: "id", id: theirs.conversationId }, channel, "hijacked"), theirs.c);
      await refused(asP1().setProperty(KPI_EVENT, { kind: "id", id: theirs.eventId }, reason, "hijacked"), theirs.c);
      await refused(asP1().setProperty(CONVERSATION, { kind: "id", id: mine.conversationId }, providerColumn, p2), p2);
      expect((await stored(CONVERSATION, theirs.conversationId))!.msdyn_channel).toBeNull();
      expect((await stored(KPI_EVENT, theirs.eventId))!.msdyn_kpieventreason).toBeNull();

      const own = await asP1().setProperty(CONVERSATION, { kind: "id", id: mine.conversationId }, channel, "voice");
      expect(own.msdyn_channel).toBe("voice");
    });

    it("refuses CreateMultiple targets under another provider's conversation, naming the target, and stores none", async () => {
      const s = `s-${randomUUID()}`;
      const targets = [
        { msdyn_conversationid: mine.c, msdyn_providersessionid: s },
        { msdyn_conversationid: theirs.c, msdyn_providersessionid: s },
      ];
      const message = await refused(asP1().createMany(SESSION, targets, (i) => `Targets[${i}]`));
      expect(message).toMatch(/^Targets\[1\]: The caller is bound to msdyn_ciprovider /);
      expect(message).toContain(theirs.c);
      await refused(
        asP1().createMany(
          CONVERSATION,
          [{ msdyn_conversationid: `c-${randomUUID()}` }, { msdyn_conversationid: `c-${randomUUID()}`, msdyn_providerid: p2 }],
          (i) => `Targets[${i}]`,
        ),
        "Targets[1]: ",
      );
      expect(await count("SELECT count(*) AS n FROM msdyn_sessiondata WHERE msdyn_providersessionid = $1", [s])).toBe(0);

      // Its own targets go in, with its provider filled in.
      const c = `c-${randomUUID()}`;
      const [id] = await asP1().createMany(CONVERSATION, [{ msdyn_conversationid: c }], (i) => `Targets[${i}]`);
      expect((await stored(CONVERSATION, id!))!.msdyn_providerid).toBe(p1);
    });

    it("refuses logged KPI events under another provider's conversation, naming data.events[i], and stores none", async () => {
      const before = await countOf(KPI_EVENT, mine.c);
      const bodies = [event(mine.c), event(mine.c, { msdyn_kpieventname: "SessionClosed" }), event(theirs.c)];
      const message = await refused(asP1().createMany(KPI_EVENT, bodies, (i) => `data.events[${i}]`));
      expect(message).toMatch(/^data\.events\[2\]: The caller is bound/);
      expect(message).toContain(`of conversation '${theirs.c}'`);
      await refused(
        asP1().createMany(KPI_EVENT, [event(mine.c), event(mine.c, { msdyn_ProviderId: p2 })], (i) => `data.events[${i}]`),
        "data.events[1]: ",
      );
      expect(await countOf(KPI_EVENT, mine.c)).toBe(before);

      const ids = await asP1().createMany(KPI_EVENT, [event(mine.c), event(mine.c)], (i) => `data.events[${i}]`);
      for (const id of ids) expect((await stored(KPI_EVENT, id))!.msdyn_ProviderId).toBe(p1);
    });

    it("declines msdyn_InitLogAnalytics' one statement into another provider's conversation, writing nothing; upsert explains", async () => {
      const items = (c: string, session: string): NaturalKeyUpsert[] => [
        { table: CONVERSATION, key: { msdyn_conversationid: c }, body: { msdyn_name: c, msdyn_channel: "hijacked" } },
        { table: SESSION, key: { msdyn_conversationid: c, msdyn_providersessionid: session }, body: {} },
      ];
      expect(await asP1().upsertByNaturalKeys(items(theirs.c, "s-init"))).toBeUndefined();
      // A session alone under their conversation.
      expect(await asP1().upsertByNaturalKeys(items(theirs.c, "s-init").slice(1))).toBeUndefined();
      // Its own conversation handed to another provider.
      expect(
        await asP1().upsertByNaturalKeys([
          { table: CONVERSATION, key: { msdyn_conversationid: mine.c }, body: { msdyn_providerid: p2 } },
        ]),
      ).toBeUndefined();
      expect((await stored(CONVERSATION, theirs.conversationId))!.msdyn_channel).toBeNull();
      expect(await countOf(SESSION, theirs.c)).toBe(1);
      expect((await stored(CONVERSATION, mine.conversationId))!.msdyn_providerid).toBe(p1);
      // The row-by-row path that msdyn_InitLogAnalytics falls back to refuses it with the reason.
      await refused(
        asP1().transaction((writer) =>
          writer.upsert(CONVERSATION, { kind: "alternate", values: { msdyn_conversationid: theirs.c } }, {}),
        ),
        theirs.c,
      );

      // Its own: one statement, the new conversation its own.
      const c = `c-${randomUUID()}`;
      const result = await asP1().upsertByNaturalKeys(items(c, "s-1"));
      expect(result?.map((r) => r.created)).toEqual([true, true]);
      expect((await stored(CONVERSATION, result![0]!.id))!.msdyn_providerid).toBe(p1);
      const again = await asP1().upsertByNaturalKeys(items(c, "s-1"));
      expect(again?.map((r) => r.created)).toEqual([false, false]);
    });

    it("in a shared natural-key batch, declines only the provider's call into another provider's conversation", async () => {
      const grouped = new RecordService(db.pool, { batchesInFlight: 1 });
      const other = `c-${randomUUID()}`;
      const created = `c-${randomUUID()}`;
      const conversationItem = (c: string, body: Body = {}): NaturalKeyUpsert => ({
        table: CONVERSATION,
        key: { msdyn_conversationid: c },
        body: { msdyn_name: c, ...body },
      });
      const sessionItem = (c: string, s: string): NaturalKeyUpsert => ({
        table: SESSION,
        key: { msdyn_conversationid: c, msdyn_providersessionid: s },
        body: {},
      });
      // In one statement, a provider's session under a conversation that an unscoped item creates is declined.
      const merged = await new RecordWriter(db.pool, base, false).upsertByNaturalKeys([
        { ...conversationItem(created, { msdyn_providerid: p2 }), caller: base },
        { ...sessionItem(created, "s-m"), caller: { ...base, providerId: p1 } },
      ]);
      expect(merged).toBeUndefined();
      expect(await countOf(CONVERSATION, created)).toBe(0);

      const [warmUp, intruder, bystander, racer, creator] = await Promise.all([
        grouped.as(base).upsertByNaturalKeys([conversationItem(`c-${randomUUID()}`)]),
        grouped.as({ ...base, providerId: p1 }).upsertByNaturalKeys([conversationItem(theirs.c), sessionItem(theirs.c, "s-b")]),
        grouped.as({ ...base, providerId: p2 }).upsertByNaturalKeys([conversationItem(other), sessionItem(other, "s-1")]),
        // A session under a conversation that another caller's call of the same batch creates for P2:
        // whether that is committed before or not, it is refused.
        grouped.as({ ...base, providerId: p1 }).upsertByNaturalKeys([sessionItem(created, "s-r")]),
        grouped.as(base).upsertByNaturalKeys([conversationItem(created, { msdyn_providerid: p2 })]),
      ]);
      expect(warmUp).toHaveLength(1);
      expect(intruder).toBeUndefined();
      expect(bystander?.map((r) => r.created)).toEqual([true, true]);
      expect(racer).toBeUndefined();
      expect(creator?.map((r) => r.created)).toEqual([true]);
      expect(await countOf(SESSION, theirs.c)).toBe(1);
      expect(await countOf(SESSION, created)).toBe(0);
      expect((await stored(CONVERSATION, bystander![0]!.id))!.msdyn_providerid).toBe(p2);
    });

    it("refuses, in the group commit's one statement, a provider's KPI event for another's conversation, and stores the others of its batch", async () => {
      let statements = 0;
      const pool = {
        query: (...args: unknown[]) => (statements++, (db.pool.query as (...a: unknown[]) => unknown)(...args)),
      } as unknown as pg.Pool;
      const grouped = new RecordService(pool, { batchesInFlight: 1 });
      const before = await countOf(KPI_EVENT, theirs.c);
      const results = await Promise.allSettled([
        grouped.as(base).create(KPI_EVENT, event(mine.c)),
        grouped.as({ ...base, providerId: p1 }).create(KPI_EVENT, event(theirs.c)),
        grouped.as({ ...base, providerId: p2 }).create(KPI_EVENT, event(theirs.c), { keyOnly: true }),
        grouped.as({ ...base, providerId: p1 }).create(KPI_EVENT, event(mine.c)),
        grouped.as(base).create(KPI_EVENT, event(theirs.c, { msdyn_kpieventname: "SessionClosed" })),
        // A provider's event of a missing conversation is refused by the rules too, with the usual error.
        grouped.as({ ...base, providerId: p1 }).create(KPI_EVENT, event(`c-${randomUUID()}`)),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled", "rejected"]);
      // The first alone, the other five in one statement: the refusals re-ran nothing.
      expect(statements).toBe(2);
      const missingParent = (results[5] as PromiseRejectedResult).reason as ODataError;
      expect([missingParent.status, missingParent.code]).toEqual([400, OBJECT_DOES_NOT_EXIST]);
      expect(missingParent.message).toContain("its conversation does not exist");
      refusal((results[1] as PromiseRejectedResult).reason, `of conversation '${theirs.c}'`);
      expect(await countOf(KPI_EVENT, theirs.c)).toBe(before + 2);
      const own = (results[3] as PromiseFulfilledResult<Row>).value;
      expect(own.msdyn_ProviderId).toBe(p1);
      // The unscoped caller's event keeps what it named (nothing).
      expect((results[0] as PromiseFulfilledResult<Row>).value.msdyn_ProviderId).toBeNull();
    });

    it("deletes only its own rows: another provider's row is missing to it", async () => {
      await missing(asP1().remove(CONVERSATION, { kind: "id", id: theirs.conversationId }));
      await missing(asP1().remove(KPI_EVENT, { kind: "id", id: theirs.eventId }));
      expect(await stored(CONVERSATION, theirs.conversationId)).toBeDefined();
      expect(await stored(KPI_EVENT, theirs.eventId)).toBeDefined();
      const throwaway = await asP1().create(CONVERSATION, { msdyn_conversationid: `c-${randomUUID()}` });
      const id = throwaway.msdyn_conversationdataid as string;
      expect(await asP1().remove(CONVERSATION, { kind: "id", id })).toBe(id);
    });
  });

  describe("reads", () => {
    const tree = [CONVERSATION, SESSION, PARTICIPANT, KPI_EVENT];
    const conversationsOf = (rows: readonly Row[]) => new Set(rows.map((row) => row.msdyn_conversationid));
    const page = (table: TableDef, options: Record<string, string>, scope?: RowScope) =>
      queryPage(db.pool, table, parseCollectionQuery(table, options), 5000, scope);
    /** An event in P1's conversation that an administrator attributed to P2. */
    let misattributed: string;

    beforeAll(async () => {
      misattributed = (await admin().create(KPI_EVENT, event(mine.c, { msdyn_ProviderId: p2 }))).msdyn_kpieventdataid as string;
    });

    it("queries show the provider only its own rows; an unscoped caller sees all", async () => {
      for (const table of tree) {
        const scoped = await page(table, {}, scopeP1());
        expect(conversationsOf(scoped.rows), table.logicalName).toContain(mine.c);
        expect(conversationsOf(scoped.rows), table.logicalName).not.toContain(theirs.c);
        const all = await page(table, {});
        expect(conversationsOf(all.rows), table.logicalName).toContain(theirs.c);
        const filtered = await page(table, { $filter: `msdyn_conversationid eq '${theirs.c}'` }, scopeP1());
        expect(filtered.rows, table.logicalName).toEqual([]);
      }
      const events = (await page(KPI_EVENT, {}, scopeP1())).rows.map((row) => row.msdyn_kpieventdataid);
      expect(events).not.toContain(misattributed);
      expect((await page(KPI_EVENT, {})).rows.map((row) => row.msdyn_kpieventdataid)).toContain(misattributed);
      // KPI event definitions are not scoped.
      expect((await page(DEFINITION, {}, scopeP1())).rows.length).toBe((await page(DEFINITION, {})).rows.length);
    });

    it("counts only the provider's rows ($count and /$count)", async () => {
      for (const table of tree) {
        const own = await count(
          table === CONVERSATION
            ? "SELECT count(*) AS n FROM msdyn_conversationdata WHERE msdyn_providerid = $1"
            : `SELECT count(*) AS n FROM ${table.logicalName} t JOIN msdyn_conversationdata c USING (msdyn_conversationid) ` +
                `WHERE c.msdyn_providerid = $1${table === KPI_EVENT ? ` AND t."msdyn_ProviderId" IS DISTINCT FROM '${p2}'` : ""}`,
          [p1],
        );
        expect(await countRows(db.pool, table, scopeP1()), table.logicalName).toBe(own);
        expect((await page(table, { $count: "true", $top: "1" }, scopeP1())).count, table.logicalName).toBe(own);
        expect(await countRows(db.pool, table), table.logicalName).toBeGreaterThan(own);
      }
    });

    it("aggregates only the provider's rows ($apply)", async () => {
      const query = parseCollectionQuery(KPI_EVENT, { $apply: "groupby((msdyn_conversationid),aggregate($count as n))" });
      const scoped = await aggregateRows(db.pool, KPI_EVENT, query.apply!, query.filter, scopeP1());
      expect(conversationsOf(scoped)).toContain(mine.c);
      expect(conversationsOf(scoped)).not.toContain(theirs.c);
      const all = await aggregateRows(db.pool, KPI_EVENT, query.apply!, query.filter);
      expect(conversationsOf(all)).toContain(theirs.c);
      const mineScoped = scoped.find((row) => row.msdyn_conversationid === mine.c)!;
      const mineAll = all.find((row) => row.msdyn_conversationid === mine.c)!;
      // The misattributed event is counted for the administrator only.
      expect(mineScoped.n).toBe((mineAll.n as number) - 1);
    });

    it("retrieves another provider's rows as missing, by id and by alternate key", async () => {
      await missing(asP1().retrieve(CONVERSATION, { kind: "id", id: theirs.conversationId }));
      await missing(asP1().retrieve(CONVERSATION, { kind: "alternate", values: { msdyn_conversationid: theirs.c } }));
      await missing(asP1().retrieve(SESSION, { kind: "id", id: theirs.sessionId }));
      await missing(asP1().retrieve(PARTICIPANT, { kind: "id", id: theirs.participantId }));
      await missing(asP1().retrieve(KPI_EVENT, { kind: "id", id: theirs.eventId }));
      await missing(asP1().retrieve(KPI_EVENT, { kind: "id", id: misattributed }));
      await missing(asP1().transaction((writer) => writer.retrieve(SESSION, { kind: "id", id: theirs.sessionId })));

      expect((await asP1().retrieve(KPI_EVENT, { kind: "id", id: mine.eventId })).msdyn_conversationid).toBe(mine.c);
      expect((await admin().retrieve(KPI_EVENT, { kind: "id", id: theirs.eventId })).msdyn_conversationid).toBe(theirs.c);
    });

    it("expands only the provider's rows", async () => {
      const expandOf = (table: TableDef, expand: string) => parseCollectionQuery(table, { $expand: expand }).expand[0]!;
      const theirConversation = await admin().retrieve(CONVERSATION, { kind: "id", id: theirs.conversationId });
      const myConversation = await asP1().retrieve(CONVERSATION, { kind: "id", id: mine.conversationId });
      const events = expandOf(CONVERSATION, "msdyn_kpievents");
      const sessions = expandOf(CONVERSATION, "msdyn_sessions");

      // Collection-valued: another provider's children, and a misattributed event, stay out.
      expect(await expandRows(db.pool, [theirConversation], sessions, scopeP1())).toEqual([[]]);
      expect(await expandRows(db.pool, [theirConversation], sessions)).not.toEqual([[]]);
      const [myEvents] = (await expandRows(db.pool, [myConversation], events, scopeP1())) as Row[][];
      expect(myEvents!.map((row) => row.msdyn_kpieventdataid)).toContain(mine.eventId);
      expect(myEvents!.map((row) => row.msdyn_kpieventdataid)).not.toContain(misattributed);
      const [allEvents] = (await expandRows(db.pool, [myConversation], events)) as Row[][];
      expect(allEvents!.map((row) => row.msdyn_kpieventdataid)).toContain(misattributed);

      // Single-valued: another provider's conversation is null.
      const theirEvent = await admin().retrieve(KPI_EVENT, { kind: "id", id: theirs.eventId });
      const conversation = expandOf(KPI_EVENT, "msdyn_conversation");
      expect(await expandRows(db.pool, [theirEvent], conversation, scopeP1())).toEqual([null]);
      expect(await expandRows(db.pool, [theirEvent], conversation)).toEqual([
        expect.objectContaining({ msdyn_conversationid: theirs.c }),
      ]);

      // Through queryPage's $expand.
      const expanded = await page(
        CONVERSATION,
        { $expand: "msdyn_kpievents", $filter: `msdyn_conversationid eq '${mine.c}'` },
        scopeP1(),
      );
      const listed = (expanded.expanded.get("msdyn_kpievents")![0] as Row[]).map((row) => row.msdyn_kpieventdataid);
      expect(listed).toContain(mine.eventId);
      expect(listed).not.toContain(misattributed);
    });

    it("answers FetchXML with the provider's rows only, on the root and on linked entities", async () => {
      const fetch = (text: string, scope?: RowScope) => runFetchXml(db.pool, parseFetchXml(KPI_EVENT, text), propertyName, scope);
      const all = `<fetch><entity name="msdyn_kpieventdata"><attribute name="msdyn_conversationid" /></entity></fetch>`;
      expect(conversationsOf((await fetch(all, scopeP1())).rows)).not.toContain(theirs.c);
      expect(conversationsOf((await fetch(all, scopeP1())).rows)).toContain(mine.c);
      expect(conversationsOf((await fetch(all)).rows)).toContain(theirs.c);

      const aggregate =
        `<fetch aggregate="true"><entity name="msdyn_kpieventdata">` +
        `<attribute name="msdyn_conversationid" alias="c" groupby="true" /><attribute name="msdyn_kpieventdataid" alias="n" aggregate="count" />` +
        `</entity></fetch>`;
      const grouped = await fetch(aggregate, scopeP1());
      const key = grouped.outputs.find((output) => output.key === "c")!.sqlName;
      const groups = grouped.rows.map((row) => row[key]);
      expect(groups).toContain(mine.c);
      expect(groups).not.toContain(theirs.c);

      // A link from a conversation to another provider's sessions finds none (outer: null columns).
      const linked = (scope?: RowScope) =>
        runFetchXml(
          db.pool,
          parseFetchXml(
            SESSION,
            `<fetch><entity name="msdyn_sessiondata"><attribute name="msdyn_conversationid" />` +
              `<link-entity name="msdyn_conversationdata" from="msdyn_conversationid" to="msdyn_conversationid" link-type="outer" alias="c">` +
              `<attribute name="msdyn_providerid" /></link-entity>` +
              `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${mine.c}" /></filter></entity></fetch>`,
          ),
          propertyName,
          scope,
        );
      const own = await linked(scopeP1());
      expect(own.rows.length).toBeGreaterThan(0);
      expect(own.rows.every((row) => Object.values(row).includes(p1))).toBe(true);
    });

    it("hides another provider's linked rows behind an outer link-entity", async () => {
      // An administrator's session row of P1's conversation links to the conversation; P2's via the filter are gone.
      const text =
        `<fetch><entity name="msdyn_conversationdata"><attribute name="msdyn_conversationid" />` +
        `<link-entity name="msdyn_kpieventdata" from="msdyn_conversationid" to="msdyn_conversationid" link-type="outer" alias="e">` +
        `<attribute name="msdyn_kpieventdataid" /></link-entity>` +
        `<filter><condition attribute="msdyn_conversationid" operator="eq" value="${mine.c}" /></filter></entity></fetch>`;
      const ids = async (scope?: RowScope) =>
        (await runFetchXml(db.pool, parseFetchXml(CONVERSATION, text), propertyName, scope)).rows.flatMap((row) =>
          Object.values(row),
        );
      expect(await ids(scopeP1())).not.toContain(misattributed);
      expect(await ids(scopeP1())).toContain(mine.eventId);
      expect(await ids()).toContain(misattributed);
    });
  });

  describe("unscoped callers", () => {
    /** The statements the store sends, recorded. */
    function recording(): { db: Queryable; statements: string[] } {
      const statements: string[] = [];
      const query = (config: unknown, values?: unknown) => {
        statements.push(typeof config === "string" ? config : (config as { text: string }).text);
        return (db.pool.query as (...a: unknown[]) => unknown)(config, values);
      };
      return { db: { query } as unknown as Queryable, statements };
    }

    it("send the same statements as before: no scope condition and no extra query", async () => {
      const { db: recorded, statements } = recording();
      await queryPage(recorded, KPI_EVENT, parseCollectionQuery(KPI_EVENT, { $count: "true", $expand: "msdyn_session" }), 50);
      await countRows(recorded, SESSION);
      const query = parseCollectionQuery(KPI_EVENT, { $apply: "aggregate($count as n)" });
      await aggregateRows(recorded, KPI_EVENT, query.apply!, undefined);
      await runFetchXml(
        recorded,
        parseFetchXml(KPI_EVENT, `<fetch><entity name="msdyn_kpieventdata"><attribute name="msdyn_name" /></entity></fetch>`),
        propertyName,
      );
      expect(statements).toHaveLength(6);
      for (const sql of statements) expect(sql).not.toMatch(/scope_c|lower\(/);

      // A write: one statement unscoped, one more (the conversation's owner) for a provider.
      let writes = 0;
      const pool = {
        query: (...args: unknown[]) => (writes++, (db.pool.query as (...a: unknown[]) => unknown)(...args)),
      } as unknown as pg.Pool;
      await new RecordService(pool)
        .as(base)
        .create(SESSION, { msdyn_conversationid: mine.c, msdyn_providersessionid: `s-${randomUUID()}` });
      expect(writes).toBe(1);
      await new RecordService(pool)
        .as({ ...base, providerId: p1 })
        .create(SESSION, { msdyn_conversationid: mine.c, msdyn_providersessionid: `s-${randomUUID()}` });
      expect(writes).toBe(3);
    });

    it("write into any provider's conversation", async () => {
      const session = await admin().create(SESSION, {
        msdyn_conversationid: theirs.c,
        msdyn_providersessionid: `s-${randomUUID()}`,
      });
      expect(session.msdyn_conversationid).toBe(theirs.c);
      const kpiEvent = await admin().create(KPI_EVENT, event(theirs.c, { msdyn_ProviderId: p1 }));
      expect(kpiEvent.msdyn_ProviderId).toBe(p1);
      const { row } = await admin().upsert(
        CONVERSATION,
        { kind: "id", id: theirs.conversationId },
        { msdyn_externalcorrelationid: "x" },
      );
      expect(row.msdyn_externalcorrelationid).toBe("x");
    });
  });

  it("reads a provider's events of a conversation through the conversation's natural-key index", async () => {
    const client = await db.pool.connect();
    try {
      await client.query("SET enable_seqscan = off");
      const plans: string[] = [];
      const explaining: Queryable = {
        query: (async (sql: string, values?: unknown[]) => {
          const { rows } = await client.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`, values);
          plans.push(JSON.stringify(rows[0]!["QUERY PLAN"]));
          return { rows: [] };
        }) as unknown as Queryable["query"],
      };
      await queryPage(
        explaining,
        KPI_EVENT,
        parseCollectionQuery(KPI_EVENT, { $filter: `msdyn_conversationid eq '${mine.c}'`, $top: "50" }),
        50,
        scopeP1(),
      );
      expect(plans[0]).toContain("ak_msdyn_conversationdata_natural_key");
      expect(plans[0]).toContain("ix_msdyn_kpieventdata_conversationid");
    } finally {
      await client.query("RESET enable_seqscan");
      client.release();
    }
  });
});
