/** The contract between the benchmark and its load-generator process (bench/load.ts). */

/** The line the load generator prints just before it starts sending. */
export const LOAD_STARTING = "starting";

export interface LoadRequest {
  /** Path and query, e.g. `/api/data/v9.2/msdyn_kpieventsdata`. */
  path: string;
  body?: string;
}

export interface LoadSpec {
  label: string;
  /** Origin, e.g. `http://127.0.0.1:4321`. */
  origin: string;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  /** Sent without the bench's bearer token (the phase without authentication). */
  noAuthorization?: boolean;
  /** Requests go round this pool, one after the other across all connections. */
  requests?: LoadRequest[];
  /** Or each request is made fresh: a msdyn_InitLogAnalytics of a new conversation. */
  generate?: { kind: "init-log-analytics"; path: string; conversationPrefix: string; providerId: string };
  connections: number;
  /** Run for this long, or until `amount` requests have completed. */
  durationSeconds?: number;
  amount?: number;
  timeoutSeconds: number;
}

export interface LoadResult {
  label: string;
  connections: number;
  /** Wall-clock seconds of the run. */
  durationSeconds: number;
  /** Completed requests (any status). */
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Of 2xx responses, in ms (autocannon's 1-ms histogram). */
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** 2xx responses per second. */
  okPerSecond: number;
  /** The first few non-2xx answers, to say why. */
  failures: string[];
  /** CPU time the load generator used while sending (its start-up excluded), in seconds. */
  cpuSeconds: number;
}
