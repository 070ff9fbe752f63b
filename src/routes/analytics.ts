/**
 * Genesys Cloud's Analytics API paths over CIF data: conversation details and aggregates
 * (issue 14); users details and aggregates, queue observations and their stream (issue 15). Analysts and administrators only; every answer and error in Genesys' shape.
 * Bodies are checked by the analytics parse stage (src/analytics/parse.ts), which names the
 * field at fault; the schemas here document them.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { AnalyticsError } from "../analytics/errors.js";
import { METRICS } from "../analytics/metrics.js";
import { AGGREGATE_DIMENSIONS } from "../analytics/dimensions.js";
import { OBSERVATION_METRICS, idList, parseObservationQuery } from "../analytics/parse.js";

const security = [{ bearer: [] }];

/** The caller's organisation, its database, and who it is, once its role allows analytics. */
export async function analyticsCaller(app: Parameters<FastifyPluginAsyncZod>[0], request: FastifyRequest) {
  const identity = request.identity!;
  if (!identity.access.hasRole("Analyst") && !identity.access.hasRole("Administrator")) {
    throw new AnalyticsError(
      403,
      "missing.any.permissions",
      "The analytics API is for the Analyst and Administrator roles; this caller has neither (a channel provider writes its data but does not read analytics).",
      { field: "Authorization" },
    );
  }
  const { pool } = await app.identity.organizations.databaseOf(identity.organization);
  return { pool, organizationId: identity.organization.id, principalId: identity.principalId };
}

const analyticsPool = async (app: Parameters<FastifyPluginAsyncZod>[0], request: FastifyRequest) =>
  (await analyticsCaller(app, request)).pool;

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
    async (request) => services().service.detailsByIds(await analyticsPool(app, request), request.query.id),
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
  app.post(
    "/users/details/query",
    {
      schema: {
        tags: ["analytics"],
        summary: "Agent timelines: presence and routing status (Genesys UserDetailsQuery)",
        operationId: "Analytics.UserDetailsQuery",
        description:
          "Each agent (a KPI event's msdyn_participantid) active in `interval` (at most 31 days), with `primaryPresence[]` (startTime, endTime, systemPresence, organizationPresenceId) " +
          'and `routingStatus[]` (startTime, endTime, routingStatus: OFF_QUEUE, IDLE, INTERACTING, NOT_RESPONDING, COMMUNICATING) replayed from their KPI events (README "Agent timelines"); ' +
          "a state still open has no endTime. `userFilters` (userId, at most 100 predicates), `presenceFilters` (systemPresence, organizationPresenceId) and `routingStatusFilters` (routingStatus) " +
          "keep the agents with a matching record in the interval; `order` by userId; `paging` (pageSize 1..100, default 25). An unknown state name is 400.",
        security,
        body: z.record(z.string(), z.unknown()).describe("A Genesys UserDetailsQuery"),
      },
    },
    async (request) => services().service.usersDetails(await analyticsPool(app, request), request.body),
  );

  app.post(
    "/users/aggregates/query",
    {
      schema: {
        tags: ["analytics"],
        summary: "Time per presence and routing status (Genesys UserAggregationQuery)",
        operationId: "Analytics.UserAggregatesQuery",
        description:
          "`tSystemPresence`, `tOrganizationPresence` and `tAgentRoutingStatus`: milliseconds in each state (the `qualifier`) per bucket of `granularity` in `timeZone`, " +
          'a state that spans buckets split across them and one still open counted until now; `groupBy: ["userId"]` or the sum over agents; `filter` of userId predicates (at most 100). ' +
          "Answers `{results: [{group, data: [{interval, metrics: [{metric, qualifier, stats: {sum}}]}]}]}`.",
        security,
        body: z.record(z.string(), z.unknown()).describe("A Genesys UserAggregationQuery"),
      },
    },
    async (request) => services().service.usersAggregates(await analyticsPool(app, request), request.body),
  );

  app.post(
    "/queues/observations/query",
    {
      schema: {
        tags: ["analytics"],
        summary: "What is happening in each queue now (Genesys QueueObservationQuery)",
        operationId: "Analytics.QueueObservationsQuery",
        description:
          "Per queue (and media type when the filter names one): `oWaiting` (sessions queued and not yet answered or abandoned), `oAlerting` (a notification with no response yet), " +
          "`oInteracting` (accepted and not closed), with `detailMetrics` listing each one's conversation and `observationDate` (when it entered the state, oldest first: the first oWaiting is the longest wait); " +
          "`oOnQueueUsers` per routing status qualifier (IDLE, INTERACTING, COMMUNICATING, NOT_RESPONDING), `oOffQueueUsers` and `oActiveUsers` over the signed-in agents who worked the queue's sessions in the last ANALYTICS_AGENT_LOOKBACK_HOURS. " +
          "A session or agent with no event for ANALYTICS_AGENT_IDLE_MINUTES is left out.",
        security,
        body: z
          .record(z.string(), z.unknown())
          .describe("A Genesys QueueObservationQuery: filter (queueId, mediaType), metrics, detailMetrics?"),
      },
    },
    async (request) => services().service.queueObservations(await analyticsPool(app, request), request.body),
  );

  app.get(
    "/queues/observations/stream",
    {
      schema: {
        tags: ["analytics"],
        summary: "Queue observations pushed as Server-Sent Events",
        operationId: "Analytics.QueueObservationsStream",
        description:
          "A `text/event-stream`: an `observations` event at once, then one whenever the observations of the named queues change, at most once a second; a `: keep-alive` comment every 15 s. " +
          "Each event's data is the observations query's answer for these queues with every metric and oWaiting's details. Authenticated like every call (send the bearer token; " +
          "a browser reads the stream with fetch, since EventSource cannot send headers).",
        security,
        querystring: z.object({
          queueId: z
            .union([z.string(), z.array(z.string())])
            .optional()
            .describe("Queue ids, comma-separated or repeated (none: every queue)"),
          mediaType: z
            .string()
            .max(40)
            .optional()
            .describe("Only sessions of this media type (voice, chat, message, email, ...)"),
        }),
        response: { 200: z.string().describe("text/event-stream") },
      },
    },
    async (request, reply) => {
      const pool = await analyticsPool(app, request);
      const queues = idList(request.query.queueId);
      const byQueue = queues.map((value) => ({ dimension: "queueId", value }));
      const media = request.query.mediaType ? [{ dimension: "mediaType", value: request.query.mediaType }] : [];
      const filter =
        media.length === 0
          ? queues.length > 0 && { type: "or", predicates: byQueue }
          : { type: "and", predicates: media, ...(queues.length > 0 && { clauses: [{ type: "or", predicates: byQueue }] }) };
      const body = { ...(filter && { filter }), metrics: [...OBSERVATION_METRICS], detailMetrics: ["oWaiting"] };
      parseObservationQuery(body); // a bad parameter is a 400 before the stream starts
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      res.write("retry: 2000\n\n");
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
      const unsubscribe = services().streams.subscribe(
        pool,
        body,
        (json) => res.write(`event: observations\ndata: ${json}\n\n`),
        () => res.end(),
      );
      res.once("close", () => {
        clearInterval(keepAlive);
        unsubscribe();
      });
    },
  );
};
