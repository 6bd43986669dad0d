// Experiment, not a suite: what this machine's Temporal dev server does with nothing of Docket in the way.
// It bounds what two targets can reach here: the approvals "sign" target (p95 < 150 ms at 50 concurrent
// approvers: a sign is an Update round trip plus Docket's validation, read-model write and HTTP) and the
// reminders "lateness" target (p99 < 1 s for 5,000 due in one minute: a firing is a timer's workflow task
// plus Docket's delivery write).
//
//   npx tsx bench/experiments/temporal-ceiling.ts [updates] [timers]     (both when none is named)
//
// Stands up its own dev server (as `npm run bench` does) — or, with TEMPORAL_ADDRESS set, uses that server (e.g.
// the real one of `npm run stack:cluster`; TEMPORAL_NAMESPACE, and TEMPORAL_SERVER_PID to meter its CPU) — and an in-process worker (sticky cache 250, Docket's
// default) for the minimal workflows of temporal-ceiling.workflow.ts, then:
//   updates — starts TEMPORAL_CEILING_WORKFLOWS (3,000) and runs two closed loops of TEMPORAL_CEILING_UPDATES
//             (2,000) Updates, TEMPORAL_CEILING_CONCURRENCY (50) in flight:
//             spread — each on a different workflow, most outside the cache (as the approvals sign phase);
//             cached — each lane on one workflow again and again, always in the cache;
//   timers  — starts TEMPORAL_CEILING_TIMERS (5,000) workflows due spread over one minute that begins once all
//             are started, and reports how late each one's timer task ran (as the reminders firing phase).
//   floor   — the same timers, each then recording its firing in Postgres (one INSERT … ON CONFLICT DO NOTHING in
//             a local activity; an embedded Postgres of its own): the least a durable delivery adds. Run with
//             `timers` (`timers floor`), the two are measured in the same run: what any reminder design that
//             writes its delivery can reach on this machine, against the bare server (floor, bare, floor again).
//   updates-floor — as `updates`' spread loop, on workflows whose Update records itself in Postgres the same way
//             before it answers: the least a durable sign adds (`updates updates-floor` for both in one run: the
//             writing loop then runs before and after the bare ones, each time on other workflows).
// TEMPORAL_CEILING_WORKER_PROCESS=1 runs the worker as a process of its own (minimal-worker.ts), metered apart from the
// load generator: in one process the two share a core, which the writing loops' floors cannot tell from the write.
// Writes bench/results/temporal-ceiling-<time>-<revision>-<dev|real>.json (the server kind: TEMPORAL_CEILING_TAG, else
// "dev" for its own dev server and "external"), so the dev and the real server's figures are kept side by side.
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { PROJECT_ROOT } from '../../lib/paths';
import { freePort, startTemporalDevServer } from '../../scripts/stack';
import { processTree } from '../lib/cpu';
import { runConcurrent } from '../lib/measure';
import { gitRevision, writeResultFile } from '../lib/provenance';
import { fireTimers } from '../lib/timers';
import { runUpdates, spread, startCeilingWorkflows } from '../lib/updates';
import { spawnMinimalWorker, waitForPoller, WorkerProcess } from '../lib/worker';
import fs from 'node:fs';
import { Pool } from 'pg';
import { startEmbeddedPostgres } from '../../scripts/stack';
import { floorActivities } from './minimal-worker';
import { ceilingWriteWorkflow } from './temporal-ceiling.workflow';

// tsx turns Node's source maps on; a deployed worker runs without them (see benchEntry in bench/lib/stack.ts).
process.setSourceMapsEnabled(false);

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const WORKFLOWS = env('TEMPORAL_CEILING_WORKFLOWS', 3000);
const UPDATES = env('TEMPORAL_CEILING_UPDATES', 2000);
const CONCURRENCY = env('TEMPORAL_CEILING_CONCURRENCY', 50);
const TIMERS = env('TEMPORAL_CEILING_TIMERS', 5000);
const WORKER_PROCESS = process.env.TEMPORAL_CEILING_WORKER_PROCESS === '1';
const log = (m: string) => console.log(`[ceiling] ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (v: number) => `${v.toFixed(1)} ms`;

async function main(): Promise<void> {
  const which = process.argv.slice(2);
  const run = (name: string) => !which.length || which.includes(name);
  const external = process.env.TEMPORAL_ADDRESS;
  const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
  const temporal = external ? undefined : await startTemporalDevServer({ port: await freePort(), log });
  const address = external ?? temporal!.address;
  const serverPid = external ? Number(process.env.TEMPORAL_SERVER_PID) || undefined : temporal!.process.pid!;
  log(`server: ${external ? `${address} (TEMPORAL_ADDRESS)` : `dev server at ${address}`}, namespace ${namespace}`);
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const nativeConnection = await NativeConnection.connect({ address });
  const taskQueue = 'temporal-ceiling';
  // Ids of their own per run: a server that keeps its data (the real one) still has the last run's.
  const run0 = Date.now().toString(36);
  // The floor's Postgres: the firings table only (one primary key, as the delivery ledger's).
  const tmp = run('floor') || run('updates-floor') ? fs.mkdtempSync(path.join(os.tmpdir(), 'ceiling-pg-')) : undefined;
  if (tmp) fs.chmodSync(tmp, 0o755); // as root, the embedded Postgres runs as `postgres`, which must reach its data dir
  const pgDir = tmp && path.join(tmp, 'pg');
  const postgres = pgDir ? await startEmbeddedPostgres({ dir: pgDir, port: await freePort(), persistent: false }) : undefined;
  const pool = postgres ? new Pool({ connectionString: postgres.url, max: 10 }) : undefined;
  pool?.on('error', () => undefined); // an idle client's connection ended as Postgres stops is no failure of the run
  await pool?.query('CREATE TABLE records (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
  // The worker: in this process (the default, as every run before 2026-12-03 16:00 UTC), or a process of its own.
  let stopWorker: () => Promise<void>;
  let workerGroup: Record<string, () => number[]>;
  if (WORKER_PROCESS) {
    const child: WorkerProcess = spawnMinimalWorker({ address, namespace, taskQueue, cache: 250, ...(postgres ? { floorDatabaseUrl: postgres.url } : {}) });
    stopWorker = child.stop;
    await waitForPoller({ temporalAddress: address }, child, taskQueue, namespace);
    log(`worker pid ${child.pid} polling ${taskQueue}`);
    workerGroup = { bench: () => [process.pid], worker: () => processTree(child.pid) };
  } else {
    const worker = await Worker.create({
      connection: nativeConnection, namespace, taskQueue, maxCachedWorkflows: 250,
      workflowsPath: path.join(__dirname, 'temporal-ceiling.workflow.ts'),
      ...(pool ? { activities: floorActivities(pool) } : {}),
    });
    const running = worker.run();
    stopWorker = async () => { worker.shutdown(); await running; };
    workerGroup = { 'bench+worker': () => [process.pid] };
  }
  const groups = {
    temporal: () => (serverPid ? processTree(serverPid) : []), ...workerGroup,
    ...(pgDir ? { postgres: () => processTree(Number(fs.readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0])) } : {}),
  };
  const startedAt = new Date().toISOString();
  const results: Record<string, unknown> = {};
  try {
    if (run('updates') || run('updates-floor')) {
      const writing = Array.from({ length: run('updates-floor') ? WORKFLOWS : 0 }, (_, i) => `writing-${run0}-${i}`);
      await runConcurrent(writing.length, 50, async (i) => { await client.workflow.start(ceilingWriteWorkflow, { taskQueue, workflowId: writing[i] }); });
      // Their first workflow tasks run (the worker goes idle) before anything is measured: at ~100 a second here
      // (startCeilingWorkflows waits for its own).
      await sleep(10 * writing.length);
      const { ids, starts } = await startCeilingWorkflows(client, { count: WORKFLOWS, taskQueue, idPrefix: `ceiling-${run0}` });
      log(`started ${starts.ok} workflows at ${starts.perSecond}/s`);
      results.starts = { ok: starts.ok, total: starts.total, perSecond: starts.perSecond, latencyMs: starts.latencyMs };
      // With both, the writing loop runs before and after the bare ones (A B A), so neither side has the quieter turn.
      const modes = [
        ...(writing.length ? ['spread, writing'] as const : []), ...(run('updates') ? ['spread', 'cached'] as const : []),
        ...(writing.length && run('updates') ? ['spread, writing, again'] as const : []),
      ];
      for (const mode of modes) {
        const pick = mode === 'spread' ? spread(ids) : mode === 'cached' ? (i: number) => ids[i % CONCURRENCY] : spread(writing, mode === 'spread, writing' ? 0 : UPDATES);
        const r = await runUpdates(client, { updates: UPDATES, concurrency: CONCURRENCY, pick, groups });
        results[`updates ${mode}`] = r;
        log(`updates ${mode}: ${r.ok}/${r.total} at ${r.perSecond}/s, p50 ${ms(r.p50Ms)}, p95 ${ms(r.p95Ms)}, p99 ${ms(r.p99Ms)}; CPU % of a core ${JSON.stringify(r.cpu.cores)}; machine ${r.cpu.machineBusyPct} % busy`);
      }
    }
    // With both, the floor runs before and after the bare timers (A B A): the dev server slows as it fills, and the
    // mean of the two floors has the bare run's share of that.
    const timerModes = run('floor') && run('timers') ? ['floor', 'timers', 'floor, again'] as const : run('floor') ? ['floor'] as const : run('timers') ? ['timers'] as const : [];
    for (const mode of timerModes) {
      const probe = Date.now();
      const prefix = `${mode === 'timers' ? 'timers' : 'floor'}-${probe}`;
      const r = await fireTimers(client, {
        count: TIMERS, taskQueue, idPrefix: prefix, groups, write: mode !== 'timers',
        ...(pool && mode !== 'timers' ? { written: async () => Number((await pool.query('SELECT count(*) AS n FROM records WHERE id LIKE $1', [`${prefix}-%`])).rows[0].n) } : {}),
      });
      results[mode] = r;
      log(`${mode}: started at ${r.starts}/s; ${r.fired} fired, the last ${r.firedOverSeconds} s after the first was due; lateness p50 ${ms(r.latenessMs.p50)}, p95 ${ms(r.latenessMs.p95)}, p99 ${ms(r.latenessMs.p99)}, max ${ms(r.latenessMs.max)}; firing took ${r.cpu.seconds} s; CPU % of a core ${JSON.stringify(r.cpu.cores)}; machine ${r.cpu.machineBusyPct} % busy`);
    }
    const machine = `${os.cpus().length} × ${os.cpus()[0]?.model}, node ${process.version}`;
    log(`machine: ${machine}`);
    const tag = process.env.TEMPORAL_CEILING_TAG || (external ? 'external' : 'dev');
    const json = JSON.stringify({ experiment: 'temporal-ceiling', startedAt, finishedAt: new Date().toISOString(), server: { address, namespace, kind: tag }, machine,
      config: { workflows: WORKFLOWS, updates: UPDATES, concurrency: CONCURRENCY, timers: TIMERS, worker: WORKER_PROCESS ? 'own process' : 'in process' }, results }, null, 2);
    const revision = gitRevision();
    log(`results written to ${writeResultFile(path.join(PROJECT_ROOT, 'bench', 'results'), { suite: 'temporal-ceiling', startedAt, revision, processes: {}, tag }, `${json}\n`)}`);
  } finally {
    await stopWorker();
    await nativeConnection.close();
    await connection.close();
    await temporal?.stop();
    await pool?.end();
    await postgres?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
