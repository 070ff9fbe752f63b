/**
 * `GET {set}?fetchXml=…` as Dataverse answers it: the rows (nulls left out, link-entity
 * attributes as `<alias>_x002e_<attribute>`), and, when `Prefer:
 * odata.include-annotations` asks, `@Microsoft.Dynamics.CRM.morerecords` and, while more
 * rows follow, `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`, whose `pagingcookie`
 * attribute is the cookie URL-encoded twice (what dynamics-web-api's fetchAll() reads).
 */
import type { RowScope } from "../channel-analytics/provider-scope.js";
import { runFetchXml } from "../channel-analytics/store/fetchxml-query.js";
import type { Queryable } from "../channel-analytics/store/record-store.js";
import { ErrorCodes, badRequest } from "../odata/errors.js";
import type { TableDef } from "../model/tables.js";
import { FORMATTED_VALUE, formattedValue, wantsAnnotation } from "../odata/annotations.js";
import { parseFetchXml, refuseStoredQuery } from "../odata/fetchxml.js";
import { propertyName } from "../model/properties.js";
import { serializeValue } from "../odata/record-serializer.js";

export const PAGING_COOKIE = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
export const MORE_RECORDS = "Microsoft.Dynamics.CRM.morerecords";

type Query = Record<string, string | string[] | undefined>;

/** True when the query string holds a FetchXML (or stored) query instead of OData options. */
export const isFetchXmlQuery = (query: Query) => "fetchXml" in query || "savedQuery" in query || "userQuery" in query;

export async function answerFetchXml(input: {
  db: Queryable;
  table: TableDef;
  query: Query;
  root: string;
  includeAnnotations?: string;
  formattedValues: boolean;
  /** A channel provider's row scope, if any. */
  scope?: RowScope;
}): Promise<Record<string, unknown>> {
  const { query, table } = input;
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

  const plan = parseFetchXml(table, text);
  const result = await runFetchXml(input.db, plan, propertyName, input.scope);
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
