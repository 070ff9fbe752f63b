/** The real `dynamics-web-api` client against the test app listening on a loopback port. */
import type { AddressInfo } from "node:net";
import { DynamicsWebApi } from "dynamics-web-api";
import { expect } from "vitest";
import type { TestApp } from "./app.js";
import { testPrincipal, tokenOf } from "./identity.js";

type Row = Record<string, unknown>;

/**
 * Starts the app listening on a free loopback port; returns its base URL and a client of
 * it. With authentication on, the client is an administrator's and gets its token as
 * users do: `onTokenRefresh` (called before every request) returns a cached token from
 * the token endpoint.
 */
export interface WebApiClient {
  serverUrl: string;
  api: DynamicsWebApi;
  /** The caller's user id (the administrator the client signs in as; AUTH_MODE=none: CALLER_USER_ID). */
  userId: string;
  /** What the client passes to DynamicsWebApi, for more clients of the same caller (undefined without authentication). */
  onTokenRefresh?: () => Promise<string>;
}

export async function listenWithWebApi(t: TestApp): Promise<WebApiClient> {
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = t.app.server.address() as AddressInfo;
  const serverUrl = `http://127.0.0.1:${port}`;
  if (t.config.AUTH_MODE === "none") {
    return { serverUrl, api: new DynamicsWebApi({ serverUrl, dataApi: { version: "9.2" } }), userId: t.config.CALLER_USER_ID };
  }
  const principal = await testPrincipal(t.app, ["Administrator"]);
  let cached: { token: string; until: number } | undefined;
  const onTokenRefresh = async () => {
    if (!cached || cached.until < Date.now())
      cached = { token: await tokenOf(t.app, principal, serverUrl), until: Date.now() + 50 * 60_000 };
    return cached.token;
  };
  return {
    serverUrl,
    api: new DynamicsWebApi({ serverUrl, dataApi: { version: "9.2" }, onTokenRefresh }),
    userId: principal.id,
    onTokenRefresh,
  };
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
