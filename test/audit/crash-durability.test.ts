/**
 * The audit log's promise under a crash (issue 12): the Audit record of an acknowledged
 * write is committed in the write's own transaction. The server runs as a child process
 * (AUTH_MODE=none, a fresh database), takes write load of four kinds from eight clients at
 * once (single KPI events through the group commit, CreateMultiple of KPI events, `$batch`
 * change sets, msdyn_InitLogAnalytics through the upsert group commit), is SIGKILLed in the
 * middle of it and started again on the same database. Then, reading the tables directly:
 *
 * 1. every acknowledged write is stored and named by exactly one Success Audit record (of
 *    its own request). A record only buffered in memory (AUDIT_FLUSH_MS) would be lost to
 *    the SIGKILL for the writes acknowledged during the last flush interval: this fails;
 * 2. no Success Audit record names a row that is not stored (no record of a write that did
 *    not commit: a record committed before or apart from its write would show here);
 * 3. a request cut off by the kill is stored whole or not at all; if stored, it has its one
 *    record, if not, no Success record names its rows.
 *
 * Every loop is bounded in count and time; everything talks to 127.0.0.1; nothing asserts
 * timings.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, createTestDatabase } from "../helpers/database.js";
import { testDataDir } from "../helpers/identity.js";
import { definitionId } from "../helpers/records.js";
import { type ServerProcess, startServer, waitUntilServing } from "../helpers/server-process.js";
import { batchBody, batchRequest } from "../helpers/tenancy.js";

const API = "/api/data/v9.2";
const CLIENTS = 8;
/** The kill comes this long after the load starts… */
const KILL_AFTER_MS = 2_500;
/** …and the load stops by then whatever happens, or after this many requests per client. */
const LOAD_DEADLINE_MS = 4_000;
const MAX_REQUESTS_PER_CLIENT = 1_000;
const TARGETS_PER_CREATE_MULTIPLE = 3;

type Kind = "kpiEvent" | "createMultiple" | "batch" | "initLogAnalytics";
const KINDS: readonly Kind[] = ["kpiEvent", "createMultiple", "batch", "initLogAnalytics"];

/** Each entity set's table and primary key (the tables are named by their logical names). */
const TABLES: Record<string, { table: string; key: string }> = {
  msdyn_kpieventsdata: { table: "msdyn_kpieventdata", key: "msdyn_kpieventdataid" },
  msdyn_conversationsdata: { table: "msdyn_conversationdata", key: "msdyn_conversationdataid" },
  msdyn_sessionsdata: { table: "msdyn_sessiondata", key: "msdyn_sessiondataid" },
  msdyn_sessionparticipantsdata: { table: "msdyn_sessionparticipantdata", key: "msdyn_sessionparticipantdataid" },
  msdyn_ciproviders: { table: "msdyn_ciprovider", key: "msdyn_ciproviderid" },
};

/** Rows by entity set. */
type Rows = Map<string, string[]>;

interface Sent {
  kind: Kind;
  /** Its x-request-id: the correlation id of its records. */
  requestId: string;
  /** The ids it asked for (every kind but InitLogAnalytics names its rows' primary keys). */
  planned: Rows;
  /** InitLogAnalytics: the conversation's natural key, to find what it stored. */
  conversationId?: string;
  outcome: "acknowledged" | "answered" | "inFlight";
  status?: number;
  /** The failure of a request without an answer. */
  error?: string;
  /** Acknowledged: the ids the answer gave. */
  acknowledged?: Rows;
  /** When the answer arrived (Date.now()). */
  answeredAt?: number;
}

interface AuditRecord {
  resultType: string;
  resultSignature?: string;
  operationName: string;
  correlationId?: string;
  properties: { writtenRecords?: Record<string, string[]> };
}

const GUID = /\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)/;

const addRow = (rows: Rows, set: string, id: string) => {
  const list = rows.get(set) ?? [];
  list.push(id);
  rows.set(set, list);
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the audit log across a SIGKILL under write load", { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let dataDir: string;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = testDataDir();
  });

  afterAll(async () => {
    for (const server of servers) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGKILL");
      await server.exited;
    }
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function serve(): Promise<ServerProcess> {
    const server = await startServer({
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      AUTH_MODE: "none",
      LOG_LEVEL: "warn",
      // The longest an unwritten record may wait in memory: what a SIGKILL would lose.
      AUDIT_FLUSH_MS: "1000",
    });
    servers.push(server);
    await waitUntilServing(server, `${server.baseUrl}/readyz`);
    return server;
  }

  /** A request of the set-up, which must succeed; the id of what it created, if anything. */
  async function setUp(baseUrl: string, method: string, path: string, body: unknown): Promise<string | undefined> {
    const res = await fetch(`${baseUrl}${API}/${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    expect(res.status, `${method} ${path}: ${text}`).toBe(204);
    return GUID.exec(res.headers.get("odata-entityid") ?? "")?.[1];
  }

  it("keeps exactly one Success record of every acknowledged write, and none of a write that did not commit", async () => {
    const first = await serve();

    // A provider with analytics on, and a conversation with a session for each client's events.
    const provider = (await setUp(first.baseUrl, "POST", "msdyn_ciproviders", { msdyn_name: `Crash ${randomUUID()}` }))!;
    await setUp(first.baseUrl, "PATCH", `msdyn_ciproviders(${provider})`, { msdyn_enableanalytics: true });
    const conversations: string[] = [];
    for (let client = 0; client < CLIENTS; client++) {
      const c = `crash-${client}-${randomUUID()}`;
      await setUp(first.baseUrl, "POST", "msdyn_conversationsdata", {
        msdyn_conversationid: c,
        msdyn_name: c,
        msdyn_providerid: provider,
      });
      await setUp(first.baseUrl, "POST", "msdyn_sessionsdata", { msdyn_conversationid: c, msdyn_providersessionid: "s-1" });
      conversations.push(c);
    }

    const kpiEvent = (c: string, id: string, name = "SessionStarted") => ({
      msdyn_kpieventdataid: id,
      msdyn_conversationid: c,
      msdyn_providersessionid: "s-1",
      msdyn_kpieventname: name,
      msdyn_kpieventid: definitionId(name),
      msdyn_eventtimestamp: new Date().toISOString(),
    });

    /** One request of `kind` by a client whose events go to conversation `c`: its URL, body and the ids it plans. */
    function requestOf(kind: Kind, c: string, requestId: string) {
      const planned: Rows = new Map();
      const headers: Record<string, string> = { "content-type": "application/json", "x-request-id": requestId };
      switch (kind) {
        case "kpiEvent": {
          const id = randomUUID();
          addRow(planned, "msdyn_kpieventsdata", id);
          return { path: "msdyn_kpieventsdata", headers, body: JSON.stringify(kpiEvent(c, id)), planned };
        }
        case "createMultiple": {
          const Targets = Array.from({ length: TARGETS_PER_CREATE_MULTIPLE }, () => {
            const id = randomUUID();
            addRow(planned, "msdyn_kpieventsdata", id);
            return { "@odata.type": "Microsoft.Dynamics.CRM.msdyn_kpieventdata", ...kpiEvent(c, id, "SessionClosed") };
          });
          const path = "msdyn_kpieventsdata/Microsoft.Dynamics.CRM.CreateMultiple";
          return { path, headers, body: JSON.stringify({ Targets }), planned };
        }
        case "batch": {
          // One change set: a new conversation, its session and an event of it, parents first.
          const own = `crash-batch-${randomUUID()}`;
          const [conversation, session, event] = [randomUUID(), randomUUID(), randomUUID()];
          addRow(planned, "msdyn_conversationsdata", conversation);
          addRow(planned, "msdyn_sessionsdata", session);
          addRow(planned, "msdyn_kpieventsdata", event);
          const body = batchBody([
            [
              batchRequest("POST", "msdyn_conversationsdata", {
                msdyn_conversationdataid: conversation,
                msdyn_conversationid: own,
                msdyn_name: own,
                msdyn_providerid: provider,
              }),
              batchRequest("POST", "msdyn_sessionsdata", {
                msdyn_sessiondataid: session,
                msdyn_conversationid: own,
                msdyn_providersessionid: "s-1",
              }),
              batchRequest("POST", "msdyn_kpieventsdata", kpiEvent(own, event)),
            ],
          ]);
          return { path: "$batch", headers: { ...headers, "content-type": "multipart/mixed; boundary=b" }, body, planned };
        }
        case "initLogAnalytics": {
          const own = `crash-init-${randomUUID()}`;
          const body = {
            // The action's correlation id is its records' (the request id otherwise).
            correlationId: requestId,
            data: {
              conversation: {
                conversationId: own,
                providerId: provider,
                channel: "voice",
                session: { providerSessionId: "s-1", queueName: "Support", participants: [{ participantId: "agent-1" }] },
              },
            },
          };
          return { path: "msdyn_InitLogAnalytics", headers, body: JSON.stringify(body), planned, conversationId: own };
        }
      }
    }

    /** The ids a 2xx answer gives, or a reason it is not an acknowledgement of the planned writes. */
    function acknowledgedRows(kind: Kind, res: Response, text: string, planned: Rows): Rows | string {
      const rows: Rows = new Map();
      if (kind === "kpiEvent") {
        const id = GUID.exec(res.headers.get("odata-entityid") ?? "")?.[1];
        if (res.status !== 204 || !id) return `${res.status} ${text}`;
        addRow(rows, "msdyn_kpieventsdata", id);
      } else if (kind === "createMultiple") {
        if (res.status !== 200) return `${res.status} ${text}`;
        for (const id of (JSON.parse(text) as { Ids: string[] }).Ids) addRow(rows, "msdyn_kpieventsdata", id);
      } else if (kind === "batch") {
        const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
        if (res.status !== 200 || statuses.length !== 3 || statuses.some((s) => s !== 204)) return `${res.status} ${text}`;
        for (const m of text.matchAll(/OData-EntityId: [^\r\n]*\/(\w+)\(([0-9a-f-]{36})\)/gi)) addRow(rows, m[1]!, m[2]!);
      } else {
        if (res.status !== 200) return `${res.status} ${text}`;
        const ids = JSON.parse(text) as {
          ConversationDataId: string;
          SessionDataId: string;
          SessionParticipantDataIds: string[];
        };
        addRow(rows, "msdyn_conversationsdata", ids.ConversationDataId);
        addRow(rows, "msdyn_sessionsdata", ids.SessionDataId);
        for (const id of ids.SessionParticipantDataIds) addRow(rows, "msdyn_sessionparticipantsdata", id);
      }
      // Where the client named the ids, the answer must give exactly those.
      if (kind !== "initLogAnalytics") {
        const want = JSON.stringify([...planned].sort());
        const got = JSON.stringify([...rows].map(([set, ids]) => [set, [...ids]]).sort());
        if (want !== got) return `answered other ids than asked for: ${got} (asked ${want})`;
      }
      return rows;
    }

    // The load: eight clients, each going round the four kinds (starting at a different one).
    const sent: Sent[] = [];
    let killedAt: number | undefined;
    const loadStarted = Date.now();
    const killer = sleep(KILL_AFTER_MS).then(() => {
      killedAt = Date.now();
      // Only the process this test started.
      first.child.kill("SIGKILL");
    });
    await Promise.all(
      conversations.map(async (c, client) => {
        for (let n = 0; n < MAX_REQUESTS_PER_CLIENT && Date.now() - loadStarted < LOAD_DEADLINE_MS; n++) {
          if (killedAt !== undefined) break;
          const kind = KINDS[(client + n) % KINDS.length]!;
          const requestId = randomUUID();
          const { path, headers, body, planned, conversationId } = requestOf(kind, c, requestId);
          const entry: Sent = { kind, requestId, planned, conversationId, outcome: "inFlight" };
          sent.push(entry);
          try {
            const res = await fetch(`${first.baseUrl}${API}/${path}`, {
              method: "POST",
              headers,
              body,
              signal: AbortSignal.timeout(10_000),
            });
            const text = await res.text();
            entry.status = res.status;
            entry.answeredAt = Date.now();
            if (res.status >= 200 && res.status < 300) {
              const rows = acknowledgedRows(kind, res, text, planned);
              // A 2xx that does not acknowledge what was asked is a failure of its own.
              expect(typeof rows, `${kind} ${requestId}: ${JSON.stringify(rows)}`).not.toBe("string");
              entry.outcome = "acknowledged";
              entry.acknowledged = rows as Rows;
            } else {
              entry.outcome = "answered";
              entry.error = text.slice(0, 300);
              if (res.status === 503) await sleep(50);
            }
          } catch (error) {
            // No answer (the kill cut it off, or it met the closed port): in flight.
            entry.error = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
            if (killedAt !== undefined) break;
            await sleep(50);
          }
        }
      }),
    );
    await killer;
    await first.exited;

    // Started again on the same database: it serves, and takes a write with its record.
    const second = await serve();
    const after = randomUUID();
    const afterId = await setUp(second.baseUrl, "POST", "msdyn_kpieventsdata", kpiEvent(conversations[0]!, after));
    expect(afterId).toBe(after);

    // Let the killed server's backends finish whatever they were doing (bounded; not asserted).
    for (let i = 0; i < 50; i++) {
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND state NOT IN ('idle')`,
      );
      if (rows[0]!.n === 0) break;
      await sleep(100);
    }

    // InitLogAnalytics calls cut off: what they stored, found by their natural keys.
    const cutOffInits = sent.filter((s) => s.kind === "initLogAnalytics" && s.outcome !== "acknowledged");
    const initConversations = cutOffInits.map((s) => s.conversationId!);
    const storedInit = new Map<string, Rows>();
    if (initConversations.length > 0) {
      for (const [set, column] of [
        ["msdyn_conversationsdata", "msdyn_conversationid"],
        ["msdyn_sessionsdata", "msdyn_conversationid"],
        ["msdyn_sessionparticipantsdata", "msdyn_conversationid"],
      ] as const) {
        const { table, key } = TABLES[set]!;
        const { rows } = await db.pool.query<{ id: string; c: string }>(
          `SELECT ${key}::text AS id, ${column} AS c FROM ${table} WHERE ${column} = ANY($1::text[])`,
          [initConversations],
        );
        for (const row of rows) {
          const found = storedInit.get(row.c) ?? new Map();
          addRow(found, set, row.id);
          storedInit.set(row.c, found);
        }
      }
    }

    // Every Audit record, and which Success records name which row.
    const { rows: auditRows } = await db.pool.query<{ record: string }>("SELECT record FROM cieventsaudit");
    const records = auditRows.map((row) => JSON.parse(row.record) as AuditRecord);
    const namedBy = new Map<string, AuditRecord[]>();
    for (const record of records) {
      if (record.resultType !== "Success") continue;
      for (const [set, ids] of Object.entries(record.properties.writtenRecords ?? {})) {
        for (const id of ids) {
          const list = namedBy.get(`${set}(${id})`) ?? [];
          list.push(record);
          namedBy.set(`${set}(${id})`, list);
        }
      }
    }
    const successCorrelations = new Set(
      records.filter((r) => r.resultType === "Success" && r.correlationId).map((r) => r.correlationId!),
    );

    // Which of the rows that anything names (a request, a record) are stored.
    const candidates: Rows = new Map();
    for (const s of sent) {
      for (const rows of [s.planned, s.acknowledged ?? new Map<string, string[]>()]) {
        for (const [set, ids] of rows) for (const id of ids) addRow(candidates, set, id);
      }
    }
    for (const key of namedBy.keys()) {
      const [, set, id] = /^(\w+)\((.*)\)$/.exec(key)!;
      addRow(candidates, set!, id!);
    }
    const stored = new Set<string>();
    for (const [set, ids] of candidates) {
      const table = TABLES[set];
      expect(table, `a Success record names rows of ${set}, a set this test does not know`).toBeDefined();
      const { rows } = await db.pool.query<{ id: string }>(
        `SELECT ${table!.key}::text AS id FROM ${table!.table} WHERE ${table!.key} = ANY($1::uuid[])`,
        [[...new Set(ids)]],
      );
      for (const row of rows) stored.add(`${set}(${row.id})`);
    }

    const acknowledged = sent.filter((s) => s.outcome === "acknowledged");
    const inFlight = sent.filter((s) => s.outcome === "inFlight");
    const answered = sent.filter((s) => s.outcome === "answered");
    const byKind = (list: Sent[]) => KINDS.map((k) => `${k} ${list.filter((s) => s.kind === k).length}`).join(", ");
    const lastSecond = acknowledged.filter((s) => s.answeredAt! > killedAt! - 1_000).length;
    const summary =
      `${sent.length} sent; acknowledged ${acknowledged.length} (${byKind(acknowledged)}; ${lastSecond} in the last second ` +
      `before the kill); in flight ${inFlight.length} (${byKind(inFlight)}; ${inFlight.map((s) => s.error).join(" ")}); ` +
      `answered otherwise ${answered.length} (${answered.map((s) => s.status).join(" ")}); ` +
      `${records.length} Audit records, ${namedBy.size} rows named by Success records`;
    console.log(`crash durability: ${summary}`);

    // The load did what it is for: writes of every kind acknowledged, the kill in the middle of it.
    expect(killedAt, summary).toBeDefined();
    for (const kind of KINDS)
      expect(acknowledged.filter((s) => s.kind === kind).length, `${kind}: ${summary}`).toBeGreaterThan(0);
    expect(first.child.signalCode, summary).toBe("SIGKILL");

    // 1. Every acknowledged write is stored, with exactly one Success Audit record of its own request.
    const problems: string[] = [];
    const rowsOf = (rows: Rows) => [...rows].flatMap(([set, ids]) => ids.map((id) => `${set}(${id})`));
    for (const s of acknowledged) {
      for (const row of rowsOf(s.acknowledged!)) {
        const named = namedBy.get(row) ?? [];
        if (!stored.has(row)) problems.push(`acknowledged ${s.kind} ${s.requestId}: ${row} is not stored`);
        if (named.length !== 1)
          problems.push(`acknowledged ${s.kind} ${s.requestId}: ${row} has ${named.length} Success records`);
        else if (named[0]!.correlationId !== s.requestId)
          problems.push(`acknowledged ${s.kind} ${s.requestId}: ${row}'s record is of ${named[0]!.correlationId}`);
      }
    }
    expect(problems, `check 1 (acknowledged writes): ${summary}`).toEqual([]);

    // 2. No Success Audit record names a row that is not stored.
    const unstored = [...namedBy.keys()].filter((row) => !stored.has(row));
    expect(unstored, `check 2 (records of rows not stored): ${summary}`).toEqual([]);

    // 3. Cut off (or refused): all or nothing; stored with its one record, or not stored and named by none.
    const outcomes = { stored: 0, notStored: 0 };
    for (const s of [...inFlight, ...answered]) {
      const rows = s.kind === "initLogAnalytics" ? (storedInit.get(s.conversationId!) ?? new Map()) : s.planned;
      const present = rowsOf(rows).filter((row) => stored.has(row));
      const whole = s.kind === "initLogAnalytics" ? present.length === 3 : present.length === rowsOf(s.planned).length;
      if (present.length > 0 && !whole) problems.push(`${s.outcome} ${s.kind} ${s.requestId}: only ${present.join(" ")} stored`);
      if (present.length > 0) {
        outcomes.stored++;
        if (s.outcome === "answered") problems.push(`refused ${s.kind} ${s.requestId} (${s.status}) stored ${present.join(" ")}`);
        for (const row of present) {
          const named = namedBy.get(row) ?? [];
          if (named.length !== 1 || named[0]!.correlationId !== s.requestId)
            problems.push(`${s.outcome} ${s.kind} ${s.requestId}: stored ${row} has ${named.length} Success records`);
        }
      } else {
        outcomes.notStored++;
        for (const row of rowsOf(s.planned)) {
          if (namedBy.has(row)) problems.push(`${s.outcome} ${s.kind} ${s.requestId}: unstored ${row} has a Success record`);
        }
        if (successCorrelations.has(s.requestId))
          problems.push(`${s.outcome} ${s.kind} ${s.requestId}: stored nothing, yet has a Success Audit record`);
      }
    }
    expect(problems, `check 3 (cut off: ${outcomes.stored} stored, ${outcomes.notStored} not): ${summary}`).toEqual([]);

    // The write after the restart has its record too.
    expect(namedBy.get(`msdyn_kpieventsdata(${after})`)?.length, summary).toBe(1);
  });
});
