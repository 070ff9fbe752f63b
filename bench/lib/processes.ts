/**
 * Child processes of the benchmark: the service (as `npm start` runs it, minus npm, so the
 * pid is the node process itself), the empty Fastify app, and the load generator.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { freePort } from "../../src/db/embedded-postgres.js";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export interface NodeProcess {
  child: ChildProcess;
  pid: number;
  baseUrl: string;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Runs `node [nodeArgs] --import tsx <script>` on a free loopback port (env PORT, HOST). */
export async function startNodeProcess(
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<NodeProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      resolve(exitCode);
    }),
  );
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    child,
    pid: child.pid,
    baseUrl,
    output: () => output,
    exited,
    async stop() {
      if (exitCode !== undefined) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers 200; fails when the process exits or time runs out. */
export async function waitUntilServing(proc: NodeProcess, url: string, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (Date.now() - started < timeoutMs) {
    if (exited) throw new Error(`${url}: the process exited before serving:\n${proc.output()}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} was not served within ${timeoutMs} ms:\n${proc.output()}`);
}

/** A field of /proc/<pid>/status in bytes (e.g. VmHWM, the peak resident set size). */
export async function procStatusBytes(pid: number, field: "VmHWM" | "VmRSS"): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The command line of a pid, to make sure it is node running the server and not a wrapper. */
export async function commandLine(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter(Boolean).join(" ");
  } catch {
    return undefined;
  }
}

/** USER_HZ: the unit of /proc's CPU times (100 on Linux). */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime, in seconds. */
  own: number;
  /** cutime + cstime: children that exited and were waited for, in seconds. */
  children: number;
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The fields after "pid (comm) ", from the 3rd (state): ppid is the 4th, utime the 14th,
    // stime the 15th, cutime the 16th, cstime the 17th.
    const f = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    return { ppid: f[1]!, own: (f[11]! + f[12]!) / TICKS_PER_SECOND, children: (f[13]! + f[14]!) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/**
 * The postmaster and its children (backends, WAL writer, checkpointer, …): those alive, and
 * those that exited (reaped by the postmaster, so in its children's time).
 */
async function postgresSeconds(postmasterPid: number): Promise<number | undefined> {
  const postmaster = await procStat(postmasterPid);
  if (!postmaster) return undefined;
  let total = postmaster.own + postmaster.children;
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  for (const pid of pids) {
    if (pid === postmasterPid) continue;
    const stat = await procStat(pid);
    if (stat?.ppid === postmasterPid) total += stat.own;
  }
  return total;
}

async function machineSeconds(): Promise<number | undefined> {
  try {
    const line = (await readFile("/proc/stat", "utf8")).split("\n")[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** CPU used during a phase, in cores (1 = one core busy all the time). */
export interface CpuUse {
  /** The process under load: the server (or the empty app). */
  server?: number;
  /** PostgreSQL: the postmaster and all its processes. */
  postgres?: number;
  /** The load generator (autocannon), as it measured itself while sending. */
  loadGenerator?: number;
  /** This process: the pg client of the ceilings. */
  bench?: number;
  /** The whole machine, the above and everything else. */
  machine?: number;
  /** The length of the measurement, in seconds. */
  seconds: number;
}

/** Starts counting CPU time; the returned function says how much each party used since. */
export async function cpuMeter(serverPid: number | undefined, postmasterPid: number | undefined): Promise<() => Promise<CpuUse>> {
  const sample = async () => ({
    at: process.hrtime.bigint(),
    server: serverPid === undefined ? undefined : (await procStat(serverPid))?.own,
    postgres: postmasterPid === undefined ? undefined : await postgresSeconds(postmasterPid),
    self: await procStat(process.pid),
    machine: await machineSeconds(),
  });
  const before = await sample();
  return async () => {
    const after = await sample();
    const seconds = Number(after.at - before.at) / 1e9;
    const cores = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined ? undefined : Math.round(((b - a) / seconds) * 100) / 100;
    return {
      server: cores(before.server, after.server),
      postgres: cores(before.postgres, after.postgres),
      bench: cores(before.self?.own, after.self?.own),
      machine: cores(before.machine, after.machine),
      seconds,
    };
  };
}
