/** Runs `src/server.ts` as its own process, as `npm start` does, on a free loopback port. */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { freePort } from "../../src/db/embedded-postgres.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

export interface ServerProcess {
  child: ChildProcess;
  baseUrl: string;
  logs: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export async function startServer(env: Record<string, string | undefined>): Promise<ServerProcess> {
  const port = await freePort();
  // AUTH_MODE=none unless a test asks for tokens: these tests are about the process, not identity.
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: "info",
    PORT: String(port),
    HOST: "127.0.0.1",
    AUTH_MODE: "none",
    ...env,
  };
  for (const [key, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[key];
  // The same command as `npm start`, minus npm: signals reach the server directly.
  const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: ROOT, env: childEnv });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  let buffered = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) if (line.trim()) logs.push(JSON.parse(line));
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, baseUrl: `http://127.0.0.1:${port}`, logs, stderr: () => stderr, exited };
}

/** Polls until `url` answers 200, the process exits, or the time runs out. */
export async function waitUntilServing(server: ServerProcess, url: string, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  let exited = false;
  void server.exited.then(() => (exited = true));
  while (Date.now() - started < timeoutMs) {
    if (exited) throw new Error(`server exited before serving: ${server.stderr()}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return Date.now() - started;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server did not serve ${url} within ${timeoutMs} ms: ${server.stderr()}`);
}
