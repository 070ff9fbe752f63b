/**
 * The analytics queries end to end: parse → plan → SQL → execute → respond, over one
 * organisation's database.
 */
import type pg from "pg";
import { queueObservations, usersAggregates, usersDetails } from "./agent-service.js";
import { deriveConversation } from "./derive.js";
import { aggregateDimension } from "./dimensions.js";
import { analyticsBadRequest, analyticsNotFound } from "./errors.js";
import { idList, parseAggregationQuery, parseDetailsQuery } from "./parse.js";
import { planAggregates } from "./plan.js";
import { aggregatesResponse, conversationDetail } from "./respond.js";
import type { AnalyticsSettings } from "./settings.js";
import { aggregatesSql, detailsSql } from "./sql.js";
import { loadTrees } from "./store/refresh-store.js";

export const MAX_DETAIL_IDS = 100;

export class AnalyticsService {
  constructor(private readonly settings: AnalyticsSettings) {}

  async aggregates(pool: pg.Pool, body: unknown) {
    const query = parseAggregationQuery(body);
    const plan = planAggregates(query, aggregateDimension);
    const statement = aggregatesSql(plan, aggregateDimension);
    const { rows } = await pool.query(statement);
    // The target of a group: its queue's, else the one queue the filter names, else the default.
    const filteredQueue =
      query.filter?.type === "and" || query.filter?.predicates.length === 1 ? singleQueue(query.filter) : undefined;
    const targetOf = (group: Record<string, string>) => this.settings.serviceLevelOf(group.queueId ?? filteredQueue ?? "").target;
    return aggregatesResponse(query, plan.boundaries, rows, targetOf);
  }

  async detailsQuery(pool: pg.Pool, body: unknown) {
    const query = parseDetailsQuery(body);
    const { page, count } = detailsSql(query);
    const [ids, total] = await Promise.all([pool.query<{ conversationid: string }>(page), pool.query<{ total: number }>(count)]);
    const conversations = await this.details(
      pool,
      ids.rows.map((r) => r.conversationid),
    );
    return { conversations, totalHits: total.rows[0]!.total };
  }

  async detailsOf(pool: pg.Pool, conversationId: string) {
    const [found] = await this.details(pool, [conversationId]);
    if (!found) throw analyticsNotFound(`No conversation with id ${conversationId.slice(0, 100)} was found.`);
    return found;
  }

  async detailsByIds(pool: pg.Pool, given: string | readonly string[] | undefined) {
    const ids = idList(given);
    if (ids.length === 0) throw analyticsBadRequest("id: give one or more conversation ids, comma-separated.", { field: "id" });
    if (ids.length > MAX_DETAIL_IDS) {
      throw analyticsBadRequest(`id: at most ${MAX_DETAIL_IDS} conversation ids per request (got ${ids.length}).`, {
        field: "id",
      });
    }
    return { conversations: await this.details(pool, ids) };
  }

  usersDetails(pool: pg.Pool, body: unknown) {
    return usersDetails(pool, body, this.settings);
  }

  usersAggregates(pool: pg.Pool, body: unknown) {
    return usersAggregates(pool, body, this.settings);
  }

  queueObservations(pool: pg.Pool, body: unknown) {
    return queueObservations(pool, body, this.settings);
  }

  /** Detail records in the order of `ids` (absent ones left out), derived from the stored trees. */
  private async details(pool: pg.Pool, ids: readonly string[]) {
    if (ids.length === 0) return [];
    const trees = await loadTrees(pool, ids, this.settings.direction);
    const byId = new Map(trees.map((t) => [t.conversation.conversationId, t]));
    return ids.flatMap((id) => {
      const tree = byId.get(id);
      return tree ? [conversationDetail(deriveConversation(tree, this.settings))] : [];
    });
  }
}

function singleQueue(filter: NonNullable<ReturnType<typeof parseAggregationQuery>["filter"]>): string | undefined {
  const queues = filter.predicates.filter((p) => p.kind === "dimension" && p.dimension === "queueId" && p.operator === "matches");
  return queues.length === 1 && filter.clauses.length === 0 ? (queues[0] as { value?: string }).value : undefined;
}
