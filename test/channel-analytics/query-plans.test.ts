/**
 * The plans of the SQL the service itself sends for collection pages: the order of a page
 * is read from an index, not sorted, where an index can give it (the sort on the primary
 * key that ends every page, under an unfiltered `$top`).
 */
import { describe, expect, it } from "vitest";
import { queryPage } from "../../src/channel-analytics/store/record-query.js";
import type { Queryable } from "../../src/db/transactions.js";
import { tableByEntitySet } from "../../src/model/tables.js";
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
      const table = tableByEntitySet(set)!;
      await queryPage(explaining, table, parseCollectionQuery(table, options), 5000);
    } finally {
      client.release();
    }
    return plans[0]!;
  }

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
