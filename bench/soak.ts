/**
 * `npm run soak`: the service under a steady mixed load for a while, reporting per 10 s
 * window its memory (RSS of the node process) and the latency percentiles, so that a
 * leak or a query that slows as the table grows shows as a trend (issue 18).
 *
 * Loopback only: the service (as `npm start` runs it) on a fresh database (bench/lib/
 * database.ts: DATABASE_URL's loopback server, else a temporary embedded PostgreSQL).
 * The load is open-loop at SOAK_RATE requests/s (default 200) for SOAK_SECONDS (default
 * 300): half `POST msdyn_kpieventsdata`, half "a conversation's 50 latest events"
 * (`$filter=msdyn_conversationid eq …&$orderby=msdyn_eventtimestamp desc&$top=50`).
 * Every request is bounded (10 s), and at most SOAK_IN_FLIGHT (default 256) are open.
 */
import { readFile } from "node:fs/promises";
import { createBenchDatabase } from "./lib/database.js";
import { startNodeProcess } from "./lib/processes.js";
import { API, PARTICIPANT_ID, SESSION_ID, conversationId, kpiEvent } from "./lib/workload.js";

const seconds = Number(process.env.SOAK_SECONDS ?? 300);
const rate = Number(process.env.SOAK_RATE ?? 200);
const maxInFlight = Number(process.env.SOAK_IN_FLIGHT ?? 256);
const conversationCount = Number(process.env.SOAK_CONVERSATIONS ?? 200);
const WINDOW_MS = 10_000;

const log = (line: string) => process.stdout.write(`${line}\n`);

async function call(origin: string, method: string, url: string, body?: unknown): Promise<Response> {
  return fetch(`${origin}${url}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

async function ok(res: Promise<Response>, what: string): Promise<Response> {
  const r = await res;
  if (!r.ok) throw new Error(`${what} answered ${r.status}: ${await r.text()}`);
  return r;
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : 0;

async function main(): Promise<void> {
  const db = await createBenchDatabase(log);
  // No tokens: the soak is about memory and latency over time (the bench measures what
  // authentication costs); since issue 11 a server without AUTH_MODE=none answers it 401.
  const server = await startNodeProcess("src/server.ts", { DATABASE_URL: db.url, LOG_LEVEL: "warn", AUTH_MODE: "none" });
  try {
    for (let i = 0; i < 300; i++) {
      const ready = await fetch(`${server.baseUrl}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
      if (ready === 200) break;
      if (i === 299) throw new Error(`the service did not become ready: ${server.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const origin = server.baseUrl;
    const created = await ok(
      call(origin, "POST", `${API}/msdyn_ciproviders`, {
        msdyn_name: "soak",
        msdyn_label: "Soak",
        msdyn_landingurl: "https://soak.example",
      }),
      "provider",
    );
    const providerId = /\(([0-9a-f-]{36})\)/.exec(created.headers.get("odata-entityid") ?? "")![1]!;
    await ok(
      call(origin, "PATCH", `${API}/msdyn_ciproviders(${providerId})`, { msdyn_enableanalytics: true }),
      "enable analytics",
    );
    const tag = `soak${Date.now()}`;
    const conversations = Array.from({ length: conversationCount }, (_, i) => conversationId(tag, i));
    for (const c of conversations) {
      await ok(
        call(origin, "POST", `${API}/msdyn_conversationsdata`, { msdyn_conversationid: c, msdyn_providerid: providerId }),
        "conversation",
      );
      await ok(
        call(origin, "POST", `${API}/msdyn_sessionsdata`, { msdyn_conversationid: c, msdyn_providersessionid: SESSION_ID }),
        "session",
      );
      await ok(
        call(origin, "POST", `${API}/msdyn_sessionparticipantsdata`, {
          msdyn_conversationid: c,
          msdyn_providersessionid: SESSION_ID,
          msdyn_participantid: PARTICIPANT_ID,
        }),
        "participant",
      );
    }
    log(`soak: ${rate} requests/s for ${seconds} s over ${conversationCount} conversations (window ${WINDOW_MS / 1000} s)`);
    log("window | requests | errors | p50 ms | p99 ms | max ms | RSS MB");

    let latencies: number[] = [];
    let errors = 0;
    let inFlight = 0;
    let n = 0;
    const started = Date.now();
    const pending = new Set<Promise<void>>();
    let windowStart = started;
    let window = 0;
    const report = async () => {
      const sorted = latencies.sort((a, b) => a - b);
      log(
        `${String(++window).padStart(6)} | ${String(sorted.length).padStart(8)} | ${String(errors).padStart(6)} | ${percentile(sorted, 0.5).toFixed(1).padStart(6)} | ${percentile(sorted, 0.99).toFixed(1).padStart(6)} | ${(sorted.at(-1) ?? 0).toFixed(1).padStart(6)} | ${String(await rssMb(server.pid)).padStart(6)}`,
      );
      latencies = [];
      errors = 0;
    };
    // Open loop: requests start on the clock, whatever the answers do (bounded by maxInFlight).
    const interval = 1000 / rate;
    while (Date.now() - started < seconds * 1000) {
      const due = started + n * interval;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (Date.now() - windowStart >= WINDOW_MS) {
        windowStart += WINDOW_MS;
        await report();
      }
      const i = n++;
      if (inFlight >= maxInFlight) {
        errors++;
        continue;
      }
      inFlight++;
      const t0 = performance.now();
      const request =
        i % 2 === 0
          ? call(origin, "POST", `${API}/msdyn_kpieventsdata`, kpiEvent(conversations, i))
          : call(
              origin,
              "GET",
              `${API}/msdyn_kpieventsdata?$select=msdyn_kpieventname,msdyn_eventtimestamp&$filter=${encodeURIComponent(`msdyn_conversationid eq '${conversations[i % conversations.length]}'`)}&$orderby=msdyn_eventtimestamp%20desc&$top=50`,
            );
      const done: Promise<void> = request
        .then(async (res) => {
          await res.arrayBuffer();
          if (res.status >= 400) errors++;
          latencies.push(performance.now() - t0);
        })
        .catch(() => {
          errors++;
        })
        .finally(() => {
          inFlight--;
          pending.delete(done);
        });
      pending.add(done);
    }
    await Promise.all(pending);
    await report();
  } finally {
    await server.stop();
    await db.drop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
