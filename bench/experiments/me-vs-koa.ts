// Direction finder, not a benchmark: GET /v1/me on the compiled API against a bare Koa handler returning the
// same JSON, same autocannon settings, alternating A/B blocks, on one stack. Profile the API with
//   BENCH_API_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npx tsx bench/experiments/me-vs-koa.ts
// Knobs: ME_SECONDS (per block, 5), ME_BLOCKS (2), BENCH_CONNECTIONS (50). On a busy machine req/s swing with the
// neighbours; each server's own CPU per request (µs, from /proc) moves much less, so both ratios are printed.
import fs from 'node:fs';
import autocannon from 'autocannon';
import { startBareKoa } from '../lib/bare-koa';
import { cpuMeter } from '../lib/cpu';
import { log, round, startStack } from '../lib/stack';

async function main(): Promise<void> {
  const seconds = Number(process.env.ME_SECONDS ?? 5);
  const blocks = Number(process.env.ME_BLOCKS ?? 2);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const stack = await startStack();
  try {
    const api = await stack.startApi();
    const body = await (await fetch(`${api.url}/v1/me`, { headers: { 'x-api-key': stack.apiKey } })).json();
    const bare = await startBareKoa(body);
    const load = async (url: string, duration: number) => (await autocannon({ url: `${url}/v1/me`, connections, duration, headers: { 'x-api-key': stack.apiKey } }));
    await load(api.url, 2);
    await load(bare.url, 2);
    const rates: { api: number[]; bare: number[] } = { api: [], bare: [] };
    const cpu = { api: { seconds: 0, requests: 0 }, bare: { seconds: 0, requests: 0 } };
    for (let i = 0; i < blocks; i++) {
      for (const [name, url, pid] of [['bare', bare.url, bare.pid], ['api', api.url, api.pid]] as const) {
        const meter = cpuMeter({ server: () => [pid] });
        const io0 = syscalls(pid);
        const r = await load(url, seconds);
        const used = meter();
        const io1 = syscalls(pid);
        const n = r.requests.total || 1;
        if (r.non2xx || r.errors) throw new Error(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
        rates[name].push(r.requests.mean);
        cpu[name].seconds += (used.cores.server / 100) * used.seconds;
        cpu[name].requests += r.requests.total ?? 0;
        log(`${name}: ${r.requests.mean} req/s, p99 ${r.latency.p99} ms, server CPU ${used.cores.server} % of a core, machine busy ${used.machineBusyPct} %, write syscalls/request ${round((io1.w - io0.w) / n, 2)}, read ${round((io1.r - io0.r) / n, 2)}`);
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const usPerRequest = (c: { seconds: number; requests: number }) => (c.seconds / c.requests) * 1e6;
    log(`GET /v1/me: Docket / bare Koa = ${round(mean(rates.api), 0)} / ${round(mean(rates.bare), 0)} req/s = ${round(mean(rates.api) / mean(rates.bare), 3)} (busy-machine figure)`);
    log(`server CPU per request: Docket ${round(usPerRequest(cpu.api), 1)} µs, bare Koa ${round(usPerRequest(cpu.bare), 1)} µs; bare / Docket = ${round(usPerRequest(cpu.bare) / usPerRequest(cpu.api), 3)}`);
    await bare.stop();
    await api.stop();
  } finally {
    await stack.stop();
  }
}

/** The process's read and write system calls so far (/proc/<pid>/io). */
function syscalls(pid: number): { r: number; w: number } {
  const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  return { r: Number(/syscr: (\d+)/.exec(io)![1]), w: Number(/syscw: (\d+)/.exec(io)![1]) };
}

main().catch((err) => { console.error(err); process.exit(1); });
