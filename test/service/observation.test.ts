/**
 * The one observer seam (src/observe/observation.ts): a plain request, every `$batch`
 * part and every action report received → stages → operation → written → outcome, so a
 * subscriber (the request log today, audit later) sees each of them without re-wrapping
 * any handler.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { Observation } from "../../src/observe/observation.js";
import { useTestApp } from "../helpers/app.js";
import { ROOT, createdId, postBatch } from "../helpers/records.js";

describe("the request observer", () => {
  const t = useTestApp();
  const seen: Array<{ requestId: string; observation: Observation }> = [];
  beforeAll(() => {
    t.app.observers.push((request) => (observation) => seen.push({ requestId: request.id, observation }));
  });

  const observed = (requestId: string) => seen.filter((s) => s.requestId === requestId).map((s) => s.observation);

  it("reports a plain request's stages, operation, written id and outcome, in order", async () => {
    const res = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, payload: { msdyn_name: "Observed" } });
    expect(res.statusCode, res.body).toBe(204);
    const id = createdId(res);
    const list = observed(String(res.headers["x-request-id"]));
    expect(list.map((o) => (o.kind === "stage" ? `stage:${o.stage}` : o.kind))).toEqual([
      "organization",
      "caller",
      "stage:parse",
      "stage:plan",
      "operation",
      "requirements",
      "stage:authorize",
      "written",
      "stage:execute",
      "stage:respond",
      "outcome",
    ]);
    expect(list).toContainEqual({ kind: "operation", name: "msdyn_ciproviders.Create", entitySet: "msdyn_ciproviders" });
    // The caller (AUTH_MODE=none: the configured administrator) rides on the observations.
    expect(list[1]).toMatchObject({ kind: "caller", principalId: t.config.CALLER_USER_ID, roles: ["Administrator"] });
    expect(list).toContainEqual({ kind: "requirements", privileges: ["prvCreatemsdyn_ciprovider"], successStatus: 204 });
    expect(list).toContainEqual({ kind: "written", entitySet: "msdyn_ciproviders", ids: [id] });
    expect(list.at(-1)).toMatchObject({ kind: "outcome", status: 204 });
  });

  it("refuses a malformed fetchXml at planning, like a bad $filter: no authorize or execute stage runs", async () => {
    for (const query of [
      `fetchXml=${encodeURIComponent(`<fetch><entity name="msdyn_ciprovider"></fetch>`)}`,
      `$filter=${encodeURIComponent("msdyn_name eq")}`,
    ]) {
      const res = await t.app.inject({ method: "GET", url: `${ROOT}/msdyn_ciproviders?${query}` });
      expect(res.statusCode, res.body).toBe(400);
      const stages = observed(String(res.headers["x-request-id"])).flatMap((o) => (o.kind === "stage" ? [o.stage] : []));
      expect(stages).toEqual(["parse", "plan"]);
    }
  });

  it("reports a refusal's outcome with its status and Dataverse code", async () => {
    const res = await t.app.inject({ method: "POST", url: `${ROOT}/msdyn_ciproviders`, payload: { nope: 1 } });
    expect(res.statusCode).toBe(400);
    expect(observed(String(res.headers["x-request-id"])).at(-1)).toMatchObject({
      kind: "outcome",
      status: 400,
      errorCode: res.json<{ error: { code: string } }>().error.code,
    });
  });

  it("reports every $batch part on its own, marked with its part, and a correlation id from an action", async () => {
    const correlationId = randomUUID();
    const c = `obs-${randomUUID()}`;
    const body = [
      "--b",
      "Content-Type: application/http",
      "",
      `GET ${ROOT}/msdyn_ciproviders?$top=1 HTTP/1.1`,
      "",
      "--b",
      "Content-Type: multipart/mixed; boundary=cs",
      "",
      "--cs",
      "Content-Type: application/http",
      "Content-ID: 1",
      "",
      `POST ${ROOT}/msdyn_conversationsdata HTTP/1.1`,
      "Content-Type: application/json",
      "",
      JSON.stringify({ msdyn_conversationid: c }),
      "--cs--",
      "--b",
      "Content-Type: application/http",
      "",
      `POST ${ROOT}/msdyn_LogAnalyticsEvent HTTP/1.1`,
      "Content-Type: application/json",
      "",
      JSON.stringify({
        data: { conversationId: c, providerSessionId: "none", events: [{ kpiEventName: "SessionStarted" }] },
        correlationId,
      }),
      "--b--",
      "",
    ].join("\r\n");
    const res = await postBatch(t, body, { prefer: "odata.continue-on-error" });
    expect(res.statusCode, res.body).toBe(200);
    const list = observed(String(res.headers["x-request-id"]));
    const outcomes = list.filter((o) => o.kind === "outcome");
    expect(outcomes.map((o) => [o.part?.index, o.part?.changeSet, o.status])).toEqual([
      [1, undefined, 200],
      [2, 1, 204],
      // The conversation names no provider: the part is refused (403), the batch goes on.
      [3, undefined, 403],
      [undefined, undefined, 200],
    ]);
    expect(list.filter((o) => o.kind === "received").map((o) => o.part?.index)).toEqual([1, 2, 3]);
    expect(list).toContainEqual({ kind: "operation", name: "$batch" });
    expect(list).toContainEqual(expect.objectContaining({ kind: "operation", name: "msdyn_conversationsdata.Create" }));
    expect(list).toContainEqual({ kind: "correlation", correlationId, part: expect.objectContaining({ index: 3 }) });
  });
});
