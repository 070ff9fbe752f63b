/**
 * The Azure Storage log destination against a real Azurite: Azure Monitor's container and
 * blob layout, JSON Lines in append blobs, 4 MiB blocks cut at line ends, the 50,000-block
 * budget, failures that reject (and say where, without the key), and settings validation.
 */
import { randomUUID } from "node:crypto";
import net from "node:net";
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiEventRecord, type LogRecord, type WorkflowEventRecord, serialized } from "../../src/audit/azure-monitor.js";
import {
  AzureStorageDestination,
  type AzureStorageError,
  type AzureStorageSettings,
  parseAzureStorageSettings,
} from "../../src/audit/destinations/azure-storage.js";
import { type Azurite, DEV_ACCOUNT, DEV_KEY, startAzurite } from "../helpers/azurite.js";

const MiB = 1024 * 1024;
/** Every blob name this destination writes. */
const BLOB_NAME = /^resourceId=(\/[^=]+)\/y=(\d{4})\/m=(\d{2})\/d=(\d{2})\/h=(\d{2})\/m=00\/PT1H\.json$/;

/** A resource id of its own per test (lower-case parts, to see them upper-cased), so tests share containers safely. */
const newResourceId = () =>
  `/subscriptions/${randomUUID()}/resourceGroups/rg-ci/providers/Microsoft.D365CustomerInsights/instances/${randomUUID()}`;

function apiEvent(resourceId: string, n: number, overrides: Partial<ApiEventRecord["properties"]> = {}): ApiEventRecord {
  return {
    time: "2020-01-01T00:00:00.0000000Z",
    resourceId: resourceId.toUpperCase(),
    operationName: "Segments.UpdateSegmentAsync",
    category: "Audit",
    resultType: "Success",
    resultSignature: "200",
    durationMs: n,
    level: "Informational",
    uri: `https://ci.example/api/segments/${n}`,
    properties: {
      eventType: "ApiEvent",
      eventId: `api-${n}-${randomUUID()}`,
      userAgent: "vitest",
      method: "PUT",
      path: `/api/segments/${n}`,
      origin: "unknown",
      operationStatus: "Success",
      tenantId: "t-1",
      tenantName: "Contoso",
      instanceId: "i-1",
      ...overrides,
    },
  };
}

function workflowEvent(resourceId: string, n: number): WorkflowEventRecord {
  return {
    time: "2020-01-01T00:00:00.0000000Z",
    resourceId: resourceId.toUpperCase(),
    operationName: "Forwarding.WorkflowCompleted",
    category: "Operational",
    resultType: "Successful",
    level: "Informational",
    properties: {
      eventType: "WorkflowEvent",
      eventId: `wf-${n}-${randomUUID()}`,
      workflowJobId: `job-${n}`,
      operationType: "Forwarding",
      startTimestamp: "2020-01-01T00:00:00.00000Z",
      submittedTimestamp: "2020-01-01T00:00:00.00000Z",
      instanceId: "i-1",
    },
  };
}

/** An ApiEvent whose JSON line is `bytes` long (the padding is in userAgent). */
function eventOfSize(resourceId: string, n: number, bytes: number): ApiEventRecord {
  const base = Buffer.byteLength(`${JSON.stringify(apiEvent(resourceId, n, { eventId: `big-${n}`, userAgent: "" }))}\n`);
  return apiEvent(resourceId, n, { eventId: `big-${n}`, userAgent: "x".repeat(bytes - base) });
}

const eventIds = (records: readonly LogRecord[]) => records.map((r) => r.properties.eventId);

describe("the Azure Storage destination", () => {
  let azurite: Azurite;
  let service: BlobServiceClient;
  const opened: AzureStorageDestination[] = [];

  /** A destination on the test's Azurite; fails fast, so that outages show within the test. */
  const destination = (settings: Partial<AzureStorageSettings> & { resourceId: string }, options = {}) => {
    const made = new AzureStorageDestination(
      { connectionString: azurite.connectionString, retry: { maxTries: 2, retryDelayMs: 50 }, timeoutMs: 5_000, ...settings },
      options,
    );
    opened.push(made);
    return made;
  };

  /** The blobs under a resource's prefix in a container, as a user of the account lists them. */
  async function blobsOf(container: string, resourceId: string): Promise<string[]> {
    const names: string[] = [];
    const client = service.getContainerClient(container);
    if (!(await client.exists())) return names;
    for await (const blob of client.listBlobsFlat({ prefix: `resourceId=${resourceId.toUpperCase()}/` })) names.push(blob.name);
    return names;
  }

  async function read(container: string, blobName: string) {
    const blob = service.getContainerClient(container).getAppendBlobClient(blobName);
    const text = (await blob.downloadToBuffer()).toString("utf8");
    const properties = await blob.getProperties();
    expect(text.endsWith("\n"), "the blob ends with a line end").toBe(true);
    const lines = text.slice(0, -1).split("\n");
    return { text, records: lines.map((line) => JSON.parse(line) as LogRecord), properties };
  }

  beforeAll(async () => {
    azurite = await startAzurite();
    service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  });
  afterAll(async () => {
    await Promise.all(opened.map((d) => d.close()));
    await azurite?.dispose();
  });

  it("puts each category in its own container, at resourceId=<ID UPPER-CASED>/y/m/d/h of the send hour (UTC)/m=00/PT1H.json, as JSON lines", async () => {
    const resourceId = newResourceId();
    const dest = destination({ resourceId });
    const audit = [apiEvent(resourceId, 1), apiEvent(resourceId, 2)];
    const operational = [workflowEvent(resourceId, 3)];
    const before = new Date();
    await dest.send("Audit", audit.map(serialized));
    await dest.send("Operational", operational.map(serialized));
    const after = new Date();

    const sentHours = [before, after].map((d) => d.toISOString().slice(0, 13)); // 2024-05-01T13
    for (const [container, records] of [
      ["insight-logs-audit", audit],
      ["insight-logs-operational", operational],
    ] as const) {
      const names = await blobsOf(container, resourceId);
      expect(names, container).toHaveLength(1);
      const match = BLOB_NAME.exec(names[0]!);
      expect(match, names[0]).not.toBeNull();
      const [, id, y, m, d, h] = match!;
      expect(id).toBe(resourceId.toUpperCase());
      expect(sentHours).toContain(`${y}-${m}-${d}T${h}`);
      const { text, records: stored } = await read(container, names[0]!);
      expect(text).toBe(records.map((r) => `${JSON.stringify(r)}\n`).join(""));
      expect(stored).toEqual(records);
    }
  });

  it("picks the hour by the time of sending, not the records' time, zero-padded", async () => {
    const resourceId = newResourceId();
    let now = new Date("2024-01-02T03:59:59.999Z");
    const dest = destination({ resourceId, containers: { Audit: "hours-audit" } }, { now: () => now });
    const first = [apiEvent(resourceId, 1)]; // record time 2020-01-01T00
    await dest.send("Audit", first.map(serialized));
    now = new Date("2024-01-02T04:00:00.000Z");
    const second = [apiEvent(resourceId, 2)];
    await dest.send("Audit", second.map(serialized));

    const prefix = `resourceId=${resourceId.toUpperCase()}/y=2024/m=01/d=02`;
    expect((await blobsOf("hours-audit", resourceId)).sort()).toEqual([
      `${prefix}/h=03/m=00/PT1H.json`,
      `${prefix}/h=04/m=00/PT1H.json`,
    ]);
    expect(eventIds((await read("hours-audit", `${prefix}/h=03/m=00/PT1H.json`)).records)).toEqual(eventIds(first));
    expect(eventIds((await read("hours-audit", `${prefix}/h=04/m=00/PT1H.json`)).records)).toEqual(eventIds(second));
  });

  it("appends a second send in the same hour to the same append blob, after the first", async () => {
    const resourceId = newResourceId();
    const dest = destination({ resourceId }, { now: () => new Date("2024-05-01T13:05:12Z") });
    const first = [apiEvent(resourceId, 1), apiEvent(resourceId, 2)];
    const second = [apiEvent(resourceId, 3)];
    await dest.send("Audit", first.map(serialized));
    await dest.send("Audit", second.map(serialized));

    const names = await blobsOf("insight-logs-audit", resourceId);
    expect(names).toEqual([`resourceId=${resourceId.toUpperCase()}/y=2024/m=05/d=01/h=13/m=00/PT1H.json`]);
    const { records, properties } = await read("insight-logs-audit", names[0]!);
    expect(eventIds(records)).toEqual(eventIds([...first, ...second]));
    expect(properties.blobType).toBe("AppendBlob");
    expect(properties.blobCommittedBlockCount).toBe(2);
  });

  it("splits a batch over 4 MiB into blocks of at most 4 MiB, cut only at line ends", async () => {
    const resourceId = newResourceId();
    const dest = destination({ resourceId, containers: { Operational: "big-operational" } });
    // Five 1.5 MiB lines: two fit a 4 MiB block, so 3 blocks (a byte cut would make 2, no cut 1).
    const records = [1, 2, 3, 4, 5].map((n) => eventOfSize(resourceId, n, 1.5 * MiB));
    await dest.send("Operational", records.map(serialized));

    const [name] = await blobsOf("big-operational", resourceId);
    const { records: stored, properties } = await read("big-operational", name!);
    expect(properties.blobCommittedBlockCount).toBe(3);
    expect(properties.contentLength).toBe(5 * 1.5 * MiB);
    expect(eventIds(stored)).toEqual(eventIds(records));
  });

  it("refuses a record over 4 MiB, writing nothing of its send", async () => {
    const resourceId = newResourceId();
    const dest = destination({ resourceId, containers: { Audit: "oversize-audit" } });
    const records = [apiEvent(resourceId, 1), eventOfSize(resourceId, 2, 4 * MiB + 1)];
    const error = (await dest.send("Audit", records.map(serialized)).catch((e: unknown) => e)) as AzureStorageError;
    expect(error.message).toMatch(/record 1 \(eventId big-2\).*4194305 bytes, over the 4194304-byte append-block limit/);
    expect(error.retryable).toBe(false);
    expect(await blobsOf("oversize-audit", resourceId)).toEqual([]);
  });

  it("stores sends made together in the order they were made", async () => {
    const resourceId = newResourceId();
    const dest = destination({ resourceId, containers: { Audit: "order-audit" } });
    const big = [1, 2, 3].map((n) => eventOfSize(resourceId, n, 3 * MiB)); // 3 blocks
    const small = [apiEvent(resourceId, 4)];
    await Promise.all([dest.send("Audit", big.map(serialized)), dest.send("Audit", small.map(serialized))]);
    const [name] = await blobsOf("order-audit", resourceId);
    expect(eventIds((await read("order-audit", name!)).records)).toEqual(eventIds([...big, ...small]));
  });

  it("rejects a send that would take an hour's blob past its block budget, writing nothing; the retry goes to the next hour", async () => {
    const resourceId = newResourceId();
    let now = new Date("2024-05-01T13:00:00Z");
    const options = { now: () => now, maxBlocksPerBlob: 3 };
    const dest = destination({ resourceId, containers: { Audit: "budget-audit" } }, options);
    const sent = [1, 2, 3].map((n) => [apiEvent(resourceId, n)]);
    for (const records of sent) await dest.send("Audit", records.map(serialized));
    const late = [apiEvent(resourceId, 4)];
    await expect(dest.send("Audit", late.map(serialized))).rejects.toThrow(
      /budget-audit\/resourceId=.*\/h=13\/m=00\/PT1H\.json is full \(3 of 3 blocks.*next hour's blob/,
    );
    // The count comes from the blob, not from memory: a new destination knows it is full too.
    await expect(
      destination({ resourceId, containers: { Audit: "budget-audit" } }, options).send("Audit", late.map(serialized)),
    ).rejects.toThrow(/is full \(3 of 3 blocks/);
    const h13 = `resourceId=${resourceId.toUpperCase()}/y=2024/m=05/d=01/h=13/m=00/PT1H.json`;
    expect(eventIds((await read("budget-audit", h13)).records)).toEqual(eventIds(sent.flat()));

    now = new Date("2024-05-01T14:00:00Z");
    await dest.send("Audit", late.map(serialized));
    expect(eventIds((await read("budget-audit", h13.replace("h=13", "h=14"))).records)).toEqual(eventIds(late));
  });

  it("rejects, fast and saying where, while Azurite is down; the same records send once it is back, none lost", async () => {
    const resourceId = newResourceId();
    const dest = destination({ resourceId, containers: { Audit: "outage-audit" } });
    const before = [apiEvent(resourceId, 1)];
    await dest.send("Audit", before.map(serialized));

    await azurite.stop();
    const retried = [apiEvent(resourceId, 2), apiEvent(resourceId, 3)];
    const started = Date.now();
    let error: Error | undefined;
    try {
      await dest.send("Audit", retried.map(serialized));
    } catch (e) {
      error = e as Error;
    } finally {
      await azurite.start();
    }
    expect(Date.now() - started).toBeLessThan(15_000); // the restart included
    expect(error?.message).toMatch(/could not store 2 records in outage-audit\/resourceId=.*\/PT1H\.json: .*ECONNREFUSED/);
    expect(error?.message).not.toContain(DEV_KEY);
    expect(error?.message).not.toMatch(/AccountKey/i);

    await dest.send("Audit", retried.map(serialized));
    const [name] = await blobsOf("outage-audit", resourceId);
    expect(eventIds((await read("outage-audit", name!)).records)).toEqual(eventIds([...before, ...retried]));
  });

  it("gives up on an endpoint that never answers after timeoutMs", async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => void sockets.add(socket)); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const dest = new AzureStorageDestination({
        connectionString: `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};BlobEndpoint=http://127.0.0.1:${port}/${DEV_ACCOUNT};`,
        resourceId: newResourceId(),
        retry: { maxTries: 1 },
        timeoutMs: 300,
      });
      const started = Date.now();
      await expect(dest.send("Audit", [apiEvent("/x", 1)].map(serialized))).rejects.toThrow(
        /insight-logs-audit\/.*: no answer within 300 ms/,
      );
      expect(Date.now() - started).toBeLessThan(3_000);
      await dest.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("says why storage refused a send (a wrong key: HTTP 403) without the key", async () => {
    const wrongKey = Buffer.from("not the key of this account, at all").toString("base64");
    const dest = new AzureStorageDestination({
      connectionString: azurite.connectionString.replace(DEV_KEY, wrongKey),
      resourceId: newResourceId(),
      retry: { maxTries: 1 },
    });
    const error = (await dest
      .send("Operational", [workflowEvent("/x", 1)].map(serialized))
      .catch((e: unknown) => e)) as AzureStorageError;
    expect(error.message).toMatch(
      /could not store 1 records in insight-logs-operational\/resourceId=.*: HTTP 403 AuthorizationFailure/,
    );
    expect(error.statusCode).toBe(403);
    expect(error.message).not.toContain(wrongKey);
    expect(error.message).not.toMatch(/AccountKey/i);
    await dest.close();
  });

  it("finishes the sends already made on close, then refuses more", async () => {
    const resourceId = newResourceId();
    const dest = destination({ resourceId, containers: { Audit: "close-audit" } });
    const records = [apiEvent(resourceId, 1)];
    const sending = dest.send("Audit", records.map(serialized));
    await dest.close();
    await sending;
    expect(await blobsOf("close-audit", resourceId)).toHaveLength(1);
    await expect(dest.send("Audit", records.map(serialized))).rejects.toThrow(/closed/);
  });

  it("describes itself by account, endpoint and containers, with no key and no SAS signature", () => {
    const resourceId = newResourceId();
    const described = destination({ resourceId }).describe();
    expect(described).toEqual({
      destination: "azure-storage",
      account: DEV_ACCOUNT,
      endpoint: `http://127.0.0.1:${azurite.port}/${DEV_ACCOUNT}`,
      containers: { Audit: "insight-logs-audit", Operational: "insight-logs-operational" },
      resourceId,
    });
    expect(JSON.stringify(described)).not.toContain(DEV_KEY);

    const sas = new AzureStorageDestination({
      connectionString:
        "BlobEndpoint=https://contoso.blob.core.windows.net;SharedAccessSignature=sv=2022-11-02&sp=rwac&sig=SECRETSIG%3D",
      resourceId,
    }).describe();
    expect(sas).toMatchObject({ account: "contoso", endpoint: "https://contoso.blob.core.windows.net/" });
    expect(JSON.stringify(sas)).not.toContain("SECRETSIG");
  });
});

describe("Azure Storage destination settings", () => {
  const valid = {
    connectionString: `AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY}`,
    resourceId: "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.D365CUSTOMERINSIGHTS/INSTANCES/I",
  };
  const problem = (settings: unknown) => {
    try {
      parseAzureStorageSettings(settings);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error("the settings were accepted");
  };

  it("defaults the containers to Customer Insights' names", () => {
    expect(parseAzureStorageSettings(valid).containers).toEqual({
      Audit: "insight-logs-audit",
      Operational: "insight-logs-operational",
    });
    expect(parseAzureStorageSettings({ ...valid, containers: { Audit: "my-audit" } }).containers).toEqual({
      Audit: "my-audit",
      Operational: "insight-logs-operational",
    });
  });

  it.each<[string, unknown, RegExp]>([
    [
      "a missing connection string",
      { resourceId: valid.resourceId },
      /^Invalid Azure Storage settings: connectionString: required/,
    ],
    [
      "a connection string without a credential",
      { ...valid, connectionString: "DefaultEndpointsProtocol=https;AccountKey=SECRET123==" },
      /connectionString: must hold AccountName and AccountKey/,
    ],
    ["a missing resource id", { connectionString: valid.connectionString }, /resourceId: required/],
    ["a resource id that is not an ARM id", { ...valid, resourceId: "subscriptions/a b" }, /resourceId: must be an ARM id/],
    [
      "an invalid container name",
      { ...valid, containers: { Audit: "Audit_Logs" } },
      /containers\.Audit: must be an Azure container name/,
    ],
    ["a container for no category", { ...valid, containers: { Audits: "a-b-c" } }, /containers: Unrecognized key: "Audits"/],
    ["an unknown setting", { ...valid, container: "x" }, /Unrecognized key: "container"/],
    ["no tries", { ...valid, retry: { maxTries: 0 } }, /retry\.maxTries: must be at least 1/],
    ["a timeout that is not a number", { ...valid, timeoutMs: "5" }, /timeoutMs: must be a number/],
  ])("names the field: %s", (_what, settings, message) => {
    const text = problem(settings);
    expect(text).toMatch(message);
    expect(text).not.toContain("SECRET123");
    expect(text).not.toContain(DEV_KEY);
  });

  it("refuses bad settings in the constructor with the same message", () => {
    expect(() => new AzureStorageDestination({ ...valid, resourceId: "" })).toThrow(/resourceId: must be an ARM id/);
  });

  it("never echoes the connection string", () => {
    const text = problem({ ...valid, connectionString: 42 });
    expect(text).toMatch(/connectionString: required/);
    const keyOnly = problem({ ...valid, connectionString: `AccountKey=${DEV_KEY}` });
    expect(keyOnly).not.toContain(DEV_KEY);
  });
});
