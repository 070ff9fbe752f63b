/** The methods a path under /api/data/v9.x/ answers (HEAD wherever GET), for OPTIONS and 405s. */
import type { Operations } from "../actions/index.js";
import { parseODataRequest } from "./pipeline/parse.js";

export function allowedMethods(path: string, operations: Operations): string[] {
  if (path === "" || path === "$metadata") return ["GET", "HEAD"];
  if (path === "$batch") return ["POST"];
  const parsed = parseODataRequest({ method: "OPTIONS", target: path, headers: {}, root: "" }, operations);
  if (parsed.kind === "operation") {
    if (parsed.table?.readOnly && parsed.definition.kind === "Action") return ["GET", "HEAD"];
    return parsed.definition.kind === "Function" ? ["GET", "HEAD"] : ["POST"];
  }
  const { table, key, property, count, navigation } = parsed.resource;
  if (table.readOnly) return ["GET", "HEAD"];
  if (count) return ["GET", "HEAD"];
  if (!key) return ["GET", "HEAD", "POST"];
  if (property) return ["GET", "HEAD", "PUT", "DELETE"];
  if (navigation) return navigation.collection ? ["GET", "HEAD", "POST"] : ["GET", "HEAD"];
  return ["GET", "HEAD", "PATCH", "DELETE"];
}
