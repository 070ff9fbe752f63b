/** Setup file of every test file (vitest.config.ts): the routing guard of test/helpers/routing-guard.ts. */
import pg from "pg";
import { afterAll, expect } from "vitest";
import { type Violation, guardQueries } from "./helpers/routing-guard.js";

const violations: Violation[] = [];
guardQueries(pg.Client.prototype, violations);

afterAll(() => {
  expect(violations, "statements that would not route on a Citus cluster (test/helpers/routing-guard.ts)").toEqual([]);
});
