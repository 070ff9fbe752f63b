/**
 * DESIGN.md "Server-side logging actions", through the HTTP API: msdyn_InitLogAnalytics
 * upserts a conversation, its session and participants by natural keys in one
 * transaction; msdyn_LogAnalyticsEvent stores a batch of KPI events all or none, under
 * the same parent and provider rules as a plain POST; both validate the payload with
 * JSON paths and carry the correlation id into the response header and the log lines.
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config/config.js";
import { type Database, openDatabase } from "../../src/db/database.js";
import { useTestApp } from "../helpers/app.js";
import {
  type Body,
  OBJECT_DOES_NOT_EXIST,
  PRIVILEGE_DENIED,
  ROOT,
  definitionId,
  expectError,
  records,
} from "../helpers/records.js";
const AGENT_BEHAVIOUR_EVENTS = ["CifSessionStart", "CifSessionEnd", "SessionFocusIn", "SessionFocusOut"];

type Row = Record<string, unknown>;

describe("logging actions: msdyn_InitLogAnalytics and msdyn_LogAnalyticsEvent", () => {
  const t = useTestApp();
  const { post, provider } = records(t);

  // -------------------------------------------------------------------------
  // Helpers

  const action = (name: string, body: unknown, app: FastifyInstance = t.app) =>
    app.inject({
      method: "POST",
      url: `${ROOT}/${name}`,
      headers: { "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
  /** `correlationId: null` leaves it out. */
  const init = (data: unknown, correlationId: string | null = randomUUID()) =>
    action("msdyn_InitLogAnalytics", correlationId === null ? { data } : { data, correlationId });
  const logEvents = (data: unknown, eventName?: string, correlationId: string | null = randomUUID()) =>
    action("msdyn_LogAnalyticsEvent", {
      data,
      ...(eventName === undefined ? {} : { eventName }),
      ...(correlationId === null ? {} : { correlationId }),
    });

  async function rows(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await t.testDb.pool.query<Row>(sql, params)).rows;
  }
  const rowsOf = (table: string, conversationId: string) =>
    rows(`SELECT * FROM ${table} WHERE msdyn_conversationid = $1`, [conversationId]);
  const conversationRow = async (c: string) => (await rowsOf("msdyn_conversationdata", c))[0];
  const sessionRow = async (c: string) => (await rowsOf("msdyn_sessiondata", c))[0];
  const participantRows = (c: string) =>
    rows(`SELECT * FROM msdyn_sessionparticipantdata WHERE msdyn_conversationid = $1 ORDER BY msdyn_participantid`, [c]);
  const eventRows = (c: string) =>
    rows(`SELECT * FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1 ORDER BY msdyn_eventtimestamp, createdon`, [c]);
  const counts = async (c: string) => [
    (await rowsOf("msdyn_conversationdata", c)).length,
    (await rowsOf("msdyn_sessiondata", c)).length,
    (await rowsOf("msdyn_sessionparticipantdata", c)).length,
    (await rowsOf("msdyn_kpieventdata", c)).length,
  ];

  function ok(res: LightMyRequestResponse): Body {
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Body>();
  }

  /** A full init payload: conversation c, session "s-1", participants agent-1 and customer-1. */
  function initPayload(c: string, providerId?: string): { conversation: Body & { session: Body & { participants: Body[] } } } {
    return {
      conversation: {
        conversationId: c,
        channel: "voice",
        providerId,
        providerName: "Contoso Voice",
        accountId: "account-9",
        contactId: "contact-9",
        additionalData: '{"priority":"high"}',
        externalCorrelationId: "ext-conv-1",
        createdTimestamp: "2026-11-22T09:30:00Z",
        regionData: { addressLine1: "1 Main St", city: "Redmond", state: "WA", country: "US", zip: "98052" },
        customData: [{ attribute: "msdyn_customattribute1", value: "conversation level" }],
        session: {
          providerSessionId: "s-1",
          clientSessionId: "client-1",
          clientSessionName: "Chat 1",
          channel: "chat",
          creationReason: "inbound",
          additionalData: "session extra",
          externalCorrelationId: "ext-sess-1",
          createdTimestamp: "2026-11-22T09:30:01Z",
          agentAssignedTimestamp: "2026-11-22T09:31:00+01:00",
          queueAssignedTimestamp: "2026-11-22T09:30:30.123Z",
          queueId: "queue-1",
          queueName: "Support",
          customData: [{ attribute: "msdyn_customattribute1", value: "session level" }],
          participants: [
            {
              participantId: "agent-1",
              externalId: "ext-agent-1",
              name: "Ada",
              mode: "Primary",
              type: "Agent",
              addedTimestamp: "2026-11-22T09:31:00Z",
              assignReason: "Routed",
              customData: [{ attribute: "msdyn_customattribute2", value: "agent level" }],
            },
            {
              participantId: "customer-1",
              name: "Carl",
              mode: "Customer",
              type: "Customer",
              addedTimestamp: "2026-11-22T09:30:00Z",
              assignReason: "Initiator",
            },
          ],
        },
      },
    };
  }

  /** An enabled provider with conversation c, its session "s-1" and its two participants, by the action. */
  async function family(enabled = true): Promise<{ providerId: string; c: string }> {
    const providerId = await provider({ enabled });
    const c = `c-${randomUUID()}`;
    ok(await init(initPayload(c, providerId)));
    return { providerId, c };
  }

  const eventPayload = (c: string, events: Body[], extra: Body = {}): Body => ({
    conversationId: c,
    providerSessionId: "s-1",
    clientSessionId: "client-1",
    participantId: "agent-1",
    ...extra,
    events,
  });

  // -------------------------------------------------------------------------

  describe("msdyn_InitLogAnalytics", () => {
    it("creates the conversation, its session and each participant, every field in its own column", async () => {
      const providerId = await provider({ enabled: true });
      const c = `c-${randomUUID()}`;
      const correlationId = randomUUID();
      const res = await init(initPayload(c, providerId), correlationId);
      const body = ok(res);
      expect(res.headers["x-ms-correlation-request-id"]).toBe(correlationId);
      expect(body["@odata.context"]).toBe(
        `http://localhost:80${ROOT}/$metadata#Microsoft.Dynamics.CRM.msdyn_InitLogAnalyticsResponse`,
      );

      const conversation = (await conversationRow(c))!;
      expect(body.ConversationDataId).toBe(conversation.msdyn_conversationdataid);
      expect(conversation).toMatchObject({
        msdyn_name: c,
        msdyn_channel: "voice",
        msdyn_providerid: providerId,
        msdyn_providername: "Contoso Voice",
        msdyn_accountid: "account-9",
        msdyn_contactid: "contact-9",
        msdyn_additionaldata: '{"priority":"high"}',
        msdyn_externalcorrelationid: "ext-conv-1",
        msdyn_customattribute1: "conversation level",
        msdyn_customattribute2: null,
      });
      expect((conversation.msdyn_conversationtimestamp as Date).toISOString()).toBe("2026-11-22T09:30:00.000Z");

      const session = (await sessionRow(c))!;
      expect(body.SessionDataId).toBe(session.msdyn_sessiondataid);
      expect(session).toMatchObject({
        msdyn_providersessionid: "s-1",
        msdyn_name: "s-1",
        msdyn_ucisessionid: "client-1",
        msdyn_ucisessionname: "Chat 1",
        msdyn_sessionchannel: "chat",
        msdyn_sessioncreationreason: "inbound",
        msdyn_sessionadditionaldata: "session extra",
        msdyn_externalcorrelationid: "ext-sess-1",
        msdyn_queueid: "queue-1",
        msdyn_queuename: "Support",
        msdyn_customattribute1: "session level",
      });
      expect((session.msdyn_sessioncreatedtimestamp as Date).toISOString()).toBe("2026-11-22T09:30:01.000Z");
      expect((session.msdyn_sessionagentassignedtimestamp as Date).toISOString()).toBe("2026-11-22T08:31:00.000Z");
      expect((session.msdyn_sessionqueueassignedtimestamp as Date).toISOString()).toBe("2026-11-22T09:30:30.123Z");

      const [agent, customer] = await participantRows(c);
      // In payload order, whatever order they were written in.
      expect(body.SessionParticipantDataIds).toEqual([
        agent!.msdyn_sessionparticipantdataid,
        customer!.msdyn_sessionparticipantdataid,
      ]);
      expect(agent).toMatchObject({
        msdyn_providersessionid: "s-1",
        msdyn_participantid: "agent-1",
        msdyn_name: "agent-1",
        msdyn_participantname: "Ada",
        msdyn_participantmode: "Primary",
        msdyn_participanttype: "Agent",
        msdyn_participantassignreason: "Routed",
        msdyn_customattribute1: null,
        msdyn_customattribute2: "agent level",
      });
      expect((agent!.msdyn_participantaddedtimestamp as Date).toISOString()).toBe("2026-11-22T09:31:00.000Z");
      expect(customer).toMatchObject({
        msdyn_participantid: "customer-1",
        msdyn_participantmode: "Customer",
        msdyn_participantassignreason: "Initiator",
        msdyn_customattribute1: null,
        msdyn_customattribute2: null,
      });
      expect(await counts(c)).toEqual([1, 1, 2, 0]);
    });

    it("accepts data as a JSON string, and a session without participants", async () => {
      const c = `c-${randomUUID()}`;
      const data = JSON.stringify({ conversation: { conversationId: c, session: { providerSessionId: "s-9" } } });
      const body = ok(await init(data));
      expect(body.SessionParticipantDataIds).toEqual([]);
      expect((await sessionRow(c))!.msdyn_providersessionid).toBe("s-9");
      expect(await counts(c)).toEqual([1, 1, 0, 0]);
    });

    it("defaults the conversation's createdTimestamp to now, once", async () => {
      const c = `c-${randomUUID()}`;
      const before = Date.now();
      const payload = { conversation: { conversationId: c, session: { providerSessionId: "s-1" } } };
      ok(await init(payload));
      const stamped = (await conversationRow(c))!.msdyn_conversationtimestamp as Date;
      expect(stamped.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(stamped.getTime()).toBeLessThanOrEqual(Date.now() + 1000);

      await new Promise((resolve) => setTimeout(resolve, 20));
      ok(await init(payload));
      expect(((await conversationRow(c))!.msdyn_conversationtimestamp as Date).getTime()).toBe(stamped.getTime());
    });

    it("is idempotent: the same payload again creates nothing and answers the same ids", async () => {
      const providerId = await provider({ enabled: true });
      const c = `c-${randomUUID()}`;
      const first = ok(await init(initPayload(c, providerId)));
      const before = await Promise.all([conversationRow(c), sessionRow(c), participantRows(c)]);

      const again = ok(await init(initPayload(c, providerId)));
      const asString = ok(await init(JSON.stringify(initPayload(c, providerId))));
      for (const body of [again, asString]) {
        expect(body.ConversationDataId).toBe(first.ConversationDataId);
        expect(body.SessionDataId).toBe(first.SessionDataId);
        expect(body.SessionParticipantDataIds).toEqual(first.SessionParticipantDataIds);
      }
      expect(await counts(c)).toEqual([1, 1, 2, 0]);
      const after = await Promise.all([conversationRow(c), sessionRow(c), participantRows(c)]);
      const strip = (row: Row | undefined) => {
        const { versionnumber: _v, modifiedon: _m, ...rest } = row!;
        return rest;
      };
      expect(strip(after[0])).toEqual(strip(before[0]));
      expect(strip(after[1])).toEqual(strip(before[1]));
      expect(after[2].map(strip)).toEqual(before[2].map(strip));
    });

    it("a re-send with changes updates the rows in place and adds new participants", async () => {
      const providerId = await provider({ enabled: true });
      const c = `c-${randomUUID()}`;
      const first = ok(await init(initPayload(c, providerId)));

      const changed = initPayload(c, providerId);
      changed.conversation.channel = "chat";
      changed.conversation.regionData = { city: "Seattle", country: "US" };
      changed.conversation.session.queueName = "Escalations";
      changed.conversation.session.participants[0]!.mode = "Consult";
      changed.conversation.session.participants.push({ participantId: "supervisor-1", type: "Supervisor", mode: "Monitor" });
      const second = ok(await init(changed));

      expect(second.ConversationDataId).toBe(first.ConversationDataId);
      expect(second.SessionDataId).toBe(first.SessionDataId);
      const firstIds = first.SessionParticipantDataIds as string[];
      const secondIds = second.SessionParticipantDataIds as string[];
      expect(secondIds.slice(0, 2)).toEqual(firstIds);
      expect(secondIds).toHaveLength(3);
      expect(await counts(c)).toEqual([1, 1, 3, 0]);

      expect(await conversationRow(c)).toMatchObject({
        msdyn_channel: "chat",
        msdyn_customercity: "Seattle",
        msdyn_customerstate: null,
        msdyn_customerzip: null,
        msdyn_providername: "Contoso Voice",
      });
      expect((await sessionRow(c))!.msdyn_queuename).toBe("Escalations");
      const participants = await participantRows(c);
      expect(participants.map((p) => [p.msdyn_participantid, p.msdyn_participantmode])).toEqual([
        ["agent-1", "Consult"],
        ["customer-1", "Customer"],
        ["supervisor-1", "Monitor"],
      ]);
      expect(participants[2]!.msdyn_sessionparticipantdataid).toBe(secondIds[2]);
    });

    it("absent and null fields leave the stored columns as they are", async () => {
      const c = `c-${randomUUID()}`;
      ok(await init(initPayload(c)));
      ok(
        await init({
          conversation: {
            conversationId: c,
            channel: null,
            session: { providerSessionId: "s-1", participants: [{ participantId: "agent-1" }] },
          },
        }),
      );
      expect(await conversationRow(c)).toMatchObject({ msdyn_channel: "voice", msdyn_customercity: "Redmond" });
      expect((await sessionRow(c))!.msdyn_queuename).toBe("Support");
      expect((await participantRows(c))[0]).toMatchObject({ msdyn_participantname: "Ada", msdyn_participantmode: "Primary" });
    });

    it("keeps regionData whole as JSON in msdyn_region and fills the customer columns", async () => {
      const c = `c-${randomUUID()}`;
      const regionData = { addressLine1: "1 Main St", city: "Redmond", state: "WA", country: "US", zip: "98052", floor: "3" };
      const payload = initPayload(c);
      payload.conversation.regionData = regionData;
      ok(await init(payload));
      const row = (await conversationRow(c))!;
      expect(JSON.parse(row.msdyn_region as string)).toEqual(regionData);
      expect(row).toMatchObject({
        msdyn_customercity: "Redmond",
        msdyn_customerstate: "WA",
        msdyn_customercountry: "US",
        msdyn_customerzip: "98052",
      });

      // regionData as its JSON string, as in the older docs.
      const c2 = `c-${randomUUID()}`;
      const asString = initPayload(c2);
      asString.conversation.regionData = JSON.stringify({ city: "Oslo", country: "NO" });
      ok(await init(asString));
      expect(await conversationRow(c2)).toMatchObject({
        msdyn_region: '{"city":"Oslo","country":"NO"}',
        msdyn_customercity: "Oslo",
        msdyn_customercountry: "NO",
        msdyn_customerstate: null,
      });

      const tooLong = initPayload(`c-${randomUUID()}`);
      tooLong.conversation.regionData = { addressLine1: "x".repeat(1000) };
      const message = expectError(await init(tooLong), 400);
      expect(message).toContain("data.conversation.regionData: is 1019 characters as JSON text; msdyn_region holds at most 1000");
    });

    it("refuses a customData attribute that is not a writable column of its level's table, naming its JSON path", async () => {
      const cases: Array<[(p: ReturnType<typeof initPayload>) => void, string]> = [
        [
          (p) => (p.conversation.session.participants[1]!.customData = [{ attribute: "msdyn_nosuchcolumn", value: "x" }]),
          "data.conversation.session.participants[1].customData[0].attribute: " +
            "'msdyn_nosuchcolumn' is not a writable column of msdyn_sessionparticipantdata",
        ],
        [
          // A column of another table (the session has no msdyn_region).
          (p) => (p.conversation.session.customData = [{ attribute: "msdyn_region", value: "x" }]),
          "data.conversation.session.customData[0].attribute: 'msdyn_region' is not a writable column of msdyn_sessiondata",
        ],
        [
          (p) =>
            (p.conversation.customData = [
              { attribute: "msdyn_customattribute1", value: "ok" },
              { attribute: "createdon", value: "2026-01-01T00:00:00Z" },
            ]),
          "data.conversation.customData[1].attribute: 'createdon' is not a writable column of msdyn_conversationdata",
        ],
        [
          (p) => (p.conversation.customData = [{ attribute: "msdyn_conversationid", value: "other" }]),
          "data.conversation.customData[0].attribute: 'msdyn_conversationid' is a key column of msdyn_conversationdata",
        ],
        [
          (p) => (p.conversation.customData = [{ attribute: "msdyn_customattribute1", value: "x".repeat(101) }]),
          "data.conversation.customData[0].value: A validation error occurred.",
        ],
        [
          (p) => (p.conversation.customData = [{ attribute: "msdyn_customattribute1", value: 42 }]),
          "data.conversation.customData[0].value: The value of 'msdyn_customattribute1' on msdyn_conversationdata must be Edm.String",
        ],
      ];
      for (const [change, expected] of cases) {
        const c = `c-${randomUUID()}`;
        const payload = initPayload(c);
        change(payload);
        const message = expectError(await init(payload), 400, "0x80048d19");
        expect(message).toContain(expected);
        expect(await counts(c)).toEqual([0, 0, 0, 0]);
      }
    });

    it("names every invalid field by its JSON path, in one 400", async () => {
      const c = `c-${randomUUID()}`;
      const payload = initPayload(c);
      payload.conversation.session.participants[1]!.addedTimestamp = "yesterday";
      payload.conversation.session.agentAssignedTimestamp = "2026-02-30T10:00:00Z";
      payload.conversation.channel = "x".repeat(101);
      (payload.conversation.session as Body).sesionName = "typo";
      payload.conversation.session.participants.push({ participantId: "agent-1" });
      const message = expectError(await init(payload), 400, "0x80048d19");
      expect(message).toContain("data.conversation.session.participants[1].addedTimestamp: must be an ISO-8601 date-time");
      expect(message).toContain("data.conversation.session.agentAssignedTimestamp: must be an ISO-8601 date-time");
      expect(message).toContain("data.conversation.channel: must be at most 100 characters long");
      expect(message).toContain("data.conversation.session.sesionName: is not a known property");
      expect(message).toContain("data.conversation.session.participants[2].participantId: repeats participants[0].participantId");
      expect(await counts(c)).toEqual([0, 0, 0, 0]);

      const missingIds = expectError(await init({ conversation: { session: { participants: [{}] } } }), 400);
      expect(missingIds).toContain("data.conversation.conversationId: is required");
      expect(missingIds).toContain("data.conversation.session.providerSessionId: is required");
      expect(missingIds).toContain("data.conversation.session.participants[0].participantId: is required");

      expect(expectError(await init({ conversation: { conversationId: c } }), 400)).toContain(
        "data.conversation.session: is required",
      );
      expect(expectError(await init(undefined), 400)).toContain("data: is required");
      expect(expectError(await init([1, 2]), 400)).toContain("data: must be an object");
      expect(expectError(await action("msdyn_InitLogAnalytics", "just text"), 400)).toMatch(/must be a JSON object/);
    });

    it("refuses data that is a string but not JSON, and a correlationId that is not a GUID", async () => {
      const notJson = expectError(await init("{conversation: oops"), 400);
      expect(notJson).toMatch(/^The msdyn_InitLogAnalytics request is not valid: data: is a string but not valid JSON/);

      const c = `c-${randomUUID()}`;
      const bad = await init(initPayload(c), "not-a-guid");
      expect(expectError(bad, 400)).toContain("correlationId: must be a GUID");
      expect(bad.headers["x-ms-correlation-request-id"]).toBeUndefined();
      expect(await counts(c)).toEqual([0, 0, 0, 0]);
    });

    it("without a correlationId still answers one (generated)", async () => {
      const res = await init(
        { conversation: { conversationId: `c-${randomUUID()}`, session: { providerSessionId: "s-1" } } },
        null,
      );
      ok(res);
      expect(String(res.headers["x-ms-correlation-request-id"])).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );
    });

    it("answers only POST", async () => {
      const res = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_InitLogAnalytics` });
      expect(res.statusCode).toBe(405);
    });
  });

  // -------------------------------------------------------------------------

  describe("msdyn_LogAnalyticsEvent", () => {
    it("stores one KPI event per data.events[i], with the shared fields on each", async () => {
      const { providerId, c } = await family();
      const correlationId = randomUUID();
      const res = await logEvents(
        eventPayload(c, [
          {
            kpiEventReason: "Accepted by agent",
            eventTimestamp: "2026-11-22T09:31:00Z",
            additionalData: '{"channel":"voice"}',
            notificationResponseAction: "Accept",
            externalCorrelationId: "ext-ev-1",
            customData: [{ attribute: "msdyn_customattribute3", value: "first" }],
          },
          { kpiEventName: "SessionStarted", eventTimestamp: "2026-11-22T09:32:00Z" },
          { kpiEventName: "SessionClosed", eventTimestamp: "2026-11-22T09:40:00+00:00", kpiEventReason: "Resolved" },
        ]),
        "NotificationAccepted",
        correlationId,
      );
      const body = ok(res);
      expect(res.headers["x-ms-correlation-request-id"]).toBe(correlationId);
      expect(body["@odata.context"]).toBe(
        `http://localhost:80${ROOT}/$metadata#Microsoft.Dynamics.CRM.msdyn_LogAnalyticsEventResponse`,
      );

      const events = await eventRows(c);
      expect(body.KpiEventDataIds).toEqual(events.map((e) => e.msdyn_kpieventdataid));
      for (const event of events) {
        expect(event).toMatchObject({
          msdyn_conversationid: c,
          msdyn_providersessionid: "s-1",
          msdyn_clientsessionid: "client-1",
          msdyn_participantid: "agent-1",
        });
      }
      expect(events[0]).toMatchObject({
        msdyn_kpieventname: "NotificationAccepted",
        msdyn_kpieventid: definitionId("NotificationAccepted"),
        msdyn_kpieventreason: "Accepted by agent",
        msdyn_additionaldata: '{"channel":"voice"}',
        msdyn_notificationresponseaction: "Accept",
        msdyn_externalcorrelationid: "ext-ev-1",
        msdyn_customattribute3: "first",
      });
      expect(events[1]).toMatchObject({ msdyn_kpieventname: "SessionStarted", msdyn_kpieventid: definitionId("SessionStarted") });
      expect(events[2]).toMatchObject({ msdyn_kpieventname: "SessionClosed", msdyn_kpieventreason: "Resolved" });
      expect(events.map((e) => (e.msdyn_eventtimestamp as Date).toISOString())).toEqual([
        "2026-11-22T09:31:00.000Z",
        "2026-11-22T09:32:00.000Z",
        "2026-11-22T09:40:00.000Z",
      ]);
      // The provider is the conversation's; nothing else is implied.
      expect(events[0]!.msdyn_ProviderId).toBeNull();
      expect((await conversationRow(c))!.msdyn_providerid).toBe(providerId);
    });

    it("accepts data as a JSON string; an event without a timestamp gets the time it was logged", async () => {
      const { c } = await family();
      const before = Date.now();
      const body = ok(await logEvents(JSON.stringify(eventPayload(c, [{}], { participantId: undefined })), "SessionStarted"));
      expect(body.KpiEventDataIds).toHaveLength(1);
      const [event] = await eventRows(c);
      expect(event!.msdyn_participantid).toBeNull();
      expect((event!.msdyn_eventtimestamp as Date).getTime()).toBeGreaterThanOrEqual(before - 1000);
    });

    it("stores nothing when one event of the batch has a bad timestamp, and names it", async () => {
      const { c } = await family();
      const res = await logEvents(
        eventPayload(c, [{ eventTimestamp: "2026-11-22T09:31:00Z" }, {}, { eventTimestamp: "22/11/2026 09:31" }]),
        "SessionStarted",
      );
      const message = expectError(res, 400, "0x80048d19");
      expect(message).toContain("data.events[2].eventTimestamp: must be an ISO-8601 date-time");
      expect(await eventRows(c)).toHaveLength(0);
    });

    it("stores nothing when the writer refuses one event, and names that event keeping status and code", async () => {
      const { c } = await family();
      const res = await logEvents(
        eventPayload(c, [
          { kpiEventName: "SessionStarted" },
          { kpiEventName: "SessionStarted" },
          { kpiEventName: "NoSuchEvent" },
        ]),
      );
      const message = expectError(res, 400, OBJECT_DOES_NOT_EXIST);
      expect(message).toMatch(/^data\.events\[2\]: The KPI event definition does not exist/);
      expect(message).toContain("NoSuchEvent");
      expect(await eventRows(c)).toHaveLength(0);
    });

    it("refuses missing parents the same way as a plain POST, prefixed with the event's path", async () => {
      const { c } = await family();
      const missing = `missing-${randomUUID()}`;
      const cases: Array<{ shared: Body; plain: Body }> = [
        // No conversation.
        { shared: { conversationId: missing }, plain: { msdyn_conversationid: missing, msdyn_participantid: "agent-1" } },
        // The conversation exists, the session does not.
        { shared: { providerSessionId: "s-404" }, plain: { msdyn_providersessionid: "s-404", msdyn_participantid: "agent-1" } },
        // The session exists, the participant is not in it.
        { shared: { participantId: "stranger" }, plain: { msdyn_participantid: "stranger" } },
      ];
      for (const { shared, plain } of cases) {
        const direct = await post("msdyn_kpieventsdata", {
          msdyn_conversationid: c,
          msdyn_providersessionid: "s-1",
          msdyn_clientsessionid: "client-1",
          msdyn_kpieventname: "SessionStarted",
          ...plain,
        });
        const plainMessage = expectError(direct, 400, OBJECT_DOES_NOT_EXIST);

        const viaAction = await logEvents(eventPayload(c, [{}], shared), "SessionStarted");
        expect(viaAction.statusCode).toBe(direct.statusCode);
        const message = expectError(viaAction, 400, OBJECT_DOES_NOT_EXIST);
        expect(message).toBe(`data.events[0]: ${plainMessage}`);
      }
      expect(await eventRows(c)).toHaveLength(0);
      expect(await eventRows(missing)).toHaveLength(0);
    });

    it("refuses events of a provider without analytics (403, as a plain POST), except the four agent-behaviour events", async () => {
      const { providerId, c } = await family(false);

      const direct = await post("msdyn_kpieventsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: "s-1",
        msdyn_kpieventname: "SessionStarted",
      });
      const plainMessage = expectError(direct, 403, PRIVILEGE_DENIED);

      const correlationId = randomUUID();
      const gated = await logEvents(
        eventPayload(c, [{ kpiEventName: "CifSessionStart" }, { kpiEventName: "SessionStarted" }]),
        undefined,
        correlationId,
      );
      const message = expectError(gated, 403, PRIVILEGE_DENIED);
      expect(message).toBe(`data.events[1]: ${plainMessage}`);
      expect(message).toContain(`msdyn_ciproviders(${providerId})`);
      // The correlation id is echoed on errors too.
      expect(gated.headers["x-ms-correlation-request-id"]).toBe(correlationId);
      expect(await eventRows(c)).toHaveLength(0);

      const exempt = ok(
        await logEvents(
          eventPayload(
            c,
            AGENT_BEHAVIOUR_EVENTS.map((kpiEventName) => ({ kpiEventName })),
          ),
        ),
      );
      expect(exempt.KpiEventDataIds).toHaveLength(4);
      expect((await eventRows(c)).map((e) => e.msdyn_kpieventname).sort()).toEqual([...AGENT_BEHAVIOUR_EVENTS].sort());
    });

    it("validates the envelope: correlationId required and a GUID, a name for every event, at least one event", async () => {
      const { c } = await family();
      const missingCorrelation = await logEvents(eventPayload(c, [{}]), "SessionStarted", null);
      expect(expectError(missingCorrelation, 400)).toContain("correlationId: is required");
      expect(expectError(await logEvents(eventPayload(c, [{}]), "SessionStarted", "1234"), 400)).toContain(
        "correlationId: must be a GUID",
      );

      const unnamed = expectError(await logEvents(eventPayload(c, [{ kpiEventName: "SessionStarted" }, {}])), 400);
      expect(unnamed).toContain("data.events[1].kpiEventName: is required when eventName is not given");
      expect(unnamed).not.toContain("data.events[0]");

      expect(expectError(await logEvents(eventPayload(c, []), "SessionStarted"), 400)).toContain(
        "data.events: must have at least 1 item",
      );
      const noIds = expectError(await logEvents({ events: [{}] }, "SessionStarted"), 400);
      expect(noIds).toContain("data.conversationId: is required");
      expect(noIds).toContain("data.providerSessionId: is required");
      expect(expectError(await logEvents("[not json", "SessionStarted"), 400)).toContain("data: is a string but not valid JSON");
      expect(
        expectError(
          await logEvents(
            eventPayload(c, [{ customData: [{ attribute: "msdyn_providersessionid", value: "s-2" }] }]),
            "SessionStarted",
          ),
          400,
        ),
      ).toContain("data.events[0].customData[0].attribute: 'msdyn_providersessionid' is a key column of msdyn_kpieventdata");
      expect(await eventRows(c)).toHaveLength(0);
    });
  });

  // -------------------------------------------------------------------------

  describe("correlation id in the log lines", () => {
    let logged: FastifyInstance;
    let db: Database;
    const lines: Array<Record<string, unknown>> = [];

    beforeAll(async () => {
      const config = loadConfig({ LOG_LEVEL: "info", AUTH_MODE: "none", DATABASE_URL: t.testDb.url });
      db = await openDatabase(config, { info() {}, debug() {} });
      const stream = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
      logged = await buildApp({ config, db, loggerInstance: pino({ level: "info" }, stream) });
      await logged.ready();
    });
    afterAll(async () => {
      await logged.close();
      await db.close();
    });

    const linesOf = (correlationId: string) => lines.filter((line) => line.correlationId === correlationId);

    it("adds the correlationId to the request's log lines, for both actions and for refusals", async () => {
      const providerId = await provider({ enabled: true });
      const c = `c-${randomUUID()}`;

      const initId = randomUUID();
      const initRes = await action("msdyn_InitLogAnalytics", { data: initPayload(c, providerId), correlationId: initId }, logged);
      expect(initRes.statusCode, initRes.body).toBe(200);
      const initLines = linesOf(initId);
      expect(initLines.map((l) => l.msg)).toEqual(
        expect.arrayContaining([expect.stringMatching(/^msdyn_InitLogAnalytics: logged conversation/), "request completed"]),
      );
      // Each is a line of that request.
      expect(new Set(initLines.map((l) => l.reqId))).toEqual(new Set([initRes.headers["x-request-id"]]));

      const eventId = randomUUID();
      const eventRes = await action(
        "msdyn_LogAnalyticsEvent",
        { data: eventPayload(c, [{}, {}]), eventName: "SessionStarted", correlationId: eventId },
        logged,
      );
      expect(eventRes.statusCode, eventRes.body).toBe(200);
      expect(linesOf(eventId).map((l) => l.msg)).toEqual(
        expect.arrayContaining([expect.stringMatching(/^msdyn_LogAnalyticsEvent: logged 2 KPI event/), "request completed"]),
      );

      const refusedId = randomUUID();
      const refusedRes = await action(
        "msdyn_LogAnalyticsEvent",
        { data: eventPayload(c, [{}], { providerSessionId: "s-404" }), eventName: "SessionStarted", correlationId: refusedId },
        logged,
      );
      expect(refusedRes.statusCode).toBe(400);
      const completed = linesOf(refusedId).find((l) => l.msg === "request completed");
      expect(completed, JSON.stringify(lines.slice(-3))).toBeDefined();
      expect((completed!.res as { statusCode: number }).statusCode).toBe(400);

      // Other requests' lines do not carry it.
      const other = await logged.inject({ method: "GET", url: `${ROOT}/` });
      expect(other.statusCode).toBe(200);
      expect(lines.filter((l) => l.reqId === other.headers["x-request-id"] && l.correlationId !== undefined)).toEqual([]);
    });
  });
});
