/**
 * The analytics benchmark's store: conversations over 31 days across 20 queues and 500
 * agents, each a realistic sequence of CIF events, loaded with COPY (foreign keys checked
 * as for any write). The mix gives 10 events per conversation on average:
 * - 85 % answered: offered, accepted, started, focus, hold, unhold, focus, wrap-up, closed (10);
 * - 10 % abandoned in queue (1);
 * - 5 % timed out on one agent, answered by another with a hold, transferred, answered
 *   again in a second session on another queue (28).
 * Deterministic: the same sizes give the same rows.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { ANALYTICS_KPI_EVENT_DEFINITIONS, SYSTEM_KPI_EVENT_DEFINITIONS, SYSTEM_USER_ID } from "../../src/model/tables.js";

export const ANALYTICS_BASE = Date.parse("2024-05-01T00:00:00Z");
export const ANALYTICS_DAYS = 31;
export const QUEUES = Array.from({ length: 20 }, (_, i) => `queue-${String(i).padStart(2, "0")}`);
export const AGENTS = Array.from({ length: 500 }, (_, i) => `agent-${String(i).padStart(3, "0")}`);
const CHANNELS = ["Voice", "Voice", "Voice", "Chat", "SMS"];

const DEFINITION = new Map([...SYSTEM_KPI_EVENT_DEFINITIONS, ...ANALYTICS_KPI_EVENT_DEFINITIONS].map((d) => [d.name, d.id]));

/** A small fast PRNG (mulberry32): the store must be the same in every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rows {
  conversations: string[];
  sessions: string[];
  participants: string[];
  events: string[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Conversations happening now: started in [from, until), and whatever of their events lie
 * after `until` not logged yet, so some wait, alert or are being handled.
 */
export interface LiveWindow {
  from: number;
  until: number;
}

/** The rows of conversations [first, first + count), in COPY's text format. */
export function conversationRows(first: number, count: number, providerId: string, live?: LiveWindow): Rows {
  const rows: Rows = { conversations: [], sessions: [], participants: [], events: [] };
  const owner = SYSTEM_USER_ID;
  for (let i = first; i < first + count; i++) {
    const r = random(i + 1);
    const id = `${live ? "live" : "bench"}-c${i}`;
    const day = i % ANALYTICS_DAYS;
    // Busier in the daytime: two uniform draws, centred on 13:00 UTC.
    const secondOfDay = Math.floor(((r() + r()) / 2) * 86_400);
    const start = live
      ? live.from + Math.floor(r() * (live.until - live.from))
      : ANALYTICS_BASE + day * 86_400_000 + secondOfDay * 1000;
    const logged = (at: number) => !live || at < live.until;
    const channel = CHANNELS[Math.floor(r() * CHANNELS.length)]!;
    const queue = QUEUES[Math.floor(r() * QUEUES.length)]!;
    const agent = () => AGENTS[Math.floor(r() * AGENTS.length)]!;
    rows.conversations.push(`${id}\t${id}\t${iso(start)}\t${channel}\t${providerId}\t${owner}`);
    const sessions = new Set<string>();
    const session = (sessionId: string, queueId: string, created: number, wait: number | null, reason: string) => {
      if (!logged(created)) return;
      if (wait !== null && !logged(created + 2000 + wait)) wait = null;
      sessions.add(sessionId);
      rows.sessions.push(
        `${id}\t${sessionId}\t${channel}\t${reason}\t${queueId}\t${iso(created)}\t${iso(created + 2000)}\t${wait === null ? "\\N" : iso(created + 2000 + wait)}\t${owner}`,
      );
    };
    const participant = (sessionId: string, agentId: string) => {
      if (sessions.has(sessionId)) rows.participants.push(`${id}\t${sessionId}\t${agentId}\tAgent\t${owner}`);
    };
    const event = (name: string, at: number, sessionId: string, participantId: string | null) => {
      if (!logged(at) || !sessions.has(sessionId)) return;
      rows.events.push(
        `${name}\t${DEFINITION.get(name)}\t${name}\t${iso(at)}\t${id}\t${sessionId}\t${participantId ?? "\\N"}\t${providerId}\t${owner}`,
      );
    };
    /** An answered leg from `offered`: returns when it closed. */
    const answered = (sessionId: string, agentId: string, offered: number, extraFocus: number) => {
      let t = offered;
      event("NotificationReceived", t, sessionId, agentId);
      t += 2000 + Math.floor(r() * 10_000);
      event("NotificationAccepted", t, sessionId, agentId);
      event("SessionStarted", t + 500, sessionId, agentId);
      event("SessionFocusIn", t + 600, sessionId, agentId);
      const talk = 60_000 + Math.floor(r() * 400_000);
      const holdAt = t + Math.floor(talk / 3);
      event("CallHold", holdAt, sessionId, agentId);
      event("CallUnhold", holdAt + 10_000 + Math.floor(r() * 60_000), sessionId, agentId);
      event("SessionFocusOut", holdAt + 75_000, sessionId, agentId);
      event("SessionFocusIn", holdAt + 76_000, sessionId, agentId);
      for (let k = 0; k < extraFocus; k++)
        event(k % 2 ? "SessionFocusIn" : "SessionFocusOut", holdAt + 80_000 + k * 1000, sessionId, agentId);
      t += Math.max(talk, 90_000);
      event("WrapUpStarted", t, sessionId, agentId);
      t += 10_000 + Math.floor(r() * 60_000);
      event("SessionClosed", t, sessionId, agentId);
      return t;
    };
    const kind = r();
    const wait = 3000 + Math.floor(r() * 40_000);
    if (kind < 0.85) {
      const a = agent();
      session("s-1", queue, start, wait, "inbound");
      participant("s-1", a);
      answered("s-1", a, start + 2000 + wait, 0);
    } else if (kind < 0.95) {
      session("s-1", queue, start, null, "inbound");
      event("ConversationAbandoned", start + 2000 + wait, "s-1", null);
    } else {
      const [a1, a2, a3] = [agent(), agent(), agent()];
      session("s-1", queue, start, wait, "inbound");
      participant("s-1", a1);
      if (a2 !== a1) participant("s-1", a2);
      const offered = start + 2000 + wait;
      event("NotificationReceived", offered, "s-1", a1);
      event("NotificationTimedOut", offered + 30_000, "s-1", a1);
      const closed = answered("s-1", a2, offered + 31_000, 5);
      event("ConversationTransferred", closed - 20_000, "s-1", a2);
      const second = QUEUES[(QUEUES.indexOf(queue) + 1) % QUEUES.length]!;
      session("s-2", second, closed - 19_000, 3000, "Transfer");
      participant("s-2", a3);
      answered("s-2", a3, closed - 14_000, 0);
    }
  }
  return rows;
}

const COPY = {
  conversations:
    "COPY msdyn_conversationdata (msdyn_conversationid, msdyn_name, msdyn_conversationtimestamp, msdyn_channel, msdyn_providerid, ownerid) FROM STDIN",
  sessions:
    "COPY msdyn_sessiondata (msdyn_conversationid, msdyn_providersessionid, msdyn_sessionchannel, msdyn_sessioncreationreason, msdyn_queueid, " +
    "msdyn_sessioncreatedtimestamp, msdyn_sessionqueueassignedtimestamp, msdyn_sessionagentassignedtimestamp, ownerid) FROM STDIN",
  participants:
    "COPY msdyn_sessionparticipantdata (msdyn_conversationid, msdyn_providersessionid, msdyn_participantid, msdyn_participanttype, ownerid) FROM STDIN",
  events:
    'COPY msdyn_kpieventdata (msdyn_name, msdyn_kpieventid, msdyn_kpieventname, msdyn_eventtimestamp, msdyn_conversationid, msdyn_providersessionid, msdyn_participantid, "msdyn_ProviderId", ownerid) FROM STDIN',
};

async function copy(client: pg.PoolClient, sql: string, lines: readonly string[]) {
  if (lines.length === 0) return;
  await pipeline(Readable.from([`${lines.join("\n")}\n`]), client.query(copyFrom(sql)));
}

/**
 * Loads conversations [0, total) in chunks, each chunk one transaction (parents first),
 * as a provider's bulk writes would; the analytics triggers mark every conversation.
 */
export async function loadAnalyticsStore(
  pool: pg.Pool,
  total: number,
  providerId: string,
  progress: (loaded: number, events: number) => void,
  chunk = 20_000,
  live?: LiveWindow,
): Promise<{ conversations: number; events: number }> {
  let events = 0;
  for (let first = 0; first < total; first += chunk) {
    const rows = conversationRows(first, Math.min(chunk, total - first), providerId, live);
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await copy(client, COPY.conversations, rows.conversations);
      await copy(client, COPY.sessions, rows.sessions);
      await copy(client, COPY.participants, rows.participants);
      await copy(client, COPY.events, rows.events);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
    events += rows.events.length;
    progress(Math.min(first + chunk, total), events);
  }
  return { conversations: total, events };
}
