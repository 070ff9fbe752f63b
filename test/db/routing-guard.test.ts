/**
 * The routing guard's rule itself: the statements that failed on Citus (issue 13) are
 * caught, and the service's routed forms pass.
 */
import { describe, expect, it } from "vitest";
import { routingViolation } from "../helpers/routing-guard.js";

describe("the routing guard", () => {
  it("catches a lock by primary key alone", () => {
    expect(routingViolation(`SELECT * FROM "msdyn_sessiondata" WHERE "msdyn_sessiondataid" = $1 FOR UPDATE`)).toMatch(
      /locks rows/,
    );
  });

  it("catches an update or delete by primary key alone, also inside a CTE", () => {
    expect(
      routingViolation(`UPDATE "msdyn_kpieventdata" SET "msdyn_name" = $2 WHERE "msdyn_kpieventdataid" = $1 RETURNING *`),
    ).toMatch(/updates or deletes/);
    expect(routingViolation(`DELETE FROM msdyn_conversationdata WHERE msdyn_conversationdataid = $1`)).toMatch(
      /updates or deletes/,
    );
    expect(
      routingViolation(`WITH d AS (DELETE FROM "msdyn_sessiondata" WHERE "msdyn_sessiondataid" = $1 RETURNING 1) SELECT 1`),
    ).toMatch(/updates or deletes/);
  });

  it("catches a conversation lookup by IN (SELECT …)", () => {
    expect(
      routingViolation(`SELECT 1 FROM msdyn_conversationdata WHERE msdyn_conversationid IN (SELECT conversation_id FROM input)`),
    ).toMatch(/= ANY/);
  });

  it("lets the routed forms pass", () => {
    for (const sql of [
      `SELECT * FROM "msdyn_sessiondata" WHERE "msdyn_sessiondataid" = $1 AND "msdyn_conversationid" = $2 FOR UPDATE`,
      `UPDATE "msdyn_kpieventdata" SET "msdyn_name" = $3, "modifiedon" = now() WHERE "msdyn_kpieventdataid" = $1 AND "msdyn_conversationid" = $2 RETURNING *`,
      `DELETE FROM "msdyn_conversationdata" WHERE "msdyn_conversationdataid" = $1 AND "msdyn_conversationid" = $2`,
      `SELECT msdyn_conversationid FROM msdyn_conversationdata WHERE msdyn_conversationid = ANY($4::text[])`,
      // Not distributed: the guard leaves it alone.
      `SELECT * FROM "msdyn_ciprovider" WHERE "msdyn_ciproviderid" = $1 FOR UPDATE`,
      `UPDATE "msdyn_kpieventdefinition" SET "statecode" = $2 WHERE "msdyn_kpieventdefinitionid" = $1`,
      // An upsert's DO UPDATE is routed by the rows it inserts.
      `INSERT INTO "msdyn_sessiondata" ("a") SELECT 1 ON CONFLICT ("msdyn_conversationid", "msdyn_providersessionid") DO UPDATE SET "a" = EXCLUDED."a"`,
    ]) {
      expect(routingViolation(sql), sql).toBeUndefined();
    }
  });
});
