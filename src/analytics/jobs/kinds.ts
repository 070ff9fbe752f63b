/**
 * What an export job can extract: one kind per Genesys jobs path
 * (`/api/v2/analytics/<kind>/details/jobs`). A kind checks a submitted body (the parse stage
 * of its details query, so the same 400 names the same field), gives the SQL that lists
 * the keys to extract in their order (the job's snapshot), and renders a page of keys into
 * the records its results carry. The job machinery (store, runner, service) knows nothing
 * else of a kind, so another (users details) is one more entry in EXPORT_KINDS.
 */
import { deriveConversation } from "../derive.js";
import { analyticsBadRequest } from "../errors.js";
import { userDetailsOf } from "../agent-service.js";
import {
  type DetailsQuery,
  type UserDetailsQuery,
  matchedValues,
  keepsUser,
  parseDetailsQuery,
  parseUserDetailsQuery,
} from "../parse.js";
import { activeAgentsSql } from "../store/agent-store.js";
import { conversationDetail } from "../respond.js";
import type { AnalyticsSettings } from "../settings.js";
import { type Statement, detailsSql } from "../sql.js";
import { loadTrees } from "../store/refresh-store.js";
import { parseInterval } from "../time.js";
import type { Queryable } from "../../db/transactions.js";

export interface ExportKind<Q = unknown> {
  /** The path segment (`conversations`) and the job row's `kind`. */
  name: string;
  /** The results' array field (`conversations`, `userDetails`). */
  resultsField: string;
  /** Checks a submitted body; throws the Genesys-shaped 400 that names the field at fault. */
  parse(body: unknown): Q;
  /** A statement whose rows are `{key}` in the export's order: every record the job extracts. */
  keysSql(query: Q, settings: AnalyticsSettings): Statement;
  /** The records of `keys`, in their order; undefined for a key whose record no longer exists. */
  render(db: Queryable, keys: readonly string[], settings: AnalyticsSettings, query: Q): Promise<unknown[]>;
}

/** The largest `limit` a job takes, and the most rows one statement may list. */
const ALL = 2_147_483_647;

export interface ConversationJobQuery {
  query: DetailsQuery;
  limit?: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * POST /api/v2/analytics/conversations/details/jobs: Genesys' AsyncConversationQuery. The
 * details query's body, less `paging` (results are paged by cursor) and with no bound on the
 * interval's length, plus `limit` (most conversations to extract) and
 * `startOfDayIntervalMatching` (accepted; conversations are always matched by their start,
 * as the details query matches them).
 */
/**
 * The parts every job body shares: no `paging` (results are paged by cursor), `limit` (most
 * records to extract), `startOfDayIntervalMatching` (accepted; records are matched by their
 * start, as the details queries match them) and an interval with no bound on its length;
 * the rest of the body, with a one-millisecond interval, goes to the details query's own
 * parse stage, so its 400s name the same fields.
 */
function jobBody(body: unknown, what: string) {
  if (!isRecord(body)) throw analyticsBadRequest("(body): a job is submitted as a JSON object.", { field: "(body)" });
  const { limit, startOfDayIntervalMatching, paging, ...rest } = body;
  if (paging !== undefined) {
    throw analyticsBadRequest(
      "paging: a job's results are paged by GET …/jobs/{jobId}/results?cursor=&pageSize=, not by the query.",
      {
        field: "paging",
      },
    );
  }
  if (limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > ALL)) {
    throw analyticsBadRequest(`limit: a positive whole number of ${what}.`, { field: "limit" });
  }
  if (startOfDayIntervalMatching !== undefined && typeof startOfDayIntervalMatching !== "boolean") {
    throw analyticsBadRequest("startOfDayIntervalMatching: true or false.", { field: "startOfDayIntervalMatching" });
  }
  if (typeof rest.interval !== "string") {
    throw analyticsBadRequest("interval: give the interval as start/end ISO-8601 instants.", { field: "interval" });
  }
  const interval = parseInterval(rest.interval);
  const oneMillisecond = `${interval.start.toISOString()}/${new Date(interval.start.getTime() + 1).toISOString()}`;
  return { rest: { ...rest, interval: oneMillisecond }, interval, ...(limit !== undefined && { limit: limit }) };
}

/** POST /api/v2/analytics/conversations/details/jobs: Genesys' AsyncConversationQuery. */
export const conversationsKind: ExportKind<ConversationJobQuery> = {
  name: "conversations",
  resultsField: "conversations",
  parse(body) {
    const { rest, interval, limit } = jobBody(body, "conversations");
    const query = { ...parseDetailsQuery(rest), interval };
    return { query, ...(limit !== undefined && { limit }) };
  },
  keysSql({ query, limit }) {
    // The details query's own filter and order: its page statement, with the page as large as the limit.
    const { page } = detailsSql({ ...query, pageSize: limit ?? ALL, pageNumber: 1 });
    return { text: `SELECT conversationid AS key FROM (${page.text}) AS matched`, values: page.values };
  },
  async render(db, keys, settings) {
    const trees = await loadTrees(db, keys, settings.direction);
    const byId = new Map(trees.map((t) => [t.conversation.conversationId, t]));
    return keys.map((id) => {
      const tree = byId.get(id);
      return tree ? conversationDetail(deriveConversation(tree, settings)) : undefined;
    });
  },
};

export interface UserJobQuery {
  query: UserDetailsQuery;
  limit?: number;
}

/**
 * POST /api/v2/analytics/users/details/jobs: Genesys' AsyncUserDetailsQuery. The agents
 * active in the interval (or ANALYTICS_AGENT_LOOKBACK_HOURS before it), in userId order,
 * each with their presence and routing-status records as the users details query gives
 * them; the state filters are applied as each page is written (an agent they leave out
 * counts as done, like a conversation erased since the snapshot).
 */
export const usersKind: ExportKind<UserJobQuery> = {
  name: "users",
  resultsField: "userDetails",
  parse(body) {
    const { rest, interval, limit } = jobBody(body, "users");
    const query = { ...parseUserDetailsQuery(rest), interval };
    return { query, ...(limit !== undefined && { limit }) };
  },
  keysSql({ query, limit }, settings) {
    const agents = activeAgentsSql(
      new Date(query.interval.start.getTime() - settings.agentLookbackMs),
      query.interval.end,
      query.order === "desc" ? "desc" : "asc",
    );
    // The userIds the filters name narrow the list here; any other user filter is applied as pages are written.
    const named = query.userFilters.map((f) => matchedValues(f, "userId"));
    const only =
      named.every((v) => v !== undefined) && named.length > 0 ? named.reduce((a, b) => a.filter((u) => b.includes(u))) : null;
    const n = agents.values.length;
    return {
      text: `SELECT userid AS key FROM (${agents.text}) AS agents WHERE $${n + 1}::text[] IS NULL OR userid = ANY($${n + 1}::text[]) LIMIT $${n + 2}`,
      values: [...agents.values, only, limit ?? ALL],
    };
  },
  async render(db, keys, settings, { query }) {
    const kept = keys.filter((userId) => keepsUser(query.userFilters, userId));
    const records = new Map<string, unknown>();
    for await (const record of userDetailsOf(db, settings, kept, query)) records.set(record.userId, record);
    return keys.map((userId) => records.get(userId));
  },
};

/** Every kind, by name. */
export const EXPORT_KINDS: Readonly<Record<string, ExportKind>> = {
  [conversationsKind.name]: conversationsKind,
  [usersKind.name]: usersKind,
};
