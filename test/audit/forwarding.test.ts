/**
 * Forwarding (issue 12), end to end: an administrator adds an Azure Storage destination
 * (a local Azurite) and a JetStream one (the local NATS) through the admin API; every
 * record of the calls that follow reaches the right PT1H.json blob and the right stream;
 * Azurite stopped mid-load holds nothing else up and loses nothing: its backlog drains
 * when it is back, and the failure and the recovery are WorkflowEvents.
 */
import { randomUUID } from "node:crypto";
import { BlobServiceClient } from "@azure/storage-blob";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { type NatsConnection, connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogRecord } from "../../src/audit/azure-monitor.js";
import { useTestApp } from "../helpers/app.js";
import { type Azurite, startAzurite } from "../helpers/azurite.js";
import { testDataDir, testPrincipal, tokenOf } from "../helpers/identity.js";
import { createdId } from "../helpers/records.js";
import { type ApiClient, apiClient } from "../helpers/tenancy.js";

const NATS = "127.0.0.1:4222";
const run = randomUUID().slice(0, 8);
const STREAMS = { Audit: `TEST_FWD_${run}_AUDIT`, Operational: `TEST_FWD_${run}_OPERATIONAL` };

let debugState: (() => Promise<string>) | undefined;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it is true, at most `timeoutMs` (bounded in count too). */
async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < until; i++) {
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}${debugState ? ` (${await debugState()})` : ""}`);
}

interface DestinationView {
  id: string;
  name: string;
  status: string;
  target: Record<string, unknown>;
  forwarding: Array<{ category: string; forwarded: number; backlog: number; lastError?: string; failingSince?: string }>;
}

describe("forwarding the logs to Azure Storage and JetStream", () => {
  const t = useTestApp({
    AUTH_MODE: "builtin",
    DATA_DIR: testDataDir(),
    AUDIT_FLUSH_MS: "50",
    AUDIT_FORWARD_INTERVAL_MS: "50",
  });
  let azurite: Azurite;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let admin: ApiClient;
  let since: Date;

  beforeAll(async () => {
    azurite = await startAzurite();
    nc = await connect({ servers: NATS });
    jsm = await jetstreamManager(nc);
    admin = apiClient(t, await tokenOf(t.app, await testPrincipal(t.app, ["Administrator"])));
    debugState = async () => JSON.stringify((await t.testDb.pool.query("SELECT * FROM cif_control.log_cursor")).rows);
  });

  afterAll(async () => {
    for (const name of Object.values(STREAMS)) await jsm?.streams.delete(name).catch(() => {});
    await nc?.close();
    await azurite?.dispose();
  });

  const destinations = async (): Promise<DestinationView[]> => {
    const res = await admin.inject("GET", "/api/admin/log-destinations");
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ value: DestinationView[] }>().value;
  };

  /** The event ids of the records written to the log tables since the destinations were added. */
  async function loggedIds(category: "Audit" | "Operational"): Promise<Set<string>> {
    const table = category === "Audit" ? "cieventsaudit" : "cieventsoperational";
    const { rows } = await t.testDb.pool.query<{ id: string }>(
      `SELECT ${table}id::text AS id FROM ${table} WHERE timegenerated >= $1`,
      [since],
    );
    return new Set(rows.map((r) => r.id));
  }

  /** Every record in the container's blobs, by line. */
  async function blobRecords(container: string): Promise<Array<{ blob: string; record: LogRecord }>> {
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const client = service.getContainerClient(container);
    if (!(await client.exists())) return [];
    const out: Array<{ blob: string; record: LogRecord }> = [];
    for await (const blob of client.listBlobsFlat()) {
      const text = (await client.getBlobClient(blob.name).downloadToBuffer()).toString("utf8");
      for (const line of text.split("\n").filter(Boolean)) out.push({ blob: blob.name, record: JSON.parse(line) as LogRecord });
    }
    return out;
  }

  async function streamIds(category: "Audit" | "Operational"): Promise<string[]> {
    const info = await jsm.streams.info(STREAMS[category]).catch(() => undefined);
    if (!info || info.state.messages === 0) return [];
    const consumer = await jetstream(nc).consumers.get(STREAMS[category]);
    const seen: string[] = [];
    const messages = await consumer.consume();
    for await (const message of messages) {
      seen.push(message.json<LogRecord>().properties.eventId);
      if (message.info.pending === 0 || seen.length >= info.state.messages) break;
    }
    await messages.close();
    return seen;
  }

  async function someCalls(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const id = createdId(await admin.post("msdyn_ciproviders", { msdyn_name: `Forwarded ${randomUUID()}` }));
      expect((await admin.get(`msdyn_ciproviders(${id})`)).statusCode).toBe(200);
      await admin.post("msdyn_ciproviders", { nope: 1 });
    }
  }

  it("refuses bad settings with the field named, and keeps secrets out of the answers", async () => {
    const bad = await admin.inject("POST", "/api/admin/log-destinations", {
      name: "bad",
      resourceType: "AzureStorage",
      settings: { connectionString: "nonsense" },
      categories: ["Audit"],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { message: string } }>().error.message).toContain("connectionString");

    const unknownType = await admin.inject("POST", "/api/admin/log-destinations", {
      name: "bad",
      resourceType: "EventHub",
      settings: {},
      categories: ["Audit"],
    });
    expect(unknownType.statusCode).toBe(400);

    const analyst = apiClient(t, await tokenOf(t.app, await testPrincipal(t.app, ["Analyst"])));
    expect((await analyst.inject("GET", "/api/admin/log-destinations")).statusCode).toBe(403);
  });

  it("delivers every record to the right blob and stream within seconds", async () => {
    const storage = await admin.inject("POST", "/api/admin/log-destinations", {
      name: "storage",
      resourceType: "AzureStorage",
      settings: { connectionString: azurite.connectionString, retry: { maxTries: 1, tryTimeoutMs: 2000 }, timeoutMs: 2000 },
      categories: ["Audit", "Operational"],
    });
    expect(storage.statusCode, storage.body).toBe(201);
    expect(storage.body).not.toContain("AccountKey");
    const stream = await admin.inject("POST", "/api/admin/log-destinations", {
      name: "stream",
      resourceType: "JetStream",
      settings: { servers: NATS, streams: STREAMS, subjectPrefix: `test-fwd-${run}.insight-logs`, timeoutMs: 2000 },
      categories: ["Audit", "Operational"],
    });
    expect(stream.statusCode, stream.body).toBe(201);
    const duplicate = await admin.inject("POST", "/api/admin/log-destinations", {
      name: "stream",
      resourceType: "JetStream",
      settings: { servers: NATS },
      categories: ["Audit"],
    });
    expect(duplicate.statusCode).toBe(409);
    // Forwarding starts at the log's end: the records of the calls from here on.
    since = new Date();

    await someCalls(3);
    await t.app.auditLog!.flush();
    const audit = await loggedIds("Audit");
    const operational = await loggedIds("Operational");
    expect(audit.size).toBeGreaterThanOrEqual(6);
    expect(operational.size).toBeGreaterThanOrEqual(3);

    await eventually(async () => {
      const blobs = new Set((await blobRecords("insight-logs-audit")).map((r) => r.record.properties.eventId));
      return [...audit].every((id) => blobs.has(id));
    }, "every Audit record in insight-logs-audit");
    await eventually(async () => {
      const blobs = new Set((await blobRecords("insight-logs-operational")).map((r) => r.record.properties.eventId));
      return [...operational].every((id) => blobs.has(id));
    }, "every Operational record in insight-logs-operational");

    const lines = await blobRecords("insight-logs-audit");
    for (const { blob, record } of lines) {
      expect(record.category).toBe("Audit");
      expect(blob).toMatch(
        /^resourceId=\/SUBSCRIPTIONS\/.+\/ORGANIZATIONS\/[0-9A-F-]{36}\/y=\d{4}\/m=\d\d\/d=\d\d\/h=\d\d\/m=00\/PT1H\.json$/,
      );
    }

    await eventually(async () => {
      const ids = new Set(await streamIds("Audit"));
      return [...audit].every((id) => ids.has(id));
    }, "every Audit record on its stream");
    const auditStream = await streamIds("Audit");
    // Once each (JetStream drops a repeat with the same Nats-Msg-Id).
    expect(new Set(auditStream).size).toBe(auditStream.length);

    await eventually(async () => (await destinations()).every((d) => d.status === "Healthy"), "both healthy");
    const listed = await destinations();
    expect(listed.map((d) => d.name)).toEqual(["storage", "stream"]);
    expect(JSON.stringify(listed)).not.toContain("AccountKey");
    expect(listed[0]!.forwarding.find((f) => f.category === "Audit")!.forwarded).toBeGreaterThanOrEqual(audit.size);
  });

  it("holds nothing up while Azurite is down, loses nothing, and drains its backlog when it is back", async () => {
    await azurite.stop();
    await someCalls(3);
    await t.app.auditLog!.flush();
    // The stream goes on while storage is down.
    const auditNow = await loggedIds("Audit");
    await eventually(async () => {
      const ids = new Set(await streamIds("Audit"));
      return [...auditNow].every((id) => ids.has(id));
    }, "the stream keeps up during the storage outage");
    await eventually(async () => {
      const storage = (await destinations()).find((d) => d.name === "storage")!;
      return storage.status === "Failing" && storage.forwarding.some((f) => f.backlog > 0 && f.lastError);
    }, "storage listed as failing, with a backlog");
    await t.app.auditLog!.flush(); // the failure's WorkflowEvent was buffered as it was told
    const { rows: failures } = await t.testDb.pool.query(
      "SELECT record FROM cieventsoperational WHERE operationname = 'Forwarding.TaskCompleted' AND resulttype = 'Failure' AND friendlyname = 'storage'",
    );
    expect(failures.length).toBe(1);
    expect(JSON.parse(failures[0].record as string)).toMatchObject({
      category: "Operational",
      properties: { eventType: "WorkflowEvent" },
    });
    expect(failures[0].record).not.toContain("AccountKey");

    await azurite.start();
    await someCalls(1);
    await t.app.auditLog!.flush();
    const audit = await loggedIds("Audit");
    await eventually(
      async () => {
        const blobs = new Set((await blobRecords("insight-logs-audit")).map((r) => r.record.properties.eventId));
        return [...audit].every((id) => blobs.has(id));
      },
      "the backlog drained into insight-logs-audit",
      60_000,
    );
    await eventually(async () => {
      const storage = (await destinations()).find((d) => d.name === "storage")!;
      return storage.status === "Healthy" && storage.forwarding.every((f) => f.backlog === 0);
    }, "storage healthy again, no backlog");
    // The recovery is told once the pass that drained the backlog ends, then buffered (AUDIT_FLUSH_MS).
    const recoveries = async () => {
      await t.app.auditLog!.flush();
      const { rows } = await t.testDb.pool.query(
        "SELECT 1 FROM cieventsoperational WHERE operationname = 'Forwarding.TaskCompleted' AND resulttype = 'Successful' AND friendlyname = 'storage'",
      );
      return rows.length;
    };
    await eventually(async () => (await recoveries()) > 0, "the recovery logged as a WorkflowEvent");
    expect(await recoveries()).toBe(1);
  });

  it("stops forwarding to a removed destination; another organisation's id is missing", async () => {
    const [storage] = await destinations();
    expect((await admin.inject("DELETE", `/api/admin/log-destinations/${storage!.id}`)).statusCode).toBe(204);
    expect((await admin.inject("DELETE", `/api/admin/log-destinations/${storage!.id}`)).statusCode).toBe(404);
    expect((await destinations()).map((d) => d.name)).toEqual(["stream"]);
  });
});
