/**
 * The README's walkthrough runs top to bottom: every ```sh block that calls curl, in order,
 * in one bash script against a fresh server process on loopback. Each curl call's status
 * must be the `# HTTP <status>` the README shows after it.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, createTestDatabase } from "./helpers/database.js";
import { testDataDir } from "./helpers/identity.js";
import { type ServerProcess, startServer, waitUntilServing } from "./helpers/server-process.js";

const README = path.resolve(import.meta.dirname, "../README.md");
const DOCUMENTED_BASE = "http://127.0.0.1:3000";

/** Every curl reports its status on stderr, where the script's own output does not go. */
const PRELUDE = `set -u
curl() { command curl --max-time 20 -w '%{stderr}@@STATUS %{http_code}\\n' "$@"; }
`;

function runBash(script: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile("bash", ["-c", script], { timeout: 90_000, maxBuffer: 64 * 1024 * 1024, env }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? null) : 0 });
    });
  });
}

describe("README walkthrough", () => {
  let db: TestDatabase;
  let server: ServerProcess;
  // The configuration `npm start` and `npm run token` share, as a user's shell has it.
  let env: Record<string, string>;
  beforeAll(async () => {
    db = await createTestDatabase();
    env = { DATABASE_URL: db.url, DATA_DIR: testDataDir(), AUTH_MODE: "builtin", LOG_LEVEL: "warn" };
    server = await startServer(env);
    await waitUntilServing(server, `${server.baseUrl}/readyz`);
  }, 60_000);
  afterAll(async () => {
    if (server) {
      server.child.kill("SIGTERM");
      await server.exited;
    }
    await db?.drop();
  });

  it("runs every curl block in order, each answering the status the README shows", async () => {
    const readme = await readFile(README, "utf8");
    const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).filter((b) => /\bcurl\b/.test(b));
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    const expected = blocks.flatMap((b) => [...b.matchAll(/^# HTTP (\d{3})\b/gm)].map((m) => Number(m[1])));
    const script = PRELUDE + blocks.join("\n").replaceAll(DOCUMENTED_BASE, server.baseUrl);
    const result = await runBash(script, { ...process.env, ...env, PORT: new URL(server.baseUrl).port, HOST: "127.0.0.1" });
    const statuses = [...result.stderr.matchAll(/^@@STATUS (\d{3})$/gm)].map((m) => Number(m[1]));
    expect(statuses, `stderr:\n${result.stderr.slice(0, 4000)}\nstdout:\n${result.stdout.slice(0, 4000)}`).toEqual(expected);
    expect(result.code).toBe(0);
  }, 120_000);
});
