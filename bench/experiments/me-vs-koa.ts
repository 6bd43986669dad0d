// Direction finder, not a benchmark: GET /v1/me on the compiled API against a bare Koa handler returning the
// same JSON, same autocannon settings, alternating A/B blocks, on one stack. Profile the API with
//   BENCH_API_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npx tsx bench/experiments/me-vs-koa.ts
// Knobs: ME_SECONDS (per block, 5), ME_BLOCKS (2), BENCH_CONNECTIONS (50). On a busy machine only the ratio means anything.
import autocannon from 'autocannon';
import { startBareKoa } from '../lib/bare-koa';
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
    for (let i = 0; i < blocks; i++) {
      for (const [name, url] of [['bare', bare.url], ['api', api.url]] as const) {
        const r = await load(url, seconds);
        if (r.non2xx || r.errors) throw new Error(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
        rates[name].push(r.requests.mean);
        log(`${name}: ${r.requests.mean} req/s, p99 ${r.latency.p99} ms`);
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    log(`GET /v1/me: Docket / bare Koa = ${round(mean(rates.api), 0)} / ${round(mean(rates.bare), 0)} = ${round(mean(rates.api) / mean(rates.bare), 3)} (busy-machine figure)`);
    await bare.stop();
    await api.stop();
  } finally {
    await stack.stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
