/**
 * The benchmark's knobs, from the environment. The defaults are the run the issue asks
 * for (about 4 minutes on 2 cores); `BENCH_SECONDS=2 BENCH_QUERY_EVENTS=50000 npm run bench`
 * is a smoke run of well under a minute.
 */

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}

const integer = (name: string, fallback: number) => Math.max(1, Math.round(positiveNumber(name, fallback)));

/** BENCH_SECONDS, when set, is the duration of every timed phase (a quick smoke run). */
const everyPhase = process.env.BENCH_SECONDS ? positiveNumber("BENCH_SECONDS", 1) : undefined;
const seconds = (name: string, fallback: number) => positiveNumber(name, everyPhase ?? fallback);

export interface Settings {
  /** Seconds of each measured phase (the ceilings: in two halves, before and after the service's phase). */
  singleSeconds: number;
  pgSeconds: number;
  bulkSeconds: number;
  copySeconds: number;
  loggingSeconds: number;
  querySeconds: number;
  emptySeconds: number;
  /** Unmeasured load before each HTTP phase (JIT, pools, caches). */
  warmupSeconds: number;
  /** Connections of the single-event, logging and framework phases, and of the pg ceiling. */
  connections: number;
  /** Rows of the one-stream COPY ceiling (4b), sent as one statement in each of its two halves. */
  copyStreamRows: number;
  /** Concurrent CreateMultiple requests, and concurrent COPY streams. */
  bulkConnections: number;
  /** KPI events per CreateMultiple request and rows per COPY batch. */
  bulkSize: number;
  /** Events per msdyn_LogAnalyticsEvent call. */
  eventsPerLogCall: number;
  /** Conversations (each with a session and a participant) the ingest phases rotate over. */
  conversations: number;
  /** KPI events the query phase adds, spread over `queryConversations` conversations. */
  queryEvents: number;
  queryConversations: number;
  /**
   * Connections of the query phase: a few dashboards at once. Its target is the query's
   * latency; the same query at \`connections\` is measured too, for the record.
   */
  queryConnections: number;
  /** Rows per page of the query phase ($top). */
  queryPageSize: number;
  /** The server's LOG_LEVEL. */
  serverLogLevel: string;
  /** When set, the server runs with `--cpu-prof` and writes its profile into this folder. */
  cpuProfileDir?: string;
  /** The NATS JetStream server the forwarding lag is measured through (issue 12). */
  natsUrl: string;
}

export function loadSettings(): Settings {
  return {
    singleSeconds: seconds("BENCH_SINGLE_SECONDS", 20),
    pgSeconds: seconds("BENCH_PG_SECONDS", 15),
    bulkSeconds: seconds("BENCH_BULK_SECONDS", 20),
    copySeconds: seconds("BENCH_COPY_SECONDS", 15),
    copyStreamRows: integer("BENCH_COPY_STREAM_ROWS", 100_000),
    loggingSeconds: seconds("BENCH_LOGGING_SECONDS", 10),
    querySeconds: seconds("BENCH_QUERY_SECONDS", 10),
    emptySeconds: seconds("BENCH_EMPTY_SECONDS", 10),
    warmupSeconds: positiveNumber("BENCH_WARMUP_SECONDS", Math.min(3, everyPhase ?? 3)),
    connections: integer("BENCH_CONNECTIONS", 32),
    bulkConnections: integer("BENCH_BULK_CONNECTIONS", 4),
    bulkSize: integer("BENCH_BULK_SIZE", 1000),
    eventsPerLogCall: integer("BENCH_LOG_EVENTS", 10),
    conversations: integer("BENCH_CONVERSATIONS", 200),
    queryEvents: integer("BENCH_QUERY_EVENTS", 1_000_000),
    queryConversations: integer("BENCH_QUERY_CONVERSATIONS", 10_000),
    queryConnections: integer("BENCH_QUERY_CONNECTIONS", 4),
    queryPageSize: integer("BENCH_QUERY_PAGE_SIZE", 50),
    serverLogLevel: process.env.BENCH_LOG_LEVEL || "warn",
    cpuProfileDir: process.env.BENCH_CPU_PROF || undefined,
    natsUrl: process.env.BENCH_NATS_URL || "nats://127.0.0.1:4222",
  };
}
