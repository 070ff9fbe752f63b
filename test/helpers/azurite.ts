/**
 * Azurite's blob service (the installed devDependency) as a child process on a free
 * loopback port, keeping its data in a temporary directory so that `stop()` then
 * `start()` brings back the same account with the same blobs, on the same port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../src/db/embedded-postgres.js";

/** Azurite's well-known development account; the key is published in Azure's docs. */
export const DEV_ACCOUNT = "devstoreaccount1";
export const DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const MAIN = path.join(path.dirname(createRequire(import.meta.url).resolve("azurite/package.json")), "dist/src/blob/main.js");

export interface Azurite {
  connectionString: string;
  port: number;
  /** Stops the process (SIGTERM, then SIGKILL); the data stays for `start()`. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  dispose(): Promise<void>;
}

export async function startAzurite(options: { startTimeoutMs?: number; stopTimeoutMs?: number } = {}): Promise<Azurite> {
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  const location = await mkdtemp(path.join(tmpdir(), "cif-test-azurite-"));
  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = "";
  // Should the test process die first, take Azurite with it.
  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);

  const launch = async () => {
    output = "";
    const args = [MAIN, "--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", location];
    args.push("--silent", "--loose", "--skipApiVersionCheck", "--disableTelemetry");
    const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let gone = false;
    exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    void exited.then(() => (gone = true));
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
    proc.stdout.on("data", keep);
    proc.stderr.on("data", keep);
    const started = Date.now();
    while (Date.now() - started < startTimeoutMs) {
      if (gone) throw new Error(`Azurite exited on start (port ${port}): ${output}`);
      try {
        // Any HTTP answer (an unsigned request gets 403) means it serves.
        await fetch(`http://127.0.0.1:${port}/${DEV_ACCOUNT}?comp=list`, { signal: AbortSignal.timeout(1_000) });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    await stop();
    throw new Error(`Azurite did not serve on port ${port} within ${startTimeoutMs} ms: ${output}`);
  };

  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const waitExit = (ms: number) =>
      Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
    proc.kill("SIGTERM");
    if (await waitExit(stopTimeoutMs)) return;
    proc.kill("SIGKILL");
    if (!(await waitExit(stopTimeoutMs))) throw new Error(`Azurite (pid ${proc.pid}) did not exit after SIGKILL`);
  };

  // The port is free when asked, but another process may take it first: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt === 3) {
        process.removeListener("exit", killOnExit);
        await rm(location, { recursive: true, force: true });
        throw error;
      }
    }
  }

  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};BlobEndpoint=http://127.0.0.1:${port}/${DEV_ACCOUNT};`,
    port,
    stop,
    start: async () => {
      await stop();
      await launch();
    },
    dispose: async () => {
      await stop();
      process.removeListener("exit", killOnExit);
      await rm(location, { recursive: true, force: true });
    },
  };
}
