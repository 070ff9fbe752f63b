/**
 * Stage 4, respond: the result of a plan as an OData response: status, headers
 * (OData-EntityId, ETag, Preference-Applied) and the serialised body. Pure.
 */
import type { Row } from "../../channel-analytics/store/record-store.js";
import { propertyName } from "../../model/properties.js";
import type { ColumnDef, TableDef } from "../../model/tables.js";
import { TOTAL_RECORD_COUNT, TOTAL_RECORD_COUNT_LIMIT_EXCEEDED, wantsAnnotation } from "../../odata/annotations.js";
import { etagListIncludes, etagOf } from "../../odata/etag.js";
import type { ExpandOption } from "../../odata/query-options.js";
import { entityContext, serializeRow, serializeValue } from "../../odata/record-serializer.js";
import type { ODataResponse } from "../../odata/response.js";
import { fetchXmlBody } from "../fetchxml.js";
import type { Result } from "./execute.js";
import type { Plan } from "./plan.js";

function serializeExpanded(option: ExpandOption, related: Row | Row[] | null, formattedValues: boolean): unknown {
  const one = (row: Row) => serializeRow(option.navigation.target, row, option.select, { formattedValues });
  if (Array.isArray(related)) return related.map(one);
  return related ? one(related) : null;
}

const collectionContext = (root: string, table: TableDef, select?: readonly ColumnDef[]) =>
  `${root}$metadata#${table.entitySetName}${select ? `(${select.map(propertyName).join(",")})` : ""}`;

const entityUrl = (root: string, table: TableDef, row: Row) => `${root}${table.entitySetName}(${String(row[table.primaryKey])})`;

/**
 * The status a plan answers when it succeeds, before it runs: what the audit record
 * committed with a write says. It must agree with `respond` (a test holds them together).
 */
export function successStatusOf(plan: Plan): number {
  const representation = plan.shape.prefer.returnRepresentation;
  switch (plan.op) {
    case "operation":
      return plan.definition.successStatus;
    case "create":
      return representation ? 201 : 204;
    case "upsert":
      return representation ? 200 : 204;
    case "writeProperty":
    case "delete":
      return 204;
    default:
      return 200;
  }
}

export function respond(plan: Plan, result: Result): ODataResponse {
  const { shape } = plan;
  const headers: Record<string, string> = {};
  const answer = (status: number, body?: unknown): ODataResponse => {
    if (shape.preferenceApplied.length) headers["Preference-Applied"] = shape.preferenceApplied.join(",");
    return { status, headers, body };
  };

  switch (result.kind) {
    case "operation":
      return result.response;
    case "count":
      headers["Content-Type"] = "text/plain";
      return answer(200, String(result.count));
    case "done":
      return answer(204);
    case "fetched": {
      if (plan.op !== "fetchxml") throw new Error(`a FetchXML result for ${plan.op}`);
      const { table, fetch } = plan;
      const { includeAnnotations } = shape.prefer;
      const { formattedValues, root } = shape;
      return answer(200, fetchXmlBody({ table, plan: fetch, result: result.result, root, includeAnnotations, formattedValues }));
    }
    case "written": {
      if (plan.op === "writeProperty") return answer(204);
      // 204 with OData-EntityId, or the row when `Prefer: return=representation` asks.
      const table = plan.table!;
      headers["OData-EntityId"] = entityUrl(shape.root, table, result.row);
      if (!shape.prefer.returnRepresentation) return answer(204);
      const select = plan.op === "create" || plan.op === "upsert" ? plan.select : undefined;
      return answer(plan.op === "create" ? 201 : 200, {
        "@odata.context": entityContext(shape.root, table, select),
        ...serializeRow(table, result.row, select),
      });
    }
    case "property": {
      if (plan.op !== "readProperty") throw new Error(`a property result for ${plan.op}`);
      const { table, property } = plan;
      const value = serializeValue(property, result.row[property.name]);
      // OData: a null property answers 204 No Content.
      if (value === null) return answer(204);
      return answer(200, {
        "@odata.context": `${shape.root}$metadata#${table.entitySetName}(${String(result.row[table.primaryKey])})/${propertyName(property)}`,
        value,
      });
    }
    case "entity": {
      if (plan.op !== "retrieve" && plan.op !== "related") throw new Error(`an entity result for ${plan.op}`);
      const etag = etagOf(result.row);
      headers.ETag = etag;
      if (plan.op === "retrieve" && plan.ifNoneMatch && etagListIncludes(plan.ifNoneMatch, etag)) return { status: 304, headers };
      const body = serializeRow(plan.table, result.row, plan.select, { formattedValues: shape.formattedValues });
      for (const { option, related } of result.expanded) {
        body[option.navigation.name] = serializeExpanded(option, related, shape.formattedValues);
      }
      return answer(200, { "@odata.context": entityContext(shape.root, plan.table, plan.select), ...body });
    }
    case "aggregated": {
      if (plan.op !== "aggregate") throw new Error(`an aggregate result for ${plan.op}`);
      const { apply, table } = plan;
      const names = [...apply.groupBy.map(propertyName), ...apply.aggregates.map((a) => a.alias)];
      const value = result.rows.map((row) => {
        const out: Record<string, unknown> = {};
        for (const column of apply.groupBy) out[propertyName(column)] = serializeValue(column, row[column.name]);
        for (const a of apply.aggregates) out[a.alias] = a.column ? serializeValue(a.column, row[a.alias]) : row[a.alias];
        return out;
      });
      return answer(200, { "@odata.context": `${shape.root}$metadata#${table.entitySetName}(${names.join(",")})`, value });
    }
    case "page": {
      if (plan.op !== "query") throw new Error(`a page result for ${plan.op}`);
      const { table, query } = plan;
      const { page } = result;
      const include = shape.prefer.includeAnnotations;
      const body: Record<string, unknown> = { "@odata.context": collectionContext(shape.root, table, query.select) };
      if (page.count !== undefined) body["@odata.count"] = page.count;
      if (wantsAnnotation(include, TOTAL_RECORD_COUNT)) body[`@${TOTAL_RECORD_COUNT}`] = page.count ?? -1;
      if (wantsAnnotation(include, TOTAL_RECORD_COUNT_LIMIT_EXCEEDED)) {
        body[`@${TOTAL_RECORD_COUNT_LIMIT_EXCEEDED}`] = page.countLimitExceeded ?? false;
      }
      body.value = page.rows.map((row, index) => {
        const out = serializeRow(table, row, query.select, { formattedValues: shape.formattedValues });
        for (const option of query.expand) {
          out[option.navigation.name] = serializeExpanded(
            option,
            page.expanded.get(option.navigation.name)![index]!,
            shape.formattedValues,
          );
        }
        return out;
      });
      if (page.nextSkipToken) {
        // Same base and options as the request; only the $skiptoken changes.
        const kept = shape.search.split("&").filter((p) => p && !p.startsWith("$skiptoken=") && !p.startsWith("%24skiptoken="));
        body["@odata.nextLink"] = `${shape.root}${plan.path}?${[...kept, `$skiptoken=${page.nextSkipToken}`].join("&")}`;
      }
      return answer(200, body);
    }
  }
}
