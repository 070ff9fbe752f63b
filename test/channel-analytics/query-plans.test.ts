/**
 * The plans of the SQL the service itself sends for collection pages: the order of a page
 * is read from an index, not sorted, where an index can give it (the sort on the primary
 * key that ends every page, under an unfiltered `$top`).
 */
import { describe, expect, it } from "vitest";
import { runFetchXml } from "../../src/channel-analytics/store/fetchxml-query.js";
import { encodeToken, queryPage, sortKeys } from "../../src/channel-analytics/store/record-query.js";
import type { Queryable } from "../../src/db/transactions.js";
import { propertyName } from "../../src/model/properties.js";
import { tableByEntitySet } from "../../src/model/tables.js";
import { parseFetchXml } from "../../src/odata/fetchxml.js";
import { parseCollectionQuery } from "../../src/odata/query-options.js";
import { useTestDatabase } from "../helpers/database.js";

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}
const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];

describe("the plans of collection pages", () => {
  const db = useTestDatabase();

  /** The plan of the page query queryPage sends for `options` (its first statement). */
  async function planOf(set: string, options: Record<string, string>): Promise<PlanNode[]> {
    const table = tableByEntitySet(set)!;
    return explained((explaining) => queryPage(explaining, table, parseCollectionQuery(table, options), 5000));
  }

  /** The plan of the first statement `send` sends. */
  async function explained(send: (db: Queryable) => Promise<unknown>): Promise<PlanNode[]> {
    const plans: PlanNode[][] = [];
    const client = await db.pool.connect();
    try {
      // An empty test table is cheapest to sort: with sorting priced out, a sort remains
      // only where no index can give the order.
      await client.query("SET enable_sort = off");
      const explaining: Queryable = {
        query: (async (sql: string, values?: unknown[]) => {
          const { rows } = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
            `EXPLAIN (FORMAT JSON) ${sql}`,
            values,
          );
          plans.push(nodes(rows[0]!["QUERY PLAN"][0]!.Plan));
          return { rows: [] };
        }) as unknown as Queryable["query"],
      };
      await send(explaining);
    } finally {
      client.release();
    }
    return plans[0]!;
  }

  const withoutSort = (plan: PlanNode[], index: RegExp) => {
    const described = JSON.stringify(plan.map((n) => [n["Node Type"], n["Index Name"]]));
    expect(
      plan.some((n) => n["Node Type"] === "Sort"),
      described,
    ).toBe(false);
    expect(
      plan.some((n) => index.test(n["Index Name"] ?? "")),
      described,
    ).toBe(true);
  };
  const fetchPlanOf = (fetchXml: string) => {
    const events = tableByEntitySet("msdyn_kpieventsdata")!;
    return explained((db) => runFetchXml(db, parseFetchXml(events, fetchXml), propertyName));
  };

  // FetchXML's aggregate and distinct orders keep plain ASC/DESC on values that are never
  // null, as root-column orders do, so an index gives the order there too.
  it("reads a FetchXML aggregate grouped and ordered by a NOT NULL column in that column's index order", async () => {
    const plan = await fetchPlanOf(
      `<fetch aggregate="true" top="5"><entity name="msdyn_kpieventdata">` +
        `<attribute name="msdyn_conversationid" alias="c" groupby="true" /><attribute name="msdyn_kpieventdataid" alias="n" aggregate="count" />` +
        `<order alias="c" descending="true" /></entity></fetch>`,
    );
    // Either index that begins with msdyn_conversationid gives its order.
    withoutSort(plan, /^ix_msdyn_kpieventdata_conversationid/);
  });

  it("keeps nulls first on a NOT NULL column of an outer link, which is null in rows without a match", async () => {
    const sent: string[] = [];
    const capture = { query: (async (sql: string) => (sent.push(sql), { rows: [] })) as unknown as Queryable["query"] };
    const events = tableByEntitySet("msdyn_kpieventsdata")!;
    const fetchXml = (linkType: string) =>
      `<fetch distinct="true"><entity name="msdyn_kpieventdata"><attribute name="msdyn_kpieventdataid" />` +
      `<link-entity name="msdyn_sessionparticipantdata" from="msdyn_participantid" to="msdyn_participantid" link-type="${linkType}">` +
      `<attribute name="msdyn_sessionparticipantdataid" /><order attribute="msdyn_sessionparticipantdataid" /></link-entity></entity></fetch>`;
    for (const linkType of ["inner", "outer"])
      await runFetchXml(capture, parseFetchXml(events, fetchXml(linkType)), propertyName);
    const orderOf = (sql: string) => sql.slice(sql.indexOf("ORDER BY"), sql.indexOf(" LIMIT"));
    expect(orderOf(sent[0]!)).toBe(`ORDER BY "c1" ASC, "c0" ASC, "c1" ASC`);
    expect(orderOf(sent[1]!)).toBe(`ORDER BY "c1" ASC NULLS FIRST, "c0" ASC, "c1" ASC NULLS FIRST`);
  });

  it("reads a FetchXML distinct ordered by the primary key from the primary key index", async () => {
    const plan = await fetchPlanOf(
      `<fetch distinct="true" top="5"><entity name="msdyn_kpieventdata">` +
        `<attribute name="msdyn_kpieventdataid" /><order attribute="msdyn_kpieventdataid" /></entity></fetch>`,
    );
    withoutSort(plan, /^msdyn_kpieventdata_pkey$/);
  });

  it("reads an unfiltered $top of KPI events in primary-key order from the primary key index, without a sort", async () => {
    const plan = await planOf("msdyn_kpieventsdata", { $top: "5" });
    const described = JSON.stringify(plan.map((n) => [n["Node Type"], n["Index Name"]]));
    expect(
      plan.some((n) => n["Node Type"] === "Sort"),
      described,
    ).toBe(false);
    expect(
      plan.some((n) => n["Index Name"] === "msdyn_kpieventdata_pkey"),
      described,
    ).toBe(true);
  });
});

describe("the plan of a conversation's events in time order (the README's query)", () => {
  const db = useTestDatabase();

  it.each([
    ["desc", { $orderby: "msdyn_eventtimestamp desc" }],
    ["desc, a later page", { $orderby: "msdyn_eventtimestamp desc", $skiptoken: "" }],
  ])(
    "reads %s from the (conversation, time DESC NULLS LAST, id) index without a sort (newest first: the order OData gives, nulls last)",
    async (_label, options) => {
      const table = tableByEntitySet("msdyn_kpieventsdata")!;
      const { $skiptoken, ...rest } = options as Record<string, string>;
      const query = parseCollectionQuery(table, {
        $filter: "msdyn_conversationid eq 'conv-1001'",
        ...rest,
        ...($skiptoken === undefined ? { $top: "50" } : {}),
      });
      if ($skiptoken !== undefined) {
        // The token of a page that ended at a row with a time, then at one with none.
        const keys = sortKeys(table, query.orderBy);
        query.skipToken = encodeToken(keys, {
          msdyn_eventtimestamp: new Date("2026-12-01T00:00:00Z"),
          msdyn_kpieventdataid: "0193a6f0-0000-7000-8000-000000000000",
        });
      }
      const plans: PlanNode[][] = [];
      const client = await db.pool.connect();
      try {
        await client.query("SET enable_sort = off");
        await client.query("SET enable_incremental_sort = off");
        await client.query("SET enable_seqscan = off");
        const explaining: Queryable = {
          query: (async (sql: string, values?: unknown[]) => {
            const { rows } = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
              `EXPLAIN (FORMAT JSON) ${sql}`,
              values,
            );
            plans.push(nodes(rows[0]!["QUERY PLAN"][0]!.Plan));
            return { rows: [] };
          }) as unknown as Queryable["query"],
        };
        await queryPage(explaining, table, query, 5000);
      } finally {
        client.release();
      }
      const plan = plans[0]!;
      const described = JSON.stringify(plan.map((n) => [n["Node Type"], n["Index Name"]]));
      expect(
        plan.some((n) => /Sort/.test(n["Node Type"])),
        described,
      ).toBe(false);
      expect(
        plan.some((n) => n["Index Name"] === "ix_msdyn_kpieventdata_conversationid_eventtimestamp"),
        described,
      ).toBe(true);
    },
  );
});
