/**
 * Between plan and execute: the privileges a plan needs, checked against the caller's
 * before anything is read or written. Every entity-set request and every `$batch` part
 * passes here; actions declare their own (src/actions/).
 */
import type { Access } from "../../identity/access.js";
import type { PrivilegeNeed } from "../../model/privileges.js";
import type { TableDef } from "../../model/tables.js";
import { allLinks } from "../../odata/fetchxml.js";
import type { ExpandOption } from "../../odata/query-options.js";
import type { Plan } from "./plan.js";

const read = (table: TableDef): PrivilegeNeed => ({ verb: "Read", table });

/** Reading through `$expand` reads the expanded tables too. */
const expandedReads = (expand: readonly ExpandOption[]): PrivilegeNeed[] =>
  expand.map((option) => read(option.navigation.target));

export function privilegesOf(plan: Plan): PrivilegeNeed[] {
  const via = "via" in plan && plan.via ? [read(plan.via.table)] : [];
  switch (plan.op) {
    case "operation":
      return [...plan.definition.privileges(plan.table)];
    case "fetchxml":
      // A <link-entity> reads its table as $expand does.
      return [read(plan.table), ...allLinks(plan.fetch.root).map((link) => read(link.table))];
    case "count":
    case "aggregate":
    case "readProperty":
      return [read(plan.table)];
    case "query":
      return [read(plan.table), ...via, ...expandedReads(plan.query.expand)];
    case "related":
    case "retrieve":
      return [read(plan.table), ...via, ...expandedReads(plan.expand)];
    case "create":
      return [{ verb: "Create", table: plan.table }, ...via];
    case "upsert":
      // If-Match makes a PATCH an update only (a missing row is a 404): Write, as Dataverse
      // names it; If-None-Match: * a create only. Otherwise it may do either.
      if (plan.pre.ifMatch?.trim()) return [{ verb: "Write", table: plan.table }];
      if (plan.pre.ifNoneMatch?.trim() === "*") return [{ verb: "Create", table: plan.table }];
      return [
        { verb: "Create", table: plan.table },
        { verb: "Write", table: plan.table },
      ];
    case "writeProperty":
      return [{ verb: "Write", table: plan.table }];
    case "delete":
      return [{ verb: "Delete", table: plan.table }];
  }
}

export function authorize(plan: Plan, access: Access): void {
  access.require(privilegesOf(plan));
}
