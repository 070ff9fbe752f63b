/**
 * Where the server's time goes: a V8 CPU profile (`node --cpu-prof`) summarised per phase of
 * the benchmark. V8 stamps samples with the monotonic clock, the same as
 * `process.hrtime.bigint()` in the benchmark's process, so each phase's samples are those
 * taken between its start and end.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface PhaseWindow {
  phase: string;
  /** Monotonic clock, in µs (process.hrtime.bigint() / 1000). */
  startUs: number;
  endUs: number;
}

export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

export interface Share {
  name: string;
  ms: number;
  percent: number;
}

export interface PhaseProfile {
  phase: string;
  /**
   * Sampled time of the server's main thread in the window, idle excluded, in ms. V8 samples by
   * wall clock: time the thread spent descheduled counts to the function it was in.
   */
  busyMs: number;
  windowMs: number;
  /** Self time by where the code lives: a src/ file, a package, node internals, GC. */
  byArea: Share[];
  /** Self time by function. */
  topSelf: Share[];
  /** Time in a src/ function and everything it calls. */
  topSrcInclusive: Share[];
}

const SPECIAL = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

function area(frame: CallFrame, root: string): string {
  if (SPECIAL.has(frame.functionName)) return frame.functionName;
  const url = frame.url.replace(/^file:\/\//, "");
  if (!url) return "(native / V8 builtins)";
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1]!;
  if (url.startsWith("node:")) return "node internals";
  if (url.startsWith(root)) return path.relative(root, url);
  return url;
}

function label(frame: CallFrame, root: string): string {
  if (SPECIAL.has(frame.functionName)) return frame.functionName;
  const where = area(frame, root);
  // (tsx-compiled files report line 0: their lines are not worth printing.)
  return `${frame.functionName || "(anonymous)"} ${where}${frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : ""}`;
}

function shares(totals: Map<string, number>, busyMs: number, limit: number): Share[] {
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, ms]) => ({ name, ms: Math.round(ms), percent: busyMs > 0 ? Math.round((1000 * ms) / busyMs) / 10 : 0 }));
}

export async function summariseProfile(
  file: string,
  windows: readonly PhaseWindow[],
  root: string,
  limit = 12,
): Promise<PhaseProfile[]> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  // Sample i is taken at startTime + sum(timeDeltas[0..i]) and stands for the time until the next.
  const times: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) times.push((t += delta));

  return windows.map((window) => {
    const self = new Map<string, number>();
    const areas = new Map<string, number>();
    const inclusive = new Map<string, number>();
    let busyUs = 0;
    for (let i = 0; i < profile.samples.length; i++) {
      const at = times[i]!;
      if (at < window.startUs || at >= window.endUs) continue;
      const duration = (times[i + 1] ?? profile.endTime) - at;
      const node = byId.get(profile.samples[i]!)!;
      if (node.callFrame.functionName === "(idle)") continue;
      busyUs += duration;
      const ms = duration / 1000;
      const name = label(node.callFrame, root);
      self.set(name, (self.get(name) ?? 0) + ms);
      const a = area(node.callFrame, root);
      areas.set(a, (areas.get(a) ?? 0) + ms);
      // Every src/ function on the stack, once each.
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const frame = byId.get(id)!.callFrame;
        if (!frame.url.includes(`${root}/src/`)) continue;
        const fn = label(frame, root);
        if (seen.has(fn)) continue;
        seen.add(fn);
        inclusive.set(fn, (inclusive.get(fn) ?? 0) + ms);
      }
    }
    const busyMs = busyUs / 1000;
    return {
      phase: window.phase,
      busyMs: Math.round(busyMs),
      windowMs: Math.round((window.endUs - window.startUs) / 1000),
      byArea: shares(areas, busyMs, limit),
      topSelf: shares(self, busyMs, limit),
      topSrcInclusive: shares(inclusive, busyMs, limit),
    };
  });
}

export function formatPhaseProfile(p: PhaseProfile): string {
  const list = (title: string, items: Share[]) =>
    [
      `    ${title}:`,
      ...items.map((s) => `      ${String(s.percent).padStart(5)}%  ${String(s.ms).padStart(6)} ms  ${s.name}`),
    ].join("\n");
  return [
    `  ${p.phase}: ${p.busyMs} ms of samples not idle in a ${p.windowMs}-ms window ` +
      `(${p.windowMs ? Math.round((100 * p.busyMs) / p.windowMs) : 0}%; the sampling is by wall clock, so time the thread ` +
      `waited for a CPU inside a system call such as writev counts to that call)`,
    list("self time by area", p.byArea),
    list("self time by function", p.topSelf),
    list("inclusive time of src/ functions", p.topSrcInclusive),
  ].join("\n");
}
