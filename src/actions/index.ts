/**
 * The operations this service offers, each declared once (./action.ts): unbound ones by
 * name, operations bound to an entity set under `Microsoft.Dynamics.CRM.<name>`. Dispatch,
 * `$metadata` and OpenAPI are generated from this list. Each runs through the record
 * operations, so the domain rules hold for them as for plain writes.
 */
import type { Config } from "../config/config.js";
import { DATAVERSE_NAMESPACE } from "../model/properties.js";
import { WEB_API_TABLES } from "../model/tables.js";
import type { CsdlExtensions, CsdlOperation } from "../odata/csdl.js";
import type { OperationDefinition } from "./action.js";
import { createBulkActions } from "./bulk-actions.js";
import { loggingActions } from "./logging-actions.js";
import { whoAmI } from "./who-am-i.js";

export type { OperationContext, OperationDefinition, OperationInput } from "./action.js";

export class Operations {
  private readonly unbound = new Map<string, OperationDefinition>();
  private readonly bound = new Map<string, OperationDefinition>();

  constructor(readonly definitions: readonly OperationDefinition[]) {
    for (const definition of definitions) {
      const byName = definition.binding === "unbound" ? this.unbound : this.bound;
      const name = definition.binding === "unbound" ? definition.name : `${DATAVERSE_NAMESPACE}.${definition.name}`;
      if (byName.has(name)) throw new Error(`Two operations are named ${name}`);
      byName.set(name, definition);
    }
  }

  /** `msdyn_LogAnalyticsEvent` or `WhoAmI`. */
  unboundNamed(name: string): OperationDefinition | undefined {
    return this.unbound.get(name);
  }

  /** `Microsoft.Dynamics.CRM.CreateMultiple`. */
  boundNamed(qualifiedName: string): OperationDefinition | undefined {
    return this.bound.get(qualifiedName);
  }

  /** Their `$metadata` declarations; bound ones once per entity set. */
  csdl(): CsdlExtensions {
    const operations: CsdlOperation[] = this.definitions.flatMap((d) => {
      const declaration = { kind: d.kind, name: d.name, returnType: d.returnType };
      if (d.binding === "unbound") return [{ ...declaration, parameters: d.parameters() }];
      return WEB_API_TABLES.map((table) => ({
        ...declaration,
        boundTo: `Collection(mscrm.${table.logicalName})`,
        parameters: d.parameters(table),
      }));
    });
    return { complexTypes: this.definitions.flatMap((d) => d.complexTypes ?? []), operations };
  }
}

export function createOperations(config: Pick<Config, "BULK_MAX_TARGETS">): Operations {
  return new Operations([whoAmI, ...loggingActions, ...createBulkActions(config.BULK_MAX_TARGETS)]);
}
