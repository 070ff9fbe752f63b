/**
 * The contract test of DESIGN.md ("The Dataverse contract"): the real npm client
 * `dynamics-web-api`, unmodified, pointed at the app listening on loopback, drives every
 * entity set (shared/reference/dataverse-webapi.md §9).
 */
import { testDataDir } from "../helpers/identity.js";
import { randomUUID } from "node:crypto";
import { DynamicsWebApi } from "dynamics-web-api";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { GUID, definitionId } from "../helpers/records.js";
import { listenWithWebApi, webApiFamily } from "../helpers/web-api.js";

const SESSION_STARTED = definitionId("SessionStarted");

type Row = Record<string, unknown>;

/** How to exercise one entity set with the client. */
interface SetSpec {
  collection: string;
  primaryKey: string;
  /** A new row's data (unique natural keys). */
  newData(): Row;
  /** The alternate key of a row created from `data`, in the client's key syntax. */
  alternateKey?(data: Row): string;
  /** A text column to set with update / updateSingleProperty and clear with deleteRecord({property}). */
  textColumn: string;
  /** The column `select` asks for (besides the primary key). */
  selected: string;
}

describe("dynamics-web-api (v2.5.0) against the emulator", () => {
  // Authenticated, as users run it: a bearer token through onTokenRefresh (test/helpers/web-api.ts).
  const t = useTestApp({ AUTH_MODE: "builtin", DATA_DIR: testDataDir() });
  let serverUrl: string;
  let api: DynamicsWebApi;
  let onTokenRefresh: (() => Promise<string>) | undefined;
  // Parents, created in order through the client in beforeAll.
  let providerId: string;
  let conversationId: string;
  const sessionId = "s-1";
  const participantId = "agent-1";

  beforeAll(async () => {
    ({ serverUrl, api, onTokenRefresh } = await listenWithWebApi(t));
    conversationId = `c-${randomUUID()}`;
    providerId = await webApiFamily(api, conversationId, { sessionId, participantId });
  });

  const specs: SetSpec[] = [
    {
      collection: "msdyn_ciproviders",
      primaryKey: "msdyn_ciproviderid",
      newData: () => ({ msdyn_name: `Provider ${randomUUID()}` }),
      textColumn: "msdyn_label",
      selected: "msdyn_name",
    },
    {
      collection: "msdyn_kpieventdefinitions",
      primaryKey: "msdyn_kpieventdefinitionid",
      newData: () => ({ msdyn_name: `Custom-${randomUUID()}`, msdyn_eventtype: 100000001 }),
      alternateKey: (data) => `msdyn_name='${String(data.msdyn_name)}'`,
      textColumn: "msdyn_eventdescription",
      selected: "msdyn_name",
    },
    {
      collection: "msdyn_conversationsdata",
      primaryKey: "msdyn_conversationdataid",
      newData: () => ({ msdyn_conversationid: `c-${randomUUID()}`, msdyn_providerid: providerId }),
      alternateKey: (data) => `msdyn_conversationid='${String(data.msdyn_conversationid)}'`,
      textColumn: "msdyn_channel",
      selected: "msdyn_conversationid",
    },
    {
      collection: "msdyn_sessionsdata",
      primaryKey: "msdyn_sessiondataid",
      newData: () => ({ msdyn_conversationid: conversationId, msdyn_providersessionid: `s-${randomUUID()}` }),
      alternateKey: (data) =>
        `msdyn_conversationid='${String(data.msdyn_conversationid)}',msdyn_providersessionid='${String(data.msdyn_providersessionid)}'`,
      textColumn: "msdyn_queuename",
      selected: "msdyn_providersessionid",
    },
    {
      collection: "msdyn_sessionparticipantsdata",
      primaryKey: "msdyn_sessionparticipantdataid",
      newData: () => ({
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: sessionId,
        msdyn_participantid: `p-${randomUUID()}`,
      }),
      alternateKey: (data) =>
        `msdyn_conversationid='${String(data.msdyn_conversationid)}',msdyn_providersessionid='${String(data.msdyn_providersessionid)}',` +
        `msdyn_participantid='${String(data.msdyn_participantid)}'`,
      textColumn: "msdyn_participantname",
      selected: "msdyn_participantid",
    },
    {
      collection: "msdyn_kpieventsdata",
      primaryKey: "msdyn_kpieventdataid",
      newData: () => ({
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: sessionId,
        msdyn_participantid: participantId,
        msdyn_kpieventname: "SessionStarted",
      }),
      textColumn: "msdyn_kpieventreason",
      selected: "msdyn_providersessionid",
    },
  ];

  describe.each(specs)("$collection", (spec) => {
    const { collection, primaryKey, textColumn, selected } = spec;

    it("create returns the id from OData-EntityId; retrieve by key with select returns the row", async () => {
      const data = spec.newData();
      const id = await api.create<Row, string>({ collection, data });
      expect(id).toMatch(GUID);

      const row = await api.retrieve<Row>({ collection, key: id, select: [selected] });
      expect(row[primaryKey]).toBe(id);
      expect(row[selected]).toBe(data[selected]);
      expect(row.oDataContext).toBe(`${serverUrl}/api/data/v9.2/$metadata#${collection}(${selected},${primaryKey})/$entity`);
      expect(row).not.toHaveProperty(textColumn);

      const full = await api.retrieve<Row>({ collection, key: id });
      expect(full).toMatchObject(data);
      expect(full).toHaveProperty(textColumn, null);
    });

    it("create with returnRepresentation and select returns the new row", async () => {
      const data = spec.newData();
      const row = await api.create<Row, Row>({ collection, data, returnRepresentation: true, select: [selected] });
      expect(row[primaryKey]).toMatch(GUID);
      expect(row[selected]).toBe(data[selected]);
      expect(row).not.toHaveProperty(textColumn);
    });

    if (spec.alternateKey) {
      it("retrieve by alternate key, with select", async () => {
        const data = spec.newData();
        const id = await api.create<Row, string>({ collection, data });
        const row = await api.retrieve<Row>({ collection, key: spec.alternateKey!(data), select: [selected, textColumn] });
        expect(row[primaryKey]).toBe(id);
        expect(row[selected]).toBe(data[selected]);
        expect(row[textColumn]).toBeNull();
      });

      it("upsert by alternate key creates the row, then updates it", async () => {
        const data = spec.newData();
        const key = spec.alternateKey!(data);
        const created = await api.upsert<Row, string>({ collection, key, data: { [textColumn]: "first" } });
        expect(created).toMatch(GUID);
        expect(await api.retrieve<Row>({ collection, key, select: [selected, textColumn] })).toMatchObject({
          [primaryKey]: created,
          [selected]: data[selected],
          [textColumn]: "first",
        });

        const updated = await api.upsert<Row, string>({ collection, key, data: { [textColumn]: "second" } });
        expect(updated).toBe(created);
        expect((await api.retrieve<Row>({ collection, key: created, select: [textColumn] }))[textColumn]).toBe("second");
      });
    }

    it("update sends If-Match: * and changes the row; updating a missing row rejects with 404", async () => {
      const id = await api.create<Row, string>({ collection, data: spec.newData() });
      expect(await api.update({ collection, key: id, data: { [textColumn]: "updated" } })).toBe(true);
      expect((await api.retrieve<Row>({ collection, key: id, select: [textColumn] }))[textColumn]).toBe("updated");

      const missing = randomUUID();
      await expect(api.update({ collection, key: missing, data: { [textColumn]: "x" } })).rejects.toMatchObject({
        status: 404,
        code: "0x80040217",
      });
      // If-Match: * never creates.
      await expect(api.retrieve({ collection, key: missing })).rejects.toMatchObject({ status: 404 });
    });

    it("update with returnRepresentation and select returns the updated row", async () => {
      const id = await api.create<Row, string>({ collection, data: spec.newData() });
      const row = await api.update<Row, Row>({
        collection,
        key: id,
        data: { [textColumn]: "represented" },
        returnRepresentation: true,
        select: [textColumn],
      });
      expect(row).toMatchObject({ [primaryKey]: id, [textColumn]: "represented" });
    });

    it("upsert by GUID creates the row, then updates it", async () => {
      const key = randomUUID();
      const data = spec.newData();
      const created = await api.upsert<Row, string>({ collection, key, data });
      expect(created).toBe(key);
      expect(await api.retrieve<Row>({ collection, key })).toMatchObject({ [primaryKey]: key, ...data });

      const updated = await api.upsert<Row, string>({ collection, key, data: { [textColumn]: "upserted" } });
      expect(updated).toBe(key);
      expect(await api.retrieve<Row>({ collection, key, select: [textColumn, selected] })).toMatchObject({
        [textColumn]: "upserted",
        [selected]: data[selected],
      });
    });

    it("updateSingleProperty sets one column; deleteRecord with property clears it", async () => {
      const id = await api.create<Row, string>({ collection, data: spec.newData() });
      await api.updateSingleProperty({ collection, key: id, fieldValuePair: { [textColumn]: "single" } });
      expect((await api.retrieve<Row>({ collection, key: id, select: [textColumn] }))[textColumn]).toBe("single");

      expect(await api.deleteRecord({ collection, key: id, property: textColumn })).toBe(true);
      expect((await api.retrieve<Row>({ collection, key: id, select: [textColumn] }))[textColumn]).toBeNull();
    });

    it("deleteRecord deletes the row; retrieving it then rejects with 404", async () => {
      const id = await api.create<Row, string>({ collection, data: spec.newData() });
      expect(await api.deleteRecord({ collection, key: id })).toBe(true);
      await expect(api.retrieve({ collection, key: id })).rejects.toMatchObject({ status: 404, code: "0x80040217" });
      await expect(api.deleteRecord({ collection, key: id })).rejects.toMatchObject({ status: 404 });
    });
  });

  it("a KPI event found by msdyn_kpieventname comes back with msdyn_kpieventid filled in", async () => {
    const id = await api.create<Row, string>({
      collection: "msdyn_kpieventsdata",
      data: { msdyn_conversationid: conversationId, msdyn_providersessionid: sessionId, msdyn_kpieventname: "SessionStarted" },
    });
    const row = await api.retrieve<Row>({
      collection: "msdyn_kpieventsdata",
      key: id,
      select: ["msdyn_kpieventid", "msdyn_kpieventname"],
    });
    expect(row).toMatchObject({ msdyn_kpieventid: SESSION_STARTED, msdyn_kpieventname: "SessionStarted" });
  });

  it("date-times come back as Date objects", async () => {
    const id = await api.create<Row, string>({
      collection: "msdyn_conversationsdata",
      data: { msdyn_conversationid: `c-${randomUUID()}`, msdyn_conversationtimestamp: "2026-11-22T09:30:00Z" },
    });
    const row = await api.retrieve<Row>({ collection: "msdyn_conversationsdata", key: id });
    expect(row.msdyn_conversationtimestamp).toEqual(new Date("2026-11-22T09:30:00Z"));
    // Dataverse writes date-times as YYYY-MM-DDThh:mm:ssZ; only that form becomes a Date in the client.
    expect(row.createdon).toBeInstanceOf(Date);
    expect(row.modifiedon).toBeInstanceOf(Date);
  });

  it("a KPI event whose session is missing rejects with status 400 and code 0x80040217", async () => {
    const error = await api
      .create({
        collection: "msdyn_kpieventsdata",
        data: {
          msdyn_conversationid: conversationId,
          msdyn_providersessionid: "no-such-session",
          msdyn_kpieventname: "SessionStarted",
        },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ status: 400, code: "0x80040217" });
    expect((error as Error).message).toContain("msdyn_providersessionid = 'no-such-session'");
  });

  it("works with dataApi version 9.1", async () => {
    const v91 = new DynamicsWebApi({ serverUrl, dataApi: { version: "9.1" }, onTokenRefresh });
    const conversation = `c-${randomUUID()}`;
    const id = await v91.create<Row, string>({
      collection: "msdyn_conversationsdata",
      data: { msdyn_conversationid: conversation },
    });
    expect(id).toMatch(GUID);

    const row = await v91.retrieve<Row>({
      collection: "msdyn_conversationsdata",
      key: `msdyn_conversationid='${conversation}'`,
      select: ["msdyn_conversationid"],
    });
    expect(row.msdyn_conversationdataid).toBe(id);
    expect(row.oDataContext).toBe(
      `${serverUrl}/api/data/v9.1/$metadata#msdyn_conversationsdata(msdyn_conversationid,msdyn_conversationdataid)/$entity`,
    );

    expect(await v91.update({ collection: "msdyn_conversationsdata", key: id, data: { msdyn_channel: "chat" } })).toBe(true);
    await v91.updateSingleProperty({ collection: "msdyn_conversationsdata", key: id, fieldValuePair: { msdyn_name: "v9.1" } });
    const represented = await v91.create<Row, Row>({
      collection: "msdyn_sessionsdata",
      data: { msdyn_conversationid: conversation, msdyn_providersessionid: "s-1" },
      returnRepresentation: true,
      select: ["msdyn_providersessionid"],
    });
    expect(represented.oDataContext).toContain("/api/data/v9.1/");
    expect(
      await v91.retrieve<Row>({ collection: "msdyn_conversationsdata", key: id, select: ["msdyn_channel", "msdyn_name"] }),
    ).toMatchObject({
      msdyn_channel: "chat",
      msdyn_name: "v9.1",
    });
    expect(await v91.deleteRecord({ collection: "msdyn_conversationsdata", key: id })).toBe(true);
    await expect(
      v91.retrieve({
        collection: "msdyn_sessionsdata",
        key: `msdyn_conversationid='${conversation}',msdyn_providersessionid='s-1'`,
      }),
    ).rejects.toMatchObject({ status: 404 });
  });
});
