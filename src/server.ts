/**
 * Runs the service: configuration, database (embedded when DATABASE_URL is unset),
 * migrations, HTTP. SIGTERM/SIGINT stop accepting connections, let in-flight requests
 * finish, close the pool and stop the embedded database.
 */
import pino from "pino";
import { buildApp, listenOptions } from "./app.js";
import { ConfigError, loadConfig } from "./config/config.js";
import { DatabaseUnreachableError, openDatabase } from "./db/database.js";
import { EmbeddedPostgresError } from "./db/embedded-postgres.js";
import { MigrationError } from "./db/migrations.js";

async function main(): Promise<void> {
  const startedAt = Date.now();
  const config = loadConfig();
  const log = pino({ level: config.LOG_LEVEL });
  const db = await openDatabase(config, log);
  const app = await buildApp({ config, db, loggerInstance: log });
  // First start: the default organisation and its administrator (credentials file under DATA_DIR).
  await app.identity.ready();
  if (config.AUTH_MODE === "none") {
    log.warn(
      { host: config.HOST },
      "AUTH_MODE=none: every request is let in as the administrator, without a token; for local experiments only",
    );
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, "shutting down");
    // Bounded whatever clients do: after the grace period every connection still open
    // (a dribbling upload, a slow reader) is closed; should closing still hang (a
    // database that never answers), the process exits anyway a little later.
    setTimeout(() => {
      app.log.warn({ graceMs: config.SHUTDOWN_GRACE_MS }, "grace period over; closing the remaining connections");
      app.server.closeAllConnections();
    }, config.SHUTDOWN_GRACE_MS).unref();
    setTimeout(() => {
      app.log.error("shutdown did not finish; exiting");
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS + 10_000).unref();
    // The pool (and the embedded database) close after the app: its own onClose hooks (the
    // audit log's last flush, the forwarder, the refresher) still use the pool. As an onClose
    // hook of its own it ran before theirs, and their last writes failed.
    app
      .close()
      .then(() => db.close())
      .then(() => {
        app.log.info("stopped");
        process.exit(0);
      })
      .catch((error: unknown) => {
        app.log.error({ err: error }, "shutdown failed");
        process.exit(1);
      });
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  await app.listen(listenOptions(config));
  app.log.info({ ms: Date.now() - startedAt, embedded: Boolean(db.embedded) }, "ready");
}

main().catch((error: unknown) => {
  // Known start-up failures get one clear line; anything else its stack.
  if (
    error instanceof ConfigError ||
    error instanceof MigrationError ||
    error instanceof DatabaseUnreachableError ||
    error instanceof EmbeddedPostgresError
  ) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Start-up failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
