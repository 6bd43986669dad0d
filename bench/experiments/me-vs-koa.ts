// Direction finder for the foundation suite's "GET /v1/me: Docket / bare Koa" (bench/lib/bare-koa.ts): that
// comparison alone, on one stack, without the rest of the suite — quick to repeat while profiling the API with
//   BENCH_API_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npx tsx bench/experiments/me-vs-koa.ts
// Knobs: ME_SECONDS (per block, 5), ME_BLOCKS (2), BENCH_CONNECTIONS (50). On a busy machine req/s swing with the
// neighbours; each server's own CPU per request (µs, from /proc) moves much less, so both ratios are printed.
import { compareMeWithBareKoa } from '../lib/bare-koa';
import { log, round, startStack } from '../lib/stack';

async function main(): Promise<void> {
  const stack = await startStack();
  try {
    const api = await stack.startApi();
    const r = await compareMeWithBareKoa(api, stack.apiKey, {
      connections: Number(process.env.BENCH_CONNECTIONS ?? 50), seconds: Number(process.env.ME_SECONDS ?? 5), blocks: Number(process.env.ME_BLOCKS ?? 2),
    });
    log(`GET /v1/me: Docket / bare Koa = ${r.reqPerSec.docket} / ${r.reqPerSec.bare} req/s = ${r.ratio}`);
    log(`server CPU per request: Docket ${r.cpuUsPerRequest.docket} µs, bare Koa ${r.cpuUsPerRequest.bare} µs; bare / Docket = ${round(r.cpuUsPerRequest.bare / r.cpuUsPerRequest.docket, 3)}`);
    await api.stop();
  } finally {
    await stack.stop();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
