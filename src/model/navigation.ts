/**
 * Navigation properties, derived from the parent links of the table definitions: each
 * link is a single-valued property on the child (`msdyn_session`) and a collection on the
 * parent (`msdyn_kpievents`). $expand and $metadata both use these.
 */
import { TABLES, type TableDef, tableByLogicalName } from "./tables.js";

export interface NavigationProperty {
  name: string;
  /** The table on the other side. */
  target: TableDef;
  collection: boolean;
  /** Columns of this table, paired with `targetColumns` of the target. */
  columns: readonly string[];
  targetColumns: readonly string[];
  /** The name of the same link seen from the target. */
  partner: string;
}

const cache = new Map<string, NavigationProperty[]>();

export function navigationProperties(table: TableDef): NavigationProperty[] {
  let list = cache.get(table.logicalName);
  if (!list) {
    const toParents = table.parents.map((link) => ({
      name: link.name,
      target: tableByLogicalName(link.parentTable),
      collection: false,
      columns: link.columns,
      targetColumns: link.parentColumns,
      partner: link.childCollectionName,
    }));
    // Internal tables are no navigation targets: they are not in the Web API.
    const toChildren = TABLES.filter((child) => child.webApi).flatMap((child) =>
      child.parents
        .filter((link) => link.parentTable === table.logicalName)
        .map((link) => ({
          name: link.childCollectionName,
          target: child,
          collection: true,
          columns: link.parentColumns,
          targetColumns: link.columns,
          partner: link.name,
        })),
    );
    list = [...toParents, ...toChildren];
    cache.set(table.logicalName, list);
  }
  return list;
}

export const navigationByName = (table: TableDef, name: string) => navigationProperties(table).find((n) => n.name === name);
