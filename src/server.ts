/**
 * Runs the service: configuration, database (embedded when DATABASE_URL is unset),
 * migrations, HTTP. SIGTERM/SIGINT stop accepting connections, let in-flight requests
 * finish, close the pool and stop the embedded database.
 */
import pino from "pino";
import { buildApp } from "./app.js";
import { ConfigError, loadConfig } from "./config/config.js";
import { openDatabase } from "./db/database.js";
import { MigrationError } from "./db/migrations.js";

async function main(): Promise<void> {
  const startedAt = Date.now();
  const config = loadConfig();
  const log = pino({ level: config.LOG_LEVEL });
  const db = await openDatabase(config, log);
  const app = await buildApp({ config, db, loggerInstance: log });
  app.addHook("onClose", async () => {
    await db.close();
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, "shutting down");
    app
      .close()
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

  await app.listen({ port: config.PORT, host: config.HOST });
  app.log.info({ ms: Date.now() - startedAt, embedded: Boolean(db.embedded) }, "ready");
}

main().catch((error: unknown) => {
  // Known start-up failures get one clear line; anything else its stack.
  if (error instanceof ConfigError || error instanceof MigrationError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Start-up failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
