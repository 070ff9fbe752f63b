/**
 * The load generator, run as a process of its own so that it never shares an event loop
 * with the server or with the report: `node --import tsx bench/load.ts <spec.json>`.
 * Runs autocannon as the spec says and prints one LoadResult as JSON on stdout.
 */
import { readFile } from "node:fs/promises";
import autocannon from "autocannon";
import { LOAD_STARTING, type LoadResult, type LoadSpec } from "./lib/load-spec.js";
import { initLogAnalyticsBody } from "./lib/workload.js";

const MAX_FAILURES = 5;

async function main(): Promise<void> {
  const specPath = process.argv[2];
  if (!specPath) throw new Error("usage: load.ts <spec.json>");
  const spec = JSON.parse(await readFile(specPath, "utf8")) as LoadSpec;

  const failures: string[] = [];
  const onResponse = (status: number, body: string) => {
    if ((status < 200 || status > 299) && failures.length < MAX_FAILURES) failures.push(`${status} ${body.slice(0, 500)}`);
  };

  let next = 0;
  let setupRequest: (req: autocannon.Request) => autocannon.Request;
  if (spec.generate) {
    const { path, conversationPrefix, providerId } = spec.generate;
    setupRequest = (req) => {
      const n = next++;
      return { ...req, path, body: initLogAnalyticsBody(`${conversationPrefix}-${n}`, providerId, n) };
    };
  } else {
    const pool = spec.requests ?? [];
    if (pool.length === 0) throw new Error(`${spec.label}: no requests to send`);
    setupRequest = (req) => {
      const r = pool[next++ % pool.length]!;
      return r.body === undefined ? { ...req, path: r.path } : { ...req, path: r.path, body: r.body };
    };
  }

  const headers: Record<string, string> = { ...spec.headers };
  if (spec.method === "POST") headers["content-type"] ??= "application/json";

  process.stdout.write(`${LOAD_STARTING}\n`);
  const cpuBefore = process.cpuUsage();
  const result = await autocannon({
    url: spec.origin,
    method: spec.method,
    headers,
    connections: spec.connections,
    ...(spec.amount ? { amount: spec.amount } : { duration: spec.durationSeconds ?? 10 }),
    timeout: spec.timeoutSeconds,
    requests: [{ setupRequest, onResponse }],
  });

  const cpu = process.cpuUsage(cpuBefore);
  const ok = result["2xx"];
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stat]) => [code, stat.count]));
  const out: LoadResult = {
    label: spec.label,
    connections: spec.connections,
    durationSeconds: result.duration,
    requests: Object.values(statusCodes).reduce((a, b) => a + b, 0),
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    latency: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      mean: result.latency.mean,
    },
    okPerSecond: result.duration > 0 ? ok / result.duration : 0,
    failures,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`load generator failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
