/**
 * Runs the Prisma CLI. With the driver adapter of prisma.config.ts the CLI works
 * offline but wants a reachable database even for `migrate diff` between two schema
 * files; we give it DATABASE_URL when set, else a throw-away embedded PostgreSQL.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";

export const ROOT = path.resolve(import.meta.dirname, "..");

export async function withPrismaDatabase<T>(fn: (databaseUrl: string) => T | Promise<T>): Promise<T> {
  if (process.env.DATABASE_URL) return fn(process.env.DATABASE_URL);
  const dir = await mkdtemp(path.join(tmpdir(), "cif-prisma-"));
  const embedded = await startEmbeddedPostgres({ dataDir: dir });
  try {
    return await fn(embedded.adminUrl);
  } finally {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `prisma <args>`; returns stdout and the exit status (which `--exit-code` uses). */
export function prisma(args: string[], databaseUrl: string): { stdout: string; status: number } {
  try {
    const stdout = execFileSync(path.join(ROOT, "node_modules/.bin/prisma"), args, {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { stdout, status: 0 };
  } catch (error) {
    const failed = error as { status?: number; stdout?: string; stderr?: string };
    if (failed.status === 2) return { stdout: failed.stdout ?? "", status: 2 };
    throw new Error(`prisma ${args.join(" ")} failed: ${failed.stderr ?? String(error)}`, { cause: error });
  }
}
