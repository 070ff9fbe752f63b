/**
 * Where each table goes on a Citus cluster (src/model/distribution.ts) is what the
 * migrations do, and what the schema can hold: checked without Citus, from the files.
 */
import { describe, expect, it } from "vitest";
import { DISTRIBUTION_COLUMN, isDistributed, placementOf, primaryKeyColumns } from "../../src/model/distribution.js";
import { TABLES, enforcedParents, tableByLogicalName } from "../../src/model/tables.js";
import { readMigrations, splitStatements } from "../../src/db/migrations.js";

describe("table placement", () => {
  it("every table has a placement", () => {
    for (const table of TABLES) expect(() => placementOf(table), table.logicalName).not.toThrow();
  });

  it("the migrations place every table once, as src/model/distribution.ts says", async () => {
    const placed = new Map<string, string[]>();
    for (const migration of await readMigrations()) {
      for (const [, table, placement] of migration.sql.matchAll(/cif_place_table\('([a-z_]+)', '([a-z]+)'\)/g)) {
        placed.set(table!, [...(placed.get(table!) ?? []), placement!]);
      }
    }
    const expected = new Map(TABLES.map((t) => [t.logicalName, [placementOf(t)]]));
    expect(Object.fromEntries(placed)).toEqual(Object.fromEntries(expected));
  });

  it("a distributed table's keys include the distribution column, and its parents are distributed with it or reference tables", () => {
    for (const table of TABLES.filter(isDistributed)) {
      expect(primaryKeyColumns(table)).toEqual([table.primaryKey, DISTRIBUTION_COLUMN]);
      if (table.naturalKey) expect(table.naturalKey, table.logicalName).toContain(DISTRIBUTION_COLUMN);
      for (const link of enforcedParents(table)) {
        const parent = tableByLogicalName(link.parentTable);
        if (isDistributed(parent)) {
          // Co-located foreign keys join on the distribution column.
          expect(link.columns[link.parentColumns.indexOf(DISTRIBUTION_COLUMN)], link.name).toBe(DISTRIBUTION_COLUMN);
        } else {
          expect(placementOf(parent), `${table.logicalName}.${link.name}`).toBe("reference");
        }
      }
    }
  });
});

describe("splitStatements", () => {
  it("splits on semicolons outside quotes, dollar-quoted bodies and comments, leaving comment-only pieces out", () => {
    const sql = [
      "-- a comment; with a semicolon",
      `CREATE TABLE "a;b" (x text DEFAULT 'it''s; here');`,
      "/* block; comment */",
      "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; PERFORM 2; END $$;",
      "DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$;",
      "SELECT 1",
      "-- trailing comment",
    ].join("\n");
    expect(splitStatements(sql)).toEqual([
      `-- a comment; with a semicolon\nCREATE TABLE "a;b" (x text DEFAULT 'it''s; here')`,
      "/* block; comment */\nCREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; PERFORM 2; END $$",
      "DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$",
      // A statement's comments go with it; a piece of comments alone is no statement.
      "SELECT 1\n-- trailing comment",
    ]);
    expect(splitStatements("SELECT 1;\n-- only a comment;\n/* and another */")).toEqual(["SELECT 1"]);
  });

  it("splits every migration into statements that each hold one command", async () => {
    for (const migration of await readMigrations()) {
      const statements = splitStatements(migration.sql);
      expect(statements.length, migration.name).toBeGreaterThan(0);
      for (const statement of statements) expect(statement.endsWith(";"), statement).toBe(false);
    }
  });
});
