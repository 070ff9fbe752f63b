/**
 * The audit log over HTTP (issue 12): an Azure Monitor ApiEvent for every call, $batch
 * parts, actions and refusals included; a write's Audit record committed in the write's
 * own transaction; the tables read-only through the Web API, for administrators and
 * analysts only; no secret in any record.
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { beforeAll, describe, expect, it } from "vitest";
import type { ApiEventRecord } from "../../src/audit/azure-monitor.js";
import { useTestApp } from "../helpers/app.js";
import { INJECT_BASE, type TestPrincipal, testDataDir, testPrincipal, tokenOf } from "../helpers/identity.js";
import { createdId, definitionId } from "../helpers/records.js";
import { type ApiClient, apiClient, batchRequest } from "../helpers/tenancy.js";

const TIME_7 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/;

describe("the audit log", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir(), AUDIT_FLUSH_MS: "100" });
  let admin: TestPrincipal;
  let adminToken: string;
  let api: ApiClient;
  let analyst: ApiClient;
  let providerWriter: ApiClient;
  let organization: { id: string; name: string };

  beforeAll(async () => {
    admin = await testPrincipal(t.app, ["Administrator"]);
    adminToken = await tokenOf(t.app, admin);
    api = apiClient(t, adminToken);
    analyst = apiClient(t, await tokenOf(t.app, await testPrincipal(t.app, ["Analyst"])));
    const provider = createdId(await api.post("msdyn_ciproviders", { msdyn_name: `P ${randomUUID()}` }));
    providerWriter = apiClient(
      t,
      await tokenOf(t.app, await testPrincipal(t.app, ["ChannelProvider"], { providerId: provider })),
    );
    const org = await t.app.identity.organizations.defaultOrganization();
    organization = { id: org.id, name: org.name };
  });

  const requestIdOf = (res: LightMyRequestResponse) => String(res.headers["x-request-id"]);

  /** The records of one request (by its correlation id, the request id when none was sent), oldest first. */
  async function recordsOf(requestId: string, { flush = true } = {}): Promise<ApiEventRecord[]> {
    if (flush) await t.app.auditLog!.flush();
    const { rows } = await t.testDb.pool.query<{ record: string }>(
      `SELECT record FROM (SELECT record, versionnumber FROM cieventsaudit WHERE correlationid = $1
         UNION ALL SELECT record, versionnumber FROM cieventsoperational WHERE correlationid = $1) r ORDER BY versionnumber`,
      [requestId],
    );
    return rows.map((row) => JSON.parse(row.record) as ApiEventRecord);
  }

  async function onlyRecordOf(res: LightMyRequestResponse): Promise<ApiEventRecord> {
    const list = await recordsOf(requestIdOf(res));
    expect(list, JSON.stringify(list)).toHaveLength(1);
    return list[0]!;
  }

  it("logs a create as an Audit ApiEvent with every field of the schema, committed in the write's own transaction", async () => {
    const res = await api.post(
      "msdyn_ciproviders",
      { msdyn_name: "Audited" },
      { "user-agent": "audit-test/1.0", origin: "https://portal.example" },
    );
    expect(res.statusCode, res.body).toBe(204);
    const id = createdId(res);
    // No flush: it is in the table already, written by the transaction that wrote the row
    // (test/channel-analytics/write-audit.test.ts proves it is the same transaction).
    const [record] = await recordsOf(requestIdOf(res), { flush: false });
    expect(record).toBeDefined();

    expect(record).toMatchObject({
      resourceId: expect.stringContaining(`/ORGANIZATIONS/${organization.id.toUpperCase()}`),
      operationName: "msdyn_ciproviders.Create",
      category: "Audit",
      resultType: "Success",
      resultSignature: "204",
      callerIpAddress: "127.0.0.1",
      correlationId: requestIdOf(res),
      level: "Informational",
      uri: "http://localhost:80/api/data/v9.2/msdyn_ciproviders",
      identity: {
        Authorization: { UserRole: "Administrator", RequiredRoles: ["Administrator"] },
        Claims: expect.objectContaining({ oid: admin.id, tid: organization.id, appid: admin.clientId }),
      },
      properties: {
        eventType: "ApiEvent",
        eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        userAgent: "audit-test/1.0",
        method: "POST",
        path: "/api/data/v9.2/msdyn_ciproviders",
        origin: "https://portal.example",
        operationStatus: "Success",
        tenantId: organization.id,
        tenantName: organization.name,
        callerObjectId: admin.id,
        instanceId: organization.id,
        writtenRecords: { msdyn_ciproviders: [id] },
      },
    });
    expect(record!.time).toMatch(TIME_7);
    expect(Date.now() - Date.parse(record!.time)).toBeLessThan(60_000);
    expect(record!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("commits a KPI event's record with the event (the group commit's transaction), with the status it answered", async () => {
    const provider = createdId(await api.post("msdyn_ciproviders", { msdyn_name: `P ${randomUUID()}` }));
    expect((await api.patch(`msdyn_ciproviders(${provider})`, { msdyn_enableanalytics: true })).statusCode).toBe(204);
    const c = `c-${randomUUID()}`;
    await api.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_name: c, msdyn_providerid: provider });
    await api.post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
    const event = {
      msdyn_conversationid: c,
      msdyn_providersessionid: "s-1",
      msdyn_kpieventname: "SessionStarted",
      msdyn_kpieventid: definitionId("SessionStarted"),
      msdyn_eventtimestamp: new Date().toISOString(),
    };
    const res = await api.post("msdyn_kpieventsdata", event, { prefer: "return=representation" });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json<{ msdyn_kpieventdataid: string }>().msdyn_kpieventdataid;
    const [record] = await recordsOf(requestIdOf(res), { flush: false });
    expect(record).toMatchObject({
      operationName: "msdyn_kpieventsdata.Create",
      resultSignature: "201",
      properties: { writtenRecords: { msdyn_kpieventsdata: [id] } },
    });

    // Refused by the rules (no such session): no event, and a ClientError record of the refusal.
    const refused = await api.post("msdyn_kpieventsdata", { ...event, msdyn_providersessionid: "nope" });
    expect(refused.statusCode).toBe(400);
    expect(await onlyRecordOf(refused)).toMatchObject({ category: "Audit", resultType: "ClientError", resultSignature: "400" });
  });

  it("logs a read as Operational, written within AUDIT_FLUSH_MS without being asked", async () => {
    const res = await api.get("msdyn_ciproviders?$top=1");
    expect(res.statusCode).toBe(200);
    let list: ApiEventRecord[] = [];
    for (let i = 0; i < 50 && list.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      list = await recordsOf(requestIdOf(res), { flush: false });
    }
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      operationName: "msdyn_ciproviders.RetrieveMultiple",
      category: "Operational",
      resultType: "Success",
      resultSignature: "200",
      uri: "http://localhost:80/api/data/v9.2/msdyn_ciproviders?$top=1",
      identity: { Authorization: { RequiredRoles: ["Administrator", "Analyst"] } },
      properties: { method: "GET", operationStatus: "Success" },
    });
    expect(list[0]!.properties.writtenRecords).toBeUndefined();
  });

  it("logs refusals with their status and result type: 401 without a token, 403, 404, 400, 405", async () => {
    const noToken = await apiClient(t, undefined).post("msdyn_ciproviders", { msdyn_name: "x" });
    expect(noToken.statusCode).toBe(401);
    expect(await onlyRecordOf(noToken)).toMatchObject({
      operationName: "msdyn_ciproviders.Create",
      category: "Audit",
      resultType: "ClientError",
      resultSignature: "401",
      level: "Warning",
      properties: { operationStatus: "ClientError", errorCode: "0x80044302" },
    });
    expect((await onlyRecordOf(noToken)).identity).toBeUndefined();

    const forbidden = await providerWriter.post("msdyn_ciproviders", { msdyn_name: "x" });
    expect(forbidden.statusCode).toBe(403);
    expect(await onlyRecordOf(forbidden)).toMatchObject({
      resultSignature: "403",
      identity: { Authorization: { UserRole: "ChannelProvider", RequiredRoles: ["Administrator"] } },
    });

    const missing = await api.get("nosuchset");
    expect(missing.statusCode).toBe(404);
    expect(await onlyRecordOf(missing)).toMatchObject({
      category: "Operational",
      resultSignature: "404",
      resultType: "ClientError",
    });

    const bad = await api.post("msdyn_ciproviders", { nope: 1 });
    expect(bad.statusCode).toBe(400);
    expect(await onlyRecordOf(bad)).toMatchObject({ resultSignature: "400", properties: { errorCode: expect.any(String) } });

    const readOnly = await api.del(`CIEventsAudit(${randomUUID()})`);
    expect(readOnly.statusCode).toBe(405);
    expect(await onlyRecordOf(readOnly)).toMatchObject({ category: "Audit", resultSignature: "405" });
  });

  it("logs a $batch as its envelope and one record per part; a change set rolled back leaves no Success record of its parts", async () => {
    const name = `Batched ${randomUUID()}`;
    const res = await api.batch([
      batchRequest("GET", "msdyn_ciproviders?$top=1"),
      [batchRequest("POST", "msdyn_ciproviders", { msdyn_name: name }), batchRequest("POST", "msdyn_ciproviders", { nope: 1 })],
    ]);
    expect(res.statusCode).toBe(400);
    const { rows } = await t.testDb.pool.query("SELECT count(*)::int AS n FROM msdyn_ciprovider WHERE msdyn_name = $1", [name]);
    expect(rows[0].n).toBe(0);

    const list = await recordsOf(requestIdOf(res));
    const envelope = list.find((r) => !r.properties.batchPart);
    expect(envelope).toMatchObject({ operationName: "$batch", category: "Audit", resultSignature: "400" });
    const parts = list
      .filter((r) => r.properties.batchPart)
      .sort((a, b) => a.properties.batchPart!.index - b.properties.batchPart!.index);
    expect(parts.map((p) => [p.properties.batchPart!.index, p.operationName, p.category, p.resultSignature])).toEqual([
      [1, "msdyn_ciproviders.RetrieveMultiple", "Operational", "200"],
      [2, "msdyn_ciproviders.Create", "Audit", "424"],
      [3, "msdyn_ciproviders.Create", "Audit", "400"],
    ]);
    expect(parts[1]!.properties.batchPart).toMatchObject({ changeSet: 1 });
    expect(list.filter((r) => r.category === "Audit" && r.resultType === "Success")).toEqual([]);
  });

  it("commits a change set's parts' records with the change set", async () => {
    const name = `Committed ${randomUUID()}`;
    const res = await api.batch([[batchRequest("POST", "msdyn_ciproviders", { msdyn_name: name })]]);
    expect(res.statusCode).toBe(200);
    const list = await recordsOf(requestIdOf(res), { flush: false });
    // The envelope waits for the flush; the part's record came with its transaction.
    expect(list.map((r) => [r.operationName, r.resultSignature])).toEqual([["msdyn_ciproviders.Create", "204"]]);
    const { rows } = await t.testDb.pool.query("SELECT msdyn_ciproviderid AS id FROM msdyn_ciprovider WHERE msdyn_name = $1", [
      name,
    ]);
    expect(list[0]!.properties.writtenRecords).toEqual({ msdyn_ciproviders: [rows[0].id] });
  });

  it("names the rows an action wrote: msdyn_LogAnalyticsEvent", async () => {
    const provider = createdId(await api.post("msdyn_ciproviders", { msdyn_name: `P ${randomUUID()}` }));
    await api.patch(`msdyn_ciproviders(${provider})`, { msdyn_enableanalytics: true });
    const c = `c-${randomUUID()}`;
    await api.post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_name: c, msdyn_providerid: provider });
    await api.post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
    const correlationId = randomUUID();
    const res = await api.post("msdyn_LogAnalyticsEvent", {
      correlationId,
      eventName: "SessionStarted",
      data: { conversationId: c, providerSessionId: "s-1", events: [{ eventTimestamp: new Date().toISOString() }] },
    });
    expect(res.statusCode, res.body).toBe(200);
    // The call's correlation id is the record's.
    const [record] = await recordsOf(correlationId, { flush: false });
    expect(record).toMatchObject({ operationName: "msdyn_LogAnalyticsEvent", category: "Audit", resultSignature: "200" });
    expect(record!.properties.writtenRecords?.msdyn_kpieventsdata).toHaveLength(1);
  });

  it("logs each call of the token endpoint as an Audit record: the client, the outcome, never the secret or the token", async () => {
    const tokenCall = (secret: string, query = "") =>
      t.app.inject({
        method: "POST",
        url: `/${admin.tenant}/oauth2/v2.0/token${query}`,
        headers: { host: "localhost:80", "content-type": "application/x-www-form-urlencoded" },
        payload: new URLSearchParams({
          grant_type: "client_credentials",
          client_id: admin.clientId,
          client_secret: secret,
          scope: `${INJECT_BASE}/.default`,
        }).toString(),
      });
    const issued = await tokenCall(admin.clientSecret);
    expect(issued.statusCode, issued.body).toBe(200);
    const granted = await onlyRecordOf(issued);
    expect(granted).toMatchObject({
      operationName: "oauth2.Token",
      category: "Audit",
      resultType: "Success",
      resultSignature: "200",
      identity: { Authorization: { UserRole: "Administrator" } },
      properties: { method: "POST", callerObjectId: admin.id, tenantId: organization.id },
    });

    const wrongSecret = `wrong-${randomUUID()}`;
    const refused = await tokenCall(wrongSecret, `?client_secret=${wrongSecret}`);
    expect(refused.statusCode, refused.body).toBe(401);
    const denied = await onlyRecordOf(refused);
    expect(denied).toMatchObject({
      operationName: "oauth2.Token",
      category: "Audit",
      resultType: "ClientError",
      resultSignature: "401",
      properties: { errorCode: "invalid_client", tenantId: organization.id },
    });
    expect(denied.identity).toBeUndefined();

    const accessToken = issued.json<{ access_token: string }>().access_token;
    for (const record of [granted, denied]) {
      const text = JSON.stringify(record);
      for (const secret of [admin.clientSecret, wrongSecret, accessToken.split(".")[2]!]) expect(text).not.toContain(secret);
    }
  });

  it("keeps every secret out: no bearer token, no client secret, in any record", async () => {
    await api.get("msdyn_ciproviders?$top=1");
    await apiClient(t, "not.a.token").get("msdyn_ciproviders");
    await t.app.auditLog!.flush();
    const signature = adminToken.split(".")[2]!;
    for (const table of ["cieventsaudit", "cieventsoperational"]) {
      const { rows } = await t.testDb.pool.query(
        `SELECT count(*)::int AS n FROM ${table} WHERE record LIKE '%' || $1 || '%' OR record LIKE '%' || $2 || '%' OR record ILIKE '%bearer%'`,
        [signature, admin.clientSecret],
      );
      expect(rows[0].n, table).toBe(0);
    }
  });

  it("serves the tables through the Web API, read-only, to administrators and analysts only", async () => {
    const res = await analyst.get(
      "CIEventsAudit?$filter=operationname eq 'msdyn_ciproviders.Create'&$orderby=timegenerated desc&$top=2&$select=operationname,resultsignature,callerobjectid",
    );
    expect(res.statusCode, res.body).toBe(200);
    const value = res.json<{ value: Array<{ operationname: string }> }>().value;
    expect(value.length).toBeGreaterThan(0);
    expect(value.every((v) => v.operationname === "msdyn_ciproviders.Create")).toBe(true);

    const grouped = await analyst.get("CIEventsOperational?$apply=groupby((resultsignature),aggregate($count as n))");
    expect(grouped.statusCode, grouped.body).toBe(200);

    expect((await providerWriter.get("CIEventsAudit")).statusCode).toBe(403);
    expect((await providerWriter.get("CIEventsOperational")).statusCode).toBe(403);

    // Not even an administrator writes them.
    for (const write of [
      api.post("CIEventsAudit", { operationname: "forged" }),
      api.patch(`CIEventsAudit(${randomUUID()})`, { operationname: "forged" }),
      api.del(`CIEventsOperational(${randomUUID()})`),
      api.post("CIEventsAudit/Microsoft.Dynamics.CRM.CreateMultiple", { Targets: [] }),
    ]) {
      const refused = await write;
      expect(refused.statusCode, refused.body).toBe(405);
      expect(refused.headers.allow).toBe("GET");
    }
  });
});
