/** The service as `npm start` runs it: start-up, configuration errors, graceful shutdown, embedded data. */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import request from "supertest";
import { afterEach, describe, expect, it } from "vitest";
import { EMBEDDED_DATABASE_NAME } from "../src/db/database.js";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { readMigrations } from "../src/db/migrations.js";
import { type TestDatabase, createTestDatabase } from "./helpers/database.js";
import { type ServerProcess, startServer, waitUntilServing } from "./helpers/server-process.js";

describe("server process", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function started(env: Record<string, string | undefined>): Promise<ServerProcess> {
    const server = await startServer(env);
    cleanups.push(async () => {
      if (server.child.exitCode === null) server.child.kill("SIGKILL");
      await server.exited;
    });
    await waitUntilServing(server, `${server.baseUrl}/api/data/v9.2/`);
    return server;
  }

  it("exits with one clear line when the configuration is bad", async () => {
    const server = await startServer({ PORT: "not-a-port" });
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toMatch(/^Invalid configuration: PORT: .*\(got "not-a-port"\)\n$/);
  });

  it("on SIGTERM stops accepting, finishes the in-flight request, then exits", async () => {
    const db: TestDatabase = await createTestDatabase();
    cleanups.push(() => db.drop());
    const server = await started({ DATABASE_URL: db.url });

    // Hold /readyz in flight: its query waits for this lock.
    const locker = await db.pool.connect();
    await locker.query("BEGIN");
    await locker.query(`LOCK TABLE "_prisma_migrations" IN ACCESS EXCLUSIVE MODE`);
    const inFlight = request(server.baseUrl)
      .get("/readyz")
      .then((res) => res);
    await new Promise((resolve) => setTimeout(resolve, 300));

    server.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(request(server.baseUrl).get("/healthz")).rejects.toThrow();
    expect(server.child.exitCode).toBeNull();

    await locker.query("COMMIT");
    locker.release();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: "ready" });
    expect(await server.exited).toBe(0);
    expect(server.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(["shutting down", "stopped"]));
  });

  it("listens with an accept queue as long as MAX_CONNECTIONS (Node's own is 511)", async () => {
    const db: TestDatabase = await createTestDatabase();
    cleanups.push(() => db.drop());
    const server = await started({ DATABASE_URL: db.url, MAX_CONNECTIONS: "700" });
    const port = new URL(server.baseUrl).port;
    // For a listening socket, ss shows the backlog as Send-Q; the kernel caps it at somaxconn.
    const [, , sendQ] = execFileSync("ss", ["-ltnH", `sport = :${port}`], { encoding: "utf8" })
      .trim()
      .split(/\s+/);
    const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8"));
    expect(Number(sendQ)).toBe(Math.min(700, somaxconn));
  });

  it("without DATABASE_URL runs an embedded PostgreSQL whose data survives a restart", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "cif-start-"));
    // As root the embedded PostgreSQL runs as user "postgres", who must be able to enter it.
    await chmod(dataDir, 0o755);
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = { DATABASE_URL: undefined, DATA_DIR: dataDir };
    const clusterPid = path.join(dataDir, "postgres/cluster/postmaster.pid");

    const first = await startServer(env);
    cleanups.push(async () => first.child.exitCode === null && first.child.kill("SIGKILL"));
    const startupMs = await waitUntilServing(first, `${first.baseUrl}/api/data/v9.2/`);
    expect(startupMs).toBeLessThan(30_000);
    const migrationCount = (await readMigrations()).length;
    expect(first.logs.find((l) => l.msg === "database migrations checked")?.applied).toHaveLength(migrationCount);
    expect(existsSync(clusterPid)).toBe(true);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    expect(existsSync(clusterPid), "the embedded PostgreSQL was stopped").toBe(false);

    // Write a row behind the service's back, then restart it.
    const inspect = async (fn: (client: pg.Client) => Promise<void>) => {
      const embedded = await startEmbeddedPostgres({ dataDir: path.join(dataDir, "postgres") });
      const client = new pg.Client({ connectionString: embedded.urlFor(EMBEDDED_DATABASE_NAME) });
      await client.connect();
      try {
        await fn(client);
      } finally {
        await client.end();
        await embedded.stop();
      }
    };
    await inspect((c) => c.query(`INSERT INTO msdyn_ciprovider (msdyn_name) VALUES ('kept across restarts')`).then(() => {}));

    const second = await started(env);
    expect(second.logs.find((l) => l.msg === "database migrations checked")).toMatchObject({ applied: [] });
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);

    await inspect(async (c) => {
      const providers = await c.query(`SELECT msdyn_name FROM msdyn_ciprovider`);
      expect(providers.rows).toEqual([{ msdyn_name: "kept across restarts" }]);
      const history = await c.query(`SELECT count(*)::int AS n FROM "_prisma_migrations"`);
      expect(history.rows[0].n).toBe(migrationCount);
    });
  });
});
