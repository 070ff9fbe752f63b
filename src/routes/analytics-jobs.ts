/**
 * Genesys Cloud's async details jobs (issue 15) over our data, one set of paths per export
 * kind (src/analytics/jobs/kinds.ts): `/api/v2/analytics/<kind>/details/jobs…`. Analysts
 * and administrators only; a job is seen only in the organisation that submitted it
 * (another's job id answers 404); every answer and error in Genesys' shape.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { analyticsBadRequest } from "../analytics/errors.js";
import { EXPORT_KINDS } from "../analytics/jobs/kinds.js";
import { analyticsCaller } from "./analytics.js";
import { RESULTS_DEFAULT_PAGE_SIZE, RESULTS_MAX_PAGE_SIZE } from "../analytics/jobs/service.js";

const security = [{ bearer: [] }];

const STATE_RULES =
  "States: **QUEUED** (submitted, waiting for a worker) → **PENDING** (running: it takes a snapshot of the matching records, then writes them page by page) → " +
  "**FULFILLED** (every record written; results readable), or **FAILED** (`errorMessage` says why), or **CANCELLED** (DELETE while QUEUED or PENDING; partial results deleted). " +
  "A finished job (FULFILLED, FAILED, CANCELLED) has `completionDate` and `expirationDate` (completion + ANALYTICS_JOB_EXPIRY_SECONDS, default 24 h); at `expirationDate` it becomes **EXPIRED** and its results are deleted; " +
  "an EXPIRED job is answered for 7 more days, then not found (404). " +
  "Progress: `rowsWritten` of `rowsExpected` (the snapshot's size, absent until it is taken). A job survives a server restart: a running one resumes from its last written page.";

const JobId = z.object({ jobId: z.string().min(1).max(100).describe("The id POST …/jobs gave") });

export const analyticsJobsRoutes: FastifyPluginAsyncZod = async (app) => {
  const jobs = () => app.analyticsJobs!;

  for (const kind of Object.values(EXPORT_KINDS)) {
    const base = `/${kind.name}/details/jobs`;
    const tag = kind.name[0]!.toUpperCase() + kind.name.slice(1);

    app.post(
      base,
      {
        schema: {
          tags: ["analytics"],
          summary: `Submit an export job of ${kind.name} details (Genesys async details job)`,
          operationId: `Analytics.${tag}DetailsJobSubmit`,
          description:
            `Queues an extract of every ${kind.name} record the query matches, without the details query's 31-day bound on the interval; answers 202 with the \`jobId\`. ` +
            "The body is the details query's (interval, filters, order, orderBy; checked as that query checks it, a 400 naming the field), without `paging`, " +
            "with `limit` (most records to extract) and `startOfDayIntervalMatching` (accepted; records are matched by their start, as in the details query).\n\n" +
            STATE_RULES,
          security,
          body: z.record(z.string(), z.unknown()).describe(`A Genesys async ${kind.name} query`),
          response: { 202: z.object({ jobId: z.string() }) },
        },
      },
      async (request, reply) => {
        const caller = await analyticsCaller(app, request);
        const submitted = await jobs().submit(caller.pool, caller.organizationId, kind.name, request.body, caller.principalId);
        return reply.code(202).send(submitted);
      },
    );

    app.get(
      `${base}/availability`,
      {
        schema: {
          tags: ["analytics"],
          summary: "How far the derived data is complete (Genesys DataAvailabilityResponse)",
          operationId: `Analytics.${tag}DetailsJobsAvailability`,
          description:
            "`dataAvailabilityDate`: every write committed before it has been derived by the refresher (the time the oldest conversation still waiting to be re-derived was queued; now, when none waits). " +
            "A job over an interval that ends before it extracts complete data.",
          security,
        },
      },
      async (request) => jobs().availability((await analyticsCaller(app, request)).pool),
    );

    app.get(
      `${base}/:jobId`,
      {
        schema: {
          tags: ["analytics"],
          summary: "An export job's state and progress (Genesys AsyncQueryStatus)",
          operationId: `Analytics.${tag}DetailsJobStatus`,
          description: `\`{jobId, state, submissionDate, startDate?, completionDate?, expirationDate?, errorMessage?, rowsWritten, rowsExpected?}\`.\n\n${STATE_RULES}`,
          security,
          params: JobId,
        },
      },
      async (request) => jobs().status((await analyticsCaller(app, request)).pool, kind.name, request.params.jobId),
    );

    app.get(
      `${base}/:jobId/results`,
      {
        schema: {
          tags: ["analytics"],
          summary: "A page of a FULFILLED export job's results",
          operationId: `Analytics.${tag}DetailsJobResults`,
          description:
            `\`{${kind.resultsField}: [...], cursor?, dataAvailabilityDate}\` in the job's order; pass \`cursor\` back for the next page, until a page has no \`cursor\`. ` +
            `\`pageSize\` 1..${RESULTS_MAX_PAGE_SIZE}, default ${RESULTS_DEFAULT_PAGE_SIZE}. A job that is not FULFILLED answers 400 (its \`messageParams.state\` says what it is).`,
          security,
          params: JobId,
          querystring: z.object({
            cursor: z.string().max(200).optional().describe("The `cursor` of the previous page"),
            pageSize: z.string().max(10).optional().describe(`Records per page, 1..${RESULTS_MAX_PAGE_SIZE}`),
          }),
        },
      },
      async (request, reply) => {
        const { cursor, pageSize } = request.query;
        if (pageSize !== undefined && !/^\d+$/.test(pageSize)) {
          throw analyticsBadRequest(`pageSize: '${pageSize}' is not a whole number.`, { field: "pageSize" });
        }
        const size = pageSize === undefined ? undefined : Number(pageSize);
        const body = await jobs().results(
          (await analyticsCaller(app, request)).pool,
          kind.name,
          request.params.jobId,
          cursor,
          size,
        );
        return reply.type("application/json; charset=utf-8").send(body);
      },
    );

    app.delete(
      `${base}/:jobId`,
      {
        schema: {
          tags: ["analytics"],
          summary: "Cancel an export job, or discard a finished one's results",
          operationId: `Analytics.${tag}DetailsJobDelete`,
          description:
            "204. A QUEUED or PENDING job becomes CANCELLED (it stops at its next page; what it wrote is deleted); a FULFILLED, FAILED or CANCELLED one becomes EXPIRED at once (its results deleted); an EXPIRED one stays so.\n\n" +
            STATE_RULES,
          security,
          params: JobId,
        },
      },
      async (request, reply) => {
        const caller = await analyticsCaller(app, request);
        await jobs().cancel(caller.pool, caller.organizationId, kind.name, request.params.jobId);
        return reply.code(204).send();
      },
    );
  }
};
