/**
 * The analytics API's background part (issue 14): the refresher that keeps every open
 * organisation database's metrics and rollups current, started when the app is ready and
 * stopped (its batch finished) when it closes; and the observation streams, ended when it
 * closes. ANALYTICS=off starts nothing.
 */
import fp from "fastify-plugin";
import type pg from "pg";
import { ObservationStreams } from "../analytics/observation-stream.js";
import { Refresher, refreshAll } from "../analytics/refresher.js";
import { AnalyticsService } from "../analytics/service.js";
import { type AnalyticsSettings, analyticsSettings } from "../analytics/settings.js";

export interface AnalyticsServices {
  settings: AnalyticsSettings;
  service: AnalyticsService;
  refresher: Refresher;
  /** The Server-Sent Events streams of queue observations. */
  streams: ObservationStreams;
  /** Re-derives everything changed so far in `pool`'s database (tests; the benchmark's backfill). */
  refreshNow(pool: pg.Pool): Promise<number>;
}

declare module "fastify" {
  interface FastifyInstance {
    /** Undefined with ANALYTICS=off. */
    analytics?: AnalyticsServices;
  }
}

export const analyticsPlugin = fp(
  async (app) => {
    if (app.config.ANALYTICS === "off") return;
    const settings = analyticsSettings(app.config);
    const refresher = new Refresher(() => app.identity.organizations.openPools(), settings, app.log);
    const streams = new ObservationStreams(settings, app.log);
    app.decorate("analytics", {
      settings,
      service: new AnalyticsService(settings),
      refresher,
      streams,
      refreshNow: (pool: pg.Pool) => refreshAll(pool, settings),
    });
    app.addHook("onReady", async () => refresher.start());
    // Before the server stops listening: an open stream would otherwise hold the close forever.
    app.addHook("preClose", async () => streams.close());
    app.addHook("onClose", async () => refresher.stop());
  },
  { name: "analytics", dependencies: ["database", "identity"] },
);
