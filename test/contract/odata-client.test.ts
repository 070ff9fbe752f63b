/**
 * The contract with `@odata/client` (v2.21.10), a third-party OData v4 client, unmodified,
 * against the app listening on loopback with a bearer token: reads with query options,
 * create, update, delete and a navigation path. It sends `Content-Type: application/json`
 * on every request, GET and DELETE included.
 */
import { testDataDir } from "../helpers/identity.js";
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { EdmV4, OData } from "@odata/client";
import { beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_KPI_EVENT_DEFINITIONS } from "../../src/model/tables.js";
import { useTestApp } from "../helpers/app.js";
import { listenWithWebApi } from "../helpers/web-api.js";

type Row = Record<string, unknown>;
/** A GUID key as OData v4 writes it: unquoted. */
const guid = (id: string) => EdmV4.Guid.from(id);
const SESSION_STARTED = SYSTEM_KPI_EVENT_DEFINITIONS.find((d) => d.name === "SessionStarted")!.id;

describe("@odata/client (v2.21.10) against the emulator", () => {
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let client: ReturnType<typeof OData.New4>;
  const requests: string[] = [];
  const conversationId = `oc-${randomUUID()}`;
  let providerId: string;
  let conversationRowId: string;

  beforeAll(async () => {
    const { serverUrl, onTokenRefresh } = await listenWithWebApi(t);
    t.app.server.prependListener("request", (request: IncomingMessage) => requests.push(`${request.method} ${request.url}`));
    client = OData.New4({
      serviceEndpoint: `${serverUrl}/api/data/v9.2/`,
      // Dataverse answers a create or update with 204 unless asked for the row, as this client expects it.
      commonHeaders: { Authorization: `Bearer ${await onTokenRefresh!()}`, Prefer: "return=representation" },
    });
    const providers = client.getEntitySet<Row>("msdyn_ciproviders");
    const created = await providers.create({ msdyn_name: "OData client" });
    providerId = created.msdyn_ciproviderid as string;
    await providers.update(guid(providerId), { msdyn_enableanalytics: true });
    const conversation = await client
      .getEntitySet<Row>("msdyn_conversationsdata")
      .create({ msdyn_conversationid: conversationId, msdyn_providerid: providerId, msdyn_channel: "chat" });
    conversationRowId = conversation.msdyn_conversationdataid as string;
    await client
      .getEntitySet<Row>("msdyn_sessionsdata")
      .create({ msdyn_conversationid: conversationId, msdyn_providersessionid: "s-1", msdyn_queuename: "q1" });
    const events = client.getEntitySet<Row>("msdyn_kpieventsdata");
    for (let n = 1; n <= 3; n++) {
      await events.create({
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: "s-1",
        msdyn_kpieventid: SESSION_STARTED,
        importsequencenumber: n,
      });
    }
  });

  it("creates and retrieves a row, reading it back by GUID", async () => {
    const provider = await client.getEntitySet<Row>("msdyn_ciproviders").retrieve(guid(providerId));
    expect(provider).toMatchObject({ msdyn_ciproviderid: providerId, msdyn_name: "OData client", msdyn_enableanalytics: true });
  });

  it("queries with $filter, $select, $orderby, $top and $count", async () => {
    const events = client.getEntitySet<Row>("msdyn_kpieventsdata");
    const params = client
      .newParam()
      .filter(client.newFilter().property("msdyn_conversationid").eq(conversationId))
      .select(["importsequencenumber", "msdyn_kpieventname"])
      .orderby("importsequencenumber", "desc")
      .top(2)
      .count(true);
    const rows = await events.query(params);
    expect(rows.map((r) => r.importsequencenumber)).toEqual([3, 2]);
    expect(rows[0]!.msdyn_kpieventname).toBe("SessionStarted");
    expect(await events.count(client.newFilter().property("msdyn_conversationid").eq(conversationId))).toBe(3);
    expect(requests.some((r) => r.includes("$top=2") && r.includes("$orderby="))).toBe(true);
  });

  it("follows a navigation path: a conversation's sessions", async () => {
    const sessions = await client
      .getEntitySet<Row>(`msdyn_conversationsdata(${conversationRowId})/msdyn_sessions`)
      .query(client.newParam().select(["msdyn_providersessionid", "msdyn_queuename"]));
    expect(sessions).toEqual([expect.objectContaining({ msdyn_providersessionid: "s-1", msdyn_queuename: "q1" })]);
  });

  it("updates and deletes a row (a DELETE with Content-Type: application/json and no body)", async () => {
    const sessions = client.getEntitySet<Row>("msdyn_sessionsdata");
    const [session] = await sessions.query(
      client.newParam().filter(client.newFilter().property("msdyn_conversationid").eq(conversationId)),
    );
    const id = session!.msdyn_sessiondataid as string;
    await sessions.update(guid(id), { msdyn_queuename: "q2" });
    expect((await sessions.retrieve(guid(id))).msdyn_queuename).toBe("q2");

    const conversations = client.getEntitySet<Row>("msdyn_conversationsdata");
    await conversations.delete(guid(conversationRowId));
    expect(requests).toContain(`DELETE /api/data/v9.2/msdyn_conversationsdata(${conversationRowId})`);
    // The erasure took its sessions and events with it.
    expect(await conversations.count(client.newFilter().property("msdyn_conversationid").eq(conversationId))).toBe(0);
    expect(
      await client
        .getEntitySet<Row>("msdyn_kpieventsdata")
        .count(client.newFilter().property("msdyn_conversationid").eq(conversationId)),
    ).toBe(0);
  });
});
