/** Start-up against a database that is down or silent: bounded retries, one JSON line each, then a one-line exit. */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../helpers/server-process.js";

describe("start-up without a database", () => {
  // A loopback listener that accepts connections and never answers: a silent database.
  let silent: net.Server;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it.each([
    ["down (connection refused)", () => "postgresql://nobody@127.0.0.1:1/none"],
    ["silent (accepts, never answers)", () => `postgresql://nobody@127.0.0.1:${(silent.address() as net.AddressInfo).port}/none`],
  ])("with the database %s, retries then exits with one line", async (_name, url) => {
    const server = await startServer({ DATABASE_URL: url(), DB_STARTUP_WAIT_MS: "1500", DB_CONNECT_TIMEOUT_MS: "300" });
    const timer = setTimeout(() => server.child.kill("SIGKILL"), 20_000);
    const code = await server.exited;
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(server.stderr()).toMatch(
      /^The database is unreachable \(.+\); gave up after \d+ attempts in \d+ s \(DB_STARTUP_WAIT_MS=1500\)\. Check DATABASE_URL and that the server is running\.\n$/,
    );
    const attempts = server.logs.filter((line) => line.msg === "database not reachable yet; retrying");
    expect(attempts.length).toBeGreaterThan(0);
    expect(attempts[0]).toMatchObject({ level: 40, attempt: 1, retryInMs: 250 });
  });
});
