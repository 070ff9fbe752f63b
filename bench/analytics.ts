/**
 * The analytics benchmark (issue 14), `npm run bench:analytics` (and the last part of
 * `npm run bench`): a store of BENCH_ANALYTICS_CONVERSATIONS conversations (default
 * 1,000,000, about 10 events each) over 31 days, loaded with COPY and derived; then, against
 * the service as `npm start` runs it:
 *   A1. aggregates, 1 day at PT30M by queueId, 8 metrics, 4 connections;
 *   A2. aggregates, 31 days at P1D by queueId and mediaType, 8 metrics, 4 connections;
 *   A3. details, a page of 100 with a queue filter, 4 connections;
 *   A4. single-event ingest at 32 connections without analytics (triggers off, no
 *       refresher) and with analytics maintained, side by side, in an answered call's mix
 *       of events;
 *   A5. freshness: under A4's ingest load, how long an acknowledged event takes to show
 *       in the aggregates;
 *   A6. queue observations (every metric, oWaiting's details, the 20 queues) at 4
 *       connections under A4's ingest load, over BENCH_ANALYTICS_LIVE conversations of the
 *       last 8 hours (default 20,000) whose events after now are not logged yet.
 * Figures go to bench/results/<time>-analytics.json, with the core count.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { rebuildAll } from "../src/analytics/refresher.js";
import { countDirty } from "../src/analytics/store/refresh-store.js";
import { analyticsSettings } from "../src/analytics/settings.js";
import { loadConfig } from "../src/config/config.js";
import { ANALYTICS_BASE, ANALYTICS_DAYS, QUEUES, loadAnalyticsStore } from "./lib/analytics-data.js";
import { createBenchDatabase } from "./lib/database.js";
import type { LoadResult, LoadSpec } from "./lib/load-spec.js";
import { ROOT, type NodeProcess, procStatusBytes, startNodeProcess, waitUntilServing } from "./lib/processes.js";
import { percentile } from "./lib/ceilings.js";
import { administratorToken } from "./lib/token.js";

const CONVERSATIONS = Number(process.env.BENCH_ANALYTICS_CONVERSATIONS ?? 1_000_000);
const QUERY_SECONDS = Number(process.env.BENCH_ANALYTICS_QUERY_SECONDS ?? 15);
const INGEST_SECONDS = Number(process.env.BENCH_ANALYTICS_INGEST_SECONDS ?? 15);
const PROBES = Number(process.env.BENCH_ANALYTICS_PROBES ?? 40);
const LIVE = Number(process.env.BENCH_ANALYTICS_LIVE ?? 20_000);
const API = "/api/data/v9.2";
const METRICS = ["nOffered", "nAnswered", "tAnswered", "tAbandon", "tTalk", "tHeld", "tAcw", "tHandle"];
const DAY = 86_400_000;

const log = (line: string) => process.stdout.write(`[analytics bench] ${line}\n`);
const day = (d: number) => new Date(ANALYTICS_BASE + d * DAY).toISOString();

async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const dir = await mkdtemp(path.join(tmpdir(), "cif-analytics-load-"));
  const file = path.join(dir, "spec.json");
  await writeFile(file, JSON.stringify(spec));
  try {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/load.ts", file], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    if (code !== 0) throw new Error(`${spec.label}: load generator exited ${code}: ${err.slice(-2000)}`);
    return JSON.parse(out.trim().split("\n").pop()!) as LoadResult;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const TRIGGER_TABLES = ["msdyn_conversationdata", "msdyn_sessiondata", "msdyn_sessionparticipantdata", "msdyn_kpieventdata"];
async function setTriggers(pool: pg.Pool, on: boolean) {
  for (const table of TRIGGER_TABLES) {
    for (const trigger of ["cif_analytics_inserted", "cif_analytics_updated", "cif_analytics_deleted"]) {
      await pool.query(`ALTER TABLE ${table} ${on ? "ENABLE" : "DISABLE"} TRIGGER ${trigger}`);
    }
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const db = await createBenchDatabase(log);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const dataDir = await mkdtemp(path.join(tmpdir(), "cif-analytics-bench-"));
  let server: NodeProcess | undefined;
  try {
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO msdyn_ciprovider (msdyn_name, msdyn_enableanalytics, msdyn_landingurl, msdyn_sortorder, msdyn_roleselector)
       VALUES ('Bench telephony', true, 'https://bench.invalid', 0, 'bench') RETURNING msdyn_ciproviderid AS id`,
    );
    const providerId = rows[0]!.id;

    let t = Date.now();
    const loaded = await loadAnalyticsStore(pool, CONVERSATIONS, providerId, (n, events) => {
      if (n % 100_000 === 0 || n === CONVERSATIONS)
        log(`loaded ${n} conversations, ${events} events (${((Date.now() - t) / 1000).toFixed(0)} s)`);
    });
    const loadSeconds = (Date.now() - t) / 1000;
    await pool.query("VACUUM ANALYZE");
    t = Date.now();
    const settings = analyticsSettings(loadConfig({}));
    const derived = await rebuildAll(pool, settings, (n, remaining) =>
      log(`derived ${n} conversations (${remaining} queue entries left)`),
    );
    await pool.query("VACUUM ANALYZE");
    const deriveSeconds = (Date.now() - t) / 1000;
    const sizes = Object.fromEntries(
      await Promise.all(
        ["cif_analytics_metric", "cif_analytics_rollup", "cif_analytics_segment"].map(async (table) => [
          table,
          Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n),
        ]),
      ),
    );
    log(`derived ${derived.conversations} conversations in ${deriveSeconds.toFixed(0)} s: ${JSON.stringify(sizes)}`);

    const startServer = async (env: Record<string, string>) => {
      const proc = await startNodeProcess("src/server.ts", {
        DATABASE_URL: db.url,
        DATA_DIR: dataDir,
        LOG_LEVEL: "warn",
        AUDIT_LOG: "off",
        ...env,
      });
      await waitUntilServing(proc, `${proc.baseUrl}/readyz`);
      return proc;
    };
    server = await startServer({});
    const origin = server.baseUrl;
    const headers = { authorization: `Bearer ${await administratorToken(origin, dataDir)}` };
    // The server is restarted for A4: later queries name the running one and a token for it.
    const query = async (label: string, requests: LoadSpec["requests"], at = { origin, headers }) => {
      await runLoad({
        label: `${label} (warm-up)`,
        ...at,
        method: "POST",
        requests,
        connections: 4,
        durationSeconds: 3,
        timeoutSeconds: 30,
      });
      const r = await runLoad({
        label,
        ...at,
        method: "POST",
        requests,
        connections: 4,
        durationSeconds: QUERY_SECONDS,
        timeoutSeconds: 30,
      });
      if (r.non2xx || r.errors) {
        throw new Error(
          `${label}: ${r.non2xx} non-2xx, ${r.errors} errors: ${r.failures.join(" | ")}\nserver output:\n${server?.output().slice(-3000)}`,
        );
      }
      log(`${label}: ${r.okPerSecond.toFixed(1)} /s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`);
      return r;
    };
    const AGGREGATES = "/api/v2/analytics/conversations/aggregates/query";
    const DETAILS = "/api/v2/analytics/conversations/details/query";
    const days = Array.from({ length: ANALYTICS_DAYS }, (_, d) => d);
    const oneDay = await query(
      "A1 aggregates 1 day PT30M by queueId, 8 metrics",
      days.map((d) => ({
        path: AGGREGATES,
        body: JSON.stringify({
          interval: `${day(d)}/${day(d + 1)}`,
          granularity: "PT30M",
          groupBy: ["queueId"],
          metrics: METRICS,
        }),
      })),
    );
    const month = await query("A2 aggregates 31 days P1D by queueId and mediaType, 8 metrics", [
      {
        path: AGGREGATES,
        body: JSON.stringify({
          interval: `${day(0)}/${day(ANALYTICS_DAYS)}`,
          granularity: "P1D",
          groupBy: ["queueId", "mediaType"],
          metrics: METRICS,
        }),
      },
    ]);
    const details = await query(
      "A3 details page of 100, queue filter",
      days.map((d) => ({
        path: DETAILS,
        body: JSON.stringify({
          interval: `${day(d)}/${day(d + 1)}`,
          paging: { pageSize: 100, pageNumber: 1 + (d % 3) },
          segmentFilters: [{ type: "and", predicates: [{ dimension: "queueId", value: QUEUES[d % QUEUES.length] }] }],
        }),
      })),
    );

    // A4: single events into existing conversations, without and with analytics.
    // The mix of an answered call's events (3 of 10 are focus switches, which nothing reads).
    const MIX = [
      "NotificationReceived",
      "NotificationAccepted",
      "SessionStarted",
      "SessionFocusIn",
      "CallHold",
      "CallUnhold",
      "SessionFocusOut",
      "SessionFocusIn",
      "WrapUpStarted",
      "SessionClosed",
    ];
    const eventRequests = Array.from({ length: 2000 }, (_, i) => ({
      path: `${API}/msdyn_kpieventsdata`,
      body: JSON.stringify({
        msdyn_name: MIX[i % MIX.length],
        msdyn_kpieventname: MIX[i % MIX.length],
        msdyn_eventtimestamp: new Date(ANALYTICS_BASE + (i % ANALYTICS_DAYS) * DAY + 43_200_000).toISOString(),
        msdyn_conversationid: `bench-c${(i * 499) % CONVERSATIONS}`,
        msdyn_providersessionid: "s-1",
      }),
    }));
    const ingest = async (label: string, proc: NodeProcess, procHeaders: Record<string, string>) => {
      const spec = {
        origin: proc.baseUrl,
        method: "POST" as const,
        headers: procHeaders,
        requests: eventRequests,
        connections: 32,
        timeoutSeconds: 30,
      };
      await runLoad({ ...spec, label: `${label} (warm-up)`, durationSeconds: 3 });
      const r = await runLoad({ ...spec, label, durationSeconds: INGEST_SECONDS });
      log(`${label}: ${r.okPerSecond.toFixed(0)} events/s, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}`);
      return r;
    };
    await server.stop();
    await setTriggers(pool, false);
    const plain = await startServer({ ANALYTICS: "off" });
    const without = await ingest("A4 single events, analytics off", plain, {
      authorization: `Bearer ${await administratorToken(plain.baseUrl, dataDir)}`,
    });
    await plain.stop();
    await setTriggers(pool, true);
    server = await startServer({});
    const withHeaders = { authorization: `Bearer ${await administratorToken(server.baseUrl, dataDir)}` };
    const maintained = await ingest("A4 single events, analytics maintained", server, withHeaders);

    // A5: freshness under the same load.
    const lags: number[] = [];
    const load = runLoad({
      label: "A5 ingest load",
      origin: server.baseUrl,
      method: "POST",
      headers: withHeaders,
      requests: eventRequests,
      connections: 32,
      durationSeconds: Math.max(10, Math.ceil(PROBES * 0.6) + 5),
      timeoutSeconds: 30,
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const post = (url: string, body: unknown) =>
      fetch(`${server!.baseUrl}${url}`, {
        method: "POST",
        headers: { ...withHeaders, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    for (let k = 0; k < PROBES; k++) {
      const id = `probe-${startedAt.getTime()}-${k}`;
      const now = new Date();
      const c = await post(`${API}/msdyn_conversationsdata`, {
        msdyn_conversationid: id,
        msdyn_name: id,
        msdyn_conversationtimestamp: now,
        msdyn_providerid: providerId,
      });
      const s = await post(`${API}/msdyn_sessionsdata`, {
        msdyn_conversationid: id,
        msdyn_providersessionid: "s-1",
        msdyn_queueid: id,
      });
      if (c.status !== 204 || s.status !== 204) throw new Error(`probe ${k}: ${c.status} ${s.status}`);
      const e = await post(`${API}/msdyn_kpieventsdata`, {
        msdyn_name: "NotificationAccepted",
        msdyn_kpieventname: "NotificationAccepted",
        msdyn_eventtimestamp: now,
        msdyn_conversationid: id,
        msdyn_providersessionid: "s-1",
      });
      if (e.status !== 204) throw new Error(`probe ${k}: event ${e.status} ${await e.text()}`);
      const acknowledged = Date.now();
      const from = new Date(Math.floor(now.getTime() / 900_000) * 900_000 - 900_000);
      const body = {
        interval: `${from.toISOString()}/${new Date(from.getTime() + 3_600_000).toISOString()}`,
        filter: { type: "and", predicates: [{ dimension: "queueId", value: id }] },
        metrics: ["nConnected"],
      };
      let seen: number | undefined;
      for (let i = 0; i < 600 && seen === undefined; i++) {
        const res = await post(AGGREGATES, body);
        const json = (await res.json()) as { results?: { data: { metrics: { stats: { count?: number } }[] }[] }[] };
        if ((json.results?.[0]?.data[0]?.metrics[0]?.stats.count ?? 0) >= 1) seen = Date.now();
        else await new Promise((resolve) => setTimeout(resolve, 25));
      }
      lags.push((seen ?? Date.now() + 60_000) - acknowledged);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const underLoad = await load;
    const sorted = [...lags].sort((a, b) => a - b);
    const freshness = {
      probes: lags.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1]!,
    };
    log(
      `A5 freshness under ${underLoad.okPerSecond.toFixed(0)} events/s: p50 ${freshness.p50} ms, p99 ${freshness.p99} ms, max ${freshness.max} ms`,
    );

    // A6: what supervisors watch, over conversations happening now, under the ingest load.
    const liveUntil = Date.now();
    await loadAnalyticsStore(pool, LIVE, providerId, () => {}, 20_000, { from: liveUntil - 8 * 3_600_000, until: liveUntil });
    t = Date.now();
    for (let i = 0; i < 1200 && (await countDirty(pool)) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 250));
    log(`A6: ${LIVE} live conversations derived by the server's refresher in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const observationLoad = runLoad({
      label: "A6 ingest load",
      origin: server.baseUrl,
      method: "POST",
      headers: withHeaders,
      requests: eventRequests,
      connections: 32,
      durationSeconds: QUERY_SECONDS + 8,
      timeoutSeconds: 30,
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const observations = await query(
      "A6 queue observations, 20 queues, every metric, under ingest load",
      [
        {
          path: "/api/v2/analytics/queues/observations/query",
          body: JSON.stringify({
            filter: { type: "or", predicates: QUEUES.map((value) => ({ dimension: "queueId", value })) },
            metrics: ["oWaiting", "oAlerting", "oInteracting", "oOnQueueUsers", "oOffQueueUsers", "oActiveUsers"],
            detailMetrics: ["oWaiting"],
          }),
        },
      ],
      { origin: server.baseUrl, headers: withHeaders },
    );
    const observationIngest = await observationLoad;
    log(`A6 ingest meanwhile: ${observationIngest.okPerSecond.toFixed(0)} events/s`);
    const peakRss = await procStatusBytes(server.pid, "VmHWM");

    const ratio = maintained.okPerSecond / without.okPerSecond;
    const targets = [
      { what: "A1 aggregates 1 day PT30M p99 ≤ 100 ms", value: oneDay.latency.p99, ok: oneDay.latency.p99 <= 100 },
      { what: "A2 aggregates 31 days P1D p99 ≤ 250 ms", value: month.latency.p99, ok: month.latency.p99 <= 250 },
      { what: "A3 details page of 100 p99 ≤ 100 ms", value: details.latency.p99, ok: details.latency.p99 <= 100 },
      { what: "A5 freshness p99 ≤ 5000 ms", value: freshness.p99, ok: freshness.p99 <= 5000 },
      { what: "A6 observations under ingest p99 ≤ 50 ms", value: observations.latency.p99, ok: observations.latency.p99 <= 50 },
      { what: "A4 ingest with analytics ≥ 0.85 × without", value: Number(ratio.toFixed(3)), ok: ratio >= 0.85 },
    ];
    const result = {
      startedAt: startedAt.toISOString(),
      machine: { cores: availableParallelism(), cpu: cpus()[0]?.model },
      store: {
        ...loaded,
        loadSeconds,
        deriveSeconds,
        derivedPerSecond: derived.conversations / deriveSeconds,
        rollupCells: derived.cells,
        rows: sizes,
      },
      phases: { oneDay, month, details, without, maintained, underLoad, freshness, observations, observationIngest },
      peakRssBytes: peakRss,
      targets,
    };
    const stamp = startedAt.toISOString().replace(/\D/g, "").slice(0, 14);
    const file = path.join(ROOT, "bench/results", `${stamp.slice(0, 8)}T${stamp.slice(8)}Z-analytics.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    log(`${availableParallelism()} cores; results in ${path.relative(ROOT, file)}`);
    for (const target of targets) log(`${target.ok ? "met   " : "MISSED"} ${target.what}: ${target.value}`);
  } finally {
    await server?.stop();
    await pool.end();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
