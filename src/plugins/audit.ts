/**
 * The audit log (issue 12) as an observation subscriber: every request under /api/, and
 * every call of the built-in issuer's token endpoint, gets a RequestAudit
 * (src/audit/request-audit.ts), which the identity plugin hands to the request's record
 * operations, so that a write commits its Audit record with it; the
 * rest is written within AUDIT_FLUSH_MS. AUDIT_LOG=off subscribes nothing.
 */
import fp from "fastify-plugin";
import { EXPORT_KINDS } from "../analytics/jobs/kinds.js";
import pg from "pg";
import { AuditLog } from "../audit/audit-log.js";
import { Forwarder } from "../audit/forwarder.js";
import { Retention } from "../audit/retention.js";
import { poolOptions } from "../db/database.js";
import type { RequestAudit } from "../audit/request-audit.js";
import { ignoreObservations } from "../observe/observation.js";
import { parseODataRequest } from "../service/pipeline/parse.js";
import { planRequest } from "../service/pipeline/plan.js";
import { TOKEN_OPERATION, TOKEN_ROUTE, isApiRequest, isTokenRequest, organizationPrefixOf, requestPlace } from "./identity.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Undefined with AUDIT_LOG=off. */
    auditLog?: AuditLog;
    logForwarder?: Forwarder;
    logRetention?: Retention;
  }
  interface FastifyRequest {
    /** The request's audit, for requests under /api/ while the audit log is on. */
    audit?: RequestAudit;
  }
}

/** Stable operation names of the analytics routes (src/routes/analytics.ts). */
const ANALYTICS_OPERATIONS: Record<string, string> = {
  "POST /api/v2/analytics/conversations/aggregates/query": "analytics.conversations.aggregates.Query",
  "POST /api/v2/analytics/conversations/details/query": "analytics.conversations.details.Query",
  "GET /api/v2/analytics/conversations/details": "analytics.conversations.details.Get",
  "GET /api/v2/analytics/conversations/:conversationId/details": "analytics.conversations.details.GetOne",
  "POST /api/v2/analytics/users/details/query": "analytics.users.details.Query",
  "POST /api/v2/analytics/users/aggregates/query": "analytics.users.aggregates.Query",
  "POST /api/v2/analytics/queues/observations/query": "analytics.queues.observations.Query",
  "GET /api/v2/analytics/queues/observations/stream": "analytics.queues.observations.Stream",
  // Export jobs (src/routes/analytics-jobs.ts), one set per kind.
  ...Object.fromEntries(
    Object.keys(EXPORT_KINDS).flatMap((kind) => {
      const base = `/api/v2/analytics/${kind}/details/jobs`;
      const name = `analytics.${kind}.details.jobs`;
      return [
        [`POST ${base}`, `${name}.Submit`],
        [`GET ${base}/availability`, `${name}.Availability`],
        [`GET ${base}/:jobId`, `${name}.Get`],
        [`GET ${base}/:jobId/results`, `${name}.Results`],
        [`DELETE ${base}/:jobId`, `${name}.Delete`],
      ];
    }),
  ),
};

const ODATA_PATH = /^\/api\/data\/v9\.\d+\/(.*)$/;

export const auditPlugin = fp(
  async (app) => {
    const { config } = app;
    app.decorateRequest("audit", undefined);
    if (config.AUDIT_LOG === "off") return;

    const auditLog = new AuditLog({
      resourceIdTemplate: config.AUDIT_RESOURCE_ID,
      organization: { id: config.ORGANIZATION_ID, name: "default" },
      flushMs: config.AUDIT_FLUSH_MS,
      maxBuffered: config.AUDIT_MAX_BUFFERED,
      log: app.log,
      nameOf: (method, path, route) => operationNameOf(app.operations, method, path, route),
      // Asked each time: the directory keeps the pools open, and closes idle ones.
      poolOf: async (organizationId) => {
        const { organizations } = app.identity;
        const organization = await organizations.byId(organizationId);
        if (!organization) throw new Error(`no organisation ${organizationId}`);
        return (await organizations.databaseOf(organization)).pool;
      },
    });
    app.decorate("auditLog", auditLog);

    // Forwarding holds a control connection while a destination stores a batch: a pool of
    // its own, opened on first use, so a slow destination never takes the requests' connections.
    let forwardingPool: pg.Pool | undefined;
    const forwarder = new Forwarder({
      resourceIdTemplate: config.AUDIT_RESOURCE_ID,
      control: () => app.db.pool,
      forwardingPool: () => {
        if (!forwardingPool) {
          forwardingPool = new pg.Pool(poolOptions(app.db.url, { ...config, DB_POOL_SIZE: 4 }));
          // As the main pool: an idle connection the server closes is reported, not fatal.
          forwardingPool.on("error", (error) => app.db.outage.failed(error));
        }
        return forwardingPool;
      },
      poolOf: (organizationId) => auditLog.poolOf(organizationId),
      emit: (organizationId, record) => auditLog.append(organizationId, record),
      intervalMs: config.AUDIT_FORWARD_INTERVAL_MS,
      batchSize: config.AUDIT_FORWARD_BATCH,
      log: app.log,
    });
    app.decorate("logForwarder", forwarder);

    const retention = new Retention({
      resourceIdTemplate: config.AUDIT_RESOURCE_ID,
      organizations: async () => (await app.identity.organizations.list()).map((o) => o.id),
      poolOf: (organizationId) => auditLog.poolOf(organizationId),
      emit: (organizationId, record) => auditLog.append(organizationId, record),
      retentionDays: config.AUDIT_RETENTION_DAYS,
      intervalMs: config.AUDIT_RETENTION_INTERVAL_MINUTES * 60_000,
      batchSize: config.AUDIT_RETENTION_BATCH,
      // About a million rows per table per run; a bigger backlog goes over the next runs.
      maxBatches: Math.max(1, Math.ceil(1_000_000 / config.AUDIT_RETENTION_BATCH)),
      log: app.log,
    });
    app.decorate("logRetention", retention);
    app.addHook("onReady", async () => {
      forwarder.start();
      retention.start();
    });

    app.observers.push((request) => {
      const token = isTokenRequest(request);
      if (!token && !isApiRequest(request)) return ignoreObservations;
      const place = requestPlace(request, config.PUBLIC_URL);
      const prefix = organizationPrefixOf(request) ?? "";
      // A token request's query string is never logged: a careless client may put its secret there.
      const url = token ? request.url.split("?")[0]! : request.url;
      const audit = auditLog.begin({
        method: request.method,
        url: `${prefix}${url}`,
        uri: `${place.base}${prefix}${url}`,
        base: `${place.base}${prefix}${request.url.replace(/^(\/api\/data\/v9\.\d+\/).*$/, "$1")}`,
        userAgent: request.headers["user-agent"],
        origin: request.headers.origin,
        callerIpAddress: request.ip,
        requestId: request.id,
        route: request.routeOptions.url,
      });
      request.audit = audit;
      return audit.observe;
    });

    // After the requests have drained (graceful close), what is buffered is written.
    app.addHook("onClose", async () => {
      await Promise.all([forwarder.stop(), retention.stop()]);
      await auditLog.close();
      await forwardingPool?.end();
    });
  },
  { name: "audit", dependencies: ["observation", "odata-service", "identity"] },
);

/**
 * A stable name for a call refused before it was planned (401, 404): the name its plan
 * would have had (`msdyn_kpieventsdata.Create`), else the method and the route.
 */
function operationNameOf(
  operations: Parameters<typeof parseODataRequest>[1],
  method: string,
  path: string,
  route: string | undefined,
): string {
  if (route === TOKEN_ROUTE) return TOKEN_OPERATION;
  const analytics = route === undefined ? undefined : ANALYTICS_OPERATIONS[`${method} ${route}`];
  if (analytics) return analytics;
  const odata = ODATA_PATH.exec(path.replace(/^\/org\/[^/]+/, ""));
  if (odata) {
    try {
      const request = { method, target: odata[1]!, headers: {}, root: "" };
      return planRequest(parseODataRequest(request, operations), request).operationName;
    } catch {
      // Not a path the pipeline would plan: named by method and path below.
    }
  }
  return `${method} ${route ?? path}`;
}
