import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { navigationProperties } from "../src/model/navigation.js";
import { WEB_API_TABLES } from "../src/model/tables.js";
import { SUPPORTED_QUERY_OPTIONS } from "../src/odata/query-options.js";
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
      expect.arrayContaining(["/healthz", "/readyz", "/api/data/{version}", "/api/data/{version}/$batch"]),
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
        expect(Object.keys(doc.paths[base])).toEqual(["get"]);
        expect(Object.keys(doc.paths[`${base}({key})`])).toEqual(["get"]);
        expect(Object.keys(doc.paths[`${base}({key})/{property}`])).toEqual(["get"]);
        expect(doc.paths[`${base}/Microsoft.Dynamics.CRM.CreateMultiple`]).toBeUndefined();
        continue;
      }
      expect(Object.keys(doc.paths[base])).toEqual(["get", "post"]);
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

  type Operation = {
    operationId?: string;
    security?: unknown[];
    parameters?: Array<{ $ref?: string; name?: string }>;
    responses: Record<string, unknown>;
  };
  const METHODS = ["get", "put", "post", "delete", "patch"];
  async function operations(): Promise<Array<{ path: string; method: string; operation: Operation }>> {
    const doc = parse(await renderOpenApiYaml());
    return Object.entries(doc.paths as Record<string, Record<string, Operation>>).flatMap(([path, item]) =>
      METHODS.filter((m) => item[m]).map((method) => ({ path, method, operation: item[method]! })),
    );
  }

  it("gives every operation a unique operationId, the same on every run", async () => {
    const all = await operations();
    const ids = all.map((o) => o.operation.operationId);
    expect(all.filter((o) => !o.operation.operationId).map((o) => `${o.method} ${o.path}`)).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect((await operations()).map((o) => o.operation.operationId)).toEqual(ids);
    // The entity sets' ids are the operation names the audit log records.
    const byPath = (path: string, method: string) => all.find((o) => o.path === path && o.method === method)!.operation;
    expect(byPath("/api/data/{version}/msdyn_kpieventsdata", "get").operationId).toBe("msdyn_kpieventsdata.RetrieveMultiple");
    expect(byPath("/api/data/{version}/msdyn_kpieventsdata({key})", "patch").operationId).toBe("msdyn_kpieventsdata.Update");
  });

  it("puts both security schemes on every operation that needs a token, with its 401 and 403", async () => {
    const doc = parse(await renderOpenApiYaml());
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    expect(doc.components.securitySchemes.oauth2.flows.clientCredentials.tokenUrl).toBe("/default/oauth2/v2.0/token");
    const open = ["/healthz", "/readyz", "/{tenant}/oauth2/v2.0/token", "/{tenant}/v2.0/.well-known/openid-configuration"];
    for (const { path, method, operation } of await operations()) {
      if (path.startsWith("/{tenant}/") || path === "/healthz" || path === "/readyz") {
        expect(operation.security, path).toEqual([]);
        continue;
      }
      expect(operation.security, `${method} ${path}`).toEqual([{ bearer: [] }, { oauth2: [] }]);
      expect(Object.keys(operation.responses), `${method} ${path}`).toEqual(expect.arrayContaining(["401", "403"]));
    }
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(open));
  });

  it("documents every query option a collection GET accepts, and the Prefer header, for each entity set and navigation", async () => {
    const doc = parse(await renderOpenApiYaml());
    const names = (operation: Operation) =>
      operation.parameters!.map((p) => (p.$ref ? doc.components.parameters[p.$ref.split("/").at(-1)!].name : p.name));
    const everyOption = [...SUPPORTED_QUERY_OPTIONS, "fetchXml", "Prefer"];
    for (const table of WEB_API_TABLES) {
      const base = `/api/data/{version}/${table.entitySetName}`;
      expect(names(doc.paths[base].get), table.entitySetName).toEqual(expect.arrayContaining(everyOption));
      expect(doc.paths[`${base}/$count`].get.responses["200"].content["text/plain"]).toBeDefined();
      expect(names(doc.paths[`${base}({key})`].get)).toEqual(expect.arrayContaining(["$select", "$expand", "If-None-Match"]));
      for (const nav of navigationProperties(table)) {
        const get = doc.paths[`${base}({key})/${nav.name}`].get;
        if (nav.collection) {
          // $apply and fetchXml are refused on a navigation path (src/service/pipeline/plan.ts).
          expect(names(get)).toEqual(expect.arrayContaining([...SUPPORTED_QUERY_OPTIONS].filter((o) => o !== "$apply")));
          expect(names(get)).not.toContain("fetchXml");
        } else expect(names(get)).toEqual(expect.arrayContaining(["$select", "$expand"]));
      }
    }
  });

  it("marks the columns nobody may write readOnly, and only those", async () => {
    const doc = parse(await renderOpenApiYaml());
    for (const table of WEB_API_TABLES) {
      const properties = doc.components.schemas[table.logicalName].properties;
      for (const column of table.columns) {
        expect(properties[propertyName(column)].readOnly === true, `${table.logicalName}.${column.name}`).toBe(
          !column.validForCreate && !column.validForUpdate,
        );
      }
    }
    expect(doc.components.schemas.msdyn_kpieventdata.properties.versionnumber.readOnly).toBe(true);
  });

  it("passes redocly lint (recommended rules, redocly.yaml) with no error or warning", async () => {
    const cli = path.resolve(import.meta.dirname, "../node_modules/@redocly/cli/bin/cli.js");
    const root = path.resolve(import.meta.dirname, "..");
    // Offline: no telemetry, no update check.
    const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", CI: "true" };
    const { stdout } = await promisify(execFile)(process.execPath, [cli, "lint", "openapi.yaml", "--format=json"], {
      cwd: root,
      env,
      timeout: 60_000,
    }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }));
    const report = JSON.parse(stdout) as {
      totals: { errors: number; warnings: number };
      problems: Array<{ ruleId: string; message: string; location: Array<{ pointer: string }> }>;
    };
    expect(report.problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`)).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 90_000);
});
