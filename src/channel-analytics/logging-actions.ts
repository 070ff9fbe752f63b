import type { ActionHandler } from "../odata/request-handler.js";

export const loggingActions: Record<string, ActionHandler> = {};
