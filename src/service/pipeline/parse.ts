/**
 * Stage 1, parse: the request line and headers as OData understands them. Pure: names
 * resolve against the table definitions and the operations, nothing else is read.
 */
import { parse as parseQueryString } from "node:querystring";
import type { OperationDefinition, Operations } from "../../actions/index.js";
import type { TableDef } from "../../model/tables.js";
import { type Preferences, parsePrefer } from "../../odata/prefer.js";
import { type RawQuery } from "../../odata/query-options.js";
import { type ResourcePath, parseResourcePath } from "../../odata/resource-path.js";
import type { ODataRequest } from "../odata-request.js";

interface Common {
  method: string;
  /** The query string as given (for next links). */
  search: string;
  query: RawQuery;
  prefer: Preferences;
}

export type ParsedRequest = Common &
  (
    | {
        kind: "operation";
        definition: OperationDefinition;
        /** The entity set of a bound operation. */
        table?: TableDef;
        /** As written in the path: `msdyn_LogAnalyticsEvent`, `Microsoft.Dynamics.CRM.CreateMultiple`. */
        name: string;
      }
    | { kind: "resource"; resource: ResourcePath }
  );

// Unbound (`msdyn_LogAnalyticsEvent`, `WhoAmI()`) or bound to a set (`set/Microsoft.Dynamics.CRM.CreateMultiple`).
const BOUND = /^([A-Za-z_]\w*)\/(Microsoft\.Dynamics\.CRM\.\w+)$/;
const UNBOUND = /^([A-Za-z_]\w*)(\(\))?$/;

export function parseODataRequest(request: ODataRequest, operations: Operations): ParsedRequest {
  const questionMark = request.target.indexOf("?");
  const path = questionMark < 0 ? request.target : request.target.slice(0, questionMark);
  const search = questionMark < 0 ? "" : request.target.slice(questionMark + 1);
  const common: Common = {
    method: request.method,
    search,
    query: parseQueryString(search),
    prefer: parsePrefer(request.headers.prefer),
  };

  const bound = BOUND.exec(path);
  if (bound) {
    const definition = operations.boundNamed(bound[2]!);
    if (definition) {
      return { ...common, kind: "operation", definition, name: bound[2]!, table: parseResourcePath(bound[1]!).table };
    }
  }
  const unbound = UNBOUND.exec(path);
  const definition = unbound ? operations.unboundNamed(unbound[1]!) : undefined;
  // `name()` is a function call; an action takes no parentheses.
  if (definition && (!unbound![2] || definition.kind === "Function")) {
    return { ...common, kind: "operation", definition, name: unbound![1]! };
  }
  return { ...common, kind: "resource", resource: parseResourcePath(path) };
}
