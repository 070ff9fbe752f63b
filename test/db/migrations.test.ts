import { createHash } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DEFAULT_MIGRATIONS_DIR,
  MigrationError,
  applyMigrations,
  pendingMigrations,
  readMigrations,
} from "../../src/db/migrations.js";
import { type TestDatabase, createTestDatabase } from "../helpers/database.js";

interface HistoryRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
  rolled_back_at: Date | null;
}

describe("migration runner", () => {
  let db: TestDatabase;
  let dir: string;

  beforeEach(async () => {
    db = await createTestDatabase({ migrated: false });
    dir = await mkdtemp(path.join(tmpdir(), "cif-migrations-"));
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  });
  afterEach(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const history = async () =>
    (await db.pool.query<HistoryRow>(`SELECT * FROM "_prisma_migrations" ORDER BY migration_name`)).rows;

  it("applies every migration to an empty database and records it the way Prisma does", async () => {
    const files = await readMigrations(dir);
    expect(files.length).toBeGreaterThan(0);

    const result = await applyMigrations(db.pool, dir);

    expect(result).toEqual({ applied: files.map((f) => f.name), alreadyApplied: [] });
    const rows = await history();
    expect(rows.map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
    for (const row of rows) {
      const sql = await readFile(path.join(dir, row.migration_name, "migration.sql"));
      expect(row.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
      expect(row.applied_steps_count).toBe(1);
      expect(row.rolled_back_at).toBeNull();
    }
    const tables = await db.pool.query(`SELECT to_regclass('msdyn_kpieventdata') IS NOT NULL AS present`);
    expect(tables.rows[0].present).toBe(true);
    expect(
      await pendingMigrations(
        db.pool,
        files.map((f) => f.name),
      ),
    ).toEqual([]);
  });

  it("is idempotent on restart", async () => {
    await applyMigrations(db.pool, dir);
    const before = await history();

    const again = await applyMigrations(db.pool, dir);

    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toEqual(before.map((r) => r.migration_name));
    expect(await history()).toEqual(before);
  });

  it("applies only the new migration when one is added", async () => {
    await applyMigrations(db.pool, dir);
    await mkdir(path.join(dir, "99990101000000_add_note"));
    await writeFile(path.join(dir, "99990101000000_add_note", "migration.sql"), "CREATE TABLE note (id int);\n");

    const result = await applyMigrations(db.pool, dir);

    expect(result.applied).toEqual(["99990101000000_add_note"]);
    expect((await history()).map((r) => r.migration_name)).toContain("99990101000000_add_note");
  });

  it("ends with one history when two instances start on one empty database", async () => {
    const results = await Promise.all([applyMigrations(db.pool, dir), applyMigrations(db.pool, dir)]);

    const files = await readMigrations(dir);
    const appliedBy = results.map((r) => r.applied.length);
    expect(appliedBy.sort()).toEqual([0, files.length]);
    expect((await history()).map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
  });

  it("refuses to start when an applied migration's file has changed", async () => {
    await applyMigrations(db.pool, dir);
    const [first] = await readMigrations(dir);
    await writeFile(path.join(dir, first!.name, "migration.sql"), `${first!.sql}\n-- edited\n`);

    const attempt = applyMigrations(db.pool, dir);

    await expect(attempt).rejects.toThrow(MigrationError);
    await expect(attempt).rejects.toThrow(new RegExp(`Migration ${first!.name} was changed after it was applied`));
  });

  it("stops with a clear message when a migration fails, and leaves nothing of it behind", async () => {
    await applyMigrations(db.pool, dir);
    await mkdir(path.join(dir, "99990101000000_broken"));
    await writeFile(
      path.join(dir, "99990101000000_broken", "migration.sql"),
      "CREATE TABLE half_done (id int);\nALTER TABLE no_such_table ADD COLUMN x int;\n",
    );

    const attempt = applyMigrations(db.pool, dir);

    await expect(attempt).rejects.toThrow(
      /Migration 99990101000000_broken failed and was rolled back: relation "no_such_table" does not exist/,
    );
    expect((await history()).map((r) => r.migration_name)).not.toContain("99990101000000_broken");
    const leftover = await db.pool.query(`SELECT to_regclass('half_done') IS NOT NULL AS present`);
    expect(leftover.rows[0].present).toBe(false);
  });

  it("refuses to go on over a migration Prisma left unfinished", async () => {
    await applyMigrations(db.pool, dir);
    await db.pool.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ('x', 'y', '20990101000000_failed')`,
    );

    await expect(applyMigrations(db.pool, dir)).rejects.toThrow(/20990101000000_failed is recorded as started but not finished/);
  });
});
