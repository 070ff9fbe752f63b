/**
 * Re-reads the CPU profile of a run made with BENCH_CPU_PROF=<dir> and prints where the
 * server's time went in each phase:
 *   node --import tsx bench/profile-summary.ts bench/results/<run>.json [functions per list]
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type PhaseWindow, formatPhaseProfile, summariseProfile } from "./lib/cpu-profile.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const [resultsFile, limit] = process.argv.slice(2);
if (!resultsFile) throw new Error("usage: profile-summary.ts <results.json> [limit]");
const results = JSON.parse(await readFile(resultsFile, "utf8")) as { cpuProfile?: { file: string; windows: PhaseWindow[] } };
if (!results.cpuProfile) throw new Error(`${resultsFile} has no cpuProfile: run the benchmark with BENCH_CPU_PROF=<dir>`);
const phases = await summariseProfile(results.cpuProfile.file, results.cpuProfile.windows, ROOT, Number(limit ?? 25));
process.stdout.write(`${phases.map(formatPhaseProfile).join("\n\n")}\n`);
