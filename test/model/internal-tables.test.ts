/**
 * A table definition says whether it is an entity set (`webApi`): an internal table added
 * to TABLES becomes no route, no `$metadata` entry and no OpenAPI path by accident.
 */
import { describe, expect, it, vi } from "vitest";
import type { TableDef } from "../../src/model/tables.js";

vi.mock("../../src/model/tables.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../src/model/tables.js")>();
  const provider = original.TABLES.find((t) => t.logicalName === "msdyn_ciprovider")!;
  const internal: TableDef = {
    ...provider,
    webApi: false,
    logicalName: "internal_ledger",
    schemaName: "internal_ledger",
    entitySetName: "internal_ledgers",
    primaryKey: "msdyn_ciproviderid",
  };
  const TABLES = [...original.TABLES, internal];
  return { ...original, TABLES, WEB_API_TABLES: TABLES.filter((t) => t.webApi) };
});

const { TABLES } = await import("../../src/model/tables.js");
const { renderCsdl } = await import("../../src/odata/csdl.js");
const { withEntitySets } = await import("../../src/odata/openapi-entity-sets.js");
const { parseResourcePath } = await import("../../src/odata/resource-path.js");
const { navigationProperties } = await import("../../src/model/navigation.js");
const { ALL_PRIVILEGES } = await import("../../src/model/privileges.js");
const { ROLE_PRIVILEGES } = await import("../../src/identity/roles.js");

describe("an internal table", () => {
  it("is in TABLES (so it gets migrations and SQL)", () => {
    expect(TABLES.map((t) => t.logicalName)).toContain("internal_ledger");
  });

  it("is no entity type or entity set in $metadata", () => {
    const csdl = renderCsdl();
    expect(csdl).toContain('EntitySet Name="msdyn_ciproviders"');
    expect(csdl).not.toContain("internal_ledger");
  });

  it("has no OpenAPI path or schema", () => {
    const doc = withEntitySets({ paths: {}, components: { schemas: {} } });
    expect(Object.keys(doc.paths).some((p) => p.includes("internal_ledgers"))).toBe(false);
    expect(Object.keys(doc.components.schemas)).not.toContain("internal_ledger");
  });

  it("is not a resource of the Web API, nor a navigation target", () => {
    expect(() => parseResourcePath("internal_ledgers")).toThrow(/Resource not found for the segment 'internal_ledgers'/);
    for (const table of TABLES) {
      expect(navigationProperties(table).map((n) => n.target.logicalName)).not.toContain("internal_ledger");
    }
  });

  it("has no privileges, so no role can hold one (no request reaches it)", () => {
    expect(ALL_PRIVILEGES).toContain("prvReadmsdyn_ciprovider");
    expect(ALL_PRIVILEGES.filter((p) => p.endsWith("internal_ledger"))).toEqual([]);
    for (const privileges of Object.values(ROLE_PRIVILEGES)) {
      expect([...privileges].filter((p) => p.endsWith("internal_ledger"))).toEqual([]);
    }
  });
});
