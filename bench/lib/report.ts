/** The report: a table on stdout, the targets of issue 6 with PASS/FAIL, and JSON files. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { CpuUse } from "./processes.js";

export interface Row {
  phase: string;
  rate: string;
  p50?: number;
  p99?: number;
  non2xx?: number;
  errors?: number;
  cpu?: CpuUse;
  note?: string;
}

export interface Target {
  name: string;
  goal: string;
  actual: string;
  pass: boolean;
}

const ms = (value: number | undefined) => (value === undefined ? "" : `${Number(value.toFixed(1))} ms`);
const count = (value: number | undefined) => (value === undefined ? "" : String(value));
const cores = (cpu: CpuUse | undefined) => {
  if (!cpu) return "";
  const f = (x: number | undefined) => (x === undefined ? "?" : x.toFixed(2));
  const third = cpu.server === undefined ? cpu.bench : cpu.loadGenerator;
  return `${cpu.server === undefined ? "-" : f(cpu.server)} + ${f(cpu.postgres)} + ${f(third)} / ${f(cpu.machine)}`;
};

export function formatRate(value: number, unit: string): string {
  return `${Math.round(value).toLocaleString("en-US")} ${unit}`;
}

export function table(rows: readonly Row[]): string {
  const header = ["phase", "throughput", "p50", "p99", "non-2xx", "errors", "CPU srv+pg+load / all", "notes"];
  const cells = rows.map((r) => [
    r.phase,
    r.rate,
    ms(r.p50),
    ms(r.p99),
    count(r.non2xx),
    count(r.errors),
    cores(r.cpu),
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    `| ${c.map((v, i) => (i >= 1 && i <= 6 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i >= 1 && i <= 6 ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`,
    ...cells.map(line),
  ].join("\n");
}

export function targetLines(targets: readonly Target[]): string {
  const width = Math.max(...targets.map((t) => t.name.length));
  return targets
    .map((t) => `  ${t.pass ? "PASS" : "FAIL"}  ${t.name.padEnd(width)}  goal ${t.goal}; measured ${t.actual}`)
    .join("\n");
}

/** Writes `<dir>/<timestamp><suffix>.json`, and `latest.json` for a full run (no suffix). Returns the paths. */
export async function writeResults(dir: string, startedAt: Date, result: unknown, suffix: string): Promise<string[]> {
  const full = suffix === "";
  await mkdir(dir, { recursive: true });
  // ISO 8601 in the basic format: no colons, so the name is valid on every file system.
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const written = [path.join(dir, `${stamp}${suffix}.json`)];
  if (full) written.push(path.join(dir, "latest.json"));
  for (const file of written) await writeFile(file, json);
  return written;
}
