/**
 * Stage 3, execute: runs a plan against the request's record operations and reads.
 * Every write goes through the record operations, where the domain rules live.
 */
import { rowScope } from "../../channel-analytics/provider-scope.js";
import type { Row } from "../../channel-analytics/store/record-store.js";
import { type Page, aggregateRows, countRows, expandRows, queryPage } from "../../channel-analytics/store/record-query.js";
import { isUuidColumn } from "../../model/tables.js";
import { ErrorCodes, badRequest } from "../../odata/errors.js";
import type { FilterExpr } from "../../odata/filter-parser.js";
import type { ExpandOption } from "../../odata/query-options.js";
import type { ODataResponse } from "../../odata/response.js";
import type { RequestContext } from "../odata-request.js";
import { type FetchResult, runFetchXml } from "../../channel-analytics/store/fetchxml-query.js";
import { propertyName } from "../../model/properties.js";
import type { Plan, Via } from "./plan.js";

export type Result =
  | { kind: "operation"; response: ODataResponse }
  | { kind: "count"; count: number }
  | { kind: "written"; row: Row; created: boolean }
  | { kind: "aggregated"; rows: Row[] }
  | { kind: "fetched"; result: FetchResult }
  | { kind: "page"; page: Page }
  | { kind: "entity"; row: Row; expanded: Array<{ option: ExpandOption; related: Row | Row[] | null }> }
  | { kind: "property"; row: Row }
  | { kind: "done" };

export async function executePlan(plan: Plan, context: RequestContext): Promise<Result> {
  const { records } = context;
  // A channel provider sees only its own conversation trees (src/channel-analytics/provider-scope.ts).
  const scope = rowScope(context.caller);
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
      return { kind: "count", count: await countRows(context.db, plan.table, scope) };
    case "create": {
      const body = plan.via
        ? boundToParent(plan.via, await records.retrieve(plan.via.table, plan.via.key), plan.body)
        : plan.body;
      return written(
        await records.create(plan.table, body, { keyOnly: !plan.shape.prefer.returnRepresentation, signal: context.signal }),
        true,
      );
    }
    case "upsert": {
      const { row, created } = await records.upsert(plan.table, plan.key, plan.body, plan.pre);
      return written(row, created);
    }
    case "delete": {
      const id = await records.remove(plan.table, plan.key, plan.pre);
      context.observe({ kind: "written", entitySet: plan.table.entitySetName, ids: [id] });
      return { kind: "done" };
    }
    case "fetchxml":
      return { kind: "fetched", result: await runFetchXml(context.db, plan.fetch, propertyName, scope) };
    case "aggregate":
      return { kind: "aggregated", rows: await aggregateRows(context.db, plan.table, plan.apply, plan.filter, scope) };
    case "query": {
      let { query } = plan;
      if (plan.via) {
        const related = relatedFilter(plan.via, await records.retrieve(plan.via.table, plan.via.key));
        if (!related)
          return { kind: "page", page: { rows: [], expanded: new Map(query.expand.map((e) => [e.navigation.name, []])) } };
        query = { ...query, filter: query.filter ? { kind: "and", left: related, right: query.filter } : related };
      }
      return { kind: "page", page: await queryPage(context.db, plan.table, query, plan.pageSize, scope) };
    }
    case "related": {
      const filter = relatedFilter(plan.via, await records.retrieve(plan.via.table, plan.via.key));
      if (!filter) return { kind: "done" };
      const query = { filter, orderBy: [], top: 1, count: false, expand: plan.expand, select: plan.select };
      const page = await queryPage(context.db, plan.table, query, 1, scope);
      const row = page.rows[0];
      if (!row) return { kind: "done" };
      return {
        kind: "entity",
        row,
        expanded: plan.expand.map((option) => ({ option, related: page.expanded.get(option.navigation.name)![0]! })),
      };
    }
    case "retrieve": {
      const row = await records.retrieve(plan.table, plan.key);
      const expanded = [];
      for (const option of plan.expand) {
        const [related] = await expandRows(context.db, [row], option, scope);
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

/** The target rows of a navigation from `row`: its link columns equal; undefined when the link is empty. */
function relatedFilter({ navigation }: Via, row: Row): FilterExpr | undefined {
  const values = navigation.columns.map((column) => row[column]);
  if (values.some((value) => value === null || value === undefined)) return undefined;
  const target = navigation.target;
  return navigation.targetColumns
    .map((name, i): FilterExpr => {
      const column = target.columns.find((c) => c.name === name)!;
      return {
        kind: "compare",
        op: "eq",
        left: { kind: "property", name, position: 0 },
        right: { kind: "literal", type: isUuidColumn(target, column) ? "guid" : "string", value: String(values[i]), position: 0 },
        position: 0,
      };
    })
    .reduce((left, right) => ({ kind: "and", left, right }));
}

/** A new child's body, its link columns set to the parent's keys; a body naming another parent is refused. */
function boundToParent({ navigation, table }: Via, parent: Row, body: unknown): unknown {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return body;
  const bound: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  navigation.targetColumns.forEach((name, i) => {
    const value = parent[navigation.columns[i]!];
    const given = bound[name];
    if (
      given !== undefined &&
      given !== null &&
      (typeof given !== "string" || given.toLowerCase() !== String(value).toLowerCase())
    ) {
      throw badRequest(
        `'${name}' is ${JSON.stringify(given)} in the body, but the ${table.logicalName} in the URL has ${String(value)}; ` +
          `leave it out when creating through ${navigation.name}.`,
        ErrorCodes.invalidArgument,
      );
    }
    bound[name] = value;
  });
  return bound;
}
