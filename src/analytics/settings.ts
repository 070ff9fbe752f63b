/**
 * The analytics settings from the configuration: service-level goals per queue, whether
 * abandons count against the service level, and where direction is read from.
 */
import type { Config } from "../config/config.js";
import { columnOf, tableByLogicalName } from "../model/tables.js";
import type { DeriveSettings, ServiceLevel } from "./derive.js";
import type { DirectionSource } from "./store/refresh-store.js";

export interface AnalyticsSettings extends DeriveSettings {
  direction: DirectionSource;
  refreshMs: number;
  refreshBatch: number;
  /** An agent or session with no event for this long is closed at its last event. */
  agentIdleCloseMs: number;
  /** Agent events replayed before and after a users query's interval. */
  agentLookbackMs: number;
}

export function analyticsSettings(config: Config): AnalyticsSettings {
  const [table, column] = config.ANALYTICS_DIRECTION_COLUMN.split(".") as [DirectionSource["table"], string];
  const def = columnOf(tableByLogicalName(table), column); // throws on a column that does not exist
  if (def.type !== "string" && def.type !== "memo") {
    throw new Error(`ANALYTICS_DIRECTION_COLUMN: ${table}.${column} is not a text column`);
  }
  const queues: Record<string, ServiceLevel> = config.ANALYTICS_QUEUE_SERVICE_LEVELS;
  const fallback: ServiceLevel = config.ANALYTICS_SERVICE_LEVEL;
  return {
    serviceLevelOf: (queueId) => queues[queueId] ?? fallback,
    serviceLevelCountsAbandons: config.ANALYTICS_SERVICE_LEVEL_ABANDONS === "include",
    direction: { table, column },
    refreshMs: config.ANALYTICS_REFRESH_MS,
    refreshBatch: config.ANALYTICS_REFRESH_BATCH,
    agentIdleCloseMs: config.ANALYTICS_AGENT_IDLE_MINUTES * 60_000,
    // Never shorter than the idle close, so a sign-out by inactivity is always seen.
    agentLookbackMs: Math.max(config.ANALYTICS_AGENT_LOOKBACK_HOURS * 3_600_000, config.ANALYTICS_AGENT_IDLE_MINUTES * 60_000),
  };
}
