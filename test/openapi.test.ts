import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { WEB_API_TABLES } from "../src/model/tables.js";
import { propertyName } from "../src/model/properties.js";
import { renderOpenApiYaml } from "../src/openapi.js";

describe("openapi.yaml", () => {
  it("is what the app's route schemas generate (run `npm run openapi`)", async () => {
    const committed = await readFile(path.resolve(import.meta.dirname, "../openapi.yaml"), "utf8");
    expect(committed).toBe(await renderOpenApiYaml());
  });

  it("documents the service document and the health routes", async () => {
    const doc = parse(await renderOpenApiYaml());
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/healthz", "/readyz", "/api/data/{version}/", "/api/data/{version}/$batch"]),
    );
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/api/data/{version}/msdyn_InitLogAnalytics", "/api/data/{version}/msdyn_LogAnalyticsEvent"]),
    );
  });

  it("documents every entity set with a schema derived from the table definitions", async () => {
    const doc = parse(await renderOpenApiYaml());
    for (const table of WEB_API_TABLES) {
      const base = `/api/data/{version}/${table.entitySetName}`;
      if (table.readOnly) {
        // The audit log's tables: read only, no actions.
        expect(doc.paths[base]).toBeUndefined();
        expect(Object.keys(doc.paths[`${base}({key})`])).toEqual(["get"]);
        expect(Object.keys(doc.paths[`${base}({key})/{property}`])).toEqual(["get"]);
        expect(doc.paths[`${base}/Microsoft.Dynamics.CRM.CreateMultiple`]).toBeUndefined();
        continue;
      }
      expect(Object.keys(doc.paths[base])).toEqual(["post"]);
      expect(Object.keys(doc.paths[`${base}({key})`]).sort()).toEqual(["delete", "get", "patch"]);
      expect(Object.keys(doc.paths[`${base}({key})/{property}`]).sort()).toEqual(["delete", "get", "put"]);
      for (const action of ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"]) {
        expect(Object.keys(doc.paths[`${base}/Microsoft.Dynamics.CRM.${action}`]), action).toEqual(["post"]);
      }
      const schema = doc.components.schemas[table.logicalName];
      expect(Object.keys(schema.properties)).toEqual(table.columns.map(propertyName));
      for (const column of table.columns.filter((c) => c.maxLength)) {
        expect(schema.properties[column.name].maxLength, column.name).toBe(column.maxLength);
      }
    }
  });
});
