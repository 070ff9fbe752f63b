/** The real `dynamics-web-api` client against the test app listening on a loopback port. */
import type { AddressInfo } from "node:net";
import { DynamicsWebApi } from "dynamics-web-api";
import { expect } from "vitest";
import type { TestApp } from "./app.js";

type Row = Record<string, unknown>;

/** Starts the app listening on a free loopback port; returns its base URL and a client of it. */
export async function listenWithWebApi(t: TestApp): Promise<{ serverUrl: string; api: DynamicsWebApi }> {
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = t.app.server.address() as AddressInfo;
  const serverUrl = `http://127.0.0.1:${port}`;
  return { serverUrl, api: new DynamicsWebApi({ serverUrl, dataApi: { version: "9.2" } }) };
}

/** A provider with analytics on, made through the client. */
export async function webApiProvider(api: DynamicsWebApi, name = "Contoso"): Promise<string> {
  const providerId = await api.create<Row, string>({ collection: "msdyn_ciproviders", data: { msdyn_name: name } });
  expect(await api.update({ collection: "msdyn_ciproviders", key: providerId, data: { msdyn_enableanalytics: true } })).toBe(
    true,
  );
  return providerId;
}

/** Through the client: an enabled provider, conversation `conversationId` of it, its session, and optionally a participant. */
export async function webApiFamily(
  api: DynamicsWebApi,
  conversationId: string,
  { sessionId = "s-1", participantId }: { sessionId?: string; participantId?: string } = {},
): Promise<string> {
  const providerId = await webApiProvider(api);
  await api.create({
    collection: "msdyn_conversationsdata",
    data: { msdyn_conversationid: conversationId, msdyn_providerid: providerId },
  });
  await api.create({
    collection: "msdyn_sessionsdata",
    data: { msdyn_conversationid: conversationId, msdyn_providersessionid: sessionId },
  });
  if (participantId !== undefined) {
    await api.create({
      collection: "msdyn_sessionparticipantsdata",
      data: { msdyn_conversationid: conversationId, msdyn_providersessionid: sessionId, msdyn_participantid: participantId },
    });
  }
  return providerId;
}
