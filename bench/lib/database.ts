/**
 * A fresh database for one run: a new `cif_bench_<timestamp>` on DATABASE_URL's server
 * (dropped at the end), else a temporary embedded PostgreSQL (stopped and deleted at the
 * end). Migrations are applied as the service applies them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { startEmbeddedPostgres } from "../../src/db/embedded-postgres.js";
import { applyMigrations } from "../../src/db/migrations.js";

export interface BenchDatabase {
  url: string;
  name: string;
  embedded: boolean;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

export async function createBenchDatabase(log: (line: string) => void): Promise<BenchDatabase> {
  const name = `cif_bench_${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}_${process.pid}`;
  let adminUrl: string;
  let urlFor: (database: string) => string;
  let stopServer = async () => {};
  const external = process.env.DATABASE_URL;
  if (external) {
    const host = new URL(external).hostname;
    if (!LOOPBACK.has(host)) throw new Error(`DATABASE_URL must name a loopback host for the benchmark, not ${host}`);
    adminUrl = withDatabase(external, "postgres");
    urlFor = (database) => withDatabase(external, database);
    log(`database: ${name} on DATABASE_URL's server`);
  } else {
    const dir = await mkdtemp(path.join(tmpdir(), "cif-bench-pg-"));
    const started = Date.now();
    try {
      const embedded = await startEmbeddedPostgres({ dataDir: dir });
      adminUrl = embedded.adminUrl;
      urlFor = (name) => embedded.urlFor(name);
      stopServer = async () => {
        await embedded.stop();
        await rm(dir, { recursive: true, force: true });
      };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    log(`database: ${name} on a temporary embedded PostgreSQL in ${dir} (started in ${Date.now() - started} ms)`);
  }

  const dropAndStop = async () => {
    const admin = new pg.Client({ connectionString: adminUrl });
    try {
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await admin.end().catch(() => {});
      await stopServer();
    }
  };

  try {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE "${name}"`);
    } finally {
      await admin.end();
    }
    const url = urlFor(name);
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      const { applied } = await applyMigrations(pool);
      log(`migrations applied: ${applied.join(", ")}`);
    } finally {
      await pool.end();
    }
    return { url, name, embedded: !external, drop: dropAndStop };
  } catch (error) {
    await dropAndStop().catch(() => {});
    throw error;
  }
}
