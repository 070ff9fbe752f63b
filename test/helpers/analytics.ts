/** Conversation trees for the analytics tests, written through the Web API as a provider would. */
import { expect } from "vitest";
import type { TestApp } from "./app.js";
import { type Body, records } from "./records.js";

export interface SessionSpec {
  id: string;
  queueId?: string;
  queueName?: string;
  channel?: string;
  creationReason?: string;
  created?: string;
  queueAssigned?: string;
  agentAssigned?: string;
  participants?: { id: string; type?: string; name?: string }[];
}

export interface EventSpec {
  name: string;
  at: string;
  session: string;
  participant?: string;
  reason?: string;
  /** msdyn_cifSessionId: the agent's CIF page load. */
  cifSession?: string;
}

export interface ConversationSpec {
  id: string;
  at: string;
  channel?: string;
  sessions: SessionSpec[];
  events: EventSpec[];
}

/** `headers` go with every write (a bearer token when the app checks them). */
export function analyticsFixtures(t: TestApp, headers: Record<string, string> = {}) {
  const r0 = records(t);
  const r = {
    ...r0,
    post: (set: string, body: unknown) => r0.post(set, body, headers),
    provider: async ({ enabled }: { enabled: boolean }) => {
      const created = await r0.post("msdyn_ciproviders", { msdyn_name: `Provider ${Math.random()}` }, headers);
      expect(created.statusCode, created.body).toBe(204);
      const id = /\(([^)]+)\)$/.exec(String(created.headers["odata-entityid"]))![1]!;
      if (enabled)
        expect((await r0.patch(`msdyn_ciproviders(${id})`, { msdyn_enableanalytics: true }, headers)).statusCode).toBe(204);
      return id;
    },
  };
  let providerId: string | undefined;

  async function ensureProvider(): Promise<string> {
    providerId ??= await r.provider({ enabled: true });
    return providerId;
  }

  async function postEvents(conversationId: string, events: readonly EventSpec[]) {
    for (const e of events) {
      const body: Body = {
        msdyn_name: e.name,
        msdyn_kpieventname: e.name,
        msdyn_eventtimestamp: e.at,
        msdyn_conversationid: conversationId,
        msdyn_providersessionid: e.session,
        ...(e.participant && { msdyn_participantid: e.participant }),
        ...(e.reason && { msdyn_kpieventreason: e.reason }),
        ...(e.cifSession && { msdyn_cifSessionId: e.cifSession }),
      };
      const res = await r.post("msdyn_kpieventsdata", body);
      expect(res.statusCode, res.body).toBe(204);
    }
  }

  async function conversation(spec: ConversationSpec): Promise<void> {
    const provider = await ensureProvider();
    const created = await r.post("msdyn_conversationsdata", {
      msdyn_conversationid: spec.id,
      msdyn_name: spec.id,
      msdyn_conversationtimestamp: spec.at,
      msdyn_providerid: provider,
      ...(spec.channel && { msdyn_channel: spec.channel }),
    });
    expect(created.statusCode, created.body).toBe(204);
    for (const s of spec.sessions) {
      const res = await r.post("msdyn_sessionsdata", {
        msdyn_conversationid: spec.id,
        msdyn_providersessionid: s.id,
        ...(s.queueId && { msdyn_queueid: s.queueId }),
        ...(s.queueName && { msdyn_queuename: s.queueName }),
        ...(s.channel && { msdyn_sessionchannel: s.channel }),
        ...(s.creationReason && { msdyn_sessioncreationreason: s.creationReason }),
        ...(s.created && { msdyn_sessioncreatedtimestamp: s.created }),
        ...(s.queueAssigned && { msdyn_sessionqueueassignedtimestamp: s.queueAssigned }),
        ...(s.agentAssigned && { msdyn_sessionagentassignedtimestamp: s.agentAssigned }),
      });
      expect(res.statusCode, res.body).toBe(204);
      for (const p of s.participants ?? []) {
        const pr = await r.post("msdyn_sessionparticipantsdata", {
          msdyn_conversationid: spec.id,
          msdyn_providersessionid: s.id,
          msdyn_participantid: p.id,
          msdyn_name: p.id,
          msdyn_participanttype: p.type ?? "Agent",
          ...(p.name && { msdyn_participantname: p.name }),
        });
        expect(pr.statusCode, pr.body).toBe(204);
      }
    }
    await postEvents(spec.id, spec.events);
  }

  /** Everything written so far, derived: what the refresher would have done within a tick. */
  const refresh = () => t.app.analytics!.refreshNow(t.db.pool);

  const aggregates = async (body: Body, headers: Record<string, string> = {}) =>
    t.app.inject({ method: "POST", url: "/api/v2/analytics/conversations/aggregates/query", payload: body, headers });
  const details = async (body: Body, headers: Record<string, string> = {}) =>
    t.app.inject({ method: "POST", url: "/api/v2/analytics/conversations/details/query", payload: body, headers });

  const post =
    (url: string) =>
    async (body: Body, headers: Record<string, string> = {}) =>
      t.app.inject({ method: "POST", url: `/api/v2/analytics/${url}`, payload: body, headers });
  const usersDetails = post("users/details/query");
  const usersAggregates = post("users/aggregates/query");
  const observations = post("queues/observations/query");

  return { conversation, postEvents, refresh, aggregates, details, usersDetails, usersAggregates, observations, records: r };
}

/** A Genesys error body: the status, the code, and a message containing each fragment. */
export function expectGenesysError(
  res: { statusCode: number; body: string; json(): unknown },
  status: number,
  code: string,
  ...fragments: string[]
) {
  expect(res.statusCode, res.body).toBe(status);
  const body = res.json() as { status: number; code: string; message: string };
  expect(Object.keys(body).sort()).toEqual(["code", "contextId", "details", "errors", "message", "messageParams", "status"]);
  expect(body.status).toBe(status);
  expect(body.code).toBe(code);
  for (const fragment of fragments) expect(body.message).toContain(fragment);
  return body.message;
}
