/**
 * `npm run bench:citus`: the same short workloads against the service on plain PostgreSQL
 * (DATABASE_URL's server) and on a Citus cluster (CITUS_URL: a coordinator's database in
 * which the workers are added; README "Scaling out"). Each backend gets a fresh database
 * and the service's own migrations; the server runs in this process on loopback and
 * autocannon drives it, so on a small machine the figures compare the two deployments'
 * per-request cost, not what more nodes would add. Prints one JSON report on stdout.
 *
 * BENCH_CITUS_SECONDS (default 10) per workload, BENCH_CITUS_CONNECTIONS (default 8);
 * CITUS_SHARD_COUNT (default 8) shards per distributed table.
 */
import { randomUUID } from "node:crypto";
import { cpus } from "node:os";
import type { AddressInfo } from "node:net";
import autocannon from "autocannon";
import pg from "pg";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config/config.js";
import { openDatabase, withDatabaseName } from "../src/db/database.js";
import { createCitusDatabase } from "../test/helpers/citus.js";
import { API, kpiEvent } from "./lib/workload.js";

const SECONDS = Number(process.env.BENCH_CITUS_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CITUS_CONNECTIONS ?? 8);
const CONVERSATIONS = 200;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

interface Backend {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function plainDatabase(serverUrl: string): Promise<Backend> {
  const name = `cif_bench_plain_${process.pid}`;
  const admin = new pg.Client({ connectionString: withDatabaseName(serverUrl, "postgres") });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  return {
    name: "PostgreSQL",
    url: withDatabaseName(serverUrl, name),
    async drop() {
      const c = new pg.Client({ connectionString: withDatabaseName(serverUrl, "postgres") });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

interface Figures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
}

async function measure(url: string, request: () => autocannon.Request): Promise<Figures> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    timeout: 30,
    requests: [{ setupRequest: (req) => ({ ...req, ...request() }) }],
  });
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

async function run(backend: Backend): Promise<Record<string, Figures>> {
  const config = loadConfig({ LOG_LEVEL: "silent", AUTH_MODE: "none", DATABASE_URL: backend.url });
  const db = await openDatabase(config, { info() {}, debug() {} });
  const app = await buildApp({ config, db, logger: false });
  await app.ready();
  await app.identity.ready();
  try {
    const json = { "content-type": "application/json" };
    const inject = async (method: "POST" | "PATCH", path: string, body: unknown) => {
      const res = await app.inject({ method, url: `${API}/${path}`, headers: json, payload: body as object });
      if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${res.body}`);
      return res;
    };
    const provider = /\(([0-9a-f-]{36})\)/.exec(
      String((await inject("POST", "msdyn_ciproviders", { msdyn_name: "Bench" })).headers["odata-entityid"]),
    )![1]!;
    await inject("PATCH", `msdyn_ciproviders(${provider})`, { msdyn_enableanalytics: true });
    const tag = randomUUID().slice(0, 8);
    const conversations = Array.from({ length: CONVERSATIONS }, (_, i) => `bench-${tag}-c${i}`);
    for (const c of conversations) {
      await inject("POST", "msdyn_InitLogAnalytics", {
        data: {
          conversation: {
            conversationId: c,
            providerId: provider,
            session: { providerSessionId: "s-1", participants: [{ participantId: "agent-1", type: "Agent" }] },
          },
        },
      });
    }
    // Rows to read and update by GUID.
    const ids: string[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const Targets = Array.from({ length: 100 }, (_, i) => ({
        "@odata.type": "Microsoft.Dynamics.CRM.msdyn_kpieventdata",
        ...kpiEvent(conversations, batch * 100 + i),
      }));
      const res = await inject("POST", "msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple", { Targets });
      ids.push(...res.json<{ Ids: string[] }>().Ids);
    }

    await app.listen({ port: 0, host: "127.0.0.1" });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    let n = 0;
    const figures: Record<string, Figures> = {};
    figures["POST one KPI event"] = await measure(base, () => ({
      method: "POST",
      path: `${API}/msdyn_kpieventsdata`,
      headers: json,
      body: JSON.stringify(kpiEvent(conversations, n++)),
    }));
    figures["CreateMultiple of 100 KPI events"] = await measure(base, () => {
      const first = (n += 100);
      const Targets = Array.from({ length: 100 }, (_, i) => ({
        "@odata.type": "Microsoft.Dynamics.CRM.msdyn_kpieventdata",
        ...kpiEvent(conversations, first + i),
      }));
      return {
        method: "POST",
        path: `${API}/msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple`,
        headers: json,
        body: JSON.stringify({ Targets }),
      };
    });
    figures["GET a KPI event by GUID"] = await measure(base, () => ({
      method: "GET",
      path: `${API}/msdyn_kpieventsdata(${ids[n++ % ids.length]})`,
    }));
    figures["PATCH a KPI event by GUID"] = await measure(base, () => ({
      method: "PATCH",
      path: `${API}/msdyn_kpieventsdata(${ids[n++ % ids.length]})`,
      headers: json,
      body: JSON.stringify({ msdyn_kpieventreason: `r${n}` }),
    }));
    figures["GET a conversation's events"] = await measure(base, () => ({
      method: "GET",
      path: `${API}/msdyn_kpieventsdata?$filter=${encodeURIComponent(`msdyn_conversationid eq '${conversations[n++ % CONVERSATIONS]}'`)}&$top=50`,
    }));
    return figures;
  } finally {
    await app.close();
    await db.close();
  }
}

async function main(): Promise<void> {
  const plainUrl = process.env.DATABASE_URL;
  const citusUrl = process.env.CITUS_URL;
  if (!plainUrl || !citusUrl)
    throw new Error("usage: DATABASE_URL=<plain PostgreSQL> CITUS_URL=<Citus coordinator> npm run bench:citus");
  for (const url of [plainUrl, citusUrl]) {
    if (!LOOPBACK.has(new URL(url).hostname)) throw new Error(`${url}: the benchmark runs against loopback only`);
  }
  const report: Record<string, unknown> = {
    at: new Date().toISOString(),
    cores: cpus().length,
    secondsPerWorkload: SECONDS,
    citusShardCount: Number(process.env.CITUS_SHARD_COUNT ?? 8),
    connections: CONNECTIONS,
    results: {},
  };
  for (const make of [() => plainDatabase(plainUrl), async () => ({ ...(await createCitusDatabase(citusUrl)), name: "Citus" })]) {
    const backend = await make();
    try {
      (report.results as Record<string, unknown>)[backend.name] = await run(backend);
    } finally {
      await backend.drop();
    }
  }
  console.log(JSON.stringify(report, null, 2));
}

await main();
