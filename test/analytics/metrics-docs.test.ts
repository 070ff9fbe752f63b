/** The published formulas are the ones the code computes by: README and openapi.yaml from src/analytics/metrics.ts. */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { METRICS, metricsMarkdownTable } from "../../src/analytics/metrics.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

describe("metric formulas", () => {
  it("are in the README as metrics.ts renders them", async () => {
    expect(await readFile(path.join(ROOT, "README.md"), "utf8")).toContain(metricsMarkdownTable());
  });

  it("are in openapi.yaml, every one", async () => {
    const openapi = (await readFile(path.join(ROOT, "openapi.yaml"), "utf8")).replace(/\s+/g, " ");
    for (const m of METRICS) expect(openapi).toContain(`**${m.name}** (${m.kind}): ${m.formula}`.replace(/\s+/g, " "));
  });
});
