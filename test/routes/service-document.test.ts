import { describe, expect, it } from "vitest";
import { WEB_API_TABLES } from "../../src/model/tables.js";
import { useTestApp } from "../helpers/app.js";
import { ODATA_JSON } from "../helpers/records.js";

describe("service basics", () => {
  const t = useTestApp();

  it.each(["v9.0", "v9.1", "v9.2"])(
    "GET /api/data/%s/ lists the six entity sets and the two audit log tables",
    async (version) => {
      const res = await t.app.inject({ method: "GET", url: `/api/data/${version}/`, headers: { host: "example.test:8080" } });

      expect(res.statusCode).toBe(200);
      expect(res.headers["odata-version"]).toBe("4.0");
      expect(res.headers["content-type"]).toBe(ODATA_JSON);
      const body = res.json();
      expect(body["@odata.context"]).toBe(`http://example.test:8080/api/data/${version}/$metadata`);
      expect(body.value).toEqual(WEB_API_TABLES.map((t) => ({ name: t.entitySetName, kind: "EntitySet", url: t.entitySetName })));
      expect(body.value.map((v: { name: string }) => v.name).sort()).toEqual([
        "CIEventsAudit",
        "CIEventsOperational",
        "msdyn_ciproviders",
        "msdyn_conversationsdata",
        "msdyn_kpieventdefinitions",
        "msdyn_kpieventsdata",
        "msdyn_sessionparticipantsdata",
        "msdyn_sessionsdata",
      ]);
    },
  );

  it("answers an unknown API version or resource with a Dataverse 404", async () => {
    const version = await t.app.inject({ method: "GET", url: "/api/data/v8.0/" });
    expect(version.statusCode).toBe(404);
    expect(version.headers["odata-version"]).toBe("4.0");
    expect(version.json()).toEqual({ error: { code: "0x8006088a", message: "Resource not found for the segment 'v8.0'." } });

    const set = await t.app.inject({ method: "GET", url: "/api/data/v9.2/accounts" });
    expect(set.statusCode).toBe(404);
    expect(set.json().error).toEqual({ code: "0x8006088a", message: "Resource not found for the segment 'accounts'." });
  });

  it("GET /healthz says the process is alive", async () => {
    const res = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("GET /readyz checks the database and the migrations", async () => {
    const ready = await t.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ready" });

    // A migration that vanished from the history makes the service not ready.
    const [name] = t.db.migrations.alreadyApplied.length ? t.db.migrations.alreadyApplied : t.db.migrations.applied;
    await t.testDb.pool.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, [name]);
    const notReady = await t.app.inject({ method: "GET", url: "/readyz" });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ status: "not ready", reason: `migrations not applied: ${name}` });
    await t.testDb.pool.query(`UPDATE "_prisma_migrations" SET rolled_back_at = NULL WHERE migration_name = $1`, [name]);
  });

  it("echoes the caller's x-request-id, or makes one", async () => {
    const given = await t.app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "abc-123" } });
    expect(given.headers["x-request-id"]).toBe("abc-123");
    const made = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(made.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("serves Swagger UI at /docs", async () => {
    const res = await t.app.inject({ method: "GET", url: "/docs/" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("swagger");
  });
});
