/**
 * `npm start` on the embedded PostgreSQL, killed with SIGKILL: its PostgreSQL (in a
 * process group of its own) outlives it; the next start stops that orphan and serves.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServer, waitUntilServing } from "../helpers/server-process.js";

describe("an embedded PostgreSQL left behind by a killed service", () => {
  const started: ServerProcess[] = [];
  let dataDir = "";
  afterAll(async () => {
    for (const server of started) {
      if (server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill("SIGTERM");
        await Promise.race([server.exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      }
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("is stopped by the next start, which then serves on the same data", async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "cif-orphan-"));
    // Reachable by user postgres, so the cluster stays inside it and goes with it.
    await chmod(dataDir, 0o755);
    const env = { DATABASE_URL: undefined, DATA_DIR: dataDir };
    const first = await startServer(env);
    started.push(first);
    await waitUntilServing(first, `${first.baseUrl}/readyz`, 60_000);
    const created = await fetch(`${first.baseUrl}/api/data/v9.2/msdyn_ciproviders`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ msdyn_name: "Survives SIGKILL" }),
    });
    expect(created.status).toBe(204);
    first.child.kill("SIGKILL");
    await first.exited;

    const second = await startServer(env);
    started.push(second);
    await waitUntilServing(second, `${second.baseUrl}/readyz`, 60_000);
    const res = await fetch(`${second.baseUrl}/api/data/v9.2/msdyn_ciproviders?$filter=msdyn_name eq 'Survives SIGKILL'`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { value: unknown[] }).value).toHaveLength(1);
    expect(second.logs.map((l) => String(l.msg))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^stopping an orphaned embedded PostgreSQL/)]),
    );
  }, 120_000);
});
