/**
 * A CreateMultiple big enough to skip the group commit (100 events or more) goes straight
 * to the pool; when its client has gone while it waited for a connection (overload), it is
 * not written: the client that gave up would retry, and the retry would be a duplicate.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordService } from "../../src/channel-analytics/records.js";
import { ClientGoneError } from "../../src/db/request-signal.js";
import type { Caller } from "../../src/model/caller.js";
import { tableByLogicalName } from "../../src/model/tables.js";
import { useTestDatabase } from "../helpers/database.js";

const PROVIDER = tableByLogicalName("msdyn_ciprovider");
const CONVERSATION = tableByLogicalName("msdyn_conversationdata");
const SESSION = tableByLogicalName("msdyn_sessiondata");
const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");

describe("a big CreateMultiple whose client has gone", () => {
  const db = useTestDatabase();
  const caller: Caller = { userId: randomUUID(), businessUnitId: randomUUID(), organizationId: randomUUID() };
  // One connection: holding it makes the write wait, as under overload.
  let pool: pg.Pool;
  let service: RecordService;
  let conversation: string;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: db.url, max: 1 });
    service = new RecordService(pool, { batchesInFlight: 1 });
    const provider = await service.as(caller).create(PROVIDER, { msdyn_name: `P ${randomUUID()}` });
    const providerId = String(provider[PROVIDER.primaryKey]);
    await service.as(caller).upsert(PROVIDER, { kind: "id", id: providerId }, { msdyn_enableanalytics: true });
    conversation = `c-${randomUUID()}`;
    await service
      .as(caller)
      .create(CONVERSATION, { msdyn_conversationid: conversation, msdyn_name: "c", msdyn_providerid: providerId });
    await service.as(caller).create(SESSION, { msdyn_conversationid: conversation, msdyn_providersessionid: "s-1" });
  });
  afterAll(async () => {
    await pool?.end();
  });

  const bodies = () =>
    Array.from({ length: 150 }, () => ({
      msdyn_conversationid: conversation,
      msdyn_providersessionid: "s-1",
      msdyn_kpieventname: "SessionStarted",
      msdyn_eventtimestamp: new Date().toISOString(),
    }));
  const stored = async () =>
    Number(
      (await db.pool.query("SELECT count(*) AS n FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1", [conversation]))
        .rows[0].n,
    );

  it("is not written once its client has gone while it waited for a connection", async () => {
    const held = await pool.connect();
    const gone = new AbortController();
    const writing = service
      .as(caller)
      .createMany(KPI_EVENT, bodies(), (i) => `Targets[${i}]`, gone.signal)
      .then(
        () => "written",
        (error: unknown) => error,
      );
    // Bounded: until the write waits for the connection.
    for (let i = 0; i < 100 && pool.waitingCount < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pool.waitingCount).toBe(1);
    gone.abort();
    held.release();
    expect(await writing).toBeInstanceOf(ClientGoneError);
    expect(await stored()).toBe(0);
  });

  it("is rolled back, not committed, when its client has gone while its rows were copied", async () => {
    // The COPY's foreign-key check waits for this lock on the session row.
    const locker = await db.pool.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("SELECT 1 FROM msdyn_sessiondata WHERE msdyn_conversationid = $1 FOR UPDATE", [conversation]);
      const gone = new AbortController();
      const writing = service
        .as(caller)
        .createMany(KPI_EVENT, bodies(), (i) => `Targets[${i}]`, gone.signal)
        .then(
          () => "written",
          (error: unknown) => error,
        );
      // Bounded: until the COPY waits for the lock.
      const waitingForLock = async () =>
        Number(
          (
            await db.pool.query(
              "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
          ).rows[0].n,
        );
      for (let i = 0; i < 200 && (await waitingForLock()) < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await waitingForLock()).toBe(1);
      gone.abort();
      await locker.query("COMMIT");
      expect(await writing).toBeInstanceOf(ClientGoneError);
    } finally {
      locker.release();
    }
    expect(await stored()).toBe(0);
  });

  it("is written when its client is still there", async () => {
    const before = await stored();
    await service.as(caller).createMany(KPI_EVENT, bodies(), (i) => `Targets[${i}]`, new AbortController().signal);
    expect((await stored()) - before).toBe(150);
  });
});
