import type { ActionHandler } from "../odata/request-handler.js";

export const bulkActions: Record<string, ActionHandler> = {};
