// Suite "events": the events issue's webhook target, with the API and a worker (WORKER_QUEUES=webhooks) as their own
// processes and five loopback HTTP receivers in this process (each counts what it answered 2xx by webhook-id):
//  1. the bare path: a loop signing (standardwebhooks) and POSTing (undici fetch, as Docket's sender) 3 × N bodies
//     to three fresh receivers, SEND_CONCURRENCY in flight per receiver as Docket's per-endpoint rounds, no Docket code;
//  2. Docket under load: five endpoints subscribed to `*` — three healthy receivers, one answering 500 to every
//     other request, one down (its port closed: connection refused) — and N events written to the outbox over
//     BENCH_EVENTS_SECONDS, one transaction each, with the app's own writer (lib/events.ts eventInsertSql), 4
//     writers on an open-loop schedule. For the healthy receivers: each event's latency from its occurred_at (the
//     body's timestamp) to receipt, p50/p99/max, until all have every event;
//  3. recovery: the down receiver comes up on its port; every receiver must then hold every event exactly once
//     (2xx answers by webhook-id; a second 2xx for one id is a duplicate), the flaky one through its retries;
//  4. drain: the five endpoints disabled, three new ones on fresh receivers, N events written at once: the time
//     until all 3 × N are received, against the bare loop's time for as many (Docket / bare).
// Signatures are verified with `standardwebhooks` on a sample of each receiver's requests.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { fetch } from 'undici';
import { forEachConcurrently } from '../../lib/concurrency';
import { eventInsertSql } from '../../lib/events';
import { connectTemporal } from '../../lib/temporal';
import { RELAY_DEEP_EVERY_MS, RELAY_PAIRS_SQL, RELAY_SAFETY_MS, RELAY_SHORT_SAFETY_MS } from '../../activities/webhooks';
import { uuidV7Floor } from '../../lib/uuid';
import { SEND_CONCURRENCY, WEBHOOKS_TASK_QUEUE } from '../../workflows/webhooks.api';
import { cpuMeter, processTree } from '../lib/cpu';
import { BenchStack, log, round, stopAll } from '../lib/stack';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';
import { apiCaller, latencyOf, startWorker, waitForPoller } from '../lib/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SAMPLE = 20;

interface Received { body: string; headers: Record<string, string> }

/** A loopback receiver: answers 200 (or 500 to every other request when flaky) and counts 2xx answers by webhook-id. */
interface Receiver {
  name: string;
  port: number;
  url: string;
  /** 2xx answers per webhook-id. */
  ok: Map<string, number>;
  /** Event occurred_at → first 2xx receipt, ms, one per webhook-id. */
  latencies: number[];
  requests: number;
  samples: Received[];
  listen(): Promise<void>;
  close(): Promise<void>;
}

async function freeLoopbackPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function receiver(name: string, opts: { flaky?: boolean; down?: boolean } = {}): Promise<Receiver> {
  const port = await freeLoopbackPort();
  let n = 0;
  const r: Receiver = {
    name, port, url: `http://127.0.0.1:${port}/${name}`, ok: new Map(), latencies: [], requests: 0, samples: [],
    listen: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () => { server.closeAllConnections(); return new Promise<void>((resolve) => server.close(() => resolve())); },
  };
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests++;
      const status = opts.flaky && n++ % 2 === 0 ? 500 : 200;
      if (status === 200) {
        const id = String(req.headers['webhook-id']);
        const seen = r.ok.get(id) ?? 0;
        r.ok.set(id, seen + 1);
        const body = Buffer.concat(chunks).toString('utf8');
        if (!seen) r.latencies.push(Date.now() - Date.parse((JSON.parse(body) as { timestamp: string }).timestamp));
        if (r.samples.length < SAMPLE) {
          r.samples.push({ body, headers: { 'webhook-id': id, 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) } });
        }
      }
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'nope');
    });
  });
  if (!opts.down) await r.listen();
  return r;
}

const duplicatesOf = (r: Receiver) => [...r.ok.values()].filter((c) => c > 1).length;

export const events: Suite = {
  name: 'events',
  description: 'N events in a minute to 5 webhook endpoints (3 healthy, 1 answering 500 half the time, 1 down then up): healthy latency p99, nothing lost or doubled after recovery, drain time vs a bare signed POST loop',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      events: envInt('BENCH_EVENTS_COUNT', 10_000),
      seconds: envInt('BENCH_EVENTS_SECONDS', 60),
      writers: 4,
      budgetSeconds: envInt('BENCH_EVENTS_BUDGET_SECONDS', 900),
      concurrencyPerEndpoint: SEND_CONCURRENCY,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RELAY_EVERY_MS: '1000', WEBHOOK_RETRY_INITIAL_MS: '1000', WEBHOOK_RETRY_MAX_MS: '5000' },
    };
    const startedAt = new Date().toISOString();
    const { sequelize, tenantId } = stack;
    const stops: (() => Promise<void>)[] = [];
    const waitUntil = async (what: string, done: () => boolean, budgetS = config.budgetSeconds) => {
      const t = performance.now();
      while (!done()) {
        if ((performance.now() - t) / 1000 > budgetS) throw new Error(`${what}: not within ${budgetS} s`);
        await sleep(100);
      }
      return round((performance.now() - t) / 1000, 2);
    };
    const writeEvents = async (n: number, seconds: number) => {
      const lagMs: number[] = [];
      const t0 = performance.now();
      await forEachConcurrently(Array.from({ length: n }, (_, i) => i), seconds ? config.writers : 1, async (i) => {
        if (seconds) {
          const due = t0 + (i * seconds * 1000) / n;
          if (due > performance.now()) await sleep(due - performance.now());
          lagMs.push(performance.now() - due);
        }
        // Under load one event per transaction, as a change writes its own; the drain's backlog 500 at a time.
        if (!seconds && i % 500) return;
        const batch = seconds ? [i] : Array.from({ length: Math.min(500, n - i) }, (_, k) => i + k);
        const bind: unknown[] = [];
        const sql = eventInsertSql(batch.map((k) => ({ tenantId, type: 'document_batch.finished', subjectType: 'document_batch', subjectId: randomUUID(), data: { batchId: randomUUID(), done: k, failed: 0 } })), bind);
        await sequelize.transaction((transaction) => sequelize.query(sql, { bind, transaction }));
      });
      return { seconds: round((performance.now() - t0) / 1000, 2), scheduleLag: lagMs.length ? latencyOf(lagMs) : null };
    };
    try {
      // 1. The bare path: 3 × N signed POSTs, SEND_CONCURRENCY in flight per receiver.
      const bare = await Promise.all([1, 2, 3].map((i) => receiver(`bare${i}`)));
      stops.push(async () => { for (const r of bare) await r.close(); });
      const bareSecret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
      const signer = new Webhook(bareSecret);
      const at = new Date();
      const tb = performance.now();
      await Promise.all(bare.map((r) => forEachConcurrently(Array.from({ length: config.events }, (_, i) => i), SEND_CONCURRENCY, async (i) => {
        const id = randomUUID();
        const body = JSON.stringify({ type: 'document_batch.finished', timestamp: new Date().toISOString(), data: { batchId: id, done: i, failed: 0 } });
        const res = await fetch(r.url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signer.sign(id, at, body) } });
        await res.text();
      })));
      const bareSeconds = round((performance.now() - tb) / 1000, 2);
      const bareReceived = bare.reduce((a, r) => a + r.ok.size, 0);
      log(`bare: ${bareReceived} signed POSTs in ${bareSeconds} s (${round(bareReceived / bareSeconds, 0)}/s)`);

      // 2. Docket under load.
      const healthy = await Promise.all([1, 2, 3].map((i) => receiver(`healthy${i}`)));
      const flaky = await receiver('flaky', { flaky: true });
      const down = await receiver('down', { down: true });
      const all = [...healthy, flaky, down];
      stops.push(async () => { for (const r of all) await r.close().catch(() => undefined); });
      // One link secret for both: the API seals the endpoints' signing secrets with a key derived from it, the worker opens them.
      const env = { ...config.env, LINK_SIGNING_SECRET: process.env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex') };
      const worker = await startWorker(stack, 'webhooks', env);
      stops.push(worker.stop);
      const api = await stack.startApi(env);
      stops.push(api.stop);
      await waitForPoller(stack, worker, WEBHOOKS_TASK_QUEUE);
      const call = apiCaller(api, stack.apiKey, stops);
      const secrets = new Map<Receiver, string>();
      const endpointIds: string[] = [];
      for (const r of all) {
        const e = await call('POST', '/v1/webhook-endpoints', { url: r.url, eventTypes: ['*'], description: `bench ${r.name}` }, 201);
        secrets.set(r, e.secret);
        endpointIds.push(e.id);
      }
      const groups = { ...stack.processGroups(api), worker: () => processTree(worker.pid) };
      const meter = cpuMeter(groups);
      const load = await writeEvents(config.events, config.seconds);
      log(`wrote ${config.events} events in ${load.seconds} s (schedule lag ${JSON.stringify(load.scheduleLag)})`);
      const healthyAfterLoadS = await waitUntil('every event at the healthy receivers', () => healthy.every((r) => r.ok.size >= config.events));
      const loadCpu = meter();
      const latencies = healthy.flatMap((r) => r.latencies);
      const latency = latencyOf(latencies);
      log(`healthy receivers complete ${healthyAfterLoadS} s after the last event was written; latency ${JSON.stringify(latency)}; flaky has ${flaky.ok.size}, down saw nothing`);

      // 3. Recovery.
      await down.listen();
      const recoveryS = await waitUntil('every event at every receiver after recovery', () => all.every((r) => r.ok.size >= config.events));
      await sleep(3000);
      const perReceiver = all.map((r) => ({ name: r.name, distinct: r.ok.size, duplicates: duplicatesOf(r), requests: r.requests }));
      log(`recovered: all receivers complete ${recoveryS} s after the down one came up: ${JSON.stringify(perReceiver)}`);
      const states = await sequelize.query<{ status: string; count: string }>(
        'SELECT status, count(*) FROM webhook_deliveries WHERE endpoint_id IN (:ids) GROUP BY status', { replacements: { ids: endpointIds }, type: 'SELECT' as never });
      const memory = worker.memory();
      // What the relay's reads cost at steady state (everything made already): each second's (RELAY_SHORT_SAFETY_MS back)
      // and the deep one's every RELAY_DEEP_EVERY_MS (RELAY_SAFETY_MS back).
      const [{ last }] = await sequelize.query<{ last: string }>('SELECT id AS last FROM events WHERE tenant_id = :tenantId ORDER BY id DESC LIMIT 1', { replacements: { tenantId }, type: 'SELECT' as never });
      const lastMs = Number.parseInt(last.replace(/-/g, '').slice(0, 12), 16);
      const relayReadMs = async (backMs: number) => {
        const plan = await sequelize.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, FORMAT TEXT) ${RELAY_PAIRS_SQL}`,
          { bind: [tenantId, uuidV7Floor(lastMs - backMs), 2000], type: 'SELECT' as never });
        return Number(/Execution Time: ([\d.]+) ms/.exec(plan.map((p) => p['QUERY PLAN']).join('\n'))?.[1] ?? NaN);
      };
      const relayRead = { shortMs: await relayReadMs(RELAY_SHORT_SAFETY_MS), deepMs: await relayReadMs(RELAY_SAFETY_MS) };
      log(`relay reads at steady state: ${JSON.stringify(relayRead)}`);

      // Histories stay bounded: the longest among the endpoint workflows' runs.
      const temporal = await connectTemporal(stack.temporalAddress, 'default');
      stops.push(() => temporal.connection.close());
      const histories: number[] = [];
      for await (const w of temporal.client.workflow.list({ query: `WorkflowType = 'webhookEndpointWorkflow' OR WorkflowType = 'webhookRelayWorkflow'` })) histories.push(w.historyLength);

      // Signatures: each receiver's sample verifies with its endpoint's secret.
      let verified = 0;
      let sampled = 0;
      for (const r of all) {
        for (const s of r.samples) {
          sampled++;
          try { new Webhook(secrets.get(r)!).verify(s.body, s.headers); verified++; } catch { /* counted as not verified */ }
        }
      }

      // 4. Drain: N events at once to three fresh endpoints (the five above disabled).
      for (const id of endpointIds) await call('PATCH', `/v1/webhook-endpoints/${id}`, { enabled: false });
      const drain = await Promise.all([1, 2, 3].map((i) => receiver(`drain${i}`)));
      stops.push(async () => { for (const r of drain) await r.close(); });
      for (const r of drain) await call('POST', '/v1/webhook-endpoints', { url: r.url, eventTypes: ['*'] }, 201);
      const td = performance.now();
      const drainWrite = await writeEvents(config.events, 0);
      await waitUntil('the drain', () => drain.every((r) => r.ok.size >= config.events));
      const drainSeconds = round((performance.now() - td) / 1000, 2);
      const drainDuplicates = drain.reduce((a, r) => a + duplicatesOf(r), 0);
      log(`drain: ${3 * config.events} deliveries in ${drainSeconds} s (writing took ${drainWrite.seconds} s); bare ${bareSeconds} s`);

      const everyOnce = all.every((r) => r.ok.size === config.events) && perReceiver.every((r) => r.duplicates === 0);
      const targets = [
        judge('healthy endpoints: event → receipt p99', latency.p99, '<', 5000, 'ms'),
        judge('healthy endpoints: events received', healthy.reduce((a, r) => a + r.ok.size, 0), '==', 3 * config.events, 'events'),
        judge('after recovery: every endpoint has every event exactly once', everyOnce ? 1 : 0, '==', 1, 'bool'),
        judge('signatures verified (sample)', sampled ? round(verified / sampled, 3) : NaN, '==', 1, 'ratio'),
        judge('drain time: Docket / bare signed POST loop', round(drainSeconds / bareSeconds, 3), '<=', round(1 / 0.7, 3), 'ratio'),
        judge('worker peak RSS', memory.peakRssMb, '<', 500, 'MB'),
        judge('longest history among the webhook workflows\' runs', histories.length ? Math.max(...histories) : NaN, '<=', 10_000, 'events'),
      ];
      const summary = [
        `bare signed POST loop (${SEND_CONCURRENCY} in flight per receiver, 3 receivers): ${bareReceived} in ${bareSeconds} s = ${round(bareReceived / bareSeconds, 0)}/s`,
        `load: ${config.events} events over ${load.seconds} s (${config.writers} writers, schedule lag p99 ${load.scheduleLag?.p99} ms) to 5 endpoints`,
        `healthy (3): latency event → receipt p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms over ${latencies.length}; complete ${healthyAfterLoadS} s after the last write`,
        `recovery: complete ${recoveryS} s after the down receiver came up; per receiver ${perReceiver.map((r) => `${r.name} ${r.distinct} distinct/${r.duplicates} dup/${r.requests} requests`).join(', ')}`,
        `delivery states: ${states.map((s) => `${s.status} ${s.count}`).join(', ')}; signatures ${verified}/${sampled} verified`,
        `drain: ${3 * config.events} deliveries in ${drainSeconds} s = ${round((3 * config.events) / drainSeconds, 0)}/s (${drainDuplicates} duplicates); Docket / bare ${round(drainSeconds / bareSeconds, 2)}`,
        `relay reads at steady state (everything made already): each second's, ${RELAY_SHORT_SAFETY_MS / 1000} s back, ${relayRead.shortMs} ms; every ${RELAY_DEEP_EVERY_MS / 1000} s, ${RELAY_SAFETY_MS / 1000} s back, ${relayRead.deepMs} ms`,
        `worker peak RSS ${memory.peakRssMb} MB; histories (runs) ${histories.length}, longest ${histories.length ? Math.max(...histories) : '–'}`,
        `CPU during the load, % of a core: ${Object.entries(loadCpu.cores).map(([k, v]) => `${k} ${v}`).join(', ')} (machine ${loadCpu.machineBusyPct} % busy)`,
      ].join('\n');
      return {
        suite: 'events', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: {
          bare: { posts: bareReceived, seconds: bareSeconds }, load, relayRead, latency, healthyAfterLoadS, recoveryS, perReceiver, states, memory, histories,
          signatures: { verified, sampled }, drain: { deliveries: 3 * config.events, seconds: drainSeconds, duplicates: drainDuplicates, write: drainWrite }, cpu: loadCpu,
        },
        targets, summary,
      };
    } finally {
      await stopAll(stops);
    }
  },
};
