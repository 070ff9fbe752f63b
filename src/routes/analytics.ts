/**
 * Genesys Cloud's Analytics API paths over CIF data (issue 14): conversation details and
 * aggregates. Analysts and administrators only; every answer and error in Genesys' shape.
 * Bodies are checked by the analytics parse stage (src/analytics/parse.ts), which names the
 * field at fault; the schemas here document them.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { AnalyticsError } from "../analytics/errors.js";
import { METRICS } from "../analytics/metrics.js";
import { AGGREGATE_DIMENSIONS } from "../analytics/dimensions.js";

const security = [{ bearer: [] }];

/** The caller's organisation database, once its role allows analytics. */
async function analyticsPool(app: Parameters<FastifyPluginAsyncZod>[0], request: FastifyRequest) {
  const identity = request.identity!;
  if (!identity.access.hasRole("Analyst") && !identity.access.hasRole("Administrator")) {
    throw new AnalyticsError(
      403,
      "missing.any.permissions",
      "The analytics API is for the Analyst and Administrator roles; this caller has neither (a channel provider writes its data but does not read analytics).",
      { field: "Authorization" },
    );
  }
  return (await app.identity.organizations.databaseOf(identity.organization)).pool;
}

const metricFormulas = METRICS.map((m) => `- **${m.name}** (${m.kind}): ${m.formula}. Emitted at ${m.emitted}.`).join("\n");
const dimensionList = AGGREGATE_DIMENSIONS.map(
  (d) => `- **${d.name}**: ${d.description}${d.rollup ? " (kept in the rollups)" : ""}`,
).join("\n");

export const analyticsRoutes: FastifyPluginAsyncZod = async (app) => {
  const services = () => app.analytics!;

  app.post(
    "/conversations/aggregates/query",
    {
      schema: {
        tags: ["analytics"],
        summary: "Conversation aggregates (Genesys ConversationAggregationQuery)",
        operationId: "Analytics.ConversationAggregatesQuery",
        description:
          "Metrics per bucket of `granularity` (PT15M, PT30M, PT1H, P1D, P7D, P1M; buckets in `timeZone`, aligned to the interval's start) and per group of `groupBy`. " +
          "Each metric value falls in the bucket of its emit time. n* metrics answer {count}; t* {max, min, count, sum} in ms; oServiceLevel {ratio, numerator, denominator, target}; oServiceTarget {target}. " +
          `At most 10,000 buckets × groups.\n\nMetrics:\n${metricFormulas}\n\nDimensions:\n${dimensionList}`,
        security,
        body: z
          .record(z.string(), z.unknown())
          .describe(
            "A Genesys ConversationAggregationQuery: interval, granularity?, timeZone?, groupBy?, filter?, metrics, views?, queryType?, sortMetric?, limit?",
          ),
      },
    },
    async (request) => services().service.aggregates(await analyticsPool(app, request), request.body),
  );

  app.post(
    "/conversations/details/query",
    {
      schema: {
        tags: ["analytics"],
        summary: "Conversation detail records (Genesys ConversationQuery)",
        operationId: "Analytics.ConversationDetailsQuery",
        description:
          "Conversations that started in `interval` (at most 31 days), with their participants (customer, acd, agent), sessions, metrics and segments; " +
          "`conversationFilters` (dimensions and metric ranges) and `segmentFilters` in Genesys' and/or grammar; `order`, `orderBy` (conversationStart, conversationEnd), " +
          "`paging` (pageSize 1..100, default 25; pageNumber from 1); `totalHits` counts every match.",
        security,
        body: z.record(z.string(), z.unknown()).describe("A Genesys ConversationQuery"),
      },
    },
    async (request) => services().service.detailsQuery(await analyticsPool(app, request), request.body),
  );

  app.get(
    "/conversations/details",
    {
      schema: {
        tags: ["analytics"],
        summary: "Detail records of up to 100 conversations by id",
        operationId: "Analytics.ConversationDetailsByIds",
        security,
        querystring: z.object({
          id: z
            .union([z.string(), z.array(z.string())])
            .optional()
            .describe("Conversation ids, comma-separated or repeated (at most 100)"),
        }),
      },
    },
    async (request) =>
      services().service.detailsByIds(
        await analyticsPool(app, request),
        Array.isArray(request.query.id) ? request.query.id.join(",") : request.query.id,
      ),
  );

  app.get(
    "/conversations/:conversationId/details",
    {
      schema: {
        tags: ["analytics"],
        summary: "One conversation's detail record",
        operationId: "Analytics.ConversationDetails",
        security,
        params: z.object({ conversationId: z.string().min(1).max(100) }),
      },
    },
    async (request) => services().service.detailsOf(await analyticsPool(app, request), request.params.conversationId),
  );
};
