/**
 * Forwarding reads the log in commit order, by transaction id as a number: batches never
 * send a later transaction before an earlier one, and the cursor never passes a record
 * not sent. (Ordered by the text of the ids, "10" sorts before "9": a batch would send 10
 * and 11, move the cursor past 9, and never send it.)
 */
import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { type NatsConnection, connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogRecord } from "../../src/audit/azure-monitor.js";
import { useTestApp } from "../helpers/app.js";
import { testDataDir, testPrincipal, tokenOf } from "../helpers/identity.js";
import { type ApiClient, apiClient } from "../helpers/tenancy.js";

const NATS = "127.0.0.1:4222";
const run = randomUUID().slice(0, 8);
const STREAM = `TEST_ORDER_${run}_AUDIT`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("forwarding order", () => {
  const t = useTestApp({
    AUTH_MODE: "builtin",
    DATA_DIR: testDataDir(),
    AUDIT_FLUSH_MS: "50",
    AUDIT_FORWARD_INTERVAL_MS: "50",
    // Two records a batch: the order decides which two go first, and where the cursor ends.
    AUDIT_FORWARD_BATCH: "2",
  });
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let admin: ApiClient;

  beforeAll(async () => {
    nc = await connect({ servers: NATS });
    jsm = await jetstreamManager(nc);
    admin = apiClient(t, await tokenOf(t.app, await testPrincipal(t.app, ["Administrator"])));
  });

  afterAll(async () => {
    await jsm?.streams.delete(STREAM).catch(() => {});
    await nc?.close();
  });

  it("sends transactions 9, 10, 11 in that order, each once", async () => {
    const created = await admin.inject("POST", "/api/admin/log-destinations", {
      name: "ordered",
      resourceType: "JetStream",
      settings: { servers: NATS, streams: { Audit: STREAM }, subjectPrefix: `test-order-${run}`, timeoutMs: 2000 },
      categories: ["Audit"],
    });
    expect(created.statusCode, created.body).toBe(201);
    const { id } = created.json<{ id: string }>();

    // Records of three old transactions (ids of 1 and 2 digits, long finished), behind a cursor moved back to 8.
    const ids: string[] = [randomUUID(), randomUUID(), randomUUID()];
    const pool = t.testDb.pool;
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      // Held still: the forwarder must not read while the rows and the cursor change.
      await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`log-forwarding ${id} Audit`]);
      const byTransaction = new Map([
        [9, ids[0]!],
        [10, ids[1]!],
        [11, ids[2]!],
      ]);
      // Inserted out of order, so that the version numbers do not give the order either.
      for (const transaction of [11, 9, 10]) {
        const eventId = byTransaction.get(transaction)!;
        const record = { time: new Date().toISOString(), category: "Audit", operationName: "test", properties: { eventId } };
        await client.query(
          `INSERT INTO cieventsaudit (cieventsauditid, timegenerated, category, operationname, eventtype, record, transactionid)
           VALUES ($1, now(), 'Audit', 'test', 'ApiEvent', $2, $3)`,
          [eventId, JSON.stringify(record), transaction],
        );
      }
      const moved = await client.query(
        "UPDATE cif_control.log_cursor SET transaction_id = 8, version_number = 0 WHERE destination_id = $1 AND category = 'Audit'",
        [id],
      );
      expect(moved.rowCount).toBe(1);
      await client.query("COMMIT");
    } finally {
      client.release();
    }

    // Bounded: 200 polls of 100 ms.
    const seen: string[] = [];
    for (let poll = 0; poll < 200 && !ids.every((e) => seen.includes(e)); poll++) {
      await sleep(100);
      const info = await jsm.streams.info(STREAM).catch(() => undefined);
      if (!info || info.state.messages <= seen.length) continue;
      const messages = await (await jetstream(nc).consumers.get(STREAM)).consume();
      seen.length = 0;
      for await (const message of messages) {
        seen.push(message.json<LogRecord>().properties.eventId);
        if (message.info.pending === 0 || seen.length >= info.state.messages) break;
      }
      await messages.close();
    }
    const ours = seen.filter((e) => ids.includes(e));
    // 9, 10, 11: the records' transactions in numeric order, each once.
    expect(ours).toEqual(ids);
  });
});
