/** The OpenAPI paths of the operations, from their one declaration each. */
import { DATAVERSE_NAMESPACE } from "../model/properties.js";
import { WEB_API_TABLES } from "../model/tables.js";
import { errorResponse, versionParam } from "../odata/openapi-entity-sets.js";
import type { JsonSchema } from "./action.js";
import type { Operations } from "./index.js";

export { errorResponse };

export function operationPaths(operations: Operations): Record<string, JsonSchema> {
  const paths: Record<string, JsonSchema> = {};
  for (const definition of operations.definitions) {
    const method = definition.kind === "Function" ? "get" : "post";
    const describe = (tags: string[], openApi: ReturnType<typeof definition.openApi>) => ({
      [method]: {
        tags,
        summary: definition.summary,
        ...(definition.description ? { description: definition.description } : {}),
        parameters: [versionParam],
        ...(openApi.requestBody ? { requestBody: openApi.requestBody } : {}),
        responses: openApi.responses,
      },
    });
    if (definition.binding === "unbound") {
      paths[`/api/data/{version}/${definition.name}`] = describe([definition.kind === "Function" ? "odata" : "logging actions"], definition.openApi());
    } else {
      for (const table of WEB_API_TABLES) {
        paths[`/api/data/{version}/${table.entitySetName}/${DATAVERSE_NAMESPACE}.${definition.name}`] = describe(
          [table.entitySetName],
          definition.openApi(table),
        );
      }
    }
  }
  return paths;
}
