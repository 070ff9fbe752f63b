/**
 * Issue 13's operations on plain PostgreSQL, with exact statuses and messages; the same
 * tests run on a Citus cluster in test/citus/citus.test.ts (when CITUS_URL is set).
 */
import { describe } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { distributionScenario } from "../helpers/distribution-scenario.js";

describe("the operations of a distributed deployment, on plain PostgreSQL", () => {
  distributionScenario(useTestApp());
});
