/**
 * What the in-process HTTP tests share: the API root, Dataverse error codes, the GUID
 * pattern, `app.inject` wrappers, the created-id and error checks, and record fixtures
 * (providers, conversations, sessions, participants).
 */
import { randomUUID } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import { SYSTEM_KPI_EVENT_DEFINITIONS } from "../../src/model/tables.js";
import type { TestApp } from "./app.js";

export const ROOT = "/api/data/v9.2";
export const ODATA_JSON = "application/json; odata.metadata=minimal";

/** Dataverse error codes the tests expect. */
export const OBJECT_DOES_NOT_EXIST = "0x80040217";
export const STRING_TOO_LONG = "0x80044331";
export const PRIVILEGE_DENIED = "0x80040220";

/** A lower-case GUID, as a pattern source (to embed) and as a whole-string RegExp. */
export const GUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
export const GUID = new RegExp(`^${GUID_PATTERN}$`);

export type Body = Record<string, unknown>;
export type Headers = Record<string, string>;

/** The id of a system KPI event definition, by name. */
export const definitionId = (name: string): string => SYSTEM_KPI_EVENT_DEFINITIONS.find((d) => d.name === name)!.id;

/** The GUID at the end of an OData-EntityId header. */
export function entityIdOf(res: LightMyRequestResponse): string {
  const header = res.headers["odata-entityid"];
  expect(header, "OData-EntityId header").toEqual(expect.any(String));
  const match = new RegExp(`\\((${GUID_PATTERN})\\)$`).exec(header as string);
  expect(match, `OData-EntityId ${String(header)} ends with (<guid>)`).not.toBeNull();
  return match![1]!;
}

/** A 204 create: the GUID at the end of its OData-EntityId header. */
export function createdId(res: LightMyRequestResponse): string {
  expect(res.statusCode, res.body).toBe(204);
  return entityIdOf(res);
}

/** A Dataverse error: the status, `{"error":{"code","message"}}` and nothing else, OData headers; returns the message. */
export function expectError(res: LightMyRequestResponse, status: number, code?: string, ...fragments: string[]): string {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers["odata-version"]).toBe("4.0");
  expect(res.headers["content-type"]).toBe(ODATA_JSON);
  const body = res.json();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message"]);
  expect(typeof body.error.message).toBe("string");
  if (code !== undefined) expect(body.error.code).toBe(code);
  for (const fragment of fragments) expect(body.error.message).toContain(fragment);
  return body.error.message as string;
}

export interface ProviderOptions {
  /** `msdyn_name`; a unique one by default. */
  name?: string;
  /** Turn analytics on after creating it (default off). */
  enabled?: boolean;
}

export interface FamilyOptions extends ProviderOptions {
  /** The conversation's provider; a new one (enabled unless `enabled: false`) by default. */
  providerId?: string;
  /** The session's provider session id. */
  sessionId?: string;
  /** Also create this participant of the session. */
  participantId?: string;
}

/** Request wrappers and record fixtures bound to one test app (the handle may be filled in later). */
export function records(t: TestApp) {
  const inject = (method: "GET" | "POST" | "PATCH" | "DELETE", path: string, body?: unknown, headers: Headers = {}) =>
    t.app.inject({ method, url: `${ROOT}/${path}`, headers, ...(body === undefined ? {} : { payload: body as object }) });

  const post = (set: string, body: unknown, headers: Headers = {}) => inject("POST", set, body, headers);
  const patch = (path: string, body: unknown, headers: Headers = {}) => inject("PATCH", path, body, headers);
  const get = (path: string, headers: Headers = {}) => inject("GET", path, undefined, headers);
  const del = (path: string, headers: Headers = {}) => inject("DELETE", path, undefined, headers);

  async function setAnalytics(providerId: string, enabled: boolean): Promise<void> {
    const res = await patch(`msdyn_ciproviders(${providerId})`, { msdyn_enableanalytics: enabled });
    expect(res.statusCode, res.body).toBe(204);
  }

  async function provider({ name = `Provider ${randomUUID()}`, enabled = false }: ProviderOptions = {}): Promise<string> {
    const id = createdId(await post("msdyn_ciproviders", { msdyn_name: name }));
    if (enabled) await setAnalytics(id, true);
    return id;
  }

  /** A new conversation `c-<uuid>` (also its msdyn_name), of the provider if given. */
  async function conversation(providerId?: string): Promise<string> {
    const c = `c-${randomUUID()}`;
    const body: Body = { msdyn_conversationid: c, msdyn_name: c };
    if (providerId) body.msdyn_providerid = providerId;
    createdId(await post("msdyn_conversationsdata", body));
    return c;
  }

  const session = async (c: string, s = "s-1"): Promise<string> =>
    createdId(await post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: s }));

  const participant = async (c: string, s = "s-1", p = "agent-1"): Promise<string> =>
    createdId(
      await post("msdyn_sessionparticipantsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: s,
        msdyn_participantid: p,
      }),
    );

  /** A conversation of a provider (a new enabled one unless said otherwise) with its session, and optionally a participant. */
  async function family(options: FamilyOptions = {}): Promise<{ providerId: string; c: string }> {
    const { sessionId = "s-1", participantId, name, enabled = true } = options;
    const providerId = options.providerId ?? (await provider({ name, enabled }));
    const c = await conversation(providerId);
    await session(c, sessionId);
    if (participantId !== undefined) await participant(c, sessionId, participantId);
    return { providerId, c };
  }

  return { post, patch, get, del, setAnalytics, provider, conversation, session, participant, family };
}

/** POSTs a multipart `$batch` body framed by `--b` (the boundary every test uses) to the app. */
export function postBatch(t: TestApp, payload: string, headers: Headers = {}) {
  return t.app.inject({
    method: "POST",
    url: `${ROOT}/$batch`,
    headers: { "content-type": "multipart/mixed; boundary=b", ...headers },
    payload,
  });
}
