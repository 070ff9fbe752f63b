/**
 * The actions this service offers, by name: unbound ones under their own name, actions
 * bound to an entity set under `Microsoft.Dynamics.CRM.<name>`. Each runs through the
 * record operations, so the domain rules hold for them as for plain writes.
 */
import type { Config } from "../config.js";
import type { ActionHandler } from "../odata/request-handler.js";
import { createBulkActions } from "./bulk-actions.js";
import { loggingActions } from "./logging-actions.js";

export function createActions(config: Pick<Config, "BULK_MAX_TARGETS">): Map<string, ActionHandler> {
  return new Map<string, ActionHandler>([
    ...Object.entries(loggingActions),
    ...Object.entries(createBulkActions(config.BULK_MAX_TARGETS)),
  ]);
}
