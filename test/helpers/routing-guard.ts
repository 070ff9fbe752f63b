/**
 * The routing guard (issue 13): every statement a test file sends that locks, updates or
 * deletes rows of a table that Citus distributes (src/model/distribution.ts) must name the
 * distribution column, and no statement may look conversations up by `IN (SELECT …)`,
 * which Citus sends to every shard. It runs on plain PostgreSQL too, so the SQL cannot
 * regress where Citus is absent: a setup file (vitest.config.ts) wraps the pg driver's
 * query and fails the test file that sent such a statement, naming it.
 */
import { DISTRIBUTION_COLUMN, isDistributed } from "../../src/model/distribution.js";
import { TABLES } from "../../src/model/tables.js";

const DISTRIBUTED = TABLES.filter(isDistributed).map((t) => t.logicalName);

const name = (table: string) => `"?${table}"?`;
const tables = `(?:${DISTRIBUTED.map(name).join("|")})`;
const column = `"?${DISTRIBUTION_COLUMN}"?`;
/** `"msdyn_conversationid" = $3`, `x."msdyn_conversationid" = ANY($1::text[])`. */
const ROUTED = new RegExp(`(?:\\w+\\.)?${column}\\s*=\\s*(?:\\$\\d+|ANY\\s*\\(\\s*\\$\\d+)`, "i");
const WRITE = new RegExp(`(?<!\\b(?:DO|FOR|NO KEY)\\s+)\\b(?:UPDATE|DELETE\\s+FROM)\\s+${tables}(?=\\s|$)`, "gi");
const LOCK = /\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b/i;
const LOCKED_TABLE = new RegExp(`\\bFROM\\s+${tables}(?=\\s|$)`, "i");
const SUBQUERY_LOOKUP = new RegExp(`${column}\\s+IN\\s*\\(\\s*SELECT\\b`, "i");

/** Why `sql` would not route on Citus, or undefined when it would. */
export function routingViolation(sql: string): string | undefined {
  if (SUBQUERY_LOOKUP.test(sql)) {
    return `looks ${DISTRIBUTION_COLUMN} up with IN (SELECT …), which goes to every shard: use = ANY($n::text[])`;
  }
  if (LOCK.test(sql) && LOCKED_TABLE.test(sql) && !ROUTED.test(sql)) {
    return `locks rows of a distributed table without a ${DISTRIBUTION_COLUMN} condition (Citus locks rows of one shard only)`;
  }
  for (const match of sql.matchAll(WRITE)) {
    if (!ROUTED.test(sql.slice(match.index))) {
      return `updates or deletes rows of a distributed table without a ${DISTRIBUTION_COLUMN} condition`;
    }
  }
  return undefined;
}

export interface Violation {
  sql: string;
  reason: string;
}

/** Wraps `query` of the given client prototype; the statements that would not route are pushed to `violations`. */
export function guardQueries(prototype: { query: (...args: unknown[]) => unknown }, violations: Violation[]): void {
  const original = prototype.query;
  prototype.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const sql = typeof first === "string" ? first : (first as { text?: unknown } | undefined)?.text;
    if (typeof sql === "string") {
      const reason = routingViolation(sql);
      if (reason && violations.length < 20) violations.push({ sql: sql.slice(0, 500), reason });
    }
    return original.apply(this, args);
  };
}
