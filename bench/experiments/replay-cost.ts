// Experiment, not a suite: worker CPU per sign and per reminder firing, on a workflow in the worker's sticky
// cache (hit) and on one that is not (miss: replayed from its history first) — issue #18's "worker cost per task".
//
//   npx tsx bench/experiments/replay-cost.ts            (REPLAY_COST_N=200 tasks per phase, REPLAY_COST_WARM=30 first)
//
// Stands up the bench stack (embedded Postgres, Temporal dev server, the API and the worker compiled, as
// `npm run bench` runs them; BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles each worker), then:
//   signs, hit   — worker A (cache 1,000) opens 2 × (WARM + N) approval flows (one stage, quorum 2 of 3), then
//                  one approver signs WARM of them (JIT warm-up, not counted) and N more, 4 in flight;
//   signs, miss  — worker B replaces A with a sticky cache of REPLAY_COST_MISS_CACHE (10): every sign lands on a
//                  flow it has not seen (replay) and evicts another, as at 10,000 open flows and a cache of 250;
//   firings, hit — worker C (cache 1,000) creates WARM + N reminders due together and fires them itself;
//   firings, miss— the next WARM + N reminders are created, worker D (cache 10) replaces C before they fall due.
//   bare         — the same four on the SDK alone (minimal-worker.ts: the minimal workflows of
//                  temporal-ceiling.workflow.ts, SDK defaults, no activity): an Update instead of a sign, a bare
//                  timer instead of a reminder; the floor a Docket task's cost is read against.
// Per phase: the worker process's CPU (utime + stime from /proc, all threads) over the measured tasks, minus its
// idle rate (pollers) over the same time, divided by N. CPU time is less disturbed by other work than wall time, but
// not immune: each phase records the machine's load average, so a run on a busy machine can be told by its file.
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { ApiKey, Role, User, UserRole } from '../../db';
import { generateApiKey } from '../../domains/identity/keys';
import { PROJECT_ROOT } from '../../lib/paths';
import { APPROVALS_TASK_QUEUE } from '../../workflows/approvals.api';
import { REMINDERS_TASK_QUEUE } from '../../workflows/reminders.api';
import { runConcurrent } from '../lib/measure';
import { gitRevision } from '../lib/provenance';
import { connectTemporal } from '../../lib/temporal';
import { ApiProcess, log, round, startStack } from '../lib/stack';
import { request, spawnMinimalWorker, startWorker, waitForPoller, WorkerProcess } from '../lib/worker';
import { bump, ceilingWorkflow, timerWorkflow } from './temporal-ceiling.workflow';

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const N = env('REPLAY_COST_N', 200);
const WARM = env('REPLAY_COST_WARM', 30);
const MISS_CACHE = env('REPLAY_COST_MISS_CACHE', 10);
const LEAD_MS = env('REPLAY_COST_LEAD_SECONDS', 60) * 1000;
const CONCURRENCY = 4;
/** REPLAY_COST_PHASES=signs (or firings, or bare) runs only those phases. */
const PHASES = process.env.REPLAY_COST_PHASES ?? 'signs,firings,bare';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HZ = 100; // CLK_TCK on Linux

/** utime + stime of one process (all its threads), in ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / HZ;
}

/** The worker's idle CPU rate (ms of CPU per s: pollers, timers), once it has gone quiet. */
async function idleRate(w: WorkerProcess): Promise<number> {
  // Quiet: under 5 % of a core for two seconds running.
  for (let i = 0; i < 60; i++) {
    const c = cpuMs(w.pid);
    await sleep(2000);
    if (cpuMs(w.pid) - c < 100) break;
  }
  const c0 = cpuMs(w.pid);
  const t0 = Date.now();
  await sleep(4000);
  return (cpuMs(w.pid) - c0) / ((Date.now() - t0) / 1000);
}

interface Phase { phase: string; tasks: number; seconds: number; workerCpuMs: number; idleMsPerS: number; cpuMsPerTask: number; rawCpuMsPerTask: number; machineLoadAvg1: number }

async function measure(name: string, w: WorkerProcess, tasks: number, run: () => Promise<void>): Promise<Phase> {
  const idle = await idleRate(w);
  const c0 = cpuMs(w.pid);
  const t0 = Date.now();
  await run();
  // The work a task leaves behind (its write's completion, a follow-up workflow task) belongs to it.
  for (;;) {
    const c = cpuMs(w.pid);
    await sleep(1000);
    if (cpuMs(w.pid) - c <= Math.max(20, idle * 2)) break;
  }
  const seconds = (Date.now() - t0) / 1000;
  const used = cpuMs(w.pid) - c0;
  const net = used - idle * seconds;
  const phase: Phase = {
    phase: name, tasks, seconds: round(seconds, 1), workerCpuMs: round(used), idleMsPerS: round(idle, 1),
    cpuMsPerTask: round(net / tasks, 2), rawCpuMsPerTask: round(used / tasks, 2), machineLoadAvg1: round(os.loadavg()[0], 2),
  };
  log(`${name}: ${phase.cpuMsPerTask} ms of worker CPU per task net of idle (${phase.rawCpuMsPerTask} raw; ${tasks} tasks in ${phase.seconds} s; idle ${phase.idleMsPerS} ms/s; load ${phase.machineLoadAvg1})`);
  return phase;
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const stack = await startStack();
  const stops: (() => Promise<void>)[] = [async () => stack.stop()];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const phases: Phase[] = [];
  const memory: Record<string, unknown> = {};
  try {
    const { sequelize, tenantId } = stack;
    const linkSecret = process.env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex');
    // One role of three approvers (sign + read), each with an API key.
    const approvers = await sequelize.transaction(async (transaction) => {
      const role = { id: randomUUID(), tenantId, key: 'replay-team', title: 'Replay team', permissions: ['approvals.flow.sign', 'approvals.flow.read'] };
      await Role.create(role, { transaction });
      const users = Array.from({ length: 3 }, (_, m) => ({ id: randomUUID(), tenantId, email: `replay-${m}@bench.local`, name: `Replay ${m}`, active: true }));
      await User.bulkCreate(users, { transaction });
      await UserRole.bulkCreate(users.map((u) => ({ userId: u.id, roleId: role.id, tenantId })), { transaction });
      const keys = users.map((u) => ({ u, k: generateApiKey() }));
      await ApiKey.bulkCreate(keys.map(({ u, k }) => ({
        id: randomUUID(), tenantId, userId: u.id, name: 'replay approver key', prefix: k.prefix, secretHash: k.secretHash, scopes: null, expiresAt: null,
      })), { transaction });
      return keys.map(({ u, k }) => ({ id: u.id, key: k.secret }));
    });
    const api: ApiProcess = await stack.startApi({ LINK_SIGNING_SECRET: linkSecret });
    stops.push(api.stop);
    const call = async (method: string, p: string, key: string, body?: unknown, expect = 200) => {
      const r = await request(agent, api, method, p, key, body, 60_000);
      if (r.status !== expect) throw new Error(`${method} ${p}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
      return JSON.parse(r.body) as { id: string };
    };
    let current: WorkerProcess | undefined;
    const worker = async (cache: number): Promise<WorkerProcess> => {
      if (current) await current.stop();
      const w = await startWorker(stack, 'approvals,approval-notifications,reminders', { LINK_SIGNING_SECRET: linkSecret, WORKER_MAX_CACHED_WORKFLOWS: String(cache) });
      stops.push(w.stop);
      await waitForPoller(stack, w, APPROVALS_TASK_QUEUE);
      await waitForPoller(stack, w, REMINDERS_TASK_QUEUE);
      log(`worker pid ${w.pid} polling, sticky cache ${cache} per queue`);
      current = w;
      return w;
    };

    // Signs ------------------------------------------------------------------------------------------
    let w = await worker(1000);
    if (PHASES.includes('signs')) {
      await call('POST', '/v1/approval-templates', stack.apiKey, {
        name: 'Replay requests', objectType: 'replay_request', condition: 'team == 0',
        stages: [{ name: 'Team', approvers: { roles: ['replay-team'] }, rule: 'quorum', quorum: 2 }],
      }, 201);
      const flows: string[] = new Array(2 * (WARM + N));
      const opened = await runConcurrent(flows.length, 16, async (i) => {
        flows[i] = (await call('POST', '/v1/approval-flows', stack.apiKey, { objectType: 'replay_request', objectId: `replay-${i}`, context: { team: 0, total: 1 } }, 201)).id;
      });
      if (opened.failed) throw new Error(`${opened.failed} flows failed to start: ${JSON.stringify(opened.errors)}`);
      for (;;) {
        const [r] = await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM approval_flows WHERE tenant_id = :tenantId AND state_version >= 0`, { replacements: { tenantId }, type: QueryTypes.SELECT });
        if (Number(r.n) >= flows.length) break;
        await sleep(1000);
    }
    log(`${flows.length} flows open`);
    const sign = (ids: string[]) => async () => {
      const r = await runConcurrent(ids.length, CONCURRENCY, async (i) => { await call('POST', `/v1/approval-flows/${ids[i]}/sign`, approvers[0].key, { decision: 'approve' }); });
      if (r.failed) throw new Error(`${r.failed} signs failed: ${JSON.stringify(r.errors)}`);
    };
    const [hitWarm, hit, missWarm, miss] = [flows.slice(0, WARM), flows.slice(WARM, WARM + N), flows.slice(WARM + N, 2 * WARM + N), flows.slice(2 * WARM + N)];
    await sign(hitWarm)();
    phases.push(await measure('sign, cached', w, N, sign(hit)));
    // Every flow is in this worker's cache now: its RSS with 2 × (WARM + N) approval workflows cached.
    memory.approvalsCached = { workflows: flows.length, ...w.memory() };
    w = await worker(MISS_CACHE);
    await sign(missWarm)();
    phases.push(await measure(`sign, not cached (cache ${MISS_CACHE})`, w, N, sign(miss)));
    memory.afterSigns = w.memory();
    }

    // Firings ----------------------------------------------------------------------------------------
    const delivered = async (prefix: string) => {
      const [r] = await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM notifications n JOIN reminders r ON r.id::text = n.source_id
        WHERE n.tenant_id = :tenantId AND n.source_type = 'reminder' AND r.subject LIKE :like`, { replacements: { tenantId, like: `${prefix} %` }, type: QueryTypes.SELECT });
      return Number(r.n);
    };
    /** Creates WARM reminders due at t, then N due from t + 30 s over 5 s (after the warm-up's and the idle rate's measurement). */
    const createReminders = async (prefix: string, t: number) => {
      const r = await runConcurrent(WARM + N, 16, async (i) => {
        const due = i < WARM ? t : t + 30_000 + Math.floor(((i - WARM) * 5000) / N);
        await call('POST', '/v1/reminders', stack.apiKey, { subject: `${prefix} ${i < WARM ? 'warm' : 'measured'} ${i}`, channels: ['in_app'], recipients: { users: [approvers[1].id] }, dueAt: new Date(due).toISOString() }, 201);
      });
      if (r.failed) throw new Error(`${r.failed} reminders failed: ${JSON.stringify(r.errors)}`);
      if (Date.now() > t - 5000) throw new Error(`creating ${prefix}'s reminders took too long (raise REPLAY_COST_LEAD_SECONDS)`);
    };
    const fire = async (name: string, prefix: string, t: number, worker: WorkerProcess) => {
      await sleep(Math.max(0, t - Date.now()));
      while (await delivered(`${prefix} warm`) < WARM) await sleep(500);
      phases.push(await measure(name, worker, N, async () => {
        if (Date.now() > t + 30_000 || await delivered(`${prefix} measured`) > 0) throw new Error('the measured firings began before their measurement: raise the gap after the warm-up');
        while (await delivered(`${prefix} measured`) < N) await sleep(500);
      }));
    };
    if (PHASES.includes('firings')) {
      w = await worker(1000);
      const t1 = Date.now() + LEAD_MS;
      await createReminders('hit', t1);
      await fire('firing, cached', 'hit', t1, w);
      const t2 = Date.now() + LEAD_MS;
      await createReminders('miss', t2);
      // Their first workflow tasks (the first state write) run on the worker that is replaced.
      await idleRate(w);
      w = await worker(MISS_CACHE);
      await fire(`firing, not cached (cache ${MISS_CACHE})`, 'miss', t2, w);
      memory.afterFirings = w.memory();
    }

    // The SDK alone -----------------------------------------------------------------------------------
    if (PHASES.includes('bare')) {
      const queue = 'replay-bare';
      const temporal = await connectTemporal(stack.temporalAddress, 'default');
      stops.push(async () => temporal.connection.close());
      const { client } = temporal;
      let bare: WorkerProcess | undefined;
      const bareWorker = async (cache: number): Promise<WorkerProcess> => {
        if (bare) await bare.stop();
        bare = spawnMinimalWorker({ address: stack.temporalAddress, taskQueue: queue, cache });
        stops.push(bare.stop);
        await waitForPoller(stack, bare, queue);
        log(`bare worker pid ${bare.pid} polling, sticky cache ${cache}`);
        return bare;
      };
      const run0 = Date.now().toString(36);
      let b = await bareWorker(1000);
      const ids = Array.from({ length: 2 * (WARM + N) }, (_, i) => `replay-bare-${run0}-${i}`);
      const started = await runConcurrent(ids.length, 16, async (i) => { await client.workflow.start(ceilingWorkflow, { taskQueue: queue, workflowId: ids[i] }); });
      if (started.failed) throw new Error(`${started.failed} bare workflows failed to start`);
      const update = (slice: string[]) => async () => {
        const r = await runConcurrent(slice.length, CONCURRENCY, async (i) => { await client.workflow.getHandle(slice[i]).executeUpdate(bump, { args: ['bench'] }); });
        if (r.failed) throw new Error(`${r.failed} bare Updates failed: ${JSON.stringify(r.errors)}`);
      };
      await update(ids.slice(0, WARM))();
      phases.push(await measure('bare Update, cached', b, N, update(ids.slice(WARM, WARM + N))));
      b = await bareWorker(MISS_CACHE);
      await update(ids.slice(WARM + N, 2 * WARM + N))();
      phases.push(await measure(`bare Update, not cached (cache ${MISS_CACHE})`, b, N, update(ids.slice(2 * WARM + N))));

      /** WARM timers due at t, then N due from t + 30 s over 5 s, as createReminders spreads the reminders. */
      const startTimers = async (prefix: string, t: number) => {
        const timers = Array.from({ length: WARM + N }, (_, i) => `replay-bare-${run0}-${prefix}-${i}`);
        const r = await runConcurrent(timers.length, 16, async (i) => {
          const due = i < WARM ? t : t + 30_000 + Math.floor(((i - WARM) * 5000) / N);
          await client.workflow.start(timerWorkflow, { taskQueue: queue, workflowId: timers[i], args: [due] });
        });
        if (r.failed) throw new Error(`${r.failed} bare timers failed to start`);
        return timers;
      };
      const results = (slice: string[]) => runConcurrent(slice.length, 50, async (i) => { await client.workflow.getHandle(slice[i]).result(); });
      const fireBare = async (name: string, timers: string[], t: number, worker: WorkerProcess) => {
        await sleep(Math.max(0, t - Date.now()));
        await results(timers.slice(0, WARM));
        phases.push(await measure(name, worker, N, async () => {
          if (Date.now() > t + 30_000) throw new Error('the measured timers began before their measurement: raise the gap after the warm-up');
          await results(timers.slice(WARM));
        }));
      };
      b = await bareWorker(1000);
      const t1 = Date.now() + LEAD_MS;
      await fireBare('bare timer, cached', await startTimers('hit', t1), t1, b);
      const t2 = Date.now() + LEAD_MS;
      const missTimers = await startTimers('miss', t2);
      await idleRate(b); // their first workflow tasks run on the worker that is replaced
      b = await bareWorker(MISS_CACHE);
      await fireBare(`bare timer, not cached (cache ${MISS_CACHE})`, missTimers, t2, b);
      memory.bareAfterTimers = b.memory();
    }

    const result = {
      experiment: 'replay-cost', startedAt, finishedAt: new Date().toISOString(), revision: gitRevision(),
      machine: { cpus: `${os.cpus().length} × ${os.cpus()[0]?.model}`, memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version, note: 'CPU time per task, not wall time; how busy the machine was: each phase\'s machineLoadAvg1' },
      settings: { N, WARM, MISS_CACHE, concurrency: CONCURRENCY, workerNodeArgs: process.env.BENCH_WORKER_NODE_ARGS ?? '', workflowBundle: process.env.WORKFLOW_BUNDLE_PATH ?? 'dist/workflow-bundle.js (or one built from workflows/)', tag: process.env.REPLAY_COST_TAG ?? '' },
      phases, memory,
    };
    const out = path.join(PROJECT_ROOT, 'bench', 'results', `replay-cost-${startedAt.slice(0, 16).replace(/:/g, '')}Z-${result.revision.label}${process.env.REPLAY_COST_TAG ? `-${process.env.REPLAY_COST_TAG}` : ''}.json`);
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    log(`written ${out}`);
  } finally {
    agent.destroy();
    while (stops.length) {
      try { await stops.pop()!(); } catch (err) { log(`stopping failed: ${(err as Error).message}`); }
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
