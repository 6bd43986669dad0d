// Starts bench/lib/bare-koa-server.cjs: the bare Koa handler a Docket endpoint is measured against in the same run.
import { spawn } from 'node:child_process';
import path from 'node:path';
import autocannon from 'autocannon';
import { cpuMeter } from './cpu';
import { log, readProcMemory, ProcMemory, round } from './stack';

export interface BareKoa {
  pid: number;
  url: string;
  memory(): ProcMemory;
  stop(): Promise<void>;
}

/** A bare Koa process answering GET /v1/me with `body` (the JSON Docket answered), on a free loopback port. */
export async function startBareKoa(body: unknown): Promise<BareKoa> {
  const child = spawn(process.execPath, [path.join(__dirname, 'bare-koa-server.cjs')], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BARE_BODY: JSON.stringify(body), PORT: '0' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`bare Koa exited (${code}) before listening`)));
  });
  return {
    pid: child.pid!,
    url: `http://127.0.0.1:${port}`,
    memory: () => readProcMemory(child.pid!),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

export interface MeVsKoa {
  /** Mean req/s over the measured blocks of each server. */
  reqPerSec: { docket: number; bare: number };
  /** Docket / bare of the req/s above: the judged ratio. */
  ratio: number;
  /** Each server's own CPU per request (µs, /proc), which moves far less with the neighbours than req/s. */
  cpuUsPerRequest: { docket: number; bare: number };
  p99Ms: { docket: number; bare: number };
  blocks: { server: 'docket' | 'bare'; reqPerSec: number; p99Ms: number; serverCpuPct: number; machineBusyPct: number; otherPct: number }[];
}

/**
 * GET /v1/me on the Docket API against a bare Koa process answering the same JSON, with the same autocannon
 * settings, in alternating blocks (bare, Docket, bare, Docket …) after a warm-up of each, so a change in the
 * machine's load falls on both. Any non-2xx or error fails the run.
 */
export async function compareMeWithBareKoa(api: { url: string; pid: number }, apiKey: string, opts: { connections: number; seconds: number; blocks: number }): Promise<MeVsKoa> {
  const body = await (await fetch(`${api.url}/v1/me`, { headers: { 'x-api-key': apiKey } })).json();
  const bare = await startBareKoa(body);
  try {
    const servers = { bare: { url: bare.url, pid: bare.pid }, docket: api };
    const load = (url: string, duration: number) => autocannon({ url: `${url}/v1/me`, connections: opts.connections, duration, headers: { 'x-api-key': apiKey } });
    for (const s of Object.values(servers)) await load(s.url, 2);
    const blocks: MeVsKoa['blocks'] = [];
    const cpu = { docket: { seconds: 0, requests: 0 }, bare: { seconds: 0, requests: 0 } };
    for (let i = 0; i < opts.blocks; i++) {
      for (const name of ['bare', 'docket'] as const) {
        // The load generator runs in this process: counted apart, so 'other' is only the neighbours.
        const meter = cpuMeter({ server: () => [servers[name].pid], bench: () => [process.pid] });
        const r = await load(servers[name].url, opts.seconds);
        const used = meter();
        if (r.non2xx || r.errors) throw new Error(`GET /v1/me on ${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
        cpu[name].seconds += (used.cores.server / 100) * used.seconds;
        cpu[name].requests += r.requests.total ?? 0;
        blocks.push({ server: name, reqPerSec: r.requests.mean, p99Ms: r.latency.p99, serverCpuPct: used.cores.server, machineBusyPct: used.machineBusyPct, otherPct: used.cores.other ?? 0 });
        log(`GET /v1/me on ${name}: ${r.requests.mean} req/s, p99 ${r.latency.p99} ms, server ${used.cores.server} % of a core, machine busy ${used.machineBusyPct} %`);
      }
    }
    const of = (name: 'docket' | 'bare') => blocks.filter((b) => b.server === name);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const reqPerSec = { docket: round(mean(of('docket').map((b) => b.reqPerSec)), 0), bare: round(mean(of('bare').map((b) => b.reqPerSec)), 0) };
    const us = (c: { seconds: number; requests: number }) => round((c.seconds / Math.max(1, c.requests)) * 1e6, 1);
    return {
      reqPerSec, ratio: round(reqPerSec.docket / Math.max(1, reqPerSec.bare), 3),
      cpuUsPerRequest: { docket: us(cpu.docket), bare: us(cpu.bare) },
      p99Ms: { docket: Math.max(...of('docket').map((b) => b.p99Ms)), bare: Math.max(...of('bare').map((b) => b.p99Ms)) },
      blocks,
    };
  } finally {
    await bare.stop();
  }
}
