/**
 * Opt-in: the service on a Citus cluster (issue 13, README "Scaling out"). Set CITUS_URL to
 * a coordinator's database in which the workers are added; without it the suite is skipped,
 * saying so. It makes a database of its own on the cluster, lets the service apply its
 * migrations, checks where each table went (src/model/distribution.ts), replays the
 * operations of test/helpers/distribution-scenario.ts with the statuses and messages plain
 * PostgreSQL gives, and compares each reference-table row across its copies.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { COLOCATION_TABLE, DISTRIBUTION_COLUMN, placementOf } from "../../src/model/distribution.js";
import { TABLES } from "../../src/model/tables.js";
import { type TestApp, createTestApp } from "../helpers/app.js";
import { CITUS_URL, createCitusDatabase } from "../helpers/citus.js";
import { distributionScenario } from "../helpers/distribution-scenario.js";
import { useResource } from "../helpers/lifecycle.js";
import { createdId, expectError, records } from "../helpers/records.js";

if (!CITUS_URL) {
  console.info('test/citus/citus.test.ts: skipped, CITUS_URL is not set (README "Scaling out" says how to run it).');
}

describe.skipIf(!CITUS_URL)("on a Citus cluster (CITUS_URL)", () => {
  const t = useResource<TestApp>(
    "the app on the Citus cluster",
    () => createTestApp({}, () => createCitusDatabase(CITUS_URL!)),
    (app) => app.close(),
  );
  const query = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) =>
    (await t.db.pool.query(sql, params)).rows as T[];

  it("distributes the conversation tree by msdyn_conversationid, co-located, and makes the small tables reference tables", async () => {
    const placed = await query<{ table: string; method: string; column: string | null; colocation: number }>(
      `SELECT logicalrelid::text AS table, partmethod AS method, colocationid AS colocation,
              CASE WHEN partmethod = 'h' THEN column_to_column_name(logicalrelid, partkey) END AS column
         FROM pg_dist_partition`,
    );
    const byTable = new Map(placed.map((p) => [p.table, p]));
    const colocation = byTable.get(COLOCATION_TABLE)?.colocation;
    for (const table of TABLES) {
      const found = byTable.get(table.logicalName);
      const placement = placementOf(table);
      if (placement === "distributed") {
        expect(found, table.logicalName).toMatchObject({ method: "h", column: DISTRIBUTION_COLUMN, colocation });
      } else if (placement === "reference") {
        expect(found, table.logicalName).toMatchObject({ method: "n" });
      } else {
        expect(found, `${table.logicalName} stays an ordinary table of the coordinator`).toBeUndefined();
      }
    }
    expect(placed.filter((p) => p.method === "h")).toHaveLength(4);
    expect(t.db.migrations.applied.at(-1)).toMatch(/_citus_distribution$/);
  });

  distributionScenario(t);

  it("refuses to move a row to another conversation with 400 (Citus cannot change a row's distribution column)", async () => {
    const { post, patch, conversation, session } = records(t);
    const from = await conversation();
    const to = await conversation();
    const id = await session(from, "s-1");
    const moved = await patch(`msdyn_sessionsdata(${id})`, { msdyn_conversationid: to });
    expect(expectError(moved, 400, "0x80040203")).toBe(
      "msdyn_conversationid of msdyn_sessiondata cannot change on a Citus cluster, where it places the row: " +
        "create the row under the new msdyn_conversationid and delete this one.",
    );
    expect((await post("msdyn_sessionsdata", { msdyn_conversationid: to, msdyn_providersessionid: "s-1" })).statusCode).toBe(204);
  });

  it("gives every copy of a reference-table row the same versionnumber and modifiedon", async () => {
    const { post, patch } = records(t);
    const provider = createdId(await post("msdyn_ciproviders", { msdyn_name: `P-${randomUUID()}` }));
    for (const enabled of [true, false, true]) {
      expect((await patch(`msdyn_ciproviders(${provider})`, { msdyn_enableanalytics: enabled })).statusCode).toBe(204);
    }
    const definition = createdId(await post("msdyn_kpieventdefinitions", { msdyn_name: `D-${randomUUID()}` }));
    expect((await patch(`msdyn_kpieventdefinitions(${definition})`, { msdyn_eventdisplayname: "x" })).statusCode).toBe(204);
    for (const table of TABLES.filter((x) => placementOf(x) === "reference")) {
      const copies = await query<{ nodeport: number; success: boolean; result: string }>(
        `SELECT nodeport, success, result FROM run_command_on_placements($1,
           $$SELECT md5(string_agg(${table.primaryKey} || ':' || versionnumber || ':' || modifiedon, ',' ORDER BY ${table.primaryKey})) FROM %s$$)`,
        [table.logicalName],
      );
      expect(copies.length, table.logicalName).toBeGreaterThanOrEqual(3);
      expect(copies.every((c) => c.success)).toBe(true);
      expect(new Set(copies.map((c) => c.result)).size, `${table.logicalName}: ${JSON.stringify(copies)}`).toBe(1);
    }
    const [row] = await query<{ versionnumber: string }>(
      `SELECT versionnumber FROM msdyn_ciprovider WHERE msdyn_ciproviderid = $1`,
      [provider],
    );
    const [created] = await query<{ v: string }>(
      `SELECT versionnumber AS v FROM msdyn_kpieventdefinition WHERE msdyn_kpieventdefinitionid = $1`,
      [definition],
    );
    expect(BigInt(row!.versionnumber)).toBeGreaterThan(0n);
    expect(BigInt(created!.v)).toBeGreaterThan(0n);
  });
});
