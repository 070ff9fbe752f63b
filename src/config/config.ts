/** Configuration from the environment, validated once at start-up. */
import { availableParallelism } from "node:os";
import { z } from "zod";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const ConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, "must be a postgres:// or postgresql:// URL")
    .optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  BODY_LIMIT: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  /** Where the embedded PostgreSQL keeps its cluster when DATABASE_URL is not set. */
  DATA_DIR: z.string().min(1).default(".data"),
  /**
   * PostgreSQL connections in the pool. Twice the cores: more connections than the
   * database can run at once only queue inside it (on 2 cores, 4 beat 20 in \`npm run bench\`).
   */
  DB_POOL_SIZE: z.coerce
    .number()
    .int()
    .positive()
    .max(1000)
    .default(2 * availableParallelism()),
  /**
   * How many batches of new KPI events, and of msdyn_InitLogAnalytics upserts, may be in
   * the database at once (group commit, src/db/group-commit.ts); while they are, what
   * arrives waits and goes in with the next batch.
   */
  INGEST_BATCHES_IN_FLIGHT: z.coerce.number().int().positive().max(64).default(1),
  /** Most records one CreateMultiple / UpdateMultiple / UpsertMultiple request may carry in `Targets`. */
  BULK_MAX_TARGETS: z.coerce.number().int().positive().default(1000),
  /** The user recorded as owner / created-by / modified-by until authentication exists. */
  CALLER_USER_ID: z.string().regex(GUID, "must be a GUID").default("6f3c1a52-2b9e-4f0a-9d51-3c2e8a7b4d10"),
  BUSINESS_UNIT_ID: z.string().regex(GUID, "must be a GUID").default("0b7c5e1d-8a3f-4c26-b9d4-1e5f7a2c9e30"),
  ORGANIZATION_ID: z.string().regex(GUID, "must be a GUID").default("c4d2e8f1-5b7a-4e93-8c06-2f1a9d3b7e50"),
  /** Browser origins that may call the API (CORS), comma-separated (`http://localhost:5173`), or `*`; unset: none. */
  CORS_ORIGINS: z
    .string()
    .default("")
    .transform((text) =>
      text
        .split(",")
        .map((o) => o.trim())
        .filter(Boolean),
    )
    .refine(
      (list) => list.every((o) => o === "*" || /^https?:\/\/[^\s/,]+$/.test(o)),
      "must be origins such as http://localhost:5173, comma-separated, or *",
    ),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Reads the configuration; a bad value throws a ConfigError whose one-line message
 * names the variable, e.g. `Invalid configuration: PORT: must be ... (got "abc")`.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable counts as unset, as most shells and compose files produce them.
  const present = Object.fromEntries(Object.keys(ConfigSchema.shape).flatMap((key) => (env[key] ? [[key, env[key]]] : [])));
  const result = ConfigSchema.safeParse(present);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0]);
    // Never echo a connection URL: it may hold a password.
    const got = key === "DATABASE_URL" ? "" : ` (got ${JSON.stringify(present[key])})`;
    return `${key}: ${issue.message}${got}`;
  });
  throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
}
