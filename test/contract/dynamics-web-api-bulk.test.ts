/**
 * The bulk actions through the real npm client (shared/reference/dataverse-webapi.md §9):
 * `dynamics-web-api` has no bulk methods, so clients send them with
 * `callAction({ collection, actionName: "Microsoft.Dynamics.CRM.CreateMultiple", action: { Targets } })`,
 * which POSTs to `{set}/Microsoft.Dynamics.CRM.CreateMultiple`.
 */
import { testDataDir } from "../helpers/identity.js";
import { randomUUID } from "node:crypto";
import type { DynamicsWebApi } from "dynamics-web-api";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { GUID } from "../helpers/records.js";
import { listenWithWebApi, webApiFamily } from "../helpers/web-api.js";

const KPI_EVENT = "Microsoft.Dynamics.CRM.msdyn_kpieventdata";

type Row = Record<string, unknown>;

describe("dynamics-web-api callAction with the bulk actions", () => {
  // Authenticated, as users run it: a bearer token through onTokenRefresh (test/helpers/web-api.ts).
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let serverUrl: string;
  let api: DynamicsWebApi;
  let conversationId: string;

  beforeAll(async () => {
    ({ serverUrl, api } = await listenWithWebApi(t));
    conversationId = `c-${randomUUID()}`;
    await webApiFamily(api, conversationId);
  });

  const event = (name: string, extra: Row = {}): Row => ({
    "@odata.type": KPI_EVENT,
    msdyn_conversationid: conversationId,
    msdyn_providersessionid: "s-1",
    msdyn_kpieventname: "SessionStarted",
    msdyn_name: name,
    ...extra,
  });

  it("CreateMultiple returns the Ids in target order, and the rows are there", async () => {
    const targets = Array.from({ length: 25 }, (_, i) => event(`bulk-${i}`));
    const result = await api.callAction<{ Ids: string[]; oDataContext?: string }>({
      collection: "msdyn_kpieventsdata",
      actionName: "Microsoft.Dynamics.CRM.CreateMultiple",
      action: { Targets: targets },
    });
    expect(result.Ids).toHaveLength(25);
    for (const id of result.Ids) expect(id).toMatch(GUID);
    expect(result.oDataContext).toBe(`${serverUrl}/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse`);

    for (const [i, id] of result.Ids.entries()) {
      const row = await api.retrieve<Row>({ collection: "msdyn_kpieventsdata", key: id, select: ["msdyn_name"] });
      expect(row.msdyn_name).toBe(`bulk-${i}`);
    }
  });

  it("UpdateMultiple and UpsertMultiple resolve (204) and change the rows", async () => {
    const { Ids } = await api.callAction<{ Ids: string[] }>({
      collection: "msdyn_kpieventsdata",
      actionName: "Microsoft.Dynamics.CRM.CreateMultiple",
      action: { Targets: [event("u-0"), event("u-1")] },
    });
    await api.callAction({
      collection: "msdyn_kpieventsdata",
      actionName: "Microsoft.Dynamics.CRM.UpdateMultiple",
      action: {
        Targets: Ids.map((id, i) => ({ "@odata.type": KPI_EVENT, msdyn_kpieventdataid: id, msdyn_name: `updated-${i}` })),
      },
    });
    const fresh = `c-${randomUUID()}`;
    await api.callAction({
      collection: "msdyn_conversationsdata",
      actionName: "Microsoft.Dynamics.CRM.UpsertMultiple",
      action: {
        Targets: [
          {
            "@odata.type": "Microsoft.Dynamics.CRM.msdyn_conversationdata",
            msdyn_conversationid: conversationId,
            msdyn_channel: "voice",
          },
          { "@odata.type": "Microsoft.Dynamics.CRM.msdyn_conversationdata", msdyn_conversationid: fresh, msdyn_channel: "chat" },
        ],
      },
    });

    const updated = await api.retrieveMultiple<Row>({
      collection: "msdyn_kpieventsdata",
      select: ["msdyn_name"],
      filter: `msdyn_kpieventdataid eq ${Ids[0]} or msdyn_kpieventdataid eq ${Ids[1]}`,
      orderBy: ["msdyn_name"],
    });
    expect(updated.value.map((row) => row.msdyn_name)).toEqual(["updated-0", "updated-1"]);
    const conversations = await api.retrieveMultiple<Row>({
      collection: "msdyn_conversationsdata",
      select: ["msdyn_conversationid", "msdyn_channel"],
      filter: `msdyn_conversationid eq '${conversationId}' or msdyn_conversationid eq '${fresh}'`,
    });
    expect(Object.fromEntries(conversations.value.map((row) => [row.msdyn_conversationid, row.msdyn_channel]))).toEqual({
      [conversationId]: "voice",
      [fresh]: "chat",
    });
  });

  it("CreateMultiple runs in a $batch change set: it sees the change set's parents and fails or commits with them", async () => {
    const c = `c-${randomUUID()}`;
    const batchEvent = (s: string): Row => ({ ...event(`batch-${s}`), msdyn_conversationid: c, msdyn_providersessionid: s });
    const providerId = await api.create<Row, string>({ collection: "msdyn_ciproviders", data: { msdyn_name: "Batch" } });
    await api.update({ collection: "msdyn_ciproviders", key: providerId, data: { msdyn_enableanalytics: true } });
    const changeSet = (events: Row[]) => {
      api.startBatch();
      void api.create({ collection: "msdyn_conversationsdata", data: { msdyn_conversationid: c, msdyn_providerid: providerId } });
      void api.create({ collection: "msdyn_sessionsdata", data: { msdyn_conversationid: c, msdyn_providersessionid: "s-1" } });
      void api.callAction({
        collection: "msdyn_kpieventsdata",
        actionName: "Microsoft.Dynamics.CRM.CreateMultiple",
        action: { Targets: events },
      });
      return api.executeBatch();
    };
    const conversations = () => api.count({ collection: "msdyn_conversationsdata", filter: `msdyn_conversationid eq '${c}'` });

    const failure = await changeSet([batchEvent("s-1"), batchEvent("no-such-session")]).then(
      () => undefined,
      (e: unknown) => e,
    );
    // The client rejects with the change set's one result: the error, named by its target.
    expect(failure).toEqual([expect.objectContaining({ status: 400 })]);
    const [error] = failure as Array<{ error: { code: string; message: string } }>;
    expect(error!.error.code).toBe("0x80040217");
    expect(error!.error.message).toMatch(/^Targets\[1\]: .*msdyn_providersessionid = 'no-such-session'/);
    expect(await conversations()).toBe(0);

    const results = (await changeSet([batchEvent("s-1"), batchEvent("s-1")])) as unknown[];
    expect(results).toHaveLength(3);
    expect((results[2] as { Ids: string[] }).Ids).toHaveLength(2);
    expect(await conversations()).toBe(1);
    expect(await api.count({ collection: "msdyn_kpieventsdata", filter: `msdyn_conversationid eq '${c}'` })).toBe(2);
  });

  it("a failing target rejects with the writer's status and code, naming the target, and stores nothing", async () => {
    const marker = `fail-${randomUUID()}`;
    const error = await api
      .callAction({
        collection: "msdyn_kpieventsdata",
        actionName: "Microsoft.Dynamics.CRM.CreateMultiple",
        action: { Targets: [event(marker), event(marker, { msdyn_providersessionid: "no-such-session" })] },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ status: 400, code: "0x80040217" });
    expect((error as Error).message).toMatch(/^Targets\[1\]: .*msdyn_providersessionid = 'no-such-session'/);
    expect(await api.count({ collection: "msdyn_kpieventsdata", filter: `msdyn_name eq '${marker}'` })).toBe(0);
  });
});
