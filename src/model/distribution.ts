/**
 * Where each table lives on a Citus cluster (README "Scaling out"), derived from the table
 * definitions in one place. On plain PostgreSQL every table is an ordinary table and this
 * changes nothing but the SQL's shape (every single-row statement of a distributed table
 * names its distribution column, so that Citus can route it to one shard).
 *
 * - **distributed**: hash-distributed by `msdyn_conversationid` and co-located with
 *   msdyn_conversationdata, so a conversation's whole tree (and its foreign keys, which all
 *   include that column) is on one node. Every table with a NOT NULL `msdyn_conversationid`
 *   is one, so a later per-conversation table joins without a line here.
 * - **reference**: one copy on every node (small tables that distributed rows refer to).
 * - **coordinator**: an ordinary table on the coordinator. The audit log's forwarding cursor
 *   orders rows by the coordinator's transaction ids, and the idempotency keys are rewritten
 *   with volatile values, neither of which a reference table (one copy per node) can keep.
 *
 * A migration places a table with `SELECT cif_place_table('<table>', '<placement>')`
 * (prisma/migrations/20261204144800_citus_distribution); a test checks that the migrations
 * place every table as `placementOf` says.
 */
import type { TableDef } from "./tables.js";

export const DISTRIBUTION_COLUMN = "msdyn_conversationid";

/** The table every distributed table is co-located with. */
export const COLOCATION_TABLE = "msdyn_conversationdata";

export type Placement = "distributed" | "reference" | "coordinator";

/** The tables without a NOT NULL msdyn_conversationid, and where each goes. */
const NOT_DISTRIBUTED: Readonly<Record<string, Exclude<Placement, "distributed">>> = {
  msdyn_ciprovider: "reference",
  msdyn_kpieventdefinition: "reference",
  cieventsaudit: "coordinator",
  cieventsoperational: "coordinator",
  cif_idempotencykey: "coordinator",
  // The analytics' derived tables (src/analytics/), kept by conversation id but not yet
  // co-located with the tree: its triggers cannot reach them from the workers.
  cif_analytics_dirty: "coordinator",
  cif_analytics_conversation: "coordinator",
  cif_analytics_segment: "coordinator",
  cif_analytics_metric: "coordinator",
  cif_analytics_rollup: "coordinator",
  cif_analytics_agentevent: "coordinator",
  cif_analytics_openstate: "coordinator",
  cif_analytics_agentversion: "coordinator",
  // Export jobs (src/analytics/jobs/): written and read by the service alone.
  cif_analytics_exportjob: "coordinator",
  cif_analytics_exportkey: "coordinator",
  cif_analytics_exportresult: "coordinator",
};

export function placementOf(table: TableDef): Placement {
  if (table.columns.some((c) => c.name === DISTRIBUTION_COLUMN && c.notNull)) return "distributed";
  const placement = NOT_DISTRIBUTED[table.logicalName];
  if (!placement) {
    throw new Error(
      `${table.logicalName} has no placement for Citus: give it a NOT NULL ${DISTRIBUTION_COLUMN} or an entry in ` +
        `NOT_DISTRIBUTED (src/model/distribution.ts), and place it in its migration with cif_place_table.`,
    );
  }
  return placement;
}

export const isDistributed = (table: TableDef) => placementOf(table) === "distributed";

/**
 * The columns of a distributed table's primary key: its GUID first (lookups by GUID keep
 * the index), then the distribution column, which every unique key on Citus must include.
 */
export const primaryKeyColumns = (table: TableDef): readonly string[] =>
  isDistributed(table) ? [table.primaryKey, DISTRIBUTION_COLUMN] : [table.primaryKey];
