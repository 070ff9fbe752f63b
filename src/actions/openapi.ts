/** The OpenAPI paths of the operations, from their one declaration each. */
import { DATAVERSE_NAMESPACE } from "../model/properties.js";
import { WEB_API_TABLES } from "../model/tables.js";
import { versionParam } from "../odata/openapi-entity-sets.js";
import type { JsonSchema, OperationDefinition } from "./action.js";

export function operationPaths(definitions: readonly OperationDefinition[]): Record<string, JsonSchema> {
  const paths: Record<string, JsonSchema> = {};
  for (const definition of definitions) {
    const method = definition.kind === "Function" ? "get" : "post";
    const describe = (tags: string[], openApi: ReturnType<typeof definition.openApi>, operationId: string) => ({
      [method]: {
        tags,
        operationId,
        summary: definition.summary,
        ...(definition.description ? { description: definition.description } : {}),
        parameters: [versionParam],
        ...(openApi.requestBody ? { requestBody: openApi.requestBody } : {}),
        responses: openApi.responses,
      },
    });
    if (definition.binding === "unbound") {
      paths[`/api/data/{version}/${definition.name}`] = describe(
        [definition.kind === "Function" ? "odata" : "logging actions"],
        definition.openApi(),
        definition.name,
      );
    } else {
      // The audit log's tables take no action (they are read-only).
      for (const table of WEB_API_TABLES.filter((t) => !(t.readOnly && definition.kind === "Action"))) {
        paths[`/api/data/{version}/${table.entitySetName}/${DATAVERSE_NAMESPACE}.${definition.name}`] = describe(
          [table.entitySetName],
          definition.openApi(table),
          `${table.entitySetName}.${definition.name}`,
        );
      }
    }
  }
  return paths;
}
