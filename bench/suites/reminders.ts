// Suite "reminders": the reminders issue's targets.
//  1. Pending reminders: create BENCH_REMINDERS_PENDING (issue: 100,000) one-off reminders due in a day
//     through POST /v1/reminders, with a worker (WORKER_QUEUES=reminders) as its own process; create
//     rate (target ≥ 300/s), then worker RSS once every workflow has written its first state (target < 1.5 GB).
//  2. Firing lateness: BENCH_REMINDERS_SAME_MINUTE (issue: 5,000) in-app reminders due spread over one
//     minute; lateness = the delivery's logged time − its due time (target p99 < 1 s).
// Every phase is bounded in time, so the suite ends even when a target is far off.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { QueryTypes } from 'sequelize';
import { User } from '../../db';
import { REMINDERS_TASK_QUEUE } from '../../workflows/reminders.api';
import { cpuMeter, processTree } from '../lib/cpu';
import { runConcurrent, table } from '../lib/measure';
import { BenchStack, log, ProcMemory } from '../lib/stack';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';
import { latencyOf, request, startWorker, waitForPoller } from '../lib/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const reminders: Suite = {
  name: 'reminders',
  description: 'create rate and worker RSS with many pending reminders; firing lateness of reminders due in the same minute',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      pending: envInt('BENCH_REMINDERS_PENDING', 100_000),
      createConcurrency: envInt('BENCH_REMINDERS_CREATE_CONCURRENCY', 50),
      createBudgetSeconds: envInt('BENCH_REMINDERS_CREATE_BUDGET_SECONDS', 120),
      settleWaitSeconds: envInt('BENCH_REMINDERS_SETTLE_WAIT_SECONDS', 120),
      sameMinute: envInt('BENCH_REMINDERS_SAME_MINUTE', 5000),
      fireWaitSeconds: envInt('BENCH_REMINDERS_FIRE_WAIT_SECONDS', 120),
      worker: { queues: 'reminders', env: { NODE_ENV: 'production', LOG_LEVEL: 'warn' } },
    };
    const startedAt = new Date().toISOString();
    const { sequelize, tenantId } = stack;
    const recipient = await User.create({ id: randomUUID(), tenantId, email: 'reminded@bench.local', name: 'Reminded', active: true });
    const scalar = async (sql: string, replacements: Record<string, unknown> = {}) =>
      Number((await sequelize.query<{ n: string }>(sql, { replacements: { tenantId, ...replacements }, type: QueryTypes.SELECT }))[0].n);

    const stops: (() => Promise<void>)[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: config.createConcurrency + 10 });
    stops.push(async () => { agent.destroy(); });
    try {
      // Production mode needs a link secret even though reminders send no links.
      const linkSecret = { LINK_SIGNING_SECRET: process.env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex') };
      const worker = await startWorker(stack, 'reminders', linkSecret);
      stops.push(worker.stop);
      const api = await stack.startApi(linkSecret);
      stops.push(api.stop);
      await waitForPoller(stack, worker, REMINDERS_TASK_QUEUE);
      log(`worker pid ${worker.pid} polling ${REMINDERS_TASK_QUEUE}; API ${api.url}`);
      const groups = () => ({ ...stack.processGroups(api), worker: () => processTree(worker.pid) });
      const memory: Record<string, ProcMemory> = { workerIdle: worker.memory() };
      const create = async (body: Record<string, unknown>) => {
        const r = await request(agent, api, 'POST', '/v1/reminders', stack.apiKey, body, 30_000);
        if (r.status !== 201) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 150)}`);
      };

      // 1. Pending reminders ------------------------------------------------------------------------
      const due = new Date(Date.now() + 86_400_000).toISOString();
      log(`creating ${config.pending} pending reminders, ${config.createConcurrency} in flight, budget ${config.createBudgetSeconds} s`);
      const createMeter = cpuMeter(groups());
      const creates = await runConcurrent(config.pending, config.createConcurrency, (i) => create({
        subject: `pending ${i}`, channels: ['in_app'], recipients: { users: [recipient.id] }, dueAt: due, offsets: [60, 0],
      }), Date.now() + config.createBudgetSeconds * 1000);
      const createCpu = createMeter();
      memory.workerAfterCreates = worker.memory();
      log(`created ${creates.ok} in ${creates.seconds} s (${creates.perSecond}/s, p99 ${creates.latencyMs.p99} ms)`);
      const settled = async () => scalar("SELECT count(*) AS n FROM reminders WHERE tenant_id = :tenantId AND state_version >= 0 AND subject LIKE 'pending %'");
      const settleDeadline = Date.now() + config.settleWaitSeconds * 1000;
      let running = await settled();
      while (running < creates.ok && Date.now() < settleDeadline && worker.alive()) {
        await sleep(2000);
        running = await settled();
      }
      if (!worker.alive()) throw new Error(`the worker exited:\n${worker.output()}`);
      memory.workerWithPending = worker.memory();
      log(`${running}/${creates.ok} reminder workflows have written their first state; worker RSS ${memory.workerWithPending.rssMb} MB (peak ${memory.workerWithPending.peakRssMb})`);

      // 2. Same-minute firing -------------------------------------------------------------------------
      // Due times start once all are expected to be created (at the measured rate, with margin), spread over one minute.
      const expectedCreateMs = (config.sameMinute / Math.max(1, creates.perSecond)) * 1500 + 10_000;
      const t0 = Math.ceil((Date.now() + expectedCreateMs) / 1000) * 1000;
      log(`creating ${config.sameMinute} reminders due between ${new Date(t0).toISOString()} and +60 s`);
      const tag = randomUUID().slice(0, 8);
      const fireCreates = await runConcurrent(config.sameMinute, config.createConcurrency, (i) => create({
        subject: `fire-${tag} ${i}`, channels: ['in_app'], recipients: { users: [recipient.id] },
        dueAt: new Date(t0 + Math.floor((i * 60_000) / config.sameMinute)).toISOString(),
      }), t0 - 1000);
      const lateCreates = Date.now() > t0;
      const fireMeter = cpuMeter(groups());
      const fired = async () => scalar('SELECT count(*) AS n FROM reminder_delivery_attempts a JOIN reminders r ON r.id = a.reminder_id WHERE r.tenant_id = :tenantId AND a.status = \'sent\' AND r.subject LIKE :like', { like: `fire-${tag} %` });
      const fireDeadline = t0 + 60_000 + config.fireWaitSeconds * 1000;
      let delivered = 0;
      while ((delivered = await fired()) < fireCreates.ok && Date.now() < fireDeadline && worker.alive()) await sleep(2000);
      const fireCpu = fireMeter();
      memory.workerAfterFiring = worker.memory();
      const lateness = (await sequelize.query<{ ms: number }>(
        `SELECT extract(epoch FROM (a.at - r.due_at)) * 1000 AS ms FROM reminder_delivery_attempts a JOIN reminders r ON r.id = a.reminder_id
         WHERE r.tenant_id = :tenantId AND a.status = 'sent' AND r.subject LIKE :like`,
        { replacements: { tenantId, like: `fire-${tag} %` }, type: QueryTypes.SELECT },
      )).map((r) => Number(r.ms));
      const late = latencyOf(lateness);
      log(`${delivered}/${fireCreates.ok} delivered; lateness p50 ${late.p50} ms, p99 ${late.p99} ms, max ${late.max} ms`);
      const workerPeak = Math.max(...Object.values(memory).map((m) => m.peakRssMb));

      const targets = [
        judge(`create rate (${creates.ok} reminders)`, creates.perSecond, '>=', 300, 'reminders/s'),
        judge(`reminders created (of ${config.pending}, within ${config.createBudgetSeconds} s)`, creates.ok, '==', config.pending, 'reminders'),
        judge(`worker peak RSS with ${running} pending reminders`, workerPeak, '<', 1536, 'MB'),
        judge(`firing lateness p99 (${delivered} due in one minute)`, lateness.length ? late.p99 : NaN, '<', 1000, 'ms'),
        judge('same-minute reminders delivered', delivered, '==', config.sameMinute, 'reminders'),
      ];
      const summary = [
        table(['phase', 'ok', 'failed', 'seconds', 'per s', 'p50 ms', 'p99 ms'], [
          [`POST /v1/reminders ×${config.createConcurrency} (pending)`, creates.ok, creates.failed, creates.seconds, creates.perSecond, creates.latencyMs.p50, creates.latencyMs.p99],
          [`POST /v1/reminders ×${config.createConcurrency} (same minute)`, fireCreates.ok, fireCreates.failed, fireCreates.seconds, fireCreates.perSecond, fireCreates.latencyMs.p50, fireCreates.latencyMs.p99],
        ]),
        ...(Object.keys(creates.errors).length ? [`create errors: ${JSON.stringify(creates.errors)}`] : []),
        ...(lateCreates ? ['WARNING: the same-minute reminders were still being created when the first fell due; lateness includes that'] : []),
        `firing lateness (ms): p50 ${late.p50}, p95 ${late.p95}, p99 ${late.p99}, max ${late.max}, mean ${late.mean} over ${lateness.length} deliveries`,
        table(['memory (MB)', 'VmRSS', 'VmHWM (peak)'], Object.entries(memory).map(([k, v]) => [k, v.rssMb, v.peakRssMb])),
        `cpu: creates ${JSON.stringify(createCpu)}; firing ${JSON.stringify(fireCpu)}`,
      ].join('\n');
      return {
        suite: 'reminders', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: { creates, createCpu, settledWorkflows: running, fireCreates, delivered, latenessMs: late, fireCpu, memoryMb: memory, workerPeakRssMb: workerPeak, t0: new Date(t0).toISOString() },
        targets, summary,
      };
    } finally {
      while (stops.length) {
        try {
          await stops.pop()!();
        } catch (err) {
          log(`stopping failed: ${(err as Error).message}`);
        }
      }
    }
  },
};
