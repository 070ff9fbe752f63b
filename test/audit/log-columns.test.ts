/**
 * The rows of CIEventsAudit and CIEventsOperational are made in SQL from each record's
 * JSON (the columns' `fromRecord` paths in src/model/tables.ts): every Log Analytics
 * column holds its field of the record, the record is kept as it was sent, and a value
 * longer than its column is cut instead of failing the insert (and with it the write).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ApiEventRecord, WorkflowEventRecord } from "../../src/audit/azure-monitor.js";
import { appendLogRecords } from "../../src/audit/store/log-store.js";
import { useTestDatabase } from "../helpers/database.js";

const apiEvent = (over: Partial<ApiEventRecord["properties"]> = {}): ApiEventRecord => ({
  time: "2026-12-03T09:10:11.1234567Z",
  resourceId: "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.CIF/ORGANIZATIONS/O",
  operationName: "msdyn_kpieventsdata.Create",
  category: "Audit",
  resultType: "Success",
  resultSignature: "204",
  durationMs: 12,
  callerIpAddress: "127.0.0.1",
  correlationId: "corr-1",
  identity: {
    Authorization: { UserRole: "ChannelProvider", RequiredRoles: ["Administrator", "ChannelProvider"] },
    Claims: { oid: "object-1", roles: ["ChannelProvider"] },
  },
  level: "Informational",
  uri: "http://127.0.0.1/api/data/v9.2/msdyn_kpieventsdata",
  properties: {
    eventType: "ApiEvent",
    eventId: randomUUID(),
    userAgent: "agent/1",
    method: "POST",
    path: "/api/data/v9.2/msdyn_kpieventsdata",
    origin: "http://127.0.0.1",
    operationStatus: "Success",
    tenantId: "tenant-1",
    tenantName: "Contoso",
    callerObjectId: "object-1",
    instanceId: "instance-1",
    writtenRecords: { msdyn_kpieventsdata: ["e-1", "e-2"] },
    ...over,
  },
});

const workflowEvent = (): WorkflowEventRecord => ({
  time: "2026-12-03T09:10:12.0000001Z",
  resourceId: "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.CIF/ORGANIZATIONS/O",
  operationName: "Retention.WorkflowCompleted",
  category: "Operational",
  resultType: "Successful",
  durationMs: 1500,
  level: "Informational",
  properties: {
    eventType: "WorkflowEvent",
    eventId: randomUUID(),
    workflowJobId: "job-1",
    operationType: "Retention",
    startTimestamp: "2026-12-03T09:10:10.5000000Z",
    endTimestamp: "2026-12-03T09:10:12.0000000Z",
    submittedTimestamp: "2026-12-03T09:10:10.0000000Z",
    instanceId: "instance-1",
    tasksCount: 2,
    submittedBy: "System",
    workflowType: "full",
    workflowSubmissionKind: "Scheduled",
    workflowStatus: "Successful",
    identifier: "ident-1",
    friendlyName: "Retention",
    error: "none",
    additionalInfo: { deleted: 3 },
  },
});

describe("log table columns", () => {
  const db = useTestDatabase();
  const row = async (table: string, id: string) =>
    (await db.pool.query<Record<string, unknown>>(`SELECT * FROM ${table} WHERE ${table}id = $1`, [id])).rows[0]!;

  it("fills each column of an ApiEvent's row from its field, and keeps the record as sent", async () => {
    const record = apiEvent();
    await appendLogRecords(db.pool, [record]);
    const stored = await row("cieventsaudit", record.properties.eventId);
    expect(stored).toMatchObject({
      category: "Audit",
      operationname: "msdyn_kpieventsdata.Create",
      resulttype: "Success",
      resultsignature: "204",
      durationms: "12",
      calleripaddress: "127.0.0.1",
      correlationid: "corr-1",
      level: "Informational",
      uri: record.uri,
      eventtype: "ApiEvent",
      method: "POST",
      path: "/api/data/v9.2/msdyn_kpieventsdata",
      origin: "http://127.0.0.1",
      operationstatus: "Success",
      useragent: "agent/1",
      instanceid: "instance-1",
      callerobjectid: "object-1",
      userrole: "ChannelProvider",
      tenantid: "tenant-1",
      tenantname: "Contoso",
      resourceid: record.resourceId,
      record: JSON.stringify(record),
    });
    expect((stored.timegenerated as Date).toISOString()).toBe("2026-12-03T09:10:11.123Z");
    expect(JSON.parse(stored.requiredroles as string)).toEqual(["Administrator", "ChannelProvider"]);
    expect(JSON.parse(stored.claims as string)).toEqual({ oid: "object-1", roles: ["ChannelProvider"] });
    expect(JSON.parse(stored.writtenrecords as string)).toEqual({ msdyn_kpieventsdata: ["e-1", "e-2"] });
  });

  it("fills a WorkflowEvent's columns, and leaves the ApiEvent ones empty", async () => {
    const record = workflowEvent();
    await appendLogRecords(db.pool, [record]);
    const stored = await row("cieventsoperational", record.properties.eventId);
    expect(stored).toMatchObject({
      category: "Operational",
      operationname: "Retention.WorkflowCompleted",
      resulttype: "Successful",
      durationms: "1500",
      eventtype: "WorkflowEvent",
      operationtype: "Retention",
      workflowjobid: "job-1",
      workflowtype: "full",
      workflowstatus: "Successful",
      workflowsubmissionkind: "Scheduled",
      submittedby: "System",
      taskscount: 2,
      identifier: "ident-1",
      friendlyname: "Retention",
      error: "none",
      method: null,
      userrole: null,
      claims: null,
      resultsignature: null,
    });
    expect((stored.starttime as Date).toISOString()).toBe("2026-12-03T09:10:10.500Z");
    expect((stored.endtime as Date).toISOString()).toBe("2026-12-03T09:10:12.000Z");
    expect((stored.submittedtime as Date).toISOString()).toBe("2026-12-03T09:10:10.000Z");
    expect(JSON.parse(stored.additionalinformation as string)).toEqual({ deleted: 3 });
  });

  it("cuts a value longer than its column instead of refusing the record, which stays whole", async () => {
    const record = apiEvent({ userAgent: "u".repeat(5000), tenantName: "t".repeat(300) });
    await appendLogRecords(db.pool, [record]);
    const stored = await row("cieventsaudit", record.properties.eventId);
    expect(stored.useragent).toBe("u".repeat(400));
    expect(stored.tenantname).toBe("t".repeat(100));
    expect(stored.record).toBe(JSON.stringify(record));
  });

  it("writes a batch of both categories, each record once however often it is appended", async () => {
    const records = [apiEvent(), workflowEvent(), apiEvent(), workflowEvent()];
    await appendLogRecords(db.pool, records);
    await appendLogRecords(db.pool, records);
    for (const record of records) {
      const table = record.category === "Audit" ? "cieventsaudit" : "cieventsoperational";
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${table}id = $1`, [
        record.properties.eventId,
      ]);
      expect(rows[0].n).toBe(1);
    }
  });
});
