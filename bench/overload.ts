/**
 * `npm run overload`: the overload case of issue 18, as an operator would try it. OVERLOAD_CONNECTIONS
 * (default 1,000) clients at once, each sending one `CreateMultiple` of OVERLOAD_BATCH (default
 * 1,000) KPI events and giving up after OVERLOAD_CLIENT_TIMEOUT_S (default 30) s, against the
 * service as `npm start` runs it (default limits) on a fresh database. Reports the answers by
 * status, the clients that timed out, the server's peak RSS, the rows stored against the rows
 * acknowledged (the rest were written for clients that had gone), and how long after the
 * last answer a single POST and /readyz answered again. Loopback only; every wait is bounded.
 */
import pg from "pg";
import { createBenchDatabase } from "./lib/database.js";
import { procStatusBytes, startNodeProcess } from "./lib/processes.js";
import { API, PARTICIPANT_ID, SESSION_ID, conversationId, createMultipleBody, kpiEvent } from "./lib/workload.js";

const connections = Number(process.env.OVERLOAD_CONNECTIONS ?? 1000);
const batch = Number(process.env.OVERLOAD_BATCH ?? 1000);
const clientTimeoutMs = Number(process.env.OVERLOAD_CLIENT_TIMEOUT_S ?? 30) * 1000;
/** The conversations the events are spread over (each gets its session and participant first). */
const conversationCount = Number(process.env.OVERLOAD_CONVERSATIONS ?? 50);

const log = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(origin: string, method: string, url: string, body?: string, timeoutMs = 10_000): Promise<Response> {
  return fetch(`${origin}${url}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
}

async function ok(res: Promise<Response>, what: string): Promise<Response> {
  const r = await res;
  if (!r.ok) throw new Error(`${what} answered ${r.status}: ${await r.text()}`);
  return r;
}

async function main(): Promise<void> {
  const db = await createBenchDatabase(log);
  const server = await startNodeProcess("src/server.ts", { DATABASE_URL: db.url, LOG_LEVEL: "warn", AUTH_MODE: "none" });
  const admin = new pg.Pool({ connectionString: db.url, max: 1 });
  try {
    for (let i = 0; ; i++) {
      const ready = await fetch(`${server.baseUrl}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
      if (ready === 200) break;
      if (i === 300) throw new Error(`the service did not become ready: ${server.output()}`);
      await sleep(100);
    }
    const origin = server.baseUrl;
    const created = await ok(
      call(origin, "POST", `${API}/msdyn_ciproviders`, JSON.stringify({ msdyn_name: "overload" })),
      "provider",
    );
    const providerId = /\(([0-9a-f-]{36})\)/.exec(created.headers.get("odata-entityid") ?? "")![1]!;
    await ok(
      call(origin, "PATCH", `${API}/msdyn_ciproviders(${providerId})`, JSON.stringify({ msdyn_enableanalytics: true })),
      "enable analytics",
    );
    const tag = `overload${Date.now()}`;
    const conversations = Array.from({ length: conversationCount }, (_, i) => conversationId(tag, i));
    for (const c of conversations) {
      const post = (set: string, body: object) => ok(call(origin, "POST", `${API}/${set}`, JSON.stringify(body)), set);
      await post("msdyn_conversationsdata", { msdyn_conversationid: c, msdyn_providerid: providerId });
      await post("msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: SESSION_ID });
      await post("msdyn_sessionparticipantsdata", {
        msdyn_conversationid: c,
        msdyn_providersessionid: SESSION_ID,
        msdyn_participantid: PARTICIPANT_ID,
      });
    }
    const rssBefore = await procStatusBytes(server.pid, "VmRSS");
    log(
      `overload: ${connections} clients at once × CreateMultiple of ${batch} KPI events, client timeout ${clientTimeoutMs / 1000} s`,
    );
    const bodies = Array.from({ length: connections }, (_, i) => createMultipleBody(conversations, i * batch, batch));

    const statuses = new Map<string, number>();
    const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);
    let retryAfterMissing = 0;
    const started = Date.now();
    let lastAnswer = started;
    await Promise.all(
      bodies.map(async (body) => {
        try {
          const res = await call(
            origin,
            "POST",
            `${API}/msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple`,
            body,
            clientTimeoutMs,
          );
          await res.arrayBuffer();
          count(String(res.status));
          if (res.status === 503 && !res.headers.get("retry-after")) retryAfterMissing++;
        } catch (error) {
          const name = (error as Error).name;
          count(name === "TimeoutError" ? "client timeout" : ((error as { cause?: { code?: string } }).cause?.code ?? name));
        }
        lastAnswer = Date.now();
      }),
    );
    const overloadSeconds = (lastAnswer - started) / 1000;
    const peak = await procStatusBytes(server.pid, "VmHWM");

    // Recovery: how long after the last answer an ordinary write and readiness answer again.
    const recoveryStarted = Date.now();
    let recoveredMs: number | undefined;
    let recoveryProbes = 0;
    for (let i = 0; i < 600 && recoveredMs === undefined; i++) {
      const single = await call(
        origin,
        "POST",
        `${API}/msdyn_kpieventsdata`,
        JSON.stringify(kpiEvent(conversations, i)),
        5_000,
      ).then(
        (r) => r.status,
        () => 0,
      );
      const ready = await call(origin, "GET", "/readyz", undefined, 5_000).then(
        (r) => r.status,
        () => 0,
      );
      if (single === 204) recoveryProbes++;
      if (single === 204 && ready === 200) recoveredMs = Date.now() - recoveryStarted;
      else await sleep(100);
    }
    // Bounded wait for writes still running for clients that gave up, then count what is stored.
    let stored = 0;
    for (let i = 0; i < 60; i++) {
      const { rows } = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM msdyn_kpieventdata");
      if (rows[0]!.n === stored && i > 0) break;
      stored = rows[0]!.n;
      await sleep(1000);
    }
    const acknowledged = (statuses.get("200") ?? 0) * batch;

    log(`answers: ${JSON.stringify(Object.fromEntries([...statuses].sort()))} in ${overloadSeconds.toFixed(1)} s`);
    log(`503 without Retry-After: ${retryAfterMissing}`);
    log(`server RSS before: ${Math.round((rssBefore ?? 0) / 2 ** 20)} MB; peak (VmHWM): ${Math.round((peak ?? 0) / 2 ** 20)} MB`);
    log(
      `KPI events stored: ${stored.toLocaleString("en-US")} (acknowledged: ${acknowledged.toLocaleString("en-US")} + the recovery probe(s): ${recoveryProbes}; written for clients that had gone: ${(stored - acknowledged - recoveryProbes).toLocaleString("en-US")})`,
    );
    log(
      recoveredMs === undefined
        ? "recovery: not within 60 s"
        : `recovery: a single POST 204 and /readyz 200 ${recoveredMs} ms after the last answer`,
    );
  } finally {
    await admin.end();
    await server.stop();
    await db.drop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`overload failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
