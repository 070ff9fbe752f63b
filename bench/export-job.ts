/**
 * The export job benchmark (issue 15), `npm run bench:export-job`: the analytics
 * benchmark's store of BENCH_EXPORT_CONVERSATIONS conversations (default 1,000,000, about
 * 10 events each, over 31 days; bench/lib/analytics-data.ts), loaded with COPY and
 * derived; then, against the service as `npm start` runs it (ANALYTICS_JOB_* at their
 * defaults unless set in the environment):
 *   E1. one conversation details job over the 31 days, submitted and polled until
 *       FULFILLED: its time, and the server's resident set size sampled every 250 ms;
 *   E2. its results read to the end by cursor, 1,000 a page: time, and every
 *       conversation exactly once;
 * then E1 and E2 again on a server started with BENCH_EXPORT_SERVER_NODE_ARGS (default
 * `--max-old-space-size=192`: V8 grows its heap lazily on a machine with memory to spare;
 * empty: no second run).
 * Figures go to bench/results/<time>-export-job.json, with the core count.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { rebuildAll } from "../src/analytics/refresher.js";
import { analyticsSettings } from "../src/analytics/settings.js";
import { loadConfig } from "../src/config/config.js";
import { ANALYTICS_BASE, ANALYTICS_DAYS, loadAnalyticsStore } from "./lib/analytics-data.js";
import { createBenchDatabase } from "./lib/database.js";
import { ROOT, procStatusBytes, startNodeProcess, waitUntilServing } from "./lib/processes.js";
import { administratorToken } from "./lib/token.js";

const CONVERSATIONS = Number(process.env.BENCH_EXPORT_CONVERSATIONS ?? 1_000_000);
const RSS_TARGET = 300 * 1024 * 1024;
/** Node flags of a second server that runs the same job (empty: none). */
const SERVER_NODE_ARGS = (process.env.BENCH_EXPORT_SERVER_NODE_ARGS ?? "--max-old-space-size=192").split(" ").filter(Boolean);
const JOBS = "/api/v2/analytics/conversations/details/jobs";
const DAY = 86_400_000;

const log = (line: string) => process.stdout.write(`[export-job bench] ${line}\n`);
const mb = (bytes: number | undefined) => (bytes === undefined ? "?" : `${(bytes / 1024 / 1024).toFixed(0)} MB`);

/** Samples the process's VmRSS every 250 ms until stopped; gives the largest. */
function rssSampler(pid: number) {
  let max = 0;
  let samples = 0;
  const timer = setInterval(() => {
    void procStatusBytes(pid, "VmRSS").then((rss) => {
      if (rss !== undefined) {
        max = Math.max(max, rss);
        samples++;
      }
    });
  }, 250);
  return {
    stop: () => {
      clearInterval(timer);
      return { maxBytes: max, samples };
    },
  };
}

interface JobRun {
  conversations: number;
  seconds: number;
  perSecond: number;
  resultTableBytes: number;
  rssIdleBytes?: number;
  rssMaxBytes: number;
  rssSamples: number;
  read: { records: number; distinct: number; pages: number; seconds: number; perSecond: number; rssMaxBytes: number };
  peakRssBytes?: number;
  exactlyOnce: boolean;
}

/** E1 and E2 against a server started with `nodeArgs`; stops it at the end. */
async function runJob(label: string, dbUrl: string, dataDir: string, pool: pg.Pool, nodeArgs: string[]): Promise<JobRun> {
  const server = await startNodeProcess(
    "src/server.ts",
    { DATABASE_URL: dbUrl, DATA_DIR: dataDir, LOG_LEVEL: "warn", AUDIT_LOG: "off" },
    nodeArgs,
  );
  try {
    await waitUntilServing(server, `${server.baseUrl}/readyz`);
    const origin = server.baseUrl;
    const headers = { authorization: `Bearer ${await administratorToken(origin, dataDir)}`, "content-type": "application/json" };
    const idleRss = await procStatusBytes(server.pid, "VmRSS");
    const interval = `${new Date(ANALYTICS_BASE).toISOString()}/${new Date(ANALYTICS_BASE + ANALYTICS_DAYS * DAY).toISOString()}`;
    const jobRss = rssSampler(server.pid);
    let t = Date.now();
    const submitted = await fetch(`${origin}${JOBS}`, { method: "POST", headers, body: JSON.stringify({ interval }) });
    if (submitted.status !== 202) throw new Error(`submit: ${submitted.status} ${await submitted.text()}`);
    const { jobId } = (await submitted.json()) as { jobId: string };
    let status: { state: string; rowsWritten: number; rowsExpected?: number; errorMessage?: string } = {
      state: "QUEUED",
      rowsWritten: 0,
    };
    let lastLog = 0;
    // At most 2 hours.
    for (let i = 0; i < 7200 && ["QUEUED", "PENDING"].includes(status.state); i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      status = (await (await fetch(`${origin}${JOBS}/${jobId}`, { headers })).json()) as typeof status;
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        log(
          `${label} E1 ${status.state} ${status.rowsWritten} of ${status.rowsExpected ?? "?"} (${((Date.now() - t) / 1000).toFixed(0)} s)`,
        );
      }
    }
    const jobSeconds = (Date.now() - t) / 1000;
    const jobMemory = jobRss.stop();
    if (status.state !== "FULFILLED") throw new Error(`the job ended ${status.state}: ${status.errorMessage ?? ""}`);
    log(
      `${label} E1 job of ${status.rowsWritten} conversations FULFILLED in ${jobSeconds.toFixed(0)} s ` +
        `(${(status.rowsWritten / jobSeconds).toFixed(0)} /s); server RSS max ${mb(jobMemory.maxBytes)} (idle ${mb(idleRss)})`,
    );
    const resultBytes = Number(
      (await pool.query<{ n: string }>("SELECT pg_total_relation_size('cif_analytics_exportresult') AS n")).rows[0]!.n,
    );

    // E2: its results, to the end.
    const readRss = rssSampler(server.pid);
    t = Date.now();
    const seen = new Set<string>();
    let records = 0;
    let pages = 0;
    let cursor: string | undefined;
    for (let i = 0; i < 100_000; i++) {
      const query = new URLSearchParams({ pageSize: "1000", ...(cursor && { cursor }) });
      const res = await fetch(`${origin}${JOBS}/${jobId}/results?${query.toString()}`, { headers });
      if (res.status !== 200) throw new Error(`results: ${res.status} ${await res.text()}`);
      const page = (await res.json()) as { conversations: { conversationId: string }[]; cursor?: string };
      pages++;
      for (const c of page.conversations) seen.add(c.conversationId);
      records += page.conversations.length;
      cursor = page.cursor;
      if (!cursor) break;
    }
    const readSeconds = (Date.now() - t) / 1000;
    const readMemory = readRss.stop();
    log(
      `${label} E2 read ${records} records (${seen.size} distinct) in ${pages} pages, ${readSeconds.toFixed(0)} s ` +
        `(${(records / readSeconds).toFixed(0)} /s); server RSS max ${mb(readMemory.maxBytes)}`,
    );
    // The job's rows go, so that a second run measures the same work.
    await fetch(`${origin}${JOBS}/${jobId}`, { method: "DELETE", headers });
    return {
      conversations: status.rowsWritten,
      seconds: jobSeconds,
      perSecond: status.rowsWritten / jobSeconds,
      resultTableBytes: resultBytes,
      rssIdleBytes: idleRss,
      rssMaxBytes: jobMemory.maxBytes,
      rssSamples: jobMemory.samples,
      read: {
        records,
        distinct: seen.size,
        pages,
        seconds: readSeconds,
        perSecond: records / readSeconds,
        rssMaxBytes: readMemory.maxBytes,
      },
      peakRssBytes: await procStatusBytes(server.pid, "VmHWM"),
      exactlyOnce: records === seen.size && records === status.rowsExpected,
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const db = await createBenchDatabase(log);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const dataDir = await mkdtemp(path.join(tmpdir(), "cif-export-bench-"));
  try {
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO msdyn_ciprovider (msdyn_name, msdyn_enableanalytics, msdyn_landingurl, msdyn_sortorder, msdyn_roleselector)
       VALUES ('Bench telephony', true, 'https://bench.invalid', 0, 'bench') RETURNING msdyn_ciproviderid AS id`,
    );
    let t = Date.now();
    const loaded = await loadAnalyticsStore(pool, CONVERSATIONS, rows[0]!.id, (n, events) => {
      if (n % 100_000 === 0 || n === CONVERSATIONS)
        log(`loaded ${n} conversations, ${events} events (${((Date.now() - t) / 1000).toFixed(0)} s)`);
    });
    const loadSeconds = (Date.now() - t) / 1000;
    await pool.query("VACUUM ANALYZE");
    t = Date.now();
    const derived = await rebuildAll(pool, analyticsSettings(loadConfig({})), (n, remaining) =>
      log(`derived ${n} conversations (${remaining} queue entries left)`),
    );
    await pool.query("VACUUM ANALYZE");
    const deriveSeconds = (Date.now() - t) / 1000;
    log(`derived ${derived.conversations} conversations in ${deriveSeconds.toFixed(0)} s`);

    const plain = await runJob("[npm start]", db.url, dataDir, pool, []);
    // The same job on a server whose heap is bounded (V8 otherwise grows it lazily on a big machine).
    let bounded: JobRun | { error: string } | undefined;
    if (SERVER_NODE_ARGS.length > 0) {
      bounded = await runJob(`[${SERVER_NODE_ARGS.join(" ")}]`, db.url, dataDir, pool, SERVER_NODE_ARGS).catch(
        (error: unknown) => ({
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    }
    const boundedRun = bounded && "rssMaxBytes" in bounded ? bounded : undefined;
    const targets = [
      {
        what: "E1 the job finishes FULFILLED with every conversation",
        value: plain.conversations,
        ok: plain.conversations === CONVERSATIONS,
      },
      {
        what: "E1 server RSS while the job runs ≤ 300 MB (npm start)",
        value: plain.rssMaxBytes,
        ok: plain.rssMaxBytes <= RSS_TARGET,
      },
      ...(boundedRun
        ? [
            {
              what: `E1 server RSS while the job runs ≤ 300 MB (${SERVER_NODE_ARGS.join(" ")})`,
              value: boundedRun.rssMaxBytes,
              ok: boundedRun.rssMaxBytes <= RSS_TARGET,
            },
          ]
        : []),
      { what: "E2 every conversation exactly once", value: plain.read.distinct, ok: plain.exactlyOnce },
    ];
    const result = {
      startedAt: startedAt.toISOString(),
      machine: { cores: availableParallelism(), cpu: cpus()[0]?.model },
      store: { ...loaded, loadSeconds, deriveSeconds },
      settings: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("ANALYTICS_JOB_"))),
      plain,
      bounded: { nodeArgs: SERVER_NODE_ARGS, ...bounded },
      targets,
    };
    const stamp = startedAt.toISOString().replace(/\D/g, "").slice(0, 14);
    const file = path.join(ROOT, "bench/results", `${stamp.slice(0, 8)}T${stamp.slice(8)}Z-export-job.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    log(`${availableParallelism()} cores; result table ${mb(plain.resultTableBytes)}; results in ${path.relative(ROOT, file)}`);
    for (const target of targets) log(`${target.ok ? "met   " : "MISSED"} ${target.what}: ${target.value}`);
  } finally {
    await pool.end();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
