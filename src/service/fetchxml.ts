/**
 * `GET {set}?fetchXml=…` in the request pipeline's stages: `planFetchXml` (plan stage)
 * checks the query options and parses the FetchXML, so a malformed one is refused before
 * anything is authorised or read; execute runs the parsed plan (store/fetchxml-query.ts);
 * `fetchXmlBody` (respond stage) shapes the rows as Dataverse answers them: nulls left
 * out, link-entity attributes as `<alias>_x002e_<attribute>`, and, when `Prefer:
 * odata.include-annotations` asks, `@Microsoft.Dynamics.CRM.morerecords` and, while more
 * rows follow, `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`, whose `pagingcookie`
 * attribute is the cookie URL-encoded twice (what dynamics-web-api's fetchAll() reads).
 */
import type { FetchResult } from "../channel-analytics/store/fetchxml-query.js";
import { ErrorCodes, badRequest } from "../odata/errors.js";
import type { TableDef } from "../model/tables.js";
import { FORMATTED_VALUE, formattedValue, wantsAnnotation } from "../odata/annotations.js";
import { type FetchPlan, parseFetchXml, refuseStoredQuery } from "../odata/fetchxml.js";
import { propertyName } from "../model/properties.js";
import { serializeValue } from "../odata/record-serializer.js";

export const PAGING_COOKIE = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
export const MORE_RECORDS = "Microsoft.Dynamics.CRM.morerecords";

type Query = Record<string, string | string[] | undefined>;

/** True when the query string holds a FetchXML (or stored) query instead of OData options. */
export const isFetchXmlQuery = (query: Query) => "fetchXml" in query || "savedQuery" in query || "userQuery" in query;

/** The FetchXML of a query string as a plan; any fault of the options or the document is a 400 naming it. */
export function planFetchXml(table: TableDef, query: Query): FetchPlan {
  for (const option of ["savedQuery", "userQuery"]) if (option in query) refuseStoredQuery(option);
  const text = query.fetchXml;
  if (Array.isArray(text)) throw badRequest("The query option fetchXml is given more than once.", ErrorCodes.badRequest);
  const other = Object.keys(query).find((name) => name !== "fetchXml" && name.startsWith("$"));
  if (other)
    throw badRequest(
      `The query option ${other} cannot be combined with fetchXml: put it in the FetchXML.`,
      ErrorCodes.badRequest,
    );
  if (!text) throw badRequest("The query option fetchXml has no value.", ErrorCodes.badRequest);
  return parseFetchXml(table, text);
}

export function fetchXmlBody(input: {
  table: TableDef;
  plan: FetchPlan;
  result: FetchResult;
  root: string;
  includeAnnotations?: string;
  formattedValues: boolean;
}): Record<string, unknown> {
  const { table, plan, result } = input;
  const primaryKey = table.columns.find((c) => c.name === table.primaryKey)!;
  const value = result.rows.map((row) => {
    const out: Record<string, unknown> = {};
    if (result.records) out["@odata.etag"] = `W/"${String(row.versionnumber)}"`;
    for (const output of result.outputs) {
      const raw = row[output.sqlName];
      // FetchXML results leave null values out.
      if (raw === null || raw === undefined) continue;
      if (output.kind !== "value") {
        out[output.key] = Number(raw);
        continue;
      }
      if (input.formattedValues) {
        const formatted = formattedValue(output.column, raw);
        if (formatted !== undefined) out[`${output.key}@${FORMATTED_VALUE}`] = formatted;
      }
      out[output.key] = serializeValue(output.column, raw);
    }
    if (result.records) out[propertyName(primaryKey)] = row[primaryKey.name];
    return out;
  });

  const selected = plan.root.attributes?.map((a) => a.alias ?? propertyName(a.column));
  const body: Record<string, unknown> = {
    "@odata.context": `${input.root}$metadata#${table.entitySetName}${selected ? `(${selected.join(",")})` : ""}`,
  };
  if (result.moreRecords && wantsAnnotation(input.includeAnnotations, PAGING_COOKIE)) {
    const cookie = result.nextCookie ? ` pagingcookie="${encodeURIComponent(encodeURIComponent(result.nextCookie))}"` : "";
    body[`@${PAGING_COOKIE}`] = `<cookie pagenumber="${plan.page + 1}"${cookie} istracking="False" />`;
  }
  if (wantsAnnotation(input.includeAnnotations, MORE_RECORDS)) body[`@${MORE_RECORDS}`] = result.moreRecords;
  body.value = value;
  return body;
}
