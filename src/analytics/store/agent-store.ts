/**
 * Reads for the agent views: the agents active in a window, their timeline events, and the
 * sessions open now. All from the derived tables the refresher keeps.
 */
import type { Queryable } from "../../db/transactions.js";
import { prepared } from "../../db/sql.js";
import type { OpenStateKind } from "../derive.js";
import type { TimelineEvent } from "../agents.js";

/**
 * The agents with an event in [from, to), in userId order (`desc`: reversed), as rows of
 * `{userid}`. A skip scan over the (userid, eventon) index: one probe per agent, however
 * many events each has.
 */
export function activeAgentsSql(from: Date, to: Date, order: "asc" | "desc" = "asc") {
  return {
    text: `WITH RECURSIVE agents(userid) AS (
         (SELECT userid FROM cif_analytics_agentevent WHERE userid > '' ORDER BY userid LIMIT 1)
         UNION ALL
         SELECT (SELECT e.userid FROM cif_analytics_agentevent e WHERE e.userid > a.userid ORDER BY e.userid LIMIT 1)
           FROM agents a WHERE a.userid IS NOT NULL)
       SELECT userid FROM agents a
        WHERE userid IS NOT NULL
          AND EXISTS (SELECT 1 FROM cif_analytics_agentevent e WHERE e.userid = a.userid AND e.eventon >= $1 AND e.eventon < $2)
        ORDER BY userid ${order === "desc" ? "DESC" : "ASC"}`,
    values: [from, to] as unknown[],
  };
}

export async function activeAgents(db: Queryable, from: Date, to: Date): Promise<string[]> {
  const { text, values } = activeAgentsSql(from, to);
  const { rows } = await db.query<{ userid: string }>(prepared(text, values));
  return rows.map((r) => r.userid);
}

/** The timeline events of `userIds` in [from, to], by agent. */
export async function agentEvents(
  db: Queryable,
  userIds: readonly string[],
  from: Date,
  to: Date,
): Promise<Map<string, TimelineEvent[]>> {
  const byUser = new Map<string, TimelineEvent[]>(userIds.map((u) => [u, []]));
  if (userIds.length === 0) return byUser;
  const { rows } = await db.query<{
    userid: string;
    eventon: Date;
    createdon: Date;
    kpieventid: string;
    eventname: string;
    reason: string | null;
    sessionkey: string;
    cifsessionid: string;
    queueid: string;
  }>(
    prepared(
      `SELECT userid, eventon, createdon, kpieventid, eventname, reason, conversationid || E'\\n' || providersessionid AS sessionkey,
              cifsessionid, queueid
         FROM cif_analytics_agentevent
        WHERE userid = ANY($1::text[]) AND eventon >= $2 AND eventon <= $3`,
      [userIds, from, to],
    ),
  );
  for (const r of rows) {
    byUser.get(r.userid)?.push({
      at: r.eventon,
      createdOn: r.createdon,
      kpiEventId: r.kpieventid,
      name: r.eventname,
      reason: r.reason,
      sessionKey: r.sessionkey,
      cifSessionId: r.cifsessionid,
      queueId: r.queueid,
    });
  }
  return byUser;
}

export interface OpenStateRow {
  conversationId: string;
  sessionId: string;
  state: OpenStateKind;
  since: Date;
  queueId: string;
  mediaType: string;
  userId: string;
}

/** The sessions open now whose conversation had an event since `activeSince`, oldest first. */
export async function openStates(db: Queryable, activeSince: Date, queueIds?: readonly string[]): Promise<OpenStateRow[]> {
  const { rows } = await db.query<{
    conversationid: string;
    providersessionid: string;
    state: OpenStateKind;
    since: Date;
    queueid: string;
    mediatype: string;
    userid: string;
  }>(
    prepared(
      `SELECT conversationid, providersessionid, state, since, queueid, mediatype, userid
         FROM cif_analytics_openstate
        WHERE lastactivity >= $1 AND ($2::text[] IS NULL OR queueid = ANY($2::text[]))
        ORDER BY since, conversationid`,
      [activeSince, queueIds ?? null],
    ),
  );
  return rows.map((r) => ({
    conversationId: r.conversationid,
    sessionId: r.providersessionid,
    state: r.state,
    since: r.since,
    queueId: r.queueid,
    mediaType: r.mediatype,
    userId: r.userid,
  }));
}

/** The timeline version of each of `userIds` that has one (cif_analytics_agentversion). */
export async function agentVersions(db: Queryable, userIds: readonly string[]): Promise<Map<string, string>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await db.query<{ userid: string; version: string }>(
    prepared("SELECT userid, version::text AS version FROM cif_analytics_agentversion WHERE userid = ANY($1::text[])", [userIds]),
  );
  return new Map(rows.map((r) => [r.userid, r.version]));
}
