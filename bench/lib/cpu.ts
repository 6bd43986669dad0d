// Who used the CPU during a measurement: the API, Postgres, Temporal, the load generator (this
// process) and everything else on the machine, from /proc. On a 2-core box this answers "which
// process is the bottleneck?" and flags runs disturbed by other work (a test run, a build …).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { round } from './stack';

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process (all its threads), in clock ticks; 0 once it is gone. */
function processTicks(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5), counted from 1
  } catch {
    return 0;
  }
}

function parentOf(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** A process and its descendants (a postmaster's backends, a CLI's server …). */
export function processTree(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = parentOf(Number(entry));
    if (ppid !== null) parents.set(Number(entry), ppid);
  }
  const tree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parents) if (tree.has(ppid) && !tree.has(pid)) { tree.add(pid); grew = true; }
  }
  return [...tree];
}

/** Marks every process this run starts (inherited through the environment), so its Chromium can be told from another's. */
export const RUN_MARKER = `DOCKET_BENCH_RUN=${process.pid}-${Date.now()}`;
{
  const [k, v] = RUN_MARKER.split('=');
  process.env[k] = v;
}

/**
 * This run's Chromium processes: every browser process started by this run (recognised by its executable
 * and by the run's marker in its environment, inherited from the bench or from the worker it started) and
 * everything under it (zygotes, GPU/utility and renderer processes, which Chromium starts with an
 * environment of its own). A Chromium of somebody else's test run on the same machine stays "other".
 */
export function chromiumProcesses(): number[] {
  const names = new Set(['chromium', 'chrome', 'headless_shell', 'chrome-headless-shell']);
  const browsers: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const exe = fs.readlinkSync(`/proc/${entry}/exe`);
      if (!names.has(exe.slice(exe.lastIndexOf('/') + 1))) continue;
      if (fs.readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(RUN_MARKER)) browsers.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return [...new Set(browsers.flatMap(processTree))];
}

/** Busy and total ticks of the whole machine (all cores) from the first line of /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu;
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  return { busy, total: busy + idle + (iowait ?? 0) };
}

/** Named groups of processes; pids are re-read at every sample (backends come and go). */
export type ProcessGroups = Record<string, () => number[]>;

interface Sample {
  at: bigint;
  machine: { busy: number; total: number };
  groups: Record<string, Map<number, number>>;
}

export interface CpuUsage {
  seconds: number;
  /** Share of the whole machine that was busy (100 = every core busy). */
  machineBusyPct: number;
  /** Each group's CPU in percent of one core (like top: 100 = one core), plus "other" for the rest. */
  cores: Record<string, number>;
}

function sample(groups: ProcessGroups): Sample {
  const out: Sample['groups'] = {};
  for (const [name, pids] of Object.entries(groups)) out[name] = new Map(pids().map((pid) => [pid, processTicks(pid)]));
  return { at: process.hrtime.bigint(), machine: machineTicks(), groups: out };
}

/** Starts a measurement; call the returned function at the end to get the CPU split. */
export function cpuMeter(groups: ProcessGroups): () => CpuUsage {
  const start = sample(groups);
  return () => {
    const end = sample(groups);
    const seconds = Number(end.at - start.at) / 1e9;
    const hz = ticksPerSecond();
    const cores: Record<string, number> = {};
    let accounted = 0;
    for (const name of Object.keys(groups)) {
      let ticks = 0;
      // Processes that started during the window count from zero; ones that ended are lost (small).
      for (const [pid, t] of end.groups[name]) ticks += t - (start.groups[name].get(pid) ?? 0);
      accounted += ticks;
      cores[name] = round((ticks / hz / seconds) * 100, 0);
    }
    const busyTicks = end.machine.busy - start.machine.busy;
    const totalTicks = end.machine.total - start.machine.total;
    cores.other = Math.max(0, round(((busyTicks - accounted) / hz / seconds) * 100, 0));
    return { seconds: round(seconds, 2), machineBusyPct: round((busyTicks / Math.max(1, totalTicks)) * 100, 0), cores };
  };
}

/** Time-weighted mean of several measurements' CPU splits (e.g. the blocks of one mode). */
export function meanCpu(parts: CpuUsage[]): CpuUsage {
  const seconds = parts.reduce((s, p) => s + p.seconds, 0);
  const w = (f: (p: CpuUsage) => number) => round(parts.reduce((s, p) => s + f(p) * p.seconds, 0) / seconds, 0);
  const cores: Record<string, number> = {};
  for (const k of Object.keys(parts[0].cores)) cores[k] = w((p) => p.cores[k] ?? 0);
  return { seconds: round(seconds, 2), machineBusyPct: w((p) => p.machineBusyPct), cores };
}

/** How busy the machine is right now (over `ms`), before a run starts: other work skews results. */
export async function machineBusyPct(ms = 2000): Promise<number> {
  const a = machineTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineTicks();
  return round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100, 0);
}

export const CORES = os.availableParallelism();

/**
 * Waits (up to `maxMs`) until the machine is at most `thresholdPct` busy, since another process's work
 * (a test run, a build) would skew the numbers. Returns the last busy reading.
 */
export async function waitForQuiet(opts: { maxMs: number; thresholdPct: number; log: (m: string) => void }): Promise<number> {
  const deadline = Date.now() + opts.maxMs;
  let busy = await machineBusyPct();
  let said = false;
  while (busy > opts.thresholdPct && Date.now() < deadline) {
    if (!said) opts.log(`machine is ${busy}% busy with other work; waiting up to ${Math.round(opts.maxMs / 1000)} s for it to go quiet …`);
    said = true;
    busy = await machineBusyPct();
  }
  return busy;
}
