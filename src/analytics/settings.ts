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
  };
}
