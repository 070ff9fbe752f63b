/**
 * Navigation paths that $metadata declares: `{set}(<key>)/<collection>` (GET with query
 * options, POST of a child bound to its parent), `{set}(<key>)/<single>`, and `$1/…`
 * inside a $batch change set.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { OBJECT_DOES_NOT_EXIST, ROOT, createdId, records, postBatch } from "../helpers/records.js";

describe("navigation paths", () => {
  const t = useTestApp();
  let providerId: string;
  beforeAll(async () => {
    providerId = await records(t).provider({ enabled: true });
  });

  const inject = (
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    payload?: object,
    headers: Record<string, string> = {},
  ) => t.app.inject({ method, url: `${ROOT}/${path}`, payload, headers });

  async function conversationWithSessions(sessions: number): Promise<string> {
    const c = `nav-${randomUUID()}`;
    expect(
      (await inject("POST", "msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: providerId })).statusCode,
    ).toBe(204);
    for (let i = 0; i < sessions; i++) {
      const res = await inject("POST", "msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: `s-${i}` });
      expect(res.statusCode, res.body).toBe(204);
    }
    return c;
  }

  it("GETs a conversation's sessions by alternate key, with $select, $filter, $orderby and paging", async () => {
    const c = await conversationWithSessions(3);
    await conversationWithSessions(2); // another conversation's sessions stay out
    const path = `msdyn_conversationsdata(msdyn_conversationid='${c}')/msdyn_sessions?$select=msdyn_providersessionid&$orderby=msdyn_providersessionid desc`;
    const res = await inject("GET", path, undefined, { prefer: "odata.maxpagesize=2" });
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json<{ value: Array<Record<string, unknown>>; "@odata.nextLink": string }>();
    expect(page.value.map((r) => r.msdyn_providersessionid)).toEqual(["s-2", "s-1"]);
    expect(page["@odata.nextLink"]).toContain(`/msdyn_conversationsdata(msdyn_conversationid='${c}')/msdyn_sessions?`);
    const next = await t.app.inject({ method: "GET", url: page["@odata.nextLink"], headers: { prefer: "odata.maxpagesize=2" } });
    expect(next.json<{ value: Array<Record<string, unknown>> }>().value.map((r) => r.msdyn_providersessionid)).toEqual(["s-0"]);

    const filtered = await inject(
      "GET",
      `msdyn_conversationsdata(msdyn_conversationid='${c}')/msdyn_sessions?$filter=msdyn_providersessionid eq 's-1'`,
    );
    expect(filtered.json<{ value: unknown[] }>().value).toHaveLength(1);
  });

  it("GETs a single-valued navigation property, and answers 404 for a missing parent", async () => {
    const c = await conversationWithSessions(1);
    const res = await inject(
      "GET",
      `msdyn_sessionsdata(msdyn_conversationid='${c}',msdyn_providersessionid='s-0')/msdyn_conversation?$select=msdyn_providerid`,
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ msdyn_providerid: providerId });
    expect(res.json()).not.toHaveProperty("msdyn_channel");

    const missing = await inject("GET", `msdyn_conversationsdata(msdyn_conversationid='no-${randomUUID()}')/msdyn_sessions`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe(OBJECT_DOES_NOT_EXIST);
  });

  it("answers 204 for a single-valued navigation whose link is empty", async () => {
    const c = await conversationWithSessions(1);
    const event = await inject("POST", "msdyn_kpieventsdata", {
      msdyn_conversationid: c,
      msdyn_providersessionid: "s-0",
      msdyn_kpieventname: "SessionStarted",
    });
    expect(event.statusCode, event.body).toBe(204);
    const id = createdId(event);
    expect((await inject("GET", `msdyn_kpieventsdata(${id})/msdyn_participant`)).statusCode).toBe(204);
    const definition = await inject("GET", `msdyn_kpieventsdata(${id})/msdyn_definition?$select=msdyn_name`);
    expect(definition.json()).toMatchObject({ msdyn_name: "SessionStarted" });
  });

  it("POSTs a child bound to its parent, filling the link columns, and refuses a body naming another parent", async () => {
    const c = await conversationWithSessions(0);
    const res = await inject(
      "POST",
      `msdyn_conversationsdata(msdyn_conversationid='${c}')/msdyn_sessions`,
      { msdyn_providersessionid: "bound" },
      {
        prefer: "return=representation",
      },
    );
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ msdyn_conversationid: c, msdyn_providersessionid: "bound" });

    const other = await inject("POST", `msdyn_conversationsdata(msdyn_conversationid='${c}')/msdyn_sessions`, {
      msdyn_conversationid: "someone-else",
      msdyn_providersessionid: "x",
    });
    expect(other.statusCode).toBe(400);
    expect(other.json().error.message).toMatch(/msdyn_conversationid.*someone-else/);
    expect((await inject("PATCH", `msdyn_conversationsdata(msdyn_conversationid='${c}')/msdyn_sessions`, {})).statusCode).toBe(
      405,
    );
  });

  it("follows $1/msdyn_sessions inside a $batch change set", async () => {
    const c = `nav-${randomUUID()}`;
    const part = (id: number, line: string, body: object) =>
      [
        "--cs",
        "Content-Type: application/http",
        `Content-ID: ${id}`,
        "",
        line,
        "Content-Type: application/json",
        "",
        JSON.stringify(body),
      ].join("\r\n");
    const payload = [
      "--b",
      "Content-Type: multipart/mixed; boundary=cs",
      "",
      part(1, `POST ${ROOT}/msdyn_conversationsdata HTTP/1.1`, { msdyn_conversationid: c, msdyn_providerid: providerId }),
      part(2, "POST $1/msdyn_sessions HTTP/1.1", { msdyn_providersessionid: "s-batch" }),
      "--cs--",
      "--b--",
      "",
    ].join("\r\n");
    const res = await postBatch(t, payload);
    expect(res.statusCode, res.body).toBe(200);
    const sessions = await inject("GET", `msdyn_conversationsdata(msdyn_conversationid='${c}')/msdyn_sessions`);
    expect(sessions.json<{ value: Array<Record<string, unknown>> }>().value.map((r) => r.msdyn_providersessionid)).toEqual([
      "s-batch",
    ]);
  });
});
