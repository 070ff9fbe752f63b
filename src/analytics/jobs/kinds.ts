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
import { type DetailsQuery, parseDetailsQuery } from "../parse.js";
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
  keysSql(query: Q): Statement;
  /** The records of `keys`, in their order; undefined for a key whose record no longer exists. */
  render(db: Queryable, keys: readonly string[], settings: AnalyticsSettings): Promise<unknown[]>;
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
export const conversationsKind: ExportKind<ConversationJobQuery> = {
  name: "conversations",
  resultsField: "conversations",
  parse(body) {
    if (!isRecord(body)) throw analyticsBadRequest("(body): a job is submitted as a JSON object.", { field: "(body)" });
    const { limit, startOfDayIntervalMatching, paging, ...rest } = body;
    if (paging !== undefined) {
      throw analyticsBadRequest(
        "paging: a job's results are paged by GET …/jobs/{jobId}/results?cursor=&pageSize=, not by the query.",
        { field: "paging" },
      );
    }
    if (limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > ALL)) {
      throw analyticsBadRequest("limit: a positive whole number of conversations.", { field: "limit" });
    }
    if (startOfDayIntervalMatching !== undefined && typeof startOfDayIntervalMatching !== "boolean") {
      throw analyticsBadRequest("startOfDayIntervalMatching: true or false.", { field: "startOfDayIntervalMatching" });
    }
    // The details query bounds its interval to 31 days; a job does not. Its interval is
    // checked here, and the rest of the body by the details query's own parse stage.
    if (typeof rest.interval !== "string") {
      throw analyticsBadRequest("interval: give the interval as start/end ISO-8601 instants.", { field: "interval" });
    }
    const interval = parseInterval(rest.interval);
    const oneDay = `${interval.start.toISOString()}/${new Date(interval.start.getTime() + 1).toISOString()}`;
    const query = { ...parseDetailsQuery({ ...rest, interval: oneDay }), interval };
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

/** Every kind, by name. */
export const EXPORT_KINDS: Readonly<Record<string, ExportKind>> = {
  [conversationsKind.name]: conversationsKind,
};
