/**
 * `npm run bench`: the service against the database's own ceilings, in one run, on a fresh
 * database (issue 6). Phases:
 *   1. POST msdyn_kpieventsdata, one event per request        vs 2. the same INSERT through pg
 *      (1a: on a second server without authentication; 1b: on one without the audit log)
 *   3. CreateMultiple, 1,000 events per request                vs 4. the same rows through COPY
 *      (4: 4 streams of 1,000-row statements; 4b: one stream, one statement of 100,000 rows;
 *      the ceiling is the better of the two)
 *   5. msdyn_LogAnalyticsEvent (10 events) and msdyn_InitLogAnalytics
 *   6. a filtered page by msdyn_conversationid over ≥ 1,000,000 events (a few dashboards;
 *      6b: the same with the ingestion phases' 32 connections; 6c: as 6, on a second server
 *      without the audit log)
 *   7. an empty Fastify route (the framework's ceiling)
 *   8. the server's peak RSS
 *   9. the forwarding lag of all of it to a JetStream log destination (BENCH_NATS_URL)
 * The service runs as its own process (as `npm start`), the load generator (autocannon) in
 * another, and this one only orchestrates, runs the database ceilings and reports.
 * Everything listens on 127.0.0.1; the server, the load generator and the database are
 * stopped at the end, on failure and on Ctrl-C too.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../src/config/config.js";
import { type CeilingResult, copyCeiling, insertCeiling, oneStreamCopyCeiling } from "./lib/ceilings.js";
import { type ForwardingLag, ForwardingLagProbe } from "./lib/forwarding-lag.js";
import { type PhaseProfile, type PhaseWindow, formatPhaseProfile, monotonicUs, summariseProfile } from "./lib/cpu-profile.js";
import { type BenchDatabase, createBenchDatabase } from "./lib/database.js";
import { LOAD_STARTING, type LoadResult, type LoadSpec } from "./lib/load-spec.js";
import {
  type CpuUse,
  type NodeProcess,
  ROOT,
  commandLine,
  cpuMeter,
  procStatusBytes,
  startNodeProcess,
  waitUntilServing,
} from "./lib/processes.js";
import { type Row, type Target, formatRate, table, targetLines, writeResults } from "./lib/report.js";
import { type Settings, loadSettings } from "./lib/settings.js";
import { administratorToken } from "./lib/token.js";
import {
  API,
  CALLER,
  DEFAULTED_COLUMNS,
  GATED_EVENTS,
  KPI_COLUMNS,
  PARTICIPANT_ID,
  SESSION_ID,
  conversationId,
  createMultipleBody,
  eventTimestamp,
  kpiEvent,
  logAnalyticsEventBody,
} from "./lib/workload.js";

const MB = 1024 * 1024;
/** The server's pool: as it is configured from this environment (its default follows the cores). */
const serverPoolSize = loadConfig({ DB_POOL_SIZE: process.env.DB_POOL_SIZE }).DB_POOL_SIZE;
const RESULTS_DIR = path.join(ROOT, "bench", "results");

const log = (line: string) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

// ---------------------------------------------------------------------------
// Clean-up: everything started is stopped, in reverse order, whatever happens.

const cleanups: Array<{ name: string; run: () => Promise<unknown> }> = [];
const onCleanup = (name: string, run: () => Promise<unknown>) => cleanups.push({ name, run });
let cleaningUp: Promise<void> | undefined;

function cleanUp(): Promise<void> {
  cleaningUp ??= (async () => {
    while (cleanups.length) {
      const { name, run } = cleanups.pop()!;
      try {
        await run();
      } catch (error) {
        process.stderr.write(`clean-up "${name}" failed: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
  })();
  return cleaningUp;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping the server, the load generator and the database…\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------
// The load generator, in a process of its own.

let specDir: string;
const loadProcesses = new Set<import("node:child_process").ChildProcess>();

/** When each measured phase ran, to cut the server's CPU profile by phase. */
const windows: PhaseWindow[] = [];

type Measured = LoadResult & { cpu?: CpuUse };

async function runLoad(spec: LoadSpec): Promise<Measured> {
  spec = { ...spec, headers: { ...(spec.noAuthorization ? {} : authorization), ...spec.headers } };
  const warmup = spec.label.endsWith("(warm-up)");
  const file = path.join(specDir, `${spec.label.replace(/\W+/g, "-")}-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(spec));
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "bench", "load.ts"), file], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  loadProcesses.add(child);
  let stdout = "";
  let stderr = "";
  // CPU and the profile window count from the moment the load starts, not from the
  // load generator's own start-up.
  let started = monotonicUs();
  let meter: Promise<() => Promise<CpuUse>> | undefined;
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (!meter && stdout.includes(`${LOAD_STARTING}\n`)) {
      started = monotonicUs();
      meter = cpuMeter(target?.pid, postmasterPid);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  const measuredCpu = warmup || !meter ? undefined : await (await meter)();
  loadProcesses.delete(child);
  await rm(file, { force: true });
  const last = stdout.trim().split("\n").at(-1);
  if (code !== 0 || !last || last === LOAD_STARTING)
    throw new Error(`load generator for ${spec.label} exited with ${code}: ${stderr}`);
  if (!warmup) windows.push({ phase: spec.label, startUs: started, endUs: monotonicUs() });
  const result = JSON.parse(last) as LoadResult;
  const cpu = measuredCpu && { ...measuredCpu, loadGenerator: Math.round((result.cpuSeconds / measuredCpu.seconds) * 100) / 100 };
  return { ...result, ...(cpu ? { cpu } : {}) };
}

/** The embedded or local PostgreSQL's postmaster, whose processes' CPU time is counted. */
let postmasterPid: number | undefined;

const cpuText = (cpu: CpuUse | undefined) =>
  cpu
    ? `CPU cores: server ${cpu.server ?? "-"}, PostgreSQL ${cpu.postgres ?? "?"}, load generator ${cpu.loadGenerator ?? "-"}, ` +
      `bench ${cpu.bench ?? "?"}, machine ${cpu.machine ?? "?"}`
    : "CPU: ?";

/** The process under load; a phase that outlives it fails with its last output. */
let target: NodeProcess | undefined;
let targetExit: number | null | undefined;

function assertTargetAlive(phase: string): void {
  if (target && targetExit !== undefined) {
    throw new Error(
      `${phase}: the server (pid ${target.pid}) exited with ${targetExit}; its last output:\n${target.output().slice(-4000)}`,
    );
  }
}

function watch(proc: NodeProcess): void {
  target = proc;
  targetExit = undefined;
  void proc.exited.then((code) => {
    if (target === proc) targetExit = code;
  });
}

/** A warm-up run (discarded), then the measured one. */
async function measure(spec: LoadSpec, settings: Settings, warmup: Partial<LoadSpec> = {}): Promise<Measured> {
  await runLoad({ ...spec, label: `${spec.label} (warm-up)`, durationSeconds: settings.warmupSeconds, ...warmup });
  assertTargetAlive(`${spec.label} (warm-up)`);
  const result = await runLoad(spec);
  assertTargetAlive(spec.label);
  const rate = `${result.okPerSecond.toFixed(0)} 2xx/s`;
  log(
    `${spec.label}: ${rate}, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ` +
      `non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts} (${result.durationSeconds} s; ${cpuText(result.cpu)})`,
  );
  for (const failure of result.failures) log(`  refused: ${failure}`);
  return result;
}

// ---------------------------------------------------------------------------
// HTTP helpers for seeding and for checking each kind of request once before loading it.

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** The bench's bearer token (issue 11: every request is authenticated, as users run it). */
let authorization: Record<string, string> = {};

async function http(origin: string, method: string, url: string, body?: string): Promise<Answer> {
  const res = await fetch(`${origin}${url}`, {
    method,
    headers: { ...authorization, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body,
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function expectOk(what: string, answer: Promise<Answer>): Promise<Answer> {
  const a = await answer;
  if (a.status < 200 || a.status > 299) throw new Error(`${what} answered ${a.status}: ${a.text.slice(0, 1000)}`);
  return a;
}

function createdId(a: Answer): string {
  const id = /\(([0-9a-f-]{36})\)$/i.exec(a.headers.get("odata-entityid") ?? "")?.[1];
  if (!id) throw new Error(`no OData-EntityId in the answer: ${a.text}`);
  return id;
}

/** Runs `fn(i)` for i in [0, n) with `concurrency` at a time. */
async function forEachConcurrently(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

// ---------------------------------------------------------------------------

interface Facts {
  cpus: number;
  cpuModel: string;
  totalMemoryMB: number;
  kernel: string;
  /** 1-minute load average when the run began: other work on the machine skews the figures. */
  loadAverageAtStart: number;
  node: string;
  postgres: {
    version: string;
    fsync: string;
    synchronousCommit: string;
    sharedBuffers: string;
    maxWalSize: string;
    embedded: boolean;
  };
}

async function facts(db: pg.Pool, embedded: boolean): Promise<Facts> {
  const show = async (name: string) => (await db.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!;
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    totalMemoryMB: Math.round(os.totalmem() / MB),
    kernel: `${os.type()} ${os.release()}`,
    loadAverageAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
    node: process.version,
    postgres: {
      version: await show("server_version"),
      fsync: await show("fsync"),
      synchronousCommit: await show("synchronous_commit"),
      sharedBuffers: await show("shared_buffers"),
      maxWalSize: await show("max_wal_size"),
      embedded,
    },
  };
}

/** The commit measured, and whether src/ or prisma/ differ from it. */
async function revision(): Promise<{ commit: string; uncommittedChanges: boolean } | undefined> {
  const git = (...args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile("git", args, { cwd: ROOT }, (error, stdout) =>
        error ? reject(new Error(`git ${args.join(" ")} failed`, { cause: error })) : resolve(stdout.trim()),
      ),
    );
  try {
    return {
      commit: await git("rev-parse", "HEAD"),
      uncommittedChanges: (await git("status", "--porcelain", "--", "src", "prisma")) !== "",
    };
  } catch {
    return undefined;
  }
}

/** The postmaster: the parent of our backend, when PostgreSQL runs on this machine. */
async function findPostmaster(db: pg.Pool): Promise<number | undefined> {
  const backend = (await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  try {
    const stat = await readFile(`/proc/${backend}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined; // another machine or container: its CPU is not counted
  }
}

/** Says so when the two halves of a ceiling differ much: the machine changed pace meanwhile. */
function warnIfDrifted(label: string, ceiling: CeilingResult): void {
  const [a, b] = ceiling.parts;
  if (a === undefined || b === undefined) return;
  if (Math.abs(a - b) / Math.max(a, b) > 0.2) {
    log(
      `WARNING: ${label}: the halves differ (${a.toFixed(0)} and ${b.toFixed(0)} rows/s); another load on the machine? the ratio is uncertain`,
    );
  }
}

const countEvents = async (db: pg.Pool) =>
  Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM msdyn_kpieventdata")).rows[0]!.n);

/** Flushes dirty pages between write phases, so one phase's checkpoint does not land in the next. */
const checkpoint = (db: pg.Pool) => db.query("CHECKPOINT");

async function main(): Promise<void> {
  const startedAt = new Date();
  const settings = loadSettings();
  const tag = startedAt.getTime().toString(36);
  // Only a run as long and as large as the issue asks, not slowed by the profiler, replaces latest.json.
  const kind = settings.cpuProfileDir
    ? "profiled"
    : settings.singleSeconds >= 20 &&
        settings.queryEvents >= 1_000_000 &&
        settings.connections === 32 &&
        settings.bulkSize === 1000
      ? "full"
      : "smoke";
  const full = kind === "full";

  specDir = await mkdtemp(path.join(os.tmpdir(), "cif-bench-"));
  onCleanup("temporary files", () => rm(specDir, { recursive: true, force: true }));
  onCleanup("load generators", async () => {
    for (const child of loadProcesses) child.kill("SIGKILL");
  });

  const database: BenchDatabase = await createBenchDatabase(log);
  onCleanup("database", () => database.drop());
  const db = new pg.Pool({ connectionString: database.url, max: 2 });
  onCleanup("pool", () => db.end());
  const machine = await facts(db, database.embedded);
  const measured = await revision();
  postmasterPid = await findPostmaster(db);
  log(
    `${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, PostgreSQL ${machine.postgres.version} ` +
      `(fsync ${machine.postgres.fsync}, synchronous_commit ${machine.postgres.synchronousCommit})`,
  );

  // -------------------------------------------------------------------------
  // The service, as `npm start` runs it.
  const dataDir = path.join(specDir, "data");
  const serverEnv: Record<string, string> = {
    DATABASE_URL: database.url,
    LOG_LEVEL: settings.serverLogLevel,
    AUTH_MODE: "builtin",
    DATA_DIR: dataDir,
  };
  const nodeArgs = settings.cpuProfileDir ? ["--cpu-prof", "--cpu-prof-dir", path.resolve(settings.cpuProfileDir)] : [];
  const server: NodeProcess = await startNodeProcess("src/server.ts", serverEnv, nodeArgs);
  onCleanup("server", () => server.stop());
  watch(server);
  await waitUntilServing(server, `${server.baseUrl}/readyz`);
  const serverCommand = await commandLine(server.pid);
  if (!serverCommand?.includes("src/server.ts") || !serverCommand.startsWith(process.execPath)) {
    throw new Error(`pid ${server.pid} is not the node process of the server: ${serverCommand}`);
  }
  log(`server pid ${server.pid} at ${server.baseUrl}: ${serverCommand} (LOG_LEVEL=${settings.serverLogLevel})`);
  const origin = server.baseUrl;
  authorization = { authorization: `Bearer ${await administratorToken(origin, dataDir)}` };

  /**
   * A phase on a second server on the same database, started as the first but for `env`
   * (1a, 1b, 6c): started, measured and stopped by its own pid. Its tokens name its own
   * origin (issuer and audience), so when it authenticates it gets one of its own.
   */
  const measureOnSecondServer = async (name: string, env: Record<string, string>, spec: LoadSpec): Promise<Measured> => {
    const second = await startNodeProcess("src/server.ts", { ...serverEnv, ...env });
    onCleanup(name, () => second.stop());
    const previous = { target, targetExit };
    try {
      await waitUntilServing(second, `${second.baseUrl}/readyz`);
      watch(second);
      const token: Record<string, string> = spec.noAuthorization
        ? {}
        : { authorization: `Bearer ${await administratorToken(second.baseUrl, dataDir)}` };
      return await measure({ ...spec, origin: second.baseUrl, headers: { ...token, ...spec.headers } }, settings);
    } finally {
      ({ target, targetExit } = previous);
      await second.stop();
    }
  };

  // 9. Every call of every phase below is forwarded to a JetStream destination as it runs.
  const lagProbe = await ForwardingLagProbe.start(origin, authorization, settings.natsUrl, tag, db);
  if ("unavailable" in lagProbe) log(`WARNING: forwarding lag not measured: ${lagProbe.unavailable}`);
  else onCleanup("log destination", () => lagProbe.stop());

  // Parents: an enabled provider, and conversations each with a session and a participant.
  const providerId = createdId(
    await expectOk(
      "POST msdyn_ciproviders",
      http(origin, "POST", `${API}/msdyn_ciproviders`, JSON.stringify({ msdyn_name: `Bench ${tag}`, msdyn_label: "Bench" })),
    ),
  );
  await expectOk(
    "PATCH msdyn_ciproviders",
    http(origin, "PATCH", `${API}/msdyn_ciproviders(${providerId})`, JSON.stringify({ msdyn_enableanalytics: true })),
  );
  const conversations = Array.from({ length: settings.conversations }, (_, i) => conversationId(tag, i));
  const seedStarted = Date.now();
  await forEachConcurrently(conversations.length, 8, async (i) => {
    const c = conversations[i]!;
    await expectOk(
      "POST msdyn_conversationsdata",
      http(
        origin,
        "POST",
        `${API}/msdyn_conversationsdata`,
        JSON.stringify({
          msdyn_conversationid: c,
          msdyn_name: c,
          msdyn_channel: "voice",
          msdyn_providerid: providerId,
          msdyn_conversationtimestamp: eventTimestamp(i),
        }),
      ),
    );
    await expectOk(
      "POST msdyn_sessionsdata",
      http(
        origin,
        "POST",
        `${API}/msdyn_sessionsdata`,
        JSON.stringify({
          msdyn_conversationid: c,
          msdyn_providersessionid: SESSION_ID,
          msdyn_queuename: "Support",
        }),
      ),
    );
    await expectOk(
      "POST msdyn_sessionparticipantsdata",
      http(
        origin,
        "POST",
        `${API}/msdyn_sessionparticipantsdata`,
        JSON.stringify({
          msdyn_conversationid: c,
          msdyn_providersessionid: SESSION_ID,
          msdyn_participantid: PARTICIPANT_ID,
          msdyn_participanttype: "Agent",
        }),
      ),
    );
  });
  log(
    `seeded provider ${providerId} and ${conversations.length} conversations with a session and a participant each (${Date.now() - seedStarted} ms)`,
  );

  let nextEvent = 0;
  const rows: Row[] = [];
  const startMeter = () => cpuMeter(undefined, postmasterPid);
  // The ceilings' rows take event numbers of their own (they only set timestamps).
  const CEILING_EVENTS = 100_000_000;

  // -------------------------------------------------------------------------
  // 1. Single-event ingest.
  const singlePool = Array.from({ length: 1200 }, (_, i) => ({
    path: `${API}/msdyn_kpieventsdata`,
    body: JSON.stringify(kpiEvent(conversations, nextEvent + i)),
  }));
  nextEvent += singlePool.length;
  const singleSpec: LoadSpec = {
    label: "1. POST msdyn_kpieventsdata",
    origin,
    method: "POST",
    requests: singlePool,
    connections: settings.connections,
    durationSeconds: settings.singleSeconds,
    timeoutSeconds: 30,
  };
  await expectOk("POST msdyn_kpieventsdata", http(origin, "POST", singlePool[0]!.path, singlePool[0]!.body));
  // 2. Its ceiling is measured in two halves, just before and just after, so that both see
  // the same machine.
  const pgCeiling = insertCeiling(database.url, conversations, settings.connections, CEILING_EVENTS, startMeter);
  await checkpoint(db);
  log(`2. INSERT through pg, first half: ${(await pgCeiling.run(settings.pgSeconds / 2)).toFixed(0)} rows/s`);
  await checkpoint(db);
  const beforeSingle = await countEvents(db);
  const single = await measure(singleSpec, settings);
  const storedBySingle = (await countEvents(db)) - beforeSingle;
  // 1a. The same requests without authentication, side by side: a second server on the same
  // database with AUTH_MODE=none (the cost of the bearer token check is the difference).
  const singleOpen = await measureOnSecondServer(
    "server without authentication",
    { AUTH_MODE: "none" },
    { ...singleSpec, label: "1a. POST msdyn_kpieventsdata without authentication", noAuthorization: true },
  );
  const authRatio = single.okPerSecond / singleOpen.okPerSecond;
  log(`1/1a: single-event ingest with a bearer token at ${authRatio.toFixed(2)} × without`);
  // 1b. The same requests, with a token, on a server with AUDIT_LOG=off (issue 12: the
  // cost of committing each write's Audit record in its own transaction is the difference).
  const singleUnaudited = await measureOnSecondServer(
    "server without the audit log",
    { AUDIT_LOG: "off" },
    { ...singleSpec, label: "1b. POST msdyn_kpieventsdata without the audit log (AUDIT_LOG=off)" },
  );
  const auditRatio = single.okPerSecond / singleUnaudited.okPerSecond;
  log(`1/1b: single-event ingest with the audit log at ${auditRatio.toFixed(2)} × without`);
  // The ceiling below must write what the service writes: compare with a row it stored.
  const sample = (
    await db.query<Record<string, unknown>>(`SELECT * FROM msdyn_kpieventdata WHERE msdyn_conversationid = $1 LIMIT 1`, [
      conversations[0],
    ])
  ).rows[0]!;
  const serverColumns = Object.entries(sample)
    .filter(([name, value]) => value !== null && !DEFAULTED_COLUMNS.includes(name))
    .map(([name]) => name)
    .sort();
  const ceilingColumns = [...KPI_COLUMNS].sort();
  const sameColumns = JSON.stringify(serverColumns) === JSON.stringify(ceilingColumns);
  if (!sameColumns)
    log(`WARNING: the server wrote columns [${serverColumns.join(",")}] but the ceilings write [${ceilingColumns.join(",")}]`);

  await checkpoint(db);
  log(`2. INSERT through pg, second half: ${(await pgCeiling.run(settings.pgSeconds / 2)).toFixed(0)} rows/s`);
  const pgInsert = pgCeiling.result();
  log(
    `2. INSERT through pg: ${pgInsert.rowsPerSecond.toFixed(0)} rows/s with ${pgInsert.workers} connections ` +
      `(p50 ${pgInsert.latency.p50.toFixed(1)} ms, p99 ${pgInsert.latency.p99.toFixed(1)} ms; ${cpuText(pgInsert.cpu)})`,
  );
  warnIfDrifted("2. INSERT through pg", pgInsert);
  const singleRatio = single.okPerSecond / pgInsert.rowsPerSecond;
  log(`ratio (1)/(2) = ${singleRatio.toFixed(2)}`);

  // -------------------------------------------------------------------------
  // 3. Bulk ingest.
  const bulkPath = `${API}/msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple`;
  const bulkPool = Array.from({ length: 8 }, (_, i) => ({
    path: bulkPath,
    body: createMultipleBody(conversations, nextEvent + i * settings.bulkSize, settings.bulkSize),
  }));
  nextEvent += bulkPool.length * settings.bulkSize;
  await expectOk("CreateMultiple", http(origin, "POST", bulkPath, bulkPool[0]!.body));
  // 4. Its ceiling, in two halves around it, as for 2.
  const copyCeilingRun = copyCeiling(
    database.url,
    conversations,
    settings.bulkConnections,
    settings.bulkSize,
    CEILING_EVENTS,
    startMeter,
  );
  // 4b. One stream: one COPY of BENCH_COPY_STREAM_ROWS rows in each half.
  const streamCeilingRun = oneStreamCopyCeiling(
    database.url,
    conversations,
    settings.copyStreamRows,
    CEILING_EVENTS + 50_000_000,
    startMeter,
  );
  await checkpoint(db);
  log(`4. COPY, first half: ${(await copyCeilingRun.run(settings.copySeconds / 2)).toFixed(0)} rows/s`);
  await checkpoint(db);
  log(`4b. one COPY stream, first half: ${(await streamCeilingRun.run(0, 1)).toFixed(0)} rows/s`);
  await checkpoint(db);
  const bulkBase: LoadSpec = {
    label: `3. CreateMultiple ×${settings.bulkSize}`,
    origin,
    method: "POST",
    requests: bulkPool,
    connections: settings.bulkConnections,
    timeoutSeconds: 300,
  };
  // A fixed number of requests, so none is cut off by the clock: as many as fill about
  // BENCH_BULK_SECONDS at the pace of the warm-up (two requests per connection).
  const bulkWarmup = await runLoad({ ...bulkBase, label: `${bulkBase.label} (warm-up)`, amount: 2 * settings.bulkConnections });
  const perRequest = Math.max(0.01, bulkWarmup.latency.mean / 1000);
  const rounds = Math.min(1000, Math.max(2, Math.round(settings.bulkSeconds / perRequest)));
  const beforeBulk = await countEvents(db);
  assertTargetAlive(bulkWarmup.label);
  const bulk = await runLoad({ ...bulkBase, amount: settings.bulkConnections * rounds });
  assertTargetAlive(bulkBase.label);
  const storedByBulk = (await countEvents(db)) - beforeBulk;
  const bulkEventsPerSecond = bulk.okPerSecond * settings.bulkSize;
  log(
    `${bulkBase.label}: ${bulkEventsPerSecond.toFixed(0)} events/s (${bulk.ok} requests in ${bulk.durationSeconds} s, ` +
      `p50 ${bulk.latency.p50} ms, p99 ${bulk.latency.p99} ms, non-2xx ${bulk.non2xx}, errors ${bulk.errors}; ${cpuText(bulk.cpu)})`,
  );
  for (const failure of bulk.failures) log(`  refused: ${failure}`);

  await checkpoint(db);
  log(`4b. one COPY stream, second half: ${(await streamCeilingRun.run(0, 1)).toFixed(0)} rows/s`);
  await checkpoint(db);
  log(`4. COPY, second half: ${(await copyCeilingRun.run(settings.copySeconds / 2)).toFixed(0)} rows/s`);
  const copy = copyCeilingRun.result();
  log(
    `4. COPY: ${copy.rowsPerSecond.toFixed(0)} rows/s with ${copy.workers} streams of ${settings.bulkSize}-row batches (${cpuText(copy.cpu)})`,
  );
  warnIfDrifted("4. COPY", copy);
  const copyStream = streamCeilingRun.result();
  log(
    `4b. one COPY stream: ${copyStream.rowsPerSecond.toFixed(0)} rows/s, ${settings.copyStreamRows.toLocaleString("en-US")} rows per statement (${cpuText(copyStream.cpu)})`,
  );
  warnIfDrifted("4b. one COPY stream", copyStream);
  const copyBest = Math.max(copy.rowsPerSecond, copyStream.rowsPerSecond);
  const bulkRatio = bulkEventsPerSecond / copyBest;
  log(`ratio (3)/max(4, 4b) = ${bulkRatio.toFixed(2)}`);

  // -------------------------------------------------------------------------
  // 5. The logging actions.
  const logPath = `${API}/msdyn_LogAnalyticsEvent`;
  const logPool = Array.from({ length: 1000 }, (_, i) => ({
    path: logPath,
    body: logAnalyticsEventBody(
      conversations[i % conversations.length]!,
      nextEvent + i * settings.eventsPerLogCall,
      settings.eventsPerLogCall,
    ),
  }));
  nextEvent += logPool.length * settings.eventsPerLogCall;
  await expectOk("msdyn_LogAnalyticsEvent", http(origin, "POST", logPath, logPool[0]!.body));
  await checkpoint(db);
  const beforeLog = await countEvents(db);
  const logEvent = await measure(
    {
      label: `5a. msdyn_LogAnalyticsEvent ×${settings.eventsPerLogCall}`,
      origin,
      method: "POST",
      requests: logPool,
      connections: settings.connections,
      durationSeconds: settings.loggingSeconds,
      timeoutSeconds: 30,
    },
    settings,
  );
  const storedByLog = (await countEvents(db)) - beforeLog;

  const initPath = `${API}/msdyn_InitLogAnalytics`;
  const initSpec = (suffix: string) => ({
    kind: "init-log-analytics" as const,
    path: initPath,
    conversationPrefix: `bench-${tag}-init-${suffix}`,
    providerId,
  });
  await checkpoint(db);
  const init = await measure(
    {
      label: "5b. msdyn_InitLogAnalytics (new conversation per call)",
      origin,
      method: "POST",
      generate: initSpec("m"),
      connections: settings.connections,
      durationSeconds: settings.loggingSeconds,
      timeoutSeconds: 30,
    },
    settings,
    { generate: initSpec("w") },
  );

  // -------------------------------------------------------------------------
  // 6. Query. The query set is the same in every run whatever the ingest phases stored:
  // BENCH_QUERY_EVENTS events over BENCH_QUERY_CONVERSATIONS conversations (each with a
  // session), inserted in one INSERT … SELECT FROM generate_series.
  const q = settings.queryConversations;
  const qConversation = (i: number) => `bench-${tag}-q${i}`;
  const topUpStarted = Date.now();
  const definitionIds = GATED_EVENTS.map((d) => d.id);
  const definitionNames = GATED_EVENTS.map((d) => d.name);
  await db.query(
    `INSERT INTO msdyn_conversationdata (msdyn_conversationid, msdyn_name, msdyn_channel, msdyn_providerid, ownerid, owningbusinessunit, createdby, modifiedby)
     SELECT $1 || g, $1 || g, 'voice', $3, $4, $5, $4, $4 FROM generate_series(0, $2::int - 1) g`,
    [`bench-${tag}-q`, q, providerId, CALLER.userId, CALLER.businessUnitId],
  );
  await db.query(
    `INSERT INTO msdyn_sessiondata (msdyn_conversationid, msdyn_providersessionid, msdyn_name, ownerid, owningbusinessunit, createdby, modifiedby)
     SELECT $1 || g, $3, $3, $4, $5, $4, $4 FROM generate_series(0, $2::int - 1) g`,
    [`bench-${tag}-q`, q, SESSION_ID, CALLER.userId, CALLER.businessUnitId],
  );
  await db.query(
    `INSERT INTO msdyn_kpieventdata (${KPI_COLUMNS.map((c) => `"${c}"`).join(", ")})
     SELECT gen_random_uuid(), $1 || (g % $3::int), $4, NULL, ($5::uuid[])[g % $7::int + 1], ($6::text[])[g % $7::int + 1],
            timestamptz '2026-11-22T09:00:00Z' + g * interval '7 milliseconds', $8, $9, $8, $8
       FROM generate_series(0, $2::int - 1) g`,
    [
      `bench-${tag}-q`,
      settings.queryEvents,
      q,
      SESSION_ID,
      definitionIds,
      definitionNames,
      definitionIds.length,
      CALLER.userId,
      CALLER.businessUnitId,
    ],
  );
  await db.query("ANALYZE");
  await checkpoint(db);
  const storedEvents = await countEvents(db);
  log(
    `6. inserted ${settings.queryEvents.toLocaleString("en-US")} events over ${q.toLocaleString("en-US")} conversations ` +
      `in ${((Date.now() - topUpStarted) / 1000).toFixed(1)} s (with ANALYZE); ${storedEvents.toLocaleString("en-US")} KPI events stored`,
  );
  const queryPool = Array.from({ length: 2000 }, (_, i) => {
    // A spread of conversations, in an order that jumps around the index.
    const c = qConversation((i * 7919) % q);
    return {
      path: `${API}/msdyn_kpieventsdata?$filter=${encodeURIComponent(`msdyn_conversationid eq '${c}'`)}&$top=${settings.queryPageSize}`,
    };
  });
  const firstPage = await expectOk("GET msdyn_kpieventsdata?$filter", http(origin, "GET", queryPool[0]!.path));
  const pageRows = (JSON.parse(firstPage.text) as { value: unknown[] }).value.length;
  const expectedRows = Math.min(settings.queryPageSize, Math.floor(settings.queryEvents / q));
  if (pageRows !== expectedRows)
    throw new Error(`the query answered ${pageRows} rows, expected ${expectedRows}: ${firstPage.text.slice(0, 500)}`);
  const querySpec: LoadSpec = {
    label: `6. GET $filter=msdyn_conversationid eq …&$top=${settings.queryPageSize}`,
    origin,
    method: "GET",
    requests: queryPool,
    connections: settings.queryConnections,
    durationSeconds: settings.querySeconds,
    timeoutSeconds: 30,
  };
  const query = await measure(querySpec, settings);
  // 6c. The same page on a server with AUDIT_LOG=off: the cost of each read's Operational record.
  const queryUnaudited = await measureOnSecondServer(
    "server without the audit log (query)",
    { AUDIT_LOG: "off" },
    { ...querySpec, label: "6c. the same GET without the audit log (AUDIT_LOG=off)" },
  );
  const queryAuditRatio = query.okPerSecond / queryUnaudited.okPerSecond;
  log(`6/6c: the GET page with Operational logging at ${queryAuditRatio.toFixed(2)} × without`);
  // The same query under the ingestion phases' load, for the record: at 32 connections the
  // server's CPU (serialising 50 rows of 40 columns) bounds it, not the query.
  const queryLoaded = await measure(
    {
      label: `6b. the same GET with ${settings.connections} connections`,
      origin,
      method: "GET",
      requests: queryPool,
      connections: settings.connections,
      durationSeconds: settings.querySeconds,
      timeoutSeconds: 30,
    },
    settings,
  );

  // 9. The forwarding lag of everything above, read back from the streams.
  let lag: ForwardingLag | undefined;
  if (!("unavailable" in lagProbe)) {
    lag = await lagProbe.measure(180_000);
    log(
      `9. forwarding lag (answered → stored in JetStream): p50 ${lag.p50} ms, p99 ${lag.p99} ms, max ${lag.max} ms over ` +
        `${lag.messages.toLocaleString("en-US")} records (${lag.uniqueEvents.toLocaleString("en-US")} distinct, ` +
        `${lag.inStreams.toLocaleString("en-US")} in the streams, ${lag.forwarded.toLocaleString("en-US")} forwarded by the server's count; ` +
        `of ${lag.stored.toLocaleString("en-US")} records stored meanwhile ${lag.missing} in no stream; backlog ${lag.backlog}); drained ${lag.drainSeconds.toFixed(1)} s after the load`,
    );
    await lagProbe.stop();
  }

  // -------------------------------------------------------------------------
  // 8. Peak RSS of the server's node process, then stop it (writing its CPU profile).
  const peakRss = (await procStatusBytes(server.pid, "VmHWM")) ?? Number.NaN;
  target = undefined;
  log(`8. server peak RSS (VmHWM of pid ${server.pid}): ${(peakRss / MB).toFixed(1)} MB`);
  await server.stop();
  let profile: { file: string; windows: PhaseWindow[]; phases: PhaseProfile[] } | undefined;
  if (settings.cpuProfileDir) {
    const dir = path.resolve(settings.cpuProfileDir);
    // CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile: thread 0 is the main thread.
    const name = (await readdir(dir)).find((f) => f.endsWith(".cpuprofile") && f.includes(`.${server.pid}.0.`));
    if (name) {
      const file = path.join(dir, name);
      const serverWindows = windows.filter(
        (w) => w.phase.startsWith("1.") || w.phase.startsWith("3.") || w.phase.startsWith("5") || w.phase.startsWith("6"),
      );
      profile = { file, windows: serverWindows, phases: await summariseProfile(file, serverWindows, ROOT) };
      log(`server CPU profile: ${file}`);
    } else {
      log(`WARNING: no CPU profile of pid ${server.pid} in ${dir}`);
    }
  }

  // 7. The framework's ceiling, with the same bodies and connections as phase 1.
  const empty = await startNodeProcess("bench/empty-app.ts", {});
  onCleanup("empty app", () => empty.stop());
  await waitUntilServing(empty, `${empty.baseUrl}/healthz`);
  watch(empty);
  const emptyRoute = await measure(
    {
      label: "7. empty Fastify route (POST, same bodies, 204)",
      origin: empty.baseUrl,
      method: "POST",
      requests: singlePool.map((r) => ({ path: "/empty", body: r.body })),
      connections: settings.connections,
      durationSeconds: settings.emptySeconds,
      timeoutSeconds: 30,
    },
    settings,
  );
  target = undefined;
  await empty.stop();

  // -------------------------------------------------------------------------
  // Report.
  const clean = (r: LoadResult) => r.non2xx === 0 && r.errors === 0 && r.timeouts === 0;
  const fromLoad = (phase: string, rate: string, r: Measured, note: string): Row => ({
    phase,
    rate,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    cpu: r.cpu,
    note,
  });
  const fromCeiling = (phase: string, r: CeilingResult, note: string): Row => ({
    phase,
    rate: formatRate(r.rowsPerSecond, "rows/s"),
    p50: r.latency.p50,
    p99: r.latency.p99,
    cpu: r.cpu,
    note,
  });
  const perSecond = (n: number) => formatRate(n, "events/s");
  const halves = (c: CeilingResult) => c.parts.map((r) => Math.round(r).toLocaleString("en-US")).join(" / ");
  rows.push(
    fromLoad(
      "1. POST msdyn_kpieventsdata",
      perSecond(single.okPerSecond),
      single,
      `${single.connections} conn, ${single.durationSeconds} s`,
    ),
    fromLoad(
      "1a. the same without authentication",
      perSecond(singleOpen.okPerSecond),
      singleOpen,
      `${singleOpen.connections} conn, ${singleOpen.durationSeconds} s; (1)/(1a) = ${authRatio.toFixed(2)}`,
    ),
    fromLoad(
      "1b. the same without the audit log",
      perSecond(singleUnaudited.okPerSecond),
      singleUnaudited,
      `${singleUnaudited.connections} conn, ${singleUnaudited.durationSeconds} s; (1)/(1b) = ${auditRatio.toFixed(2)}`,
    ),
    fromCeiling(
      "2. INSERT via pg (ceiling)",
      pgInsert,
      `${pgInsert.workers} conn, halves ${halves(pgInsert)}; (1)/(2) = ${singleRatio.toFixed(2)}`,
    ),
    fromLoad(
      `3. CreateMultiple ×${settings.bulkSize}`,
      perSecond(bulkEventsPerSecond),
      bulk,
      `${bulk.connections} conn, ${bulk.ok} requests in ${bulk.durationSeconds} s`,
    ),
    fromCeiling(
      "4. COPY, 4 streams (ceiling)",
      copy,
      `${copy.workers} streams, halves ${halves(copy)}; (3)/(4) = ${(bulkEventsPerSecond / copy.rowsPerSecond).toFixed(2)}`,
    ),
    fromCeiling(
      "4b. COPY, one stream (ceiling)",
      copyStream,
      `${settings.copyStreamRows.toLocaleString("en-US")} rows per statement, halves ${halves(copyStream)}; ` +
        `(3)/(4b) = ${(bulkEventsPerSecond / copyStream.rowsPerSecond).toFixed(2)}`,
    ),
    fromLoad(
      `5a. LogAnalyticsEvent ×${settings.eventsPerLogCall}`,
      formatRate(logEvent.okPerSecond, "calls/s"),
      logEvent,
      `${logEvent.connections} conn; ${perSecond(logEvent.okPerSecond * settings.eventsPerLogCall)}`,
    ),
    fromLoad(
      "5b. InitLogAnalytics",
      formatRate(init.okPerSecond, "calls/s"),
      init,
      `${init.connections} conn; new conversation per call`,
    ),
    fromLoad(
      "6. query by conversation",
      formatRate(query.okPerSecond, "req/s"),
      query,
      `${query.connections} conn; $top=${settings.queryPageSize} of ${storedEvents.toLocaleString("en-US")} events`,
    ),
    fromLoad(
      "6c. the same without the audit log",
      formatRate(queryUnaudited.okPerSecond, "req/s"),
      queryUnaudited,
      `${queryUnaudited.connections} conn; (6)/(6c) = ${queryAuditRatio.toFixed(2)}`,
    ),
    fromLoad(
      "6b. the same query",
      formatRate(queryLoaded.okPerSecond, "req/s"),
      queryLoaded,
      `${queryLoaded.connections} conn; for the record`,
    ),
    fromLoad(
      "7. empty Fastify route",
      formatRate(emptyRoute.okPerSecond, "req/s"),
      emptyRoute,
      `${emptyRoute.connections} conn; (1)/(7) = ${(single.okPerSecond / emptyRoute.okPerSecond).toFixed(2)}`,
    ),
    ...(lag
      ? [
          {
            phase: "9. forwarding lag",
            rate: `${lag.uniqueEvents.toLocaleString("en-US")} records`,
            p50: lag.p50,
            p99: lag.p99,
            note: `answered → in JetStream; max ${lag.max} ms, drained ${lag.drainSeconds.toFixed(1)} s after the load`,
          },
        ]
      : []),
    { phase: "8. server peak RSS", rate: `${(peakRss / MB).toFixed(1)} MB`, note: "VmHWM of the server's node process" },
  );

  const emptyRatio = single.okPerSecond / emptyRoute.okPerSecond;
  const targets: Target[] = [
    {
      name: "single-event ingest ≥ 1.0 × pg ceiling",
      goal: "(1)/(2) ≥ 1.00",
      actual: `${singleRatio.toFixed(2)} (${single.okPerSecond.toFixed(0)} / ${pgInsert.rowsPerSecond.toFixed(0)})`,
      pass: singleRatio >= 1 && clean(single),
    },
    {
      name: "single-event ingest ≥ 0.3 × the empty Fastify route",
      goal: "(1)/(7) ≥ 0.30",
      actual: `${emptyRatio.toFixed(2)} (${single.okPerSecond.toFixed(0)} / ${emptyRoute.okPerSecond.toFixed(0)})`,
      pass: emptyRatio >= 0.3 && clean(single) && clean(emptyRoute),
    },
    {
      name: "single-event ingest with a bearer token ≥ 0.9 × without",
      goal: "≥ 0.9",
      actual: `${authRatio.toFixed(2)} (${single.okPerSecond.toFixed(0)} / ${singleOpen.okPerSecond.toFixed(0)})`,
      pass: authRatio >= 0.9 && clean(single) && clean(singleOpen),
    },
    {
      name: "single-event ingest with the audit log ≥ 0.85 × without",
      goal: "(1)/(1b) ≥ 0.85",
      actual: `${auditRatio.toFixed(2)} (${single.okPerSecond.toFixed(0)} / ${singleUnaudited.okPerSecond.toFixed(0)})`,
      pass: auditRatio >= 0.85 && clean(single) && clean(singleUnaudited),
    },
    {
      name: "single-event ingest p99",
      goal: "≤ 30 ms",
      actual: `${single.latency.p99} ms`,
      pass: single.latency.p99 <= 30 && clean(single),
    },
    {
      name: "bulk ingest ≥ 0.8 × COPY (the better of 4 streams and one)",
      goal: "(3)/max(4, 4b) ≥ 0.80",
      actual: `${bulkRatio.toFixed(2)} (${bulkEventsPerSecond.toFixed(0)} / ${copyBest.toFixed(0)})`,
      pass: bulkRatio >= 0.8 && clean(bulk),
    },
    {
      name: "msdyn_LogAnalyticsEvent p99",
      goal: `≤ 25 ms (${logEvent.connections} conn)`,
      actual: `${logEvent.latency.p99} ms`,
      pass: logEvent.latency.p99 <= 25 && clean(logEvent),
    },
    {
      name: "msdyn_InitLogAnalytics p99",
      goal: `≤ 25 ms (${init.connections} conn)`,
      actual: `${init.latency.p99} ms`,
      pass: init.latency.p99 <= 25 && clean(init),
    },
    {
      name: "filtered query p99",
      goal: `≤ 15 ms over ≥ 1,000,000 events (${query.connections} conn)`,
      actual: `${query.latency.p99} ms over ${storedEvents.toLocaleString("en-US")}`,
      pass: query.latency.p99 <= 15 && storedEvents >= 1_000_000 && clean(query),
    },
    {
      name: "a GET page with Operational logging ≥ 0.9 × without",
      goal: "(6)/(6c) ≥ 0.90",
      actual: `${queryAuditRatio.toFixed(2)} (${query.okPerSecond.toFixed(0)} / ${queryUnaudited.okPerSecond.toFixed(0)})`,
      pass: queryAuditRatio >= 0.9 && clean(query) && clean(queryUnaudited),
    },
    {
      name: "forwarding lag p99 under the benchmark's load",
      goal: "≤ 5,000 ms, every record stored meanwhile in the stream",
      actual: lag
        ? `${lag.p99} ms over ${lag.uniqueEvents.toLocaleString("en-US")} records; ${lag.missing} of ${lag.stored.toLocaleString("en-US")} stored missing`
        : "not measured (no NATS server)",
      pass: !!lag && lag.p99 <= 5000 && lag.backlog === 0 && lag.stored > 0 && lag.missing === 0,
    },
    { name: "peak RSS", goal: "≤ 300 MB", actual: `${(peakRss / MB).toFixed(1)} MB`, pass: peakRss <= 300 * MB },
  ];

  const finishedAt = new Date();
  const wallSeconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
  const result = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallSeconds,
    kind,
    revision: measured,
    machine: {
      cpus: machine.cpus,
      cpuModel: machine.cpuModel,
      totalMemoryMB: machine.totalMemoryMB,
      kernel: machine.kernel,
      loadAverageAtStart: machine.loadAverageAtStart,
    },
    node: machine.node,
    postgres: machine.postgres,
    server: { command: "node --import tsx src/server.ts", logLevel: settings.serverLogLevel, dbPoolSize: serverPoolSize },
    settings,
    phases: {
      single: { ...single, storedEvents: storedBySingle },
      singleWithoutAuthentication: singleOpen,
      singleWithoutAuditLog: singleUnaudited,
      queryWithoutAuditLog: queryUnaudited,
      forwardingLag: lag ?? null,
      pgInsert,
      ceilingColumns: { server: serverColumns, ceiling: ceilingColumns, same: sameColumns },
      bulk: { ...bulk, eventsPerRequest: settings.bulkSize, eventsPerSecond: bulkEventsPerSecond, storedEvents: storedByBulk },
      copy,
      copyOneStream: { ...copyStream, rowsPerStatement: settings.copyStreamRows },
      logAnalyticsEvent: { ...logEvent, eventsPerCall: settings.eventsPerLogCall, storedEvents: storedByLog },
      initLogAnalytics: init,
      query: { ...query, storedEvents, queryConversations: q, pageSize: settings.queryPageSize },
      queryAtIngestConnections: queryLoaded,
      emptyRoute,
    },
    ratios: {
      singleToPgInsert: singleRatio,
      bulkToCopy: bulkRatio,
      bulkToCopyFourStreams: bulkEventsPerSecond / copy.rowsPerSecond,
      bulkToCopyOneStream: bulkEventsPerSecond / copyStream.rowsPerSecond,
      singleToEmptyRoute: single.okPerSecond / emptyRoute.okPerSecond,
      singleWithTokenToWithout: authRatio,
      singleWithAuditToWithout: auditRatio,
      queryWithAuditToWithout: queryAuditRatio,
    },
    peakRssBytes: peakRss,
    targets,
    ...(profile ? { cpuProfile: profile } : {}),
  };
  const files = await writeResults(RESULTS_DIR, startedAt, result, full ? "" : `-${kind}`);

  const out = [
    "",
    `cif-analytics-server benchmark, ${startedAt.toISOString()}` +
      (kind === "smoke" ? " (smoke run: shortened phases; latest.json left as it was)" : "") +
      (kind === "profiled"
        ? " (profiled run: the server runs under --cpu-prof, so it is slower; latest.json left as it was)"
        : ""),
    `machine: ${machine.cpus} CPUs (os.availableParallelism(); ${machine.cpuModel}), ${machine.totalMemoryMB} MB RAM, ${machine.kernel}; ` +
      `load average ${machine.loadAverageAtStart} at the start`,
    `Node ${machine.node}; PostgreSQL ${machine.postgres.version} (${database.embedded ? "embedded, temporary" : "DATABASE_URL's server"}; ` +
      `fsync ${machine.postgres.fsync}, synchronous_commit ${machine.postgres.synchronousCommit}, shared_buffers ${machine.postgres.sharedBuffers}, max_wal_size ${machine.postgres.maxWalSize})`,
    `code: ${measured ? `${measured.commit.slice(0, 12)}${measured.uncommittedChanges ? " + uncommitted changes in src/ or prisma/" : ""}` : "unknown"}`,
    `server: node --import tsx src/server.ts, LOG_LEVEL=${settings.serverLogLevel}, DB_POOL_SIZE=${serverPoolSize}; ` +
      `load: autocannon in its own process; everything on 127.0.0.1`,
    "",
    table(rows),
    "CPU: cores busy during the phase: server + PostgreSQL + load generator (for 2 and 4: the bench's pg client) / the whole machine.",
    "",
    `ratios: (1)/(2) = ${singleRatio.toFixed(2)}, (1)/(7) = ${emptyRatio.toFixed(2)}, (3)/max(4, 4b) = ${bulkRatio.toFixed(2)}`,
    sameColumns
      ? ""
      : `WARNING: the ceilings write [${ceilingColumns.join(",")}] but the server wrote [${serverColumns.join(",")}]`,
    "targets (issues 6, 11, 12 and 19):",
    targetLines(targets),
    "",
    ...(profile
      ? [
          "where the server's time goes (CPU profile, --cpu-prof; self and inclusive time):",
          ...profile.phases.map(formatPhaseProfile),
          "",
        ]
      : []),
    `results: ${files.map((f) => path.relative(ROOT, f)).join(", ")}; run took ${wallSeconds.toFixed(0)} s`,
    "",
  ];
  process.stdout.write(out.filter((line, i, all) => line !== "" || all[i - 1] !== "").join("\n") + "\n");
}

main()
  .catch(async (error: unknown) => {
    // A request that failed because the server died says less than the server's own last words.
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      assertTargetAlive("benchmark");
    } catch (died) {
      process.stderr.write(`${(died as Error).message}\n`);
    }
    process.stderr.write(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanUp();
  });
