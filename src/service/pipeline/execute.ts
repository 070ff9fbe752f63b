/**
 * Stage 3, execute: runs a plan against the request's record operations and reads.
 * Every write goes through the record operations, where the domain rules live.
 */
import type { Row } from "../../channel-analytics/store/record-store.js";
import { type Page, aggregateRows, countRows, expandRows, queryPage } from "../../channel-analytics/store/record-query.js";
import type { ExpandOption } from "../../odata/query-options.js";
import type { ODataResponse } from "../../odata/response.js";
import type { RequestContext } from "../odata-request.js";
import type { Plan } from "./plan.js";

export type Result =
  | { kind: "operation"; response: ODataResponse }
  | { kind: "count"; count: number }
  | { kind: "written"; row: Row; created: boolean }
  | { kind: "aggregated"; rows: Row[] }
  | { kind: "page"; page: Page }
  | { kind: "entity"; row: Row; expanded: Array<{ option: ExpandOption; related: Row | Row[] | null }> }
  | { kind: "property"; row: Row }
  | { kind: "done" };

export async function executePlan(plan: Plan, context: RequestContext): Promise<Result> {
  const { records } = context;
  const written = (row: Row, created: boolean): Result => {
    context.observe({ kind: "written", entitySet: plan.table!.entitySetName, ids: [String(row[plan.table!.primaryKey])] });
    return { kind: "written", row, created };
  };
  switch (plan.op) {
    case "operation": {
      const response = await plan.definition.handler({ body: plan.body, root: plan.shape.root, table: plan.table, context });
      return { kind: "operation", response };
    }
    case "count":
      return { kind: "count", count: await countRows(context.db, plan.table) };
    case "create":
      return written(await records.create(plan.table, plan.body, { keyOnly: !plan.shape.prefer.returnRepresentation }), true);
    case "upsert": {
      const { row, created } = await records.upsert(plan.table, plan.key, plan.body, plan.pre);
      return written(row, created);
    }
    case "delete": {
      const id = await records.remove(plan.table, plan.key, plan.pre);
      context.observe({ kind: "written", entitySet: plan.table.entitySetName, ids: [id] });
      return { kind: "done" };
    }
    case "aggregate":
      return { kind: "aggregated", rows: await aggregateRows(context.db, plan.table, plan.apply, plan.filter) };
    case "query":
      return { kind: "page", page: await queryPage(context.db, plan.table, plan.query, plan.pageSize) };
    case "retrieve": {
      const row = await records.retrieve(plan.table, plan.key);
      const expanded = [];
      for (const option of plan.expand) {
        const [related] = await expandRows(context.db, [row], option);
        expanded.push({ option, related: related ?? null });
      }
      return { kind: "entity", row, expanded };
    }
    case "readProperty":
      return { kind: "property", row: await records.retrieve(plan.table, plan.key) };
    case "writeProperty": {
      const row = await records.setProperty(plan.table, plan.key, plan.property, plan.value);
      return written(row, false);
    }
  }
}
