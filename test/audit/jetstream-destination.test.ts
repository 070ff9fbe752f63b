/**
 * The JetStream log destination against the NATS server on 127.0.0.1:4222: every test uses
 * streams and subjects of its own (random suffix) and deletes them afterwards.
 */
import { randomUUID } from "node:crypto";
import net from "node:net";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ApiEventRecord,
  type LogCategory,
  type LogRecord,
  type WorkflowEventRecord,
  serialized,
} from "../../src/audit/azure-monitor.js";
import { JetStreamDestination, jetStreamSettings, type JetStreamSettings } from "../../src/audit/destinations/jetstream.js";

const NATS = "127.0.0.1:4222";
const TOKEN = "tok-9f2c61d0-secret";

function apiEvent(category: LogCategory = "Audit"): ApiEventRecord {
  return {
    time: "2024-05-01T13:05:12.1234567Z",
    resourceId: "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.D365CUSTOMERINSIGHTS/INSTANCES/i-1",
    operationName: "Conversations.Create",
    category,
    resultType: "Success",
    resultSignature: "201",
    durationMs: 12,
    level: "Informational",
    uri: "http://127.0.0.1/api/data/v9.2/msdyn_ocliveworkitems",
    properties: {
      eventType: "ApiEvent",
      eventId: randomUUID(),
      userAgent: "vitest",
      method: category === "Audit" ? "POST" : "GET",
      path: "/api/data/v9.2/msdyn_ocliveworkitems",
      origin: "unknown",
      operationStatus: "Success",
      tenantId: "t-1",
      tenantName: "Contoso",
      instanceId: "i-1",
    },
  };
}

function workflowEvent(): WorkflowEventRecord {
  return {
    time: "2024-05-01T13:20:00.0000000Z",
    resourceId: "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.D365CUSTOMERINSIGHTS/INSTANCES/i-1",
    operationName: "Forwarding.WorkflowCompleted",
    category: "Operational",
    resultType: "Successful",
    durationMs: 53,
    level: "Informational",
    properties: {
      eventType: "WorkflowEvent",
      eventId: randomUUID(),
      workflowJobId: "wj-1",
      operationType: "Forwarding",
      startTimestamp: "2024-05-01T13:19:07.00000Z",
      submittedTimestamp: "2024-05-01T13:18:55.00000Z",
      instanceId: "i-1",
    },
  };
}

/** Streams and a subject prefix no other test (or run) uses. */
function unique() {
  const id = randomUUID().slice(0, 8);
  return {
    subjectPrefix: `test-${id}.insight-logs`,
    streams: { Audit: `TEST_${id}_AUDIT`, Operational: `TEST_${id}_OPERATIONAL` },
  };
}

/** A TCP listener on 127.0.0.1 that accepts connections and never says a word. */
async function silentListener() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A TCP proxy to the NATS server that can lose the server's replies (stored but never
 * acknowledged), be cut (an outage) and be restored on the same port.
 */
function outageProxy() {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  let muted = false;
  return {
    get port() {
      return port;
    },
    /** From now on, nothing the server sends reaches the client (until the next start). */
    loseReplies: () => {
      muted = true;
    },
    start: () =>
      new Promise<void>((resolve) => {
        muted = false;
        server = net.createServer((client) => {
          const upstream = net.connect(4222, "127.0.0.1");
          for (const socket of [client, upstream]) {
            sockets.add(socket);
            socket.on("error", () => {});
            socket.on("close", () => {
              sockets.delete(socket);
              client.destroy();
              upstream.destroy();
            });
          }
          client.pipe(upstream);
          upstream.on("data", (chunk: Buffer) => {
            if (!muted) client.write(chunk);
          });
        });
        server.listen(port, "127.0.0.1", () => {
          port = (server!.address() as net.AddressInfo).port;
          resolve();
        });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        if (!server) return resolve();
        server.close(() => resolve());
      }),
  };
}

/** The caller's retry loop: the client reconnects on its own schedule (every ~2 s). */
async function sendUntilStored(d: JetStreamDestination, category: LogCategory, records: LogRecord[]): Promise<boolean> {
  for (let attempt = 0; attempt < 15; attempt++) {
    if (
      await d.send(category, records.map(serialized)).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

describe("JetStream log destination", () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams = new Set<string>();
  const destinations: JetStreamDestination[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  /** A destination on its own streams (deleted in afterAll). */
  function destination(settings: Partial<JetStreamSettings> = {}) {
    const names = unique();
    streams.add(names.streams.Audit).add(names.streams.Operational);
    const d = new JetStreamDestination({ servers: NATS, ...names, ...settings });
    destinations.push(d);
    return { destination: d, ...names };
  }

  beforeAll(async () => {
    nc = await connect({ servers: NATS });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await Promise.all(destinations.map((d) => d.close()));
    await Promise.all(cleanups.map((cleanup) => cleanup()));
    for (const stream of streams) await jsm.streams.delete(stream).catch(() => false);
    await nc?.close();
  });

  it("sends each category to its own stream, one message per record: its JSON, Nats-Msg-Id = eventId, JSON content type", async () => {
    const { destination: d, streams: names, subjectPrefix } = destination();
    const audit = [apiEvent(), apiEvent(), apiEvent()];
    const operational = [apiEvent("Operational"), workflowEvent()];
    await d.send("Audit", audit.map(serialized));
    await d.send("Operational", operational.map(serialized));

    for (const [stream, subject, records] of [
      [names.Audit, `${subjectPrefix}.audit`, audit],
      [names.Operational, `${subjectPrefix}.operational`, operational],
    ] as const) {
      const info = await jsm.streams.info(stream);
      expect(info.config.subjects).toEqual([subject]);
      expect(info.state.messages).toBe(records.length);
      for (const [i, record] of records.entries()) {
        const message = await jsm.streams.getMessage(stream, { seq: i + 1 });
        expect(message?.subject).toBe(subject);
        expect(message?.json()).toEqual(record);
        expect(message?.header.get("Nats-Msg-Id")).toBe(record.properties.eventId);
        expect(message?.header.get("Content-Type")).toBe("application/json");
      }
    }
  });

  it("creates missing streams with a duplicate window of two minutes by default, or the configured one", async () => {
    const byDefault = destination();
    await byDefault.destination.send("Audit", [apiEvent()].map(serialized));
    expect((await jsm.streams.info(byDefault.streams.Audit)).config.duplicate_window).toBe(120 * 1e9);

    const configured = destination({ duplicateWindowSeconds: 600 });
    await configured.destination.send("Operational", [workflowEvent()].map(serialized));
    expect((await jsm.streams.info(configured.streams.Operational)).config.duplicate_window).toBe(600 * 1e9);
  });

  it("stores each event once when the same records are sent again: a consumer reads every event exactly once", async () => {
    const { destination: d, streams: names } = destination();
    const records: LogRecord[] = Array.from({ length: 600 }, (_, i) => (i % 2 ? workflowEvent() : apiEvent("Operational")));
    await d.send("Operational", records.map(serialized));
    // The retry after a failure that was in fact stored, partly overlapping a new batch.
    await d.send("Operational", records.map(serialized));
    const more = [workflowEvent(), workflowEvent()];
    await d.send("Operational", [...records.slice(-10), ...more].map(serialized));

    const expected = [...records, ...more].map((r) => r.properties.eventId);
    expect((await jsm.streams.info(names.Operational)).state.messages).toBe(expected.length);

    const consumer = await jetstream(nc).consumers.get(names.Operational); // an ordered consumer
    const seen: string[] = [];
    const messages = await consumer.consume();
    for await (const message of messages) {
      seen.push(message.json<LogRecord>().properties.eventId);
      if (message.info.pending === 0) break;
    }
    expect(seen).toEqual(expected);
  });

  it("leaves the config of an existing stream alone when it captures the subject", async () => {
    const { destination: d, streams: names, subjectPrefix } = destination();
    await jsm.streams.add({
      name: names.Audit,
      subjects: [`${subjectPrefix}.>`],
      max_msgs: 1000,
      description: "made by the operator",
      duplicate_window: 30 * 1e9,
    });
    await d.send("Audit", [apiEvent()].map(serialized));
    const info = await jsm.streams.info(names.Audit);
    expect(info.state.messages).toBe(1);
    expect(info.config).toMatchObject({
      subjects: [`${subjectPrefix}.>`],
      max_msgs: 1000,
      description: "made by the operator",
      duplicate_window: 30 * 1e9,
    });
  });

  it("recreates its stream when it was deleted, after failing the send that found it missing", async () => {
    const { destination: d, streams: names, subjectPrefix } = destination();
    await d.send("Audit", [apiEvent()].map(serialized));
    await jsm.streams.delete(names.Audit);
    await expect(d.send("Audit", [apiEvent()].map(serialized))).rejects.toThrow(
      `stream ${names.Audit} (subject ${subjectPrefix}.audit) not acknowledged: no responders`,
    );
    await d.send("Audit", [apiEvent()].map(serialized));
    expect((await jsm.streams.info(names.Audit)).state.messages).toBe(1);
  });

  it("refuses to publish into another stream that took over its subject", async () => {
    const { destination: d, streams: names, subjectPrefix } = destination();
    await d.send("Audit", [apiEvent()].map(serialized));
    await jsm.streams.delete(names.Audit);
    const other = `${names.Audit}_OTHER`;
    streams.add(other);
    await jsm.streams.add({ name: other, subjects: [`${subjectPrefix}.audit`] });
    await expect(d.send("Audit", [apiEvent()].map(serialized))).rejects.toThrow(
      new RegExp(`to stream ${names.Audit} .* not acknowledged: expected stream does not match`),
    );
    expect((await jsm.streams.info(other)).state.messages).toBe(0);
  });

  it("refuses an existing stream that does not capture its subject, naming both, and leaves the stream alone", async () => {
    const { destination: d, streams: names, subjectPrefix } = destination({ token: TOKEN });
    await jsm.streams.add({ name: names.Audit, subjects: [`${subjectPrefix}.other`] });
    const error = await d.send("Audit", [apiEvent()].map(serialized)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      new RegExp(`stream ${names.Audit} exists but does not capture subject ${subjectPrefix.replace(/\./g, "\\.")}\\.audit`),
    );
    expect(error?.message).not.toContain(TOKEN);
    const info = await jsm.streams.info(names.Audit);
    expect(info.config.subjects).toEqual([`${subjectPrefix}.other`]);
    expect(info.state.messages).toBe(0);
  });

  it("fails within a bounded time against a server that never answers, naming the server and no credential", async () => {
    const silent = await silentListener();
    cleanups.push(silent.close);
    const { destination: d } = destination({ servers: `127.0.0.1:${silent.port}`, token: TOKEN, timeoutMs: 1000 });
    const error = await d.send("Audit", [apiEvent()].map(serialized)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      new RegExp(`^JetStream destination \\(127\\.0\\.0\\.1:${silent.port}\\): cannot connect: no reply within 1000 ms`),
    );
    expect(error?.message).not.toContain(TOKEN);
  }, 10_000);

  it("fails at once against a closed port, naming the server and no credential", async () => {
    const probe = await silentListener();
    await probe.close(); // the port is now free: nothing listens on it
    const { destination: d } = destination({ servers: `127.0.0.1:${probe.port}`, user: "bob", pass: TOKEN });
    const error = await d.send("Audit", [apiEvent()].map(serialized)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${probe.port}\\): cannot connect: connection refused`));
    expect(error?.message).not.toContain(TOKEN);
  }, 10_000);

  it("fails a send whose acknowledgements are lost within a bounded time; the retry stores each record once", async () => {
    const proxy = outageProxy();
    await proxy.start();
    cleanups.push(proxy.stop);
    const { destination: d, streams: names } = destination({ servers: `127.0.0.1:${proxy.port}`, timeoutMs: 1000 });
    const before = [apiEvent(), apiEvent()];
    await d.send("Audit", before.map(serialized));

    proxy.loseReplies();
    const lost = [apiEvent(), apiEvent(), apiEvent()];
    await expect(d.send("Audit", lost.map(serialized))).rejects.toThrow(
      new RegExp(`3 of 3 records to stream ${names.Audit} .* not acknowledged: no reply within 1000 ms`),
    );
    // The server did store them: only the PubAcks were lost.
    expect((await jsm.streams.info(names.Audit)).state.messages).toBe(before.length + lost.length);

    await proxy.stop();
    await proxy.start();
    expect(await sendUntilStored(d, "Audit", lost)).toBe(true);
    expect((await jsm.streams.info(names.Audit)).state.messages).toBe(before.length + lost.length);
  }, 30_000);

  it("fails a send during an outage within a bounded time, saying the connection is lost; after NATS is back a send works", async () => {
    const proxy = outageProxy();
    await proxy.start();
    cleanups.push(proxy.stop);
    const { destination: d, streams: names } = destination({ servers: `127.0.0.1:${proxy.port}`, timeoutMs: 1000 });
    const before = [apiEvent(), apiEvent()];
    await d.send("Audit", before.map(serialized));

    await proxy.stop();
    const during = [apiEvent(), apiEvent(), apiEvent()];
    await expect(d.send("Audit", during.map(serialized))).rejects.toThrow(
      new RegExp(
        `records to stream ${names.Audit} .* not acknowledged: no reply within 1000 ms \\(the connection to NATS is lost`,
      ),
    );

    await proxy.start();
    expect(await sendUntilStored(d, "Audit", during)).toBe(true);
    expect((await jsm.streams.info(names.Audit)).state.messages).toBe(before.length + during.length);
  }, 30_000);

  it.each([
    [{}, /servers: is required/],
    [{ servers: 4222 }, /servers: must be "host:port", "nats:\/\/host:port" or a list of them/],
    [{ servers: "" }, /servers: must be "host:port"/],
    [{ servers: [] }, /servers: must list at least one server/],
    [{ servers: NATS, streams: { Audit: "insight.logs" } }, /streams\.Audit: must be a JetStream stream name/],
    [{ servers: NATS, streams: { Operational: "has space" } }, /streams\.Operational: must be a JetStream stream name/],
    [{ servers: NATS, subjectPrefix: "logs.*" }, /subjectPrefix: must be dot-separated subject tokens/],
    [{ servers: NATS, duplicateWindowSeconds: 0 }, /duplicateWindowSeconds: must be positive/],
    [{ servers: NATS, timeoutMs: 5 }, /timeoutMs: must be at least 100/],
    [{ servers: NATS, pass: TOKEN }, /pass: is only used together with user/],
    [{ servers: NATS, user: "bob", token: TOKEN }, /token: use either token or user\/pass/],
    [{ servers: NATS, stream: "X" }, /"stream"/],
  ])("names the bad field of the settings: %o", (settings, message) => {
    expect(() => new JetStreamDestination(settings as JetStreamSettings)).toThrow(message);
    expect(() => new JetStreamDestination(settings as JetStreamSettings)).not.toThrow(TOKEN);
    expect(jetStreamSettings.safeParse(settings).success).toBe(false);
  });

  it("keeps credentials out of describe(), which names the servers and streams", () => {
    const {
      destination: d,
      streams: names,
      subjectPrefix,
    } = destination({
      servers: [NATS, "nats://bob:hunter2-pass@127.0.0.1:4223"],
      token: TOKEN,
    });
    const described = d.describe();
    expect(described).toMatchObject({
      servers: [NATS, "nats://***@127.0.0.1:4223"],
      streams: {
        Audit: { stream: names.Audit, subject: `${subjectPrefix}.audit` },
        Operational: { stream: names.Operational, subject: `${subjectPrefix}.operational` },
      },
    });
    expect(JSON.stringify(described)).not.toContain(TOKEN);
    expect(JSON.stringify(described)).not.toContain("hunter2");
  });

  it("defaults to the streams INSIGHT_LOGS_AUDIT / INSIGHT_LOGS_OPERATIONAL on subjects insight-logs.*", () => {
    const d = new JetStreamDestination({ servers: NATS });
    expect(d.describe().streams).toEqual({
      Audit: { stream: "INSIGHT_LOGS_AUDIT", subject: "insight-logs.audit" },
      Operational: { stream: "INSIGHT_LOGS_OPERATIONAL", subject: "insight-logs.operational" },
    });
  });

  it("refuses records without an eventId, which the stream could not de-duplicate", async () => {
    const { destination: d, streams: names } = destination();
    const record = apiEvent();
    record.properties.eventId = "";
    await expect(d.send("Audit", [apiEvent(), record].map(serialized))).rejects.toThrow(
      /record at index 1 .* has no properties\.eventId/,
    );
    await expect(jsm.streams.info(names.Audit)).rejects.toThrow(/stream not found/);
  });

  it("refuses to send after close()", async () => {
    const { destination: d } = destination();
    await d.send("Audit", [apiEvent()].map(serialized));
    await d.close();
    await expect(d.send("Audit", [apiEvent()].map(serialized))).rejects.toThrow(/the destination is closed/);
  });
});
