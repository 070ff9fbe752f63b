/**
 * Export jobs' background part (issue 15): the queue and its workers (src/analytics/jobs/),
 * started when the app is ready (resuming the jobs a stopped server left) and stopped when
 * it closes (running jobs stop at their next page and resume on the next start). Each job
 * is told to the audit log as WorkflowEvents, `AnalyticsExport.WorkflowStarted` /
 * `AnalyticsExport.WorkflowCompleted`, as the log retention tells its runs.
 */
import fp from "fastify-plugin";
import { randomUUID } from "node:crypto";
import { workflowEvent } from "../audit/api-event.js";
import { ExportJobs } from "../analytics/jobs/service.js";
import type { JobRow } from "../analytics/jobs/store.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Undefined with ANALYTICS=off. */
    analyticsJobs?: ExportJobs;
  }
}

export const analyticsJobsPlugin = fp(
  async (app) => {
    const analytics = app.analytics;
    if (!analytics) return;
    const { config } = app;
    const tell = (organizationId: string, job: JobRow, phase: "Started" | "Completed") => {
      const log = app.auditLog;
      if (!log) return;
      const failed = job.state === "FAILED" || job.state === "CANCELLED";
      const resultType = phase === "Started" ? "Running" : failed ? "Failure" : "Successful";
      log.append(
        organizationId,
        workflowEvent(
          {
            eventId: randomUUID(),
            operationType: "AnalyticsExport",
            scope: "Workflow",
            phase,
            resultType,
            workflowJobId: job.id,
            organizationId,
            submitted: job.submittedOn,
            started: job.startedOn ?? new Date(),
            ...(phase === "Completed" && { ended: job.completedOn ?? new Date() }),
            workflow: {
              workflowSubmissionKind: "OnDemand",
              workflowType: "full",
              tasksCount: 1,
              workflowStatus: resultType === "Running" ? "Running" : resultType,
              ...(job.submittedBy && { submittedBy: job.submittedBy }),
            },
            identifier: job.kind,
            friendlyName: `Export of ${job.kind} details`,
            ...(job.state === "FAILED" && { error: job.errorMessage ?? "failed" }),
            ...(job.state === "CANCELLED" && { error: "cancelled on request" }),
            additionalInfo: { state: job.state, rowsWritten: job.rowsWritten, rowsExpected: job.rowsExpected },
          },
          { resourceIdTemplate: config.AUDIT_RESOURCE_ID },
        ),
      );
    };
    const jobs = new ExportJobs({
      settings: analytics.settings,
      queueUrl: () => app.db.url,
      concurrency: config.ANALYTICS_JOB_CONCURRENCY,
      pollMs: config.ANALYTICS_JOB_POLL_MS,
      page: config.ANALYTICS_JOB_PAGE,
      pauseMs: config.ANALYTICS_JOB_PAUSE_MS,
      expirySeconds: config.ANALYTICS_JOB_EXPIRY_SECONDS,
      poolOf: async (organizationId) => {
        const organization = await app.identity.organizations.byId(organizationId);
        return organization && (await app.identity.organizations.databaseOf(organization)).pool;
      },
      events: {
        started: (organizationId, job) => tell(organizationId, job, "Started"),
        finished: (organizationId, job) => tell(organizationId, job, "Completed"),
      },
      log: app.log,
    });
    app.decorate("analyticsJobs", jobs);
    app.addHook("onReady", async () => jobs.start());
    // Registered after the audit plugin, so closed before it: the last WorkflowEvents are flushed.
    app.addHook("onClose", async () => jobs.stop());
  },
  { name: "analytics-jobs", dependencies: ["database", "identity", "analytics"] },
);
