/**
 * The SQL of re-deriving conversations: take a batch of changed conversation ids, read
 * their trees, store their new metric rows and summaries, and move the rollups by exactly
 * the difference between the old rows and the new, all in one transaction.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Queryable } from "../../db/transactions.js";
import { newRowId } from "../../model/row-ids.js";
import { ident, prepared } from "../../db/sql.js";
import { ROLLUP_GRAINS } from "../../model/tables.js";
import { type ConversationTree, type DerivedConversation, type Fact, IGNORED_EVENTS } from "../derive.js";
import { bucketStart } from "../time.js";

/** Where the direction dimension is read from (ANALYTICS_DIRECTION_COLUMN). */
export interface DirectionSource {
  table: "msdyn_sessiondata" | "msdyn_conversationdata";
  column: string;
}

// One advisory lock per database: one refresher works at a time, whatever the number of
// server instances, so two never re-derive the same conversation at once.
export const REFRESH_LOCK_KEY = 0x63_69_66_61; // "cifa"

export async function tryRefreshLock(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ locked: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS locked", [REFRESH_LOCK_KEY]);
  return rows[0]!.locked;
}

/** Takes up to `limit` of the oldest changed conversations off the queue (distinct ids). */
export async function takeDirty(db: Queryable, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ conversationid: string }>(
    prepared(
      // Every entry of the oldest conversations: one write of four tables marks a conversation four times.
      `DELETE FROM cif_analytics_dirty WHERE conversationid IN (
         SELECT conversationid FROM cif_analytics_dirty ORDER BY seq LIMIT $1)
       RETURNING conversationid`,
      [limit],
    ),
  );
  return [...new Set(rows.map((r) => r.conversationid))];
}

export async function countDirty(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM cif_analytics_dirty");
  return Number(rows[0]!.n);
}

/**
 * `ids` cut into consecutive slices of at most `maxEvents` KPI events each (a conversation
 * with more is a slice of its own).
 */
export async function slicesByEvents(db: Queryable, ids: readonly string[], maxEvents: number): Promise<string[][]> {
  const { rows } = await db.query<{ conversationid: string; n: string }>(
    prepared(
      `SELECT msdyn_conversationid AS conversationid, count(*) AS n FROM msdyn_kpieventdata
        WHERE msdyn_conversationid = ANY($1::text[]) GROUP BY 1`,
      [ids],
    ),
  );
  const events = new Map(rows.map((r) => [r.conversationid, Number(r.n)]));
  const slices: string[][] = [];
  let current: string[] = [];
  let total = 0;
  for (const id of ids) {
    const n = events.get(id) ?? 0;
    if (current.length > 0 && total + n > maxEvents) {
      slices.push(current);
      current = [];
      total = 0;
    }
    current.push(id);
    total += n;
  }
  if (current.length > 0) slices.push(current);
  return slices;
}

interface ConversationDbRow {
  msdyn_conversationid: string;
  msdyn_conversationtimestamp: Date | null;
  msdyn_channel: string | null;
  msdyn_providerid: string | null;
  createdon: Date;
  direction: string | null;
}
interface SessionDbRow {
  msdyn_conversationid: string;
  msdyn_providersessionid: string;
  msdyn_sessionchannel: string | null;
  msdyn_sessioncreationreason: string | null;
  msdyn_queueid: string | null;
  msdyn_queuename: string | null;
  msdyn_sessioncreatedtimestamp: Date | null;
  msdyn_sessionagentassignedtimestamp: Date | null;
  msdyn_sessionqueueassignedtimestamp: Date | null;
  createdon: Date;
  direction: string | null;
}
interface ParticipantDbRow {
  msdyn_conversationid: string;
  msdyn_providersessionid: string;
  msdyn_participantid: string;
  msdyn_participantname: string | null;
  msdyn_participanttype: string | null;
  msdyn_participantaddedtimestamp: Date | null;
}
interface EventDbRow {
  msdyn_conversationid: string;
  id: string;
  msdyn_kpieventname: string | null;
  msdyn_kpieventreason: string | null;
  msdyn_eventtimestamp: Date | null;
  msdyn_providersessionid: string;
  msdyn_participantid: string | null;
  provider: string | null;
  cifsessionid: string | null;
  createdon: Date;
}

type MutableTree = {
  conversation: ConversationTree["conversation"];
  sessions: ConversationTree["sessions"][number][];
  participants: ConversationTree["participants"][number][];
  events: ConversationTree["events"][number][];
};

/** The stored trees of `ids`; a conversation that no longer exists is absent. */
export async function loadTrees(db: Queryable, ids: readonly string[], direction: DirectionSource): Promise<ConversationTree[]> {
  const conversationDirection = direction.table === "msdyn_conversationdata" ? ident(direction.column) : "NULL";
  const sessionDirection = direction.table === "msdyn_sessiondata" ? ident(direction.column) : "NULL";
  // One after another: `db` may be one client, which runs one statement at a time.
  const conversations = await db.query<ConversationDbRow>(
    prepared(
      `SELECT msdyn_conversationid, msdyn_conversationtimestamp, msdyn_channel, msdyn_providerid, createdon,
              ${conversationDirection}::text AS direction
         FROM msdyn_conversationdata WHERE msdyn_conversationid = ANY($1::text[])`,
      [ids],
    ),
  );
  const sessions = await db.query<SessionDbRow>(
    prepared(
      `SELECT msdyn_conversationid, msdyn_providersessionid, msdyn_sessionchannel, msdyn_sessioncreationreason, msdyn_queueid,
              msdyn_queuename, msdyn_sessioncreatedtimestamp, msdyn_sessionagentassignedtimestamp,
              msdyn_sessionqueueassignedtimestamp, createdon, ${sessionDirection}::text AS direction
         FROM msdyn_sessiondata WHERE msdyn_conversationid = ANY($1::text[])`,
      [ids],
    ),
  );
  const participants = await db.query<ParticipantDbRow>(
    prepared(
      `SELECT msdyn_conversationid, msdyn_providersessionid, msdyn_participantid, msdyn_participantname, msdyn_participanttype,
              msdyn_participantaddedtimestamp
         FROM msdyn_sessionparticipantdata WHERE msdyn_conversationid = ANY($1::text[])`,
      [ids],
    ),
  );
  const events = await db.query<EventDbRow>(
    prepared(
      `SELECT msdyn_conversationid, msdyn_kpieventdataid::text AS id, msdyn_kpieventname, msdyn_kpieventreason, msdyn_eventtimestamp,
              msdyn_providersessionid, msdyn_participantid, "msdyn_ProviderId" AS provider,
              "msdyn_cifSessionId" AS cifsessionid, createdon
         FROM msdyn_kpieventdata
        WHERE msdyn_conversationid = ANY($1::text[]) AND coalesce(msdyn_kpieventname, '') <> ALL ($2::text[])`,
      [ids, IGNORED_EVENTS],
    ),
  );
  const trees = new Map<string, MutableTree>();
  for (const c of conversations.rows) {
    trees.set(c.msdyn_conversationid, {
      conversation: {
        conversationId: c.msdyn_conversationid,
        timestamp: c.msdyn_conversationtimestamp,
        channel: c.msdyn_channel,
        providerId: c.msdyn_providerid,
        createdOn: c.createdon,
        directionSource: c.direction,
      },
      sessions: [],
      participants: [],
      events: [],
    });
  }
  for (const s of sessions.rows) {
    trees.get(s.msdyn_conversationid)?.sessions.push({
      providerSessionId: s.msdyn_providersessionid,
      channel: s.msdyn_sessionchannel,
      creationReason: s.msdyn_sessioncreationreason,
      queueId: s.msdyn_queueid,
      queueName: s.msdyn_queuename,
      createdTimestamp: s.msdyn_sessioncreatedtimestamp,
      agentAssignedTimestamp: s.msdyn_sessionagentassignedtimestamp,
      queueAssignedTimestamp: s.msdyn_sessionqueueassignedtimestamp,
      createdOn: s.createdon,
      directionSource: s.direction,
    });
  }
  for (const p of participants.rows) {
    trees.get(p.msdyn_conversationid)?.participants.push({
      providerSessionId: p.msdyn_providersessionid,
      participantId: p.msdyn_participantid,
      name: p.msdyn_participantname,
      type: p.msdyn_participanttype,
      addedTimestamp: p.msdyn_participantaddedtimestamp,
    });
  }
  for (const e of events.rows) {
    trees.get(e.msdyn_conversationid)?.events.push({
      id: e.id,
      name: e.msdyn_kpieventname,
      reason: e.msdyn_kpieventreason,
      timestamp: e.msdyn_eventtimestamp,
      providerSessionId: e.msdyn_providersessionid,
      participantId: e.msdyn_participantid,
      providerId: e.provider,
      cifSessionId: e.cifsessionid,
      createdOn: e.createdon,
    });
  }
  return [...trees.values()];
}

interface FactDbRow {
  conversationid: string;
  providersessionid: string;
  participantid: string;
  metric: string;
  value: string;
  emittedon: Date;
  kpieventname: string;
  queueid: string;
  mediatype: string;
  providerid: string;
  userid: string;
  direction: string;
}

interface StoredFact extends Fact {
  conversationId: string;
}

const FACT_COLUMNS = [
  "conversationid",
  "providersessionid",
  "participantid",
  "metric",
  "value",
  "emittedon",
  "kpieventname",
  "queueid",
  "mediatype",
  "providerid",
  "userid",
  "direction",
] as const;

/** COPY's text format: backslash, tab and line breaks escaped; the dimensions are free text from providers. */
const copyText = (value: string) => (/[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : value);
const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/**
 * The metric rows go in with COPY, with time-ordered ids made here: the rows of a batch are
 * the refresher's bulk of work, and COPY with appended keys costs a fraction of an INSERT
 * of unnested arrays with random ones.
 */
async function copyFacts(db: pg.ClientBase, facts: readonly StoredFact[]): Promise<void> {
  if (facts.length === 0) return;
  let text = "";
  for (const f of facts) {
    text +=
      `${newRowId()}\t${copyText(f.conversationId)}\t${copyText(f.providerSessionId)}\t${copyText(f.participantId)}\t${f.metric}\t` +
      `${f.value}\t${f.emittedOn.toISOString()}\t${copyText(f.kpiEventName)}\t${copyText(f.queueId)}\t${copyText(f.mediaType)}\t` +
      `${copyText(f.providerId)}\t${copyText(f.userId)}\t${copyText(f.direction)}\n`;
  }
  const stream = db.query(copyFrom(`COPY cif_analytics_metric (cif_analytics_metricid, ${FACT_COLUMNS.join(", ")}) FROM STDIN`));
  await pipeline(Readable.from([text]), stream);
}

/** Every stored column of a metric row: rows equal in all of them are the same row. */
const storedKey = (f: StoredFact) =>
  [
    f.conversationId,
    f.providerSessionId,
    f.participantId,
    f.metric,
    f.value,
    f.emittedOn.getTime(),
    f.kpiEventName,
    f.queueId,
    f.mediaType,
    f.providerId,
    f.userId,
    f.direction,
  ].join("\u0001");

type Derived = Pick<DerivedConversation, "summary" | "facts" | "participants" | "agentEvents" | "openStates">;

/** A table of rows derived per conversation, rewritten for a conversation when its rows change. */
interface PerConversationRows {
  table: string;
  /** Column names and their PostgreSQL array types, conversationid first. */
  columns: readonly (readonly [name: string, type: string])[];
  rowsOf(d: Derived): unknown[][];
  /** Runs in the same transaction with the rows taken out and put in, when there are any. */
  changed?(db: pg.ClientBase, rows: readonly unknown[][]): Promise<void>;
}

const PER_CONVERSATION_ROWS: readonly PerConversationRows[] = [
  {
    table: "cif_analytics_segment",
    columns: [
      ["conversationid", "text"],
      ["conversationstart", "timestamptz"],
      ["providersessionid", "text"],
      ["participantid", "text"],
      ["participantname", "text"],
      ["purpose", "text"],
      ["queueid", "text"],
      ["mediatype", "text"],
      ["providerid", "text"],
      ["userid", "text"],
      ["direction", "text"],
      ["segmenttypes", "text"],
      ["disconnecttypes", "text"],
    ],
    rowsOf: (d) =>
      d.participants.flatMap((p) =>
        p.sessions.map((s) => [
          d.summary.conversationId,
          d.summary.conversationStart,
          s.sessionId,
          p.participantId,
          p.participantName ?? "",
          p.purpose,
          s.queueId ?? "",
          s.mediaType ?? "",
          s.provider ?? "",
          p.userId ?? "",
          s.direction ?? "",
          delimited(s.segments.map((x) => x.segmentType)),
          delimited(s.segments.flatMap((x) => (x.disconnectType ? [x.disconnectType] : []))),
        ]),
      ),
  },
  {
    table: "cif_analytics_agentevent",
    columns: [
      ["conversationid", "text"],
      ["userid", "text"],
      ["eventon", "timestamptz"],
      ["createdon", "timestamptz"],
      ["kpieventid", "text"],
      ["eventname", "text"],
      ["reason", "text"],
      ["providersessionid", "text"],
      ["cifsessionid", "text"],
      ["queueid", "text"],
      ["mediatype", "text"],
    ],
    rowsOf: (d) =>
      d.agentEvents.map((e) => [
        d.summary.conversationId,
        e.userId,
        e.at,
        e.createdOn,
        e.kpiEventId,
        e.name,
        e.reason,
        e.providerSessionId,
        e.cifSessionId,
        e.queueId,
        e.mediaType,
      ]),
    // Column 1 is userid: the agents whose timeline events changed get a new version.
    changed: (db, rows) =>
      moveAgentVersions(
        db,
        rows.map((row) => row[1] as string),
      ),
  },
  {
    table: "cif_analytics_openstate",
    columns: [
      ["conversationid", "text"],
      ["providersessionid", "text"],
      ["state", "text"],
      ["since", "timestamptz"],
      ["lastactivity", "timestamptz"],
      ["queueid", "text"],
      ["mediatype", "text"],
      ["userid", "text"],
    ],
    rowsOf: (d) =>
      d.openStates.map((o) => [
        d.summary.conversationId,
        o.providerSessionId,
        o.state,
        o.since,
        o.lastActivity,
        o.queueId,
        o.mediaType,
        o.userId,
      ]),
  },
];

/** The agents whose timeline events changed get a new version. */
async function moveAgentVersions(db: pg.ClientBase, userIds: readonly string[]) {
  const users = [...new Set(userIds)].filter(Boolean).sort();
  if (users.length === 0) return;
  await db.query(
    prepared(
      `INSERT INTO cif_analytics_agentversion (userid, version)
       SELECT userid, nextval('cif_analytics_agentversion_seq') FROM unnest($1::text[]) AS userid
       ON CONFLICT (userid) DO UPDATE SET version = EXCLUDED.version`,
      [users],
    ),
  );
}

const rowsKey = (rows: readonly unknown[][]) =>
  rows
    .map((r) =>
      r
        .map((v) => (v instanceof Date ? v.getTime() : v === null || v === undefined ? "\u0000" : String(v as string)))
        .join("\u0001"),
    )
    .sort()
    .join("\n");

/**
 * Rewrites `table`'s rows of the conversations of `ids` whose rows changed (and drops those
 * of conversations gone); returns the rows it took out and put in.
 */
async function replaceRowsOf(
  db: pg.ClientBase,
  table: PerConversationRows,
  ids: readonly string[],
  derived: readonly Derived[],
): Promise<{ removed: unknown[][]; added: unknown[][] }> {
  const names = table.columns.map(([name]) => name);
  const { rows: old } = await db.query<Record<string, unknown>>(
    prepared(`SELECT ${names.join(", ")} FROM ${table.table} WHERE conversationid = ANY($1::text[])`, [ids]),
  );
  const oldRows = new Map<string, unknown[][]>();
  for (const r of old) {
    const row = names.map((c) => r[c]);
    const list = oldRows.get(r.conversationid as string);
    if (list) list.push(row);
    else oldRows.set(r.conversationid as string, [row]);
  }
  const present = new Set(derived.map((d) => d.summary.conversationId));
  const changed = derived.flatMap((d) => {
    const rows = table.rowsOf(d);
    return rowsKey(oldRows.get(d.summary.conversationId) ?? []) === rowsKey(rows) ? [] : [{ id: d.summary.conversationId, rows }];
  });
  const rewrite = [...ids.filter((id) => !present.has(id) && oldRows.has(id)), ...changed.map((c) => c.id)];
  if (rewrite.length > 0)
    await db.query(prepared(`DELETE FROM ${table.table} WHERE conversationid = ANY($1::text[])`, [rewrite]));
  const rows = changed.flatMap((c) => c.rows);
  if (rows.length > 0) {
    const arrays = table.columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ");
    await db.query(
      prepared(
        `INSERT INTO ${table.table} (${names.join(", ")}) SELECT * FROM unnest(${arrays})`,
        table.columns.map((_, i) => rows.map((row) => row[i])),
      ),
    );
  }
  return { removed: rewrite.flatMap((id) => oldRows.get(id) ?? []), added: rows };
}

/**
 * Stores the new metric rows, summaries and segment rows of `ids` in place of the old,
 * writing only what changed (an event that changes no metric writes nothing here), and
 * moves the rollups by the difference (`rollups: "skip"`: the caller rebuilds them).
 */
export async function replaceConversations(
  db: pg.ClientBase,
  ids: readonly string[],
  derived: readonly Derived[],
  rollups: "maintain" | "skip" = "maintain",
): Promise<{ facts: number; cells: number }> {
  const { rows: old } = await db.query<FactDbRow & { id: string }>(
    prepared(
      `SELECT cif_analytics_metricid AS id, ${FACT_COLUMNS.join(", ")} FROM cif_analytics_metric WHERE conversationid = ANY($1::text[])`,
      [ids],
    ),
  );
  const before = old.map((r): StoredFact & { id: string } => ({
    id: r.id,
    conversationId: r.conversationid,
    providerSessionId: r.providersessionid,
    participantId: r.participantid,
    metric: r.metric,
    value: Number(r.value),
    emittedOn: r.emittedon,
    kpiEventName: r.kpieventname,
    queueId: r.queueid,
    mediaType: r.mediatype,
    providerId: r.providerid,
    userId: r.userid,
    direction: r.direction,
  }));
  const fresh: StoredFact[] = derived.flatMap((d) => d.facts.map((f) => ({ ...f, conversationId: d.summary.conversationId })));

  // The multiset difference: rows in both stay as they are.
  const kept = new Map<string, (StoredFact & { id: string })[]>();
  for (const f of before) {
    const key = storedKey(f);
    const list = kept.get(key);
    if (list) list.push(f);
    else kept.set(key, [f]);
  }
  const added: StoredFact[] = [];
  for (const f of fresh) {
    const match = kept.get(storedKey(f));
    if (match && match.length > 0) match.pop();
    else added.push(f);
  }
  const removed = [...kept.values()].flat();
  if (removed.length > 0) {
    await db.query(
      prepared("DELETE FROM cif_analytics_metric WHERE cif_analytics_metricid = ANY($1::uuid[])", [removed.map((f) => f.id)]),
    );
  }
  await copyFacts(db, added);

  // Summaries and segment rows: rewritten for the conversations whose own changed.
  const { rows: oldSummaries } = await db.query<{
    conversationid: string;
    conversationstart: Date;
    conversationend: Date | null;
    originatingdirection: string | null;
  }>(
    prepared(
      "SELECT conversationid, conversationstart, conversationend, originatingdirection FROM cif_analytics_conversation WHERE conversationid = ANY($1::text[])",
      [ids],
    ),
  );
  const summaryKey = (start: Date, end: Date | null | undefined, direction: string | null | undefined) =>
    `${start.getTime()}\u0001${end?.getTime() ?? ""}\u0001${direction ?? ""}`;
  const oldSummary = new Map(
    oldSummaries.map((r) => [r.conversationid, summaryKey(r.conversationstart, r.conversationend, r.originatingdirection)]),
  );
  const present = new Set(derived.map((d) => d.summary.conversationId));
  const gone = ids.filter((id) => !present.has(id));
  const changedSummaries = derived.filter(
    (d) =>
      oldSummary.get(d.summary.conversationId) !==
      summaryKey(d.summary.conversationStart, d.summary.conversationEnd, d.summary.originatingDirection),
  );

  const rewrite = [...gone, ...changedSummaries.map((d) => d.summary.conversationId)];
  if (rewrite.length > 0)
    await db.query(prepared("DELETE FROM cif_analytics_conversation WHERE conversationid = ANY($1::text[])", [rewrite]));
  if (changedSummaries.length > 0) {
    await db.query(
      prepared(
        `INSERT INTO cif_analytics_conversation (conversationid, conversationstart, conversationend, originatingdirection)
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[])`,
        [
          changedSummaries.map((d) => d.summary.conversationId),
          changedSummaries.map((d) => d.summary.conversationStart),
          changedSummaries.map((d) => d.summary.conversationEnd ?? null),
          changedSummaries.map((d) => d.summary.originatingDirection ?? null),
        ],
      ),
    );
  }
  for (const table of PER_CONVERSATION_ROWS) {
    const { removed: out, added: into } = await replaceRowsOf(db, table, ids, derived);
    await table.changed?.(db, [...out, ...into]);
  }

  if (rollups === "skip") return { facts: added.length, cells: 0 };
  const cells = rollupChanges(removed, added);
  await applyRollupChanges(db, cells);
  return { facts: added.length, cells: cells.length };
}

/** Every rollup cell recomputed from the metric rows in one pass (after a bulk re-derivation). */
export async function rebuildRollups(db: Queryable): Promise<number> {
  await db.query("TRUNCATE cif_analytics_rollup");
  let cells = 0;
  for (const { grain, minutes, keepsUser } of ROLLUP_GRAINS) {
    const width = minutes * 60;
    const result = await db.query(
      `INSERT INTO cif_analytics_rollup (${CELL_KEY.join(", ")}, statcount, statsum, statmin, statmax)
       SELECT ${grain}, metric, to_timestamp(floor(extract(epoch FROM emittedon) / ${width}) * ${width}), queueid, mediatype, providerid,
              ${keepsUser ? "userid" : "''"}, direction, count(*), sum(value), min(value), max(value)
         FROM cif_analytics_metric
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        -- In the key's order, so a query's range of cells is on few pages, not one page a cell.
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8`,
    );
    cells += result.rowCount ?? 0;
  }
  return cells;
}

/** `,a,b,` (each value once): a LIKE '%,a,%' matches one whole value. */
const delimited = (values: readonly string[]) => (values.length ? `,${[...new Set(values)].join(",")},` : "");

/** A rollup cell's change: the delta of count and sum, the added extremes, the removed extremes. */
export interface CellChange {
  grain: number;
  metric: string;
  bucketStart: Date;
  queueId: string;
  mediaType: string;
  providerId: string;
  userId: string;
  direction: string;
  count: number;
  sum: number;
  addedMin: number | null;
  addedMax: number | null;
  removedMin: number | null;
  removedMax: number | null;
}

const factKey = (f: StoredFact) =>
  [f.metric, f.value, f.emittedOn.getTime(), f.queueId, f.mediaType, f.providerId, f.userId, f.direction].join("\u0001");

/**
 * The rollup changes between two sets of metric rows: rows present in both cancel (most of
 * a re-derived conversation is unchanged); the rest add to or take from their cells.
 */
export function rollupChanges(before: readonly StoredFact[], after: readonly StoredFact[]): CellChange[] {
  const remaining = new Map<string, number>();
  for (const f of before) remaining.set(factKey(f), (remaining.get(factKey(f)) ?? 0) + 1);
  const added: StoredFact[] = [];
  for (const f of after) {
    const key = factKey(f);
    const n = remaining.get(key) ?? 0;
    if (n > 0) remaining.set(key, n - 1);
    else added.push(f);
  }
  const removed: StoredFact[] = [];
  for (const f of before) {
    const key = factKey(f);
    const n = remaining.get(key) ?? 0;
    if (n > 0) {
      remaining.set(key, n - 1);
      removed.push(f);
    }
  }
  const cells = new Map<string, CellChange>();
  const touch = (f: StoredFact, sign: 1 | -1) => {
    for (const { grain, minutes, keepsUser } of ROLLUP_GRAINS) {
      const bucket = bucketStart(f.emittedOn, minutes);
      const userId = keepsUser ? f.userId : "";
      const key = [grain, f.metric, bucket.getTime(), f.queueId, f.mediaType, f.providerId, userId, f.direction].join("\u0001");
      let cell = cells.get(key);
      if (!cell) {
        cell = {
          grain,
          metric: f.metric,
          bucketStart: bucket,
          queueId: f.queueId,
          mediaType: f.mediaType,
          providerId: f.providerId,
          userId,
          direction: f.direction,
          count: 0,
          sum: 0,
          addedMin: null,
          addedMax: null,
          removedMin: null,
          removedMax: null,
        };
        cells.set(key, cell);
      }
      cell.count += sign;
      cell.sum += sign * f.value;
      if (sign > 0) {
        cell.addedMin = cell.addedMin === null ? f.value : Math.min(cell.addedMin, f.value);
        cell.addedMax = cell.addedMax === null ? f.value : Math.max(cell.addedMax, f.value);
      } else {
        cell.removedMin = cell.removedMin === null ? f.value : Math.min(cell.removedMin, f.value);
        cell.removedMax = cell.removedMax === null ? f.value : Math.max(cell.removedMax, f.value);
      }
    }
  };
  for (const f of added) touch(f, 1);
  for (const f of removed) touch(f, -1);
  return [...cells.values()];
}

const CELL_KEY = ["grain", "metric", "bucketstart", "queueid", "mediatype", "providerid", "userid", "direction"] as const;
const GRAIN_MINUTES_SQL = `CASE c.grain ${ROLLUP_GRAINS.map((g) => `WHEN ${g.grain} THEN ${g.minutes}`).join(" ")} END`;
const userGrains = ROLLUP_GRAINS.filter((g) => g.keepsUser).map((g) => g.grain);
const GRAIN_KEEPS_USER_SQL = userGrains.length ? `c.grain IN (${userGrains.join(", ")})` : "FALSE";

async function applyRollupChanges(db: Queryable, cells: readonly CellChange[]): Promise<void> {
  if (cells.length === 0) return;
  const values = [
    cells.map((c) => c.grain),
    cells.map((c) => c.metric),
    cells.map((c) => c.bucketStart),
    cells.map((c) => c.queueId),
    cells.map((c) => c.mediaType),
    cells.map((c) => c.providerId),
    cells.map((c) => c.userId),
    cells.map((c) => c.direction),
    cells.map((c) => c.count),
    cells.map((c) => c.sum),
    cells.map((c) => c.addedMin),
    cells.map((c) => c.addedMax),
    cells.map((c) => c.removedMin),
    cells.map((c) => c.removedMax),
  ];
  const cellsSql = `unnest($1::int4[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                           $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[])
                      AS c(${CELL_KEY.join(", ")}, dcount, dsum, amin, amax, rmin, rmax)`;
  // A cell that lost a value equal to its min or max is recomputed from the metric rows
  // (the one case deltas cannot settle); a cell left with nothing is removed.
  const { rows } = await db.query<{ id: string; statcount: string }>(
    prepared(
      `WITH c AS (SELECT * FROM ${cellsSql}),
       upserted AS (
         INSERT INTO cif_analytics_rollup (${CELL_KEY.join(", ")}, statcount, statsum, statmin, statmax)
         SELECT ${CELL_KEY.join(", ")}, dcount, dsum, COALESCE(amin, 0), COALESCE(amax, 0) FROM c
         ON CONFLICT (${CELL_KEY.join(", ")}) DO UPDATE SET
           statcount = cif_analytics_rollup.statcount + EXCLUDED.statcount,
           statsum = cif_analytics_rollup.statsum + EXCLUDED.statsum,
           statmin = CASE WHEN cif_analytics_rollup.statcount <= 0 THEN EXCLUDED.statmin
                          ELSE LEAST(cif_analytics_rollup.statmin, EXCLUDED.statmin) END,
           statmax = CASE WHEN cif_analytics_rollup.statcount <= 0 THEN EXCLUDED.statmax
                          ELSE GREATEST(cif_analytics_rollup.statmax, EXCLUDED.statmax) END
         RETURNING cif_analytics_rollupid, ${CELL_KEY.join(", ")}, statcount, statmin, statmax
       )
       SELECT u.cif_analytics_rollupid AS id, u.statcount
         FROM upserted u JOIN c USING (${CELL_KEY.join(", ")})
        WHERE u.statcount <= 0 OR (c.rmin IS NOT NULL AND (c.rmin <= u.statmin OR c.rmax >= u.statmax))
           OR (c.amin IS NULL AND c.rmin IS NOT NULL)`,
      values,
    ),
  );
  {
    const gone = rows.filter((r) => Number(r.statcount) <= 0).map((r) => r.id);
    if (gone.length > 0)
      await db.query("DELETE FROM cif_analytics_rollup WHERE cif_analytics_rollupid = ANY($1::uuid[])", [gone]);
    const stale = rows.filter((r) => Number(r.statcount) > 0).map((r) => r.id);
    if (stale.length > 0) {
      await db.query(
        `UPDATE cif_analytics_rollup c SET statmin = x.mn, statmax = x.mx
           FROM (SELECT c.cif_analytics_rollupid AS id, min(f.value) AS mn, max(f.value) AS mx
                   FROM cif_analytics_rollup c
                   JOIN cif_analytics_metric f
                     ON f.metric = c.metric
                    AND f.emittedon >= c.bucketstart AND f.emittedon < c.bucketstart + make_interval(mins => ${GRAIN_MINUTES_SQL})
                    AND f.queueid = c.queueid AND f.mediatype = c.mediatype AND f.providerid = c.providerid
                    AND f.direction = c.direction AND (NOT (${GRAIN_KEEPS_USER_SQL}) OR f.userid = c.userid)
                  WHERE c.cif_analytics_rollupid = ANY($1::uuid[])
                  GROUP BY c.cif_analytics_rollupid) x
          WHERE c.cif_analytics_rollupid = x.id`,
        [stale],
      );
    }
  }
}
