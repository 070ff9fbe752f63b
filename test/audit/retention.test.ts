/**
 * Retention of CIEventsAudit and CIEventsOperational (issue 12): a scheduled job deletes,
 * in every organisation's database, the records older than AUDIT_RETENTION_DAYS, in
 * batches, and tells each run as WorkflowEvents; with several servers one purges at a time.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogRecord, WorkflowEventRecord } from "../../src/audit/azure-monitor.js";
import { Retention, type RetentionOptions } from "../../src/audit/retention.js";
import { appendLogRecords } from "../../src/audit/store/log-store.js";
import { useTestApp } from "../helpers/app.js";
import { createTestDatabase, withAdminClient } from "../helpers/database.js";
import { withDatabase } from "../helpers/database-url.js";
import { testDataDir } from "../helpers/identity.js";
import { createdId } from "../helpers/records.js";
import { apiClient } from "../helpers/tenancy.js";

const DAY = 86_400_000;
const quiet = { warn() {}, info() {} };

describe("log retention", () => {
  const t = useTestApp({
    AUTH_MODE: "none",
    DATA_DIR: testDataDir(),
    AUDIT_RETENTION_DAYS: "30",
    AUDIT_RETENTION_BATCH: "3",
    AUDIT_FLUSH_MS: "100",
  });
  let other: { id: string; databaseName: string };
  let otherPool: pg.Pool;
  /** A record of the default organisation, to copy with other ids and times. */
  let template: LogRecord;

  beforeAll(async () => {
    const api = apiClient(t, undefined);
    createdId(await api.post("msdyn_ciproviders", { msdyn_name: `Kept ${randomUUID()}` }));
    await t.app.auditLog!.flush();
    const { rows } = await t.testDb.pool.query<{ record: string }>("SELECT record FROM cieventsaudit LIMIT 1");
    template = JSON.parse(rows[0]!.record) as LogRecord;
    const created = await t.app.identity.organizations.create({ name: `ret-${randomUUID().slice(0, 8)}` });
    other = { id: created.id, databaseName: created.databaseName! };
    otherPool = new pg.Pool({ connectionString: withDatabase(t.testDb.url, other.databaseName), max: 2 });
  });

  afterAll(async () => {
    await otherPool?.end();
    await t.app.identity.organizations.close();
    if (other) {
      await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS "${other.databaseName}" WITH (FORCE)`));
    }
  });

  /** `n` records of `category` dated `daysAgo`, written to `pool`. */
  async function seed(pool: pg.Pool, category: "Audit" | "Operational", n: number, daysAgo: number): Promise<void> {
    const time = new Date(Date.now() - daysAgo * DAY).toISOString().replace("Z", "0000Z");
    const records = Array.from(
      { length: n },
      () => ({ ...template, category, time, properties: { ...template.properties, eventId: randomUUID() } }) as LogRecord,
    );
    await appendLogRecords(pool, records);
  }

  const count = async (pool: pg.Pool, table: string, olderThanDays?: number) =>
    (
      await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${table}` + (olderThanDays ? ` WHERE timegenerated < now() - $1 * interval '1 day'` : ""),
        olderThanDays ? [olderThanDays] : [],
      )
    ).rows[0]!.n;

  async function retentionEvents(pool: pg.Pool, jobId?: string): Promise<WorkflowEventRecord[]> {
    await t.app.auditLog!.flush();
    const { rows } = await pool.query<{ record: string }>(
      `SELECT record FROM cieventsoperational WHERE operationtype = 'Retention' ${jobId ? "AND workflowjobid = $1" : ""} ORDER BY versionnumber`,
      jobId ? [jobId] : [],
    );
    return rows.map((r) => JSON.parse(r.record) as WorkflowEventRecord);
  }

  it("purges what is older than the retention in every organisation, keeps the rest, and tells the run as WorkflowEvents", async () => {
    await seed(t.testDb.pool, "Audit", 10, 31);
    await seed(t.testDb.pool, "Operational", 4, 45);
    await seed(t.testDb.pool, "Audit", 2, 29);
    await seed(otherPool, "Operational", 5, 60);
    await seed(otherPool, "Audit", 1, 1);
    const keptAudit = (await count(t.testDb.pool, "cieventsaudit")) - 10;

    const outcomes = await t.app.logRetention!.run("OnDemand");

    const defaultOrganization = await t.app.identity.organizations.defaultOrganization();
    expect(outcomes).toContainEqual({
      organizationId: defaultOrganization.id,
      ran: true,
      deleted: { CIEventsAudit: 10, CIEventsOperational: 4 },
    });
    expect(outcomes).toContainEqual({
      organizationId: other.id,
      ran: true,
      deleted: { CIEventsAudit: 0, CIEventsOperational: 5 },
    });
    expect(await count(t.testDb.pool, "cieventsaudit", 30)).toBe(0);
    expect(await count(t.testDb.pool, "cieventsoperational", 30)).toBe(0);
    expect(await count(t.testDb.pool, "cieventsaudit")).toBe(keptAudit);
    expect(await count(otherPool, "cieventsoperational", 30)).toBe(0);
    expect(await count(otherPool, "cieventsaudit")).toBe(1);

    // Each organisation's run in its own log: started, a task per table, completed.
    const events = await retentionEvents(otherPool);
    expect(events.map((e) => [e.operationName, e.resultType, e.properties.identifier])).toEqual([
      ["Retention.WorkflowStarted", "Running", undefined],
      ["Retention.TaskCompleted", "Skipped", "CIEventsAudit"],
      ["Retention.TaskCompleted", "Successful", "CIEventsOperational"],
      ["Retention.WorkflowCompleted", "Successful", undefined],
    ]);
    expect(new Set(events.map((e) => e.properties.workflowJobId)).size).toBe(1);
    expect(events[0]!.properties).toMatchObject({
      eventType: "WorkflowEvent",
      operationType: "Retention",
      workflowSubmissionKind: "OnDemand",
      workflowStatus: "Running",
      tasksCount: 2,
      instanceId: other.id,
    });
    expect(events[2]!.properties.additionalInfo).toMatchObject({ deleted: 5, retentionDays: 30 });
    expect(events[3]).toMatchObject({
      category: "Operational",
      durationMs: expect.any(Number),
      properties: { workflowStatus: "Successful", additionalInfo: { deleted: { CIEventsAudit: 0, CIEventsOperational: 5 } } },
    });
    // The columns of Log Analytics' WorkflowEvent are filled, so they can be filtered on.
    const { rows } = await otherPool.query(
      "SELECT workflowsubmissionkind, workflowstatus, taskscount FROM cieventsoperational WHERE operationname = 'Retention.WorkflowCompleted'",
    );
    expect(rows).toEqual([{ workflowsubmissionkind: "OnDemand", workflowstatus: "Successful", taskscount: 2 }]);
  });

  /** A Retention over the test database alone, as the plugin makes one, with its events captured. */
  function retentionOf(pool: pg.Pool, options: Partial<RetentionOptions> = {}) {
    const emitted: LogRecord[] = [];
    const retention = new Retention({
      resourceIdTemplate: "/ORGANIZATIONS/{organizationId}",
      organizations: async () => ["org-1"],
      poolOf: async () => pool,
      emit: (_organization, record) => emitted.push(record),
      retentionDays: 30,
      intervalMs: 60_000,
      batchSize: 3,
      maxBatches: 2,
      log: quiet,
      ...options,
    });
    return { retention, emitted };
  }

  it("deletes in batches, at most maxBatches per table per run; the next run goes on", async () => {
    await seed(t.testDb.pool, "Audit", 10, 40);
    const { retention } = retentionOf(t.testDb.pool);
    expect((await retention.run("OnDemand"))[0]!.deleted.CIEventsAudit).toBe(6);
    expect(await count(t.testDb.pool, "cieventsaudit", 30)).toBe(4);
    expect((await retention.run("OnDemand"))[0]!.deleted.CIEventsAudit).toBe(4);
    expect(await count(t.testDb.pool, "cieventsaudit", 30)).toBe(0);
  });

  it("skips an organisation another server is purging, quietly", async () => {
    await seed(t.testDb.pool, "Audit", 2, 40);
    const holder = await t.testDb.pool.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(hashtextextended('log-retention', 0))");
      const { retention, emitted } = retentionOf(t.testDb.pool);
      expect(await retention.run("OnDemand")).toEqual([{ organizationId: "org-1", ran: false, deleted: {} }]);
      expect(emitted).toEqual([]);
      expect(await count(t.testDb.pool, "cieventsaudit", 30)).toBe(2);
      await holder.query("SELECT pg_advisory_unlock(hashtextextended('log-retention', 0))");
      expect((await retention.run("OnDemand"))[0]!.ran).toBe(true);
      expect(await count(t.testDb.pool, "cieventsaudit", 30)).toBe(0);
    } finally {
      holder.release();
    }
  });

  it("tells a failed purge as Failure events, and throws nothing", async () => {
    // A database without the log tables: each task fails.
    const empty = await createTestDatabase({ migrated: false });
    try {
      const { retention, emitted } = retentionOf(empty.pool);
      const [outcome] = await retention.run("OnDemand");
      expect(outcome).toMatchObject({ ran: true, error: expect.stringContaining("does not exist") });
      expect(emitted.map((e) => [e.operationName, e.resultType])).toEqual([
        ["Retention.WorkflowStarted", "Running"],
        ["Retention.TaskCompleted", "Failure"],
        ["Retention.TaskCompleted", "Failure"],
        ["Retention.WorkflowCompleted", "Failure"],
      ]);
      expect(emitted[1]).toMatchObject({ level: "Error", properties: { error: expect.stringContaining("cieventsaudit") } });

      const unreachable = retentionOf(empty.pool, {
        poolOf: async () => {
          throw new Error("no database");
        },
      });
      expect(await unreachable.retention.run("OnDemand")).toEqual([
        { organizationId: "org-1", ran: false, deleted: {}, error: "no database" },
      ]);
      expect(unreachable.emitted).toEqual([]);
    } finally {
      await empty.drop();
    }
  });

  it("runs on its schedule once started, and stops", async () => {
    await seed(t.testDb.pool, "Operational", 3, 90);
    const { retention, emitted } = retentionOf(t.testDb.pool, { intervalMs: 50, maxBatches: 10 });
    retention.start();
    try {
      for (let i = 0; i < 100 && !emitted.some((e) => e.operationName === "Retention.WorkflowCompleted"); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await retention.stop();
    }
    expect(emitted.find((e) => e.operationName === "Retention.WorkflowStarted")).toMatchObject({
      properties: { workflowSubmissionKind: "Scheduled" },
    });
    expect(await count(t.testDb.pool, "cieventsoperational", 30)).toBe(0);
    const after = emitted.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(emitted.length, "no run after stop()").toBe(after);
  });
});
