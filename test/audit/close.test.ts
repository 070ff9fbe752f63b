/**
 * Closing the app with records still buffered (issue 12): the last flush writes them to
 * their organisation's database while the organisation directory is still open, and
 * leaves no connection behind (a pool reopened after the directory closed would be one
 * nobody ends, whose connection the server may later drop: an unhandled 'error').
 */
import { randomUUID } from "node:crypto";
import { afterAll, expect, it } from "vitest";
import { workflowEvent } from "../../src/audit/api-event.js";
import { createTestApp } from "../helpers/app.js";
import { withAdminClient } from "../helpers/database.js";
import { withDatabase } from "../helpers/database-url.js";
import { testDataDir } from "../helpers/identity.js";
import pg from "pg";

let otherDatabase: string | undefined;

afterAll(async () => {
  if (otherDatabase) await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS "${otherDatabase}" WITH (FORCE)`));
});

it("writes what is buffered for each organisation at close, and leaves no connection open", async () => {
  const t = await createTestApp({ DATA_DIR: testDataDir(), AUDIT_FLUSH_MS: "1000" });
  let closed = false;
  try {
    const organization = await t.app.identity.organizations.create({ name: `close-${randomUUID().slice(0, 8)}` });
    otherDatabase = organization.databaseName!;
    const eventId = randomUUID();
    const now = new Date();
    t.app.auditLog!.append(
      organization.id,
      workflowEvent(
        {
          eventId,
          operationType: "Test",
          scope: "Task",
          phase: "Completed",
          resultType: "Successful",
          workflowJobId: randomUUID(),
          organizationId: organization.id,
          submitted: now,
          started: now,
          ended: now,
        },
        { resourceIdTemplate: "/ORGANIZATIONS/{organizationId}" },
      ),
    );
    await t.close();
    closed = true;

    const client = new pg.Client({ connectionString: withDatabase(t.testDb.url, otherDatabase) });
    await client.connect();
    try {
      const { rows } = await client.query("SELECT 1 FROM cieventsoperational WHERE cieventsoperationalid = $1", [eventId]);
      expect(rows, "the buffered record was written at close").toHaveLength(1);
      const { rows: connections } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [otherDatabase],
      );
      expect(connections[0]!.n, "connections left to the organisation's database").toBe(0);
    } finally {
      await client.end();
    }
  } finally {
    if (!closed) await t.close();
  }
});
