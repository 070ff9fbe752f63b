/**
 * One source of truth: src/model/tables.ts → prisma/schema.prisma → migrations.
 * A change to the table definitions without `npm run db:schema`, or to the Prisma schema
 * without a migration, fails here.
 */
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handWrittenIndexSql, handWrittenPreludeSql, renderPrismaSchema } from "../../src/model/prisma-schema.js";
import { ROOT, prisma } from "../../scripts/prisma-cli.js";
import { type TestDatabase, createTestDatabase } from "../helpers/database.js";

const catalogQuery = `
  SELECT 'column' AS kind, table_name || '.' || column_name AS name,
         concat_ws(' ', data_type, character_maximum_length, datetime_precision, is_nullable, column_default) AS definition
    FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'
  UNION ALL
  SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> '_prisma_migrations'
  UNION ALL
  SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'
  ORDER BY 1, 2`;

async function catalog(pool: pg.Pool) {
  return (await pool.query(catalogQuery)).rows;
}

describe("schema agreement", () => {
  let migrated: TestDatabase;
  let fromSchema: TestDatabase;

  beforeAll(async () => {
    migrated = await createTestDatabase();
    fromSchema = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await migrated.drop();
    await fromSchema.drop();
  });

  it("prisma/schema.prisma is what src/model/tables.ts generates (run `npm run db:schema`)", async () => {
    const committed = await readFile(path.join(ROOT, "prisma/schema.prisma"), "utf8");
    expect(committed).toBe(renderPrismaSchema());
  });

  it("the latest migration's schema snapshot equals prisma/schema.prisma (run `npm run db:migration -- <name>`)", async () => {
    const dir = path.join(ROOT, "prisma/migrations");
    const latest = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()
      .pop()!;
    const diff = prisma(
      [
        "migrate",
        "diff",
        "--from-schema-datamodel",
        path.join("prisma/migrations", latest, "schema.prisma"),
        "--to-schema-datamodel",
        "prisma/schema.prisma",
        "--exit-code",
      ],
      migrated.url,
    );
    expect(diff.stdout, `prisma/schema.prisma has changes no migration holds:\n${diff.stdout}`).not.toMatch(
      /Added|Changed|Removed/,
    );
    expect(diff.status).toBe(0);
  });

  it("the migrations build exactly the tables, constraints and indexes prisma/schema.prisma and the hand-written indexes of tables.ts describe", async () => {
    const script = prisma(
      ["migrate", "diff", "--from-empty", "--to-schema-datamodel", "prisma/schema.prisma", "--script"],
      fromSchema.url,
    );
    // The sequence the row versions' defaults use, which the migrations create by hand.
    for (const sql of handWrittenPreludeSql()) await fromSchema.pool.query(sql);
    await fromSchema.pool.query(script.stdout);
    // The indexes Prisma cannot express (NULLS FIRST), which migrations create by hand.
    for (const sql of handWrittenIndexSql()) await fromSchema.pool.query(sql);

    expect(await catalog(migrated.pool)).toEqual(await catalog(fromSchema.pool));
  });
});
