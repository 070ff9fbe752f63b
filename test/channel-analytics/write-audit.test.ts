/**
 * A write's audit record commits in the write's own transaction, on every write path of
 * CallerRecords (src/channel-analytics/write-audit.ts): when the record cannot be stored
 * the write is not stored either, and when it is, it names what was written and says so
 * (`settled(true)`). The proof is the failing record: the same transaction or nothing.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { RecordService } from "../../src/channel-analytics/records.js";
import type { WriteAudit } from "../../src/channel-analytics/write-audit.js";
import type { Caller } from "../../src/model/caller.js";
import { type TableDef, tableByLogicalName } from "../../src/model/tables.js";
import { useTestDatabase } from "../helpers/database.js";

const PROVIDER = tableByLogicalName("msdyn_ciprovider");
const CONVERSATION = tableByLogicalName("msdyn_conversationdata");
const SESSION = tableByLogicalName("msdyn_sessiondata");
const KPI_EVENT = tableByLogicalName("msdyn_kpieventdata");

/** A WriteAudit that records what it is told; `broken`: its record is one the database refuses. */
class TestAudit implements WriteAudit {
  readonly id = randomUUID();
  readonly written = new Map<string, string[]>();
  verdicts: boolean[] = [];
  constructor(
    private readonly broken = false,
    /** Its operationName is longer than the column (200). */
    private readonly long = false,
  ) {}
  stored(table: TableDef, ids: readonly string[]): void {
    this.written.set(table.entitySetName, [...(this.written.get(table.entitySetName) ?? []), ...ids]);
  }
  recordText(storing?: { table: TableDef; ids: readonly string[] }): string {
    const written = Object.fromEntries(this.written);
    if (storing) written[storing.table.entitySetName] = [...(written[storing.table.entitySetName] ?? []), ...storing.ids];
    return JSON.stringify({
      // Not a time: the broken record's INSERT fails.
      time: this.broken ? "not a time" : new Date().toISOString(),
      category: "Audit",
      operationName: this.long ? "o".repeat(300) : "test",
      properties: { eventType: "ApiEvent", eventId: this.id, writtenRecords: written },
    });
  }
  settled(committed: boolean): void {
    this.verdicts.push(committed);
  }
}

describe("a write's audit record commits with the write", () => {
  const db = useTestDatabase();
  const caller: Caller = { userId: randomUUID(), businessUnitId: randomUUID(), organizationId: randomUUID() };
  let grouped: RecordService;
  let plain: RecordService;
  let providerId: string;

  beforeAll(async () => {
    grouped = new RecordService(db.pool, { batchesInFlight: 1 });
    plain = new RecordService(db.pool);
    const provider = await plain.as(caller).create(PROVIDER, { msdyn_name: `P ${randomUUID()}` });
    providerId = String(provider[PROVIDER.primaryKey]);
    await plain.as(caller).upsert(PROVIDER, { kind: "id", id: providerId }, { msdyn_enableanalytics: true });
  });

  const countWhere = async (table: string, column: string, value: string) =>
    Number((await db.pool.query(`SELECT count(*) AS n FROM ${table} WHERE ${column} = $1`, [value])).rows[0].n);
  const auditStored = (audit: TestAudit) => countWhere("cieventsaudit", "cieventsauditid", audit.id);

  async function conversation(): Promise<string> {
    const c = `c-${randomUUID()}`;
    await plain.as(caller).create(CONVERSATION, { msdyn_conversationid: c, msdyn_name: c, msdyn_providerid: providerId });
    await plain.as(caller).create(SESSION, { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
    return c;
  }
  const event = (c: string) => ({
    msdyn_conversationid: c,
    msdyn_providersessionid: "s-1",
    msdyn_kpieventname: "SessionStarted",
    msdyn_eventtimestamp: new Date().toISOString(),
  });

  /** Each write path: its setup, then the write with an audit, and how to count what it wrote (0 when rolled back). */
  interface WritePath {
    write(audit: TestAudit): Promise<unknown>;
    count(): Promise<number>;
  }
  const paths: Array<{ name: string; setup: () => Promise<WritePath> }> = [
    {
      name: "create (a provider, in a transaction of its own)",
      setup: async () => {
        const name = `A ${randomUUID()}`;
        return {
          write: (audit) => plain.as(caller).withAudit(audit).create(PROVIDER, { msdyn_name: name }),
          count: () => countWhere("msdyn_ciprovider", "msdyn_name", name),
        };
      },
    },
    {
      name: "create of a KPI event (the group commit's batch)",
      setup: async () => {
        const c = await conversation();
        return {
          write: (audit) => grouped.as(caller).withAudit(audit).create(KPI_EVENT, event(c)),
          count: () => countWhere("msdyn_kpieventdata", "msdyn_conversationid", c),
        };
      },
    },
    {
      name: "create of a KPI event without group commit",
      setup: async () => {
        const c = await conversation();
        return {
          write: (audit) => plain.as(caller).withAudit(audit).create(KPI_EVENT, event(c)),
          count: () => countWhere("msdyn_kpieventdata", "msdyn_conversationid", c),
        };
      },
    },
    {
      name: "createMany of 150 KPI events (a group of its own)",
      setup: async () => {
        const c = await conversation();
        const bodies = Array.from({ length: 150 }, () => event(c));
        return {
          write: (audit) =>
            grouped
              .as(caller)
              .withAudit(audit)
              .createMany(KPI_EVENT, bodies, (i) => `Targets[${i}]`),
          count: () => countWhere("msdyn_kpieventdata", "msdyn_conversationid", c),
        };
      },
    },
    {
      name: "createMany of conversations",
      setup: async () => {
        const cs = [`c-${randomUUID()}`, `c-${randomUUID()}`];
        const bodies = cs.map((c) => ({ msdyn_conversationid: c, msdyn_name: c }));
        return {
          write: (audit) =>
            plain
              .as(caller)
              .withAudit(audit)
              .createMany(CONVERSATION, bodies, (i) => `Targets[${i}]`),
          count: () => countWhere("msdyn_conversationdata", "msdyn_conversationid", cs[1]!),
        };
      },
    },
    {
      name: "upsert by natural keys (the group commit of msdyn_InitLogAnalytics)",
      setup: async () => {
        const c = `c-${randomUUID()}`;
        const items = [{ table: CONVERSATION, key: { msdyn_conversationid: c }, body: { msdyn_name: c } }];
        return {
          write: async (audit) => expect(await grouped.as(caller).withAudit(audit).upsertByNaturalKeys(items)).toHaveLength(1),
          count: () => countWhere("msdyn_conversationdata", "msdyn_conversationid", c),
        };
      },
    },
    {
      name: "upsert (PATCH), in a transaction",
      setup: async () => {
        const name = `U ${randomUUID()}`;
        return {
          write: (audit) =>
            plain.as(caller).withAudit(audit).upsert(PROVIDER, { kind: "id", id: randomUUID() }, { msdyn_name: name }),
          count: () => countWhere("msdyn_ciprovider", "msdyn_name", name),
        };
      },
    },
    {
      name: "remove (DELETE)",
      setup: async () => {
        const c = `c-${randomUUID()}`;
        await plain.as(caller).create(CONVERSATION, { msdyn_conversationid: c, msdyn_name: c });
        return {
          write: (audit) =>
            plain
              .as(caller)
              .withAudit(audit)
              .remove(CONVERSATION, { kind: "alternate", values: { msdyn_conversationid: c } }),
          // Removed: 0 rows left, counted as 1 written; rolled back: the row is still there.
          count: async () => 1 - (await countWhere("msdyn_conversationdata", "msdyn_conversationid", c)),
        };
      },
    },
  ];

  it.each(paths)("$name: both are stored, and the record names what was written", async ({ setup }) => {
    const path = await setup();
    const audit = new TestAudit();
    await path.write(audit);
    expect(await path.count()).toBeGreaterThan(0);
    expect(await auditStored(audit)).toBe(1);
    expect(audit.verdicts.at(-1)).toBe(true);
    expect([...audit.written.values()].flat().length).toBeGreaterThan(0);
  });

  it.each(paths)("$name: a record with a value too long for its column still commits, the value cut", async ({ setup }) => {
    const path = await setup();
    const audit = new TestAudit(false, true);
    await path.write(audit);
    expect(await path.count()).toBeGreaterThan(0);
    const { rows } = await db.pool.query("SELECT operationname FROM cieventsaudit WHERE cieventsauditid = $1", [audit.id]);
    expect(rows[0]?.operationname).toBe("o".repeat(200));
    expect(audit.verdicts.at(-1)).toBe(true);
  });

  it.each(paths)("$name: a record the database refuses takes the write down with it", async ({ setup }) => {
    const path = await setup();
    const audit = new TestAudit(true);
    await expect(path.write(audit)).rejects.toThrow();
    expect(await path.count()).toBe(0);
    expect(await auditStored(audit)).toBe(0);
    expect(audit.verdicts).not.toContain(true);
    expect(audit.verdicts.at(-1)).toBe(false);
  });

  it("writes nothing to the audit table when the write itself is refused", async () => {
    const audit = new TestAudit();
    await expect(
      plain
        .as(caller)
        .withAudit(audit)
        .create(KPI_EVENT, event(`c-missing-${randomUUID()}`)),
    ).rejects.toThrow();
    expect(await auditStored(audit)).toBe(0);
    expect(audit.verdicts).not.toContain(true);
  });
});
