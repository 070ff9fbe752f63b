import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderOpenApiYaml } from "../src/openapi.js";

describe("openapi.yaml", () => {
  it("is what the app's route schemas generate (run `npm run openapi`)", async () => {
    const committed = await readFile(path.resolve(import.meta.dirname, "../openapi.yaml"), "utf8");
    expect(committed).toBe(await renderOpenApiYaml());
  });

  it("documents the service document and the health routes", async () => {
    const doc = parse(await renderOpenApiYaml());
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/healthz", "/readyz", "/api/data/{version}/"]));
  });
});
