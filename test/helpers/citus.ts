/**
 * A database of its own on the Citus cluster that CITUS_URL names (its coordinator, in a
 * database where the workers are already added: README "Scaling out"). Citus cannot clone
 * a template database, so this one starts empty: the database is created on every node
 * (`citus.enable_create_database_propagation`), the citus extension is created in it on
 * each, the coordinator and the workers are registered, and the service's own migrations
 * then distribute the tables when the app opens it.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { TestDatabase } from "./database.js";
import { withDatabase } from "./database-url.js";

export const CITUS_URL = process.env.CITUS_URL;

interface Node {
  nodename: string;
  nodeport: number;
  groupid: number;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const nodeUrl = (url: string, node: Node, database: string) => {
  const parsed = new URL(withDatabase(url, database));
  parsed.hostname = node.nodename;
  parsed.port = String(node.nodeport);
  return parsed.toString();
};

/**
 * `shardCount`: the database's `citus.shard_count`, which the migrations' distributed tables
 * take (README "Scaling out": a few per worker core on a small cluster; Citus's default is 32).
 */
export async function createCitusDatabase(
  clusterUrl: string,
  { shardCount = Number(process.env.CITUS_SHARD_COUNT ?? 8) }: { shardCount?: number } = {},
): Promise<TestDatabase & { workers: Node[] }> {
  const name = `cif_citus_${randomBytes(6).toString("hex")}`;
  const nodes = await withClient(clusterUrl, async (c) => {
    await c.query("SET citus.enable_create_database_propagation TO on");
    await c.query(`CREATE DATABASE "${name}"`);
    await c.query(`ALTER DATABASE "${name}" SET citus.shard_count = ${Math.trunc(shardCount)}`);
    return (
      await c.query<Node>(
        "SELECT nodename, nodeport, groupid FROM pg_dist_node WHERE noderole = 'primary' AND isactive ORDER BY groupid",
      )
    ).rows;
  });
  const workers = nodes.filter((n) => n.groupid !== 0);
  if (!workers.length) throw new Error(`CITUS_URL's database has no workers in pg_dist_node (citus_add_node them first)`);
  const coordinator = nodes.find((n) => n.groupid === 0) ?? {
    nodename: new URL(clusterUrl).hostname,
    nodeport: Number(new URL(clusterUrl).port || 5432),
    groupid: 0,
  };
  for (const worker of workers) {
    await withClient(nodeUrl(clusterUrl, worker, name), (c) => c.query("CREATE EXTENSION IF NOT EXISTS citus"));
  }
  const url = withDatabase(clusterUrl, name);
  await withClient(url, async (c) => {
    await c.query("CREATE EXTENSION IF NOT EXISTS citus");
    await c.query("SELECT citus_set_coordinator_host($1, $2)", [coordinator.nodename, coordinator.nodeport]);
    for (const worker of workers) await c.query("SELECT citus_add_node($1, $2)", [worker.nodename, worker.nodeport]);
  });
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  pool.on("error", () => {});
  return {
    name,
    url,
    pool,
    workers,
    async drop() {
      await pool.end();
      const dropOn = (nodeDatabaseUrl: string, propagate: boolean) =>
        withClient(withDatabase(nodeDatabaseUrl, "postgres"), async (c) => {
          await c.query(`SET citus.enable_create_database_propagation TO ${propagate ? "on" : "off"}`);
          // A worker may still hold a connection the coordinator cached for a moment: retry, bounded.
          for (let attempt = 1; ; attempt++) {
            try {
              await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
              return;
            } catch (error) {
              if ((error as { code?: string }).code !== "55006" || attempt >= 40) throw error;
              await new Promise((resolve) => setTimeout(resolve, 250));
            }
          }
        });
      try {
        await dropOn(clusterUrl, true);
      } catch (error) {
        // 3D000: a node has no copy any more (an earlier attempt got that far): drop each node's own.
        if ((error as { code?: string }).code !== "3D000") throw error;
        await dropOn(clusterUrl, false);
        for (const worker of workers) await dropOn(nodeUrl(clusterUrl, worker, "postgres"), false);
      }
    },
  };
}
