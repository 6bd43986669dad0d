// Suite "reminders": the reminders issue's targets, with a worker (WORKER_QUEUES=reminders) as its own process.
//  1. Pending reminders: one-off reminders due in a day created through POST /v1/reminders (target ≥ 300/s),
//     next to the raw ceiling of the same Temporal server (client.workflow.start of the same workflow with the
//     same options on a task queue nobody polls), as ABBA blocks with no worker polling either (as the foundation
//     suite's starts: on two cores the worker's first tasks would take CPU from the API's blocks only; each API
//     block's settling, the worker running them, is measured after it); then worker RSS once every created reminder's
//     workflow has run its first task (target < 1.5 GB with the issue's 100,000).
//  2. Firing lateness: BENCH_REMINDERS_SAME_MINUTE (issue: 5,000) in-app reminders due spread over one minute
//     that starts only after all of them are created and settled (the lead time comes from phase 1's rate);
//     lateness = the in-app notification's write time − the due time (target p99 < 1 s). Its baseline, #18's
//     "firing: Docket / bare" (target ≥ 0.9): as many bare timers (temporal-ceiling.workflow.ts, fired by the SDK's
//     minimal worker as its own process) due over one minute on the same server, just before and just after, so
//     both fire on a server that is equally full; compared by how long after the minute's start the last one fired.
// Every phase is bounded in time, so the suite ends even when a target is far off.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { QueryTypes } from 'sequelize';
import { User } from '../../db';
import { temporal as temporalProto } from '@temporalio/proto';
import { connectTemporal, startBusinessWorkflow } from '../../lib/temporal';
import type { reminderWorkflow } from '../../workflows/reminders';
import { REMINDER_PATCHES, REMINDERS_DOMAIN, REMINDERS_TASK_QUEUE } from '../../workflows/reminders.api';
import { cpuMeter, CpuUsage, meanCpu, processTree } from '../lib/cpu';
import { LoopResult, runConcurrent, samplesOf, summarize, table } from '../lib/measure';
import { BenchStack, log, ProcMemory, round, stopAll } from '../lib/stack';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';
import { fireTimers, TimerRun } from '../lib/timers';
import { latencyOf, request, spawnMinimalWorker, startWorker, waitForPoller } from '../lib/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Raw starts go here: no worker polls it, so the workflows only wait and only the start is measured. */
const UNPOLLED_QUEUE = 'docket-bench-unpolled';
/** The bare timers' queue, polled by the minimal worker. */
const BARE_QUEUE = 'docket-bench-bare-timers';

type Mode = 'raw' | 'api';
interface Block extends LoopResult { mode: Mode; cpu: CpuUsage; settle?: Settle }
interface Settle { settled: number; of: number; seconds: number; cpu: CpuUsage }

export const reminders: Suite = {
  name: 'reminders',
  description: 'create rate (API vs raw Temporal starts) and worker RSS with many pending reminders; firing lateness of reminders due in the same minute',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      pending: envInt('BENCH_REMINDERS_PENDING', 8000),
      createConcurrency: envInt('BENCH_REMINDERS_CREATE_CONCURRENCY', 50),
      createBudgetSeconds: envInt('BENCH_REMINDERS_CREATE_BUDGET_SECONDS', 300),
      rawStarts: envInt('BENCH_REMINDERS_RAW_STARTS', 2000),
      rawBudgetSeconds: envInt('BENCH_REMINDERS_RAW_BUDGET_SECONDS', 60),
      settleWaitSeconds: envInt('BENCH_REMINDERS_SETTLE_WAIT_SECONDS', 300),
      sameMinute: envInt('BENCH_REMINDERS_SAME_MINUTE', 5000),
      maxLeadSeconds: envInt('BENCH_REMINDERS_MAX_LEAD_SECONDS', 900),
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
      let worker = await startWorker(stack, 'reminders', linkSecret);
      stops.push(() => worker.stop());
      const api = await stack.startApi(linkSecret);
      stops.push(api.stop);
      const temporal = await connectTemporal(stack.temporalAddress, 'default');
      stops.push(() => temporal.connection.close());
      /**
       * Workflow tasks waiting on the reminders queue. A reminder's first task (which sets its timer) goes to the
       * queue's normal partition; the row cannot tell it ran, since the first task writes nothing the API did not.
       */
      const backlog = async () => Number((await temporal.connection.workflowService.describeTaskQueue({
        namespace: 'default', taskQueue: { name: REMINDERS_TASK_QUEUE, kind: temporalProto.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporalProto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, reportStats: true,
      })).stats?.approximateBacklogCount ?? 0);
      await waitForPoller(stack, worker, REMINDERS_TASK_QUEUE);
      log(`worker pid ${worker.pid} polling ${REMINDERS_TASK_QUEUE}; API ${api.url}`);
      // The bare timers' worker: the SDK's defaults, Docket's cache size, nothing of Docket.
      const bareWorker = spawnMinimalWorker({ address: stack.temporalAddress, taskQueue: BARE_QUEUE, cache: 250 });
      stops.push(bareWorker.stop);
      await waitForPoller(stack, bareWorker, BARE_QUEUE);
      const groups = () => ({ ...stack.processGroups(api), worker: () => processTree(worker.pid), bare: () => processTree(bareWorker.pid) });
      const memory: Record<string, ProcMemory> = { workerIdle: worker.memory() };
      // The issue asks for the server's memory with the reminders pending too (recorded, not judged).
      const serverMemory: Record<string, ProcMemory> = { idle: stack.temporalMemory() };
      const create = async (body: Record<string, unknown>) => {
        const r = await request(agent, api, 'POST', '/v1/reminders', stack.apiKey, body, 30_000);
        if (r.status !== 201) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 150)}`);
      };

      /**
       * Until the `of` reminders just created have run their first workflow task (none waits on the queue and the
       * worker has gone quiet), or `deadline`. `settled` counts those not waiting.
       */
      const settle = async (of: number, deadline: number): Promise<Settle> => {
        const meter = cpuMeter(groups());
        const t = Date.now();
        let waiting = await backlog();
        while (waiting > 0 && Date.now() < deadline && worker.alive()) {
          await sleep(1000);
          waiting = await backlog();
        }
        const settled = Math.max(0, of - waiting);
        // Idle: the tasks the worker had already taken from the queue are done too.
        while (waiting === 0 && Date.now() < deadline && worker.alive()) {
          const quiet = cpuMeter({ worker: () => processTree(worker.pid) });
          await sleep(1000);
          if ((quiet().cores.worker ?? 0) < 10) break;
        }
        if (!worker.alive()) throw new Error(`the worker exited:\n${worker.output()}`);
        return { settled, of, seconds: round((Date.now() - t) / 1000, 1), cpu: meter() };
      };

      // 1. Pending reminders: API creates vs raw starts, ABBA ------------------------------------------
      const due = new Date(Date.now() + 86_400_000).toISOString();
      const rawStart = async () => {
        const id = randomUUID();
        // startBusinessWorkflow is what the API calls: the same id scheme, conflict policy and search attributes.
        await startBusinessWorkflow<typeof reminderWorkflow>(temporal.client, {
          workflowType: 'reminderWorkflow', taskQueue: UNPOLLED_QUEUE, domain: REMINDERS_DOMAIN, tenantId, entityType: 'reminder', entityId: id, initialStatus: 'active',
          args: [{
            tenantId, reminderId: id, channels: ['in_app'], recipients: { users: [recipient.id], emails: [], webhooks: 0 },
            schedule: { dueAt: due }, plan: { offsets: [60, 0] }, createdAt: new Date().toISOString(),
            written: { occurrence: due, nextTriggerAt: new Date(Date.parse(due) - 3_600_000).toISOString() }, patches: REMINDER_PATCHES,
          }],
        });
      };
      let created = 0;
      const apiCreate = () => create({ subject: `pending ${created++}`, channels: ['in_app'], recipients: { users: [recipient.id] }, dueAt: due, offsets: [60, 0] });
      // ABBA: Temporal's store grows as the run goes on, so each path gets an early and a late block. No worker
      // polls during a block: both paths end with a started workflow waiting for its first task. Each API block is
      // followed by its settling (a worker started again runs the new workflows' first tasks), then the worker stops.
      const restartWorker = async () => {
        worker = await startWorker(stack, 'reminders', linkSecret);
        await waitForPoller(stack, worker, REMINDERS_TASK_QUEUE);
      };
      const blocks: Block[] = [];
      for (const mode of ['raw', 'api', 'api', 'raw'] as const) {
        await worker.stop();
        const first = !blocks.some((b) => b.mode === mode);
        const total = mode === 'raw' ? config.rawStarts : config.pending;
        const n = first ? Math.ceil(total / 2) : total - Math.ceil(total / 2);
        const budget = (mode === 'raw' ? config.rawBudgetSeconds : config.createBudgetSeconds / 2) * 1000;
        log(`${mode === 'raw' ? 'raw starts' : 'API creates'}: ${n}, ${config.createConcurrency} in flight, budget ${budget / 1000} s`);
        const meter = cpuMeter(groups());
        const r = await runConcurrent(n, config.createConcurrency, mode === 'raw' ? () => rawStart() : () => apiCreate(), Date.now() + budget);
        const block: Block = Object.assign(r, { mode, cpu: meter() });
        log(`  ${r.ok} in ${r.seconds} s (${r.perSecond}/s, p99 ${r.latencyMs.p99} ms)${r.failed ? `, ${r.failed} failed` : ''}`);
        if (mode === 'api') {
          await restartWorker();
          const of = blocks.filter((b) => b.mode === 'api').reduce((s, b) => s + b.ok, 0) + r.ok;
          block.settle = await settle(of, Date.now() + config.settleWaitSeconds * 1000);
          log(`  settled: ${block.settle.settled}/${of} have run their first workflow task, ${block.settle.seconds} s after the block`);
        }
        blocks.push(block);
      }
      if (!worker.alive()) await restartWorker();
      const combine = (mode: Mode): LoopResult => {
        const bs = blocks.filter((b) => b.mode === mode);
        const errors: Record<string, number> = {};
        for (const b of bs) for (const [k, v] of Object.entries(b.errors)) errors[k] = (errors[k] ?? 0) + v;
        return summarize(bs.reduce((s, b) => s + b.total, 0), bs.reduce((s, b) => s + b.seconds, 0), bs.flatMap(samplesOf), errors);
      };
      const creates = combine('api');
      const raw = combine('raw');
      const ratio = round(creates.perSecond / Math.max(0.001, raw.perSecond), 3);
      const apiBlocks = blocks.filter((b) => b.mode === 'api');
      // Created and settled per second of create + settle time: what the next phase's lead time is planned from.
      const pipelineSeconds = apiBlocks.reduce((s, b) => s + b.seconds + b.settle!.seconds, 0);
      const pending = apiBlocks[apiBlocks.length - 1].settle!.settled;
      const pipelinePerSecond = round(pending / Math.max(0.001, pipelineSeconds), 1);
      memory.workerWithPending = worker.memory();
      serverMemory.withPending = stack.temporalMemory();
      const phase1Cpu = {
        raw: meanCpu(blocks.filter((b) => b.mode === 'raw').map((b) => b.cpu)),
        api: meanCpu(apiBlocks.map((b) => b.cpu)),
        settle: meanCpu(apiBlocks.map((b) => b.settle!.cpu)),
      };
      log(`API ${creates.perSecond}/s vs raw ${raw.perSecond}/s (×${ratio}); ${pending}/${creates.ok} pending settled (${pipelinePerSecond}/s created + settled); worker RSS ${memory.workerWithPending.rssMb} MB (peak ${memory.workerWithPending.peakRssMb}); Temporal (${stack.temporalStore}) ${serverMemory.withPending.rssMb} MB`);

      // 2. Same-minute firing, between two bare runs --------------------------------------------------
      const bare: TimerRun[] = [];
      const bareRun = async (label: string) => {
        log(`bare timers (${label}): ${config.sameMinute} due over one minute on this server`);
        const r = await fireTimers(temporal.client, { count: config.sameMinute, taskQueue: BARE_QUEUE, idPrefix: `bare-${randomUUID().slice(0, 8)}`, groups: groups() });
        log(`  ${r.fired} fired, the last ${r.firedOverSeconds} s after the minute's start; lateness p99 ${r.latenessMs.p99} ms`);
        bare.push(r);
      };
      await bareRun('before');
      // The due minute starts once all are created and settled at phase 1's rate, with 50 % margin + 20 s.
      const rate = pipelinePerSecond > 0 ? pipelinePerSecond : Math.max(1, creates.perSecond / 4);
      const leadMs = Math.min(config.maxLeadSeconds * 1000, (config.sameMinute / rate) * 1500 + 20_000);
      const t0 = Math.ceil((Date.now() + leadMs) / 1000) * 1000;
      const tag = randomUUID().slice(0, 8);
      const prefix = `fire-${tag}`;
      log(`creating ${config.sameMinute} reminders due between ${new Date(t0).toISOString()} and +60 s (lead ${round(leadMs / 1000)} s)`);
      const fireCreateMeter = cpuMeter(groups());
      const fireCreates = await runConcurrent(config.sameMinute, config.createConcurrency, (i) => create({
        subject: `${prefix} ${i}`, channels: ['in_app'], recipients: { users: [recipient.id] },
        dueAt: new Date(t0 + Math.floor((i * 60_000) / config.sameMinute)).toISOString(),
      }), t0 - 15_000);
      const fireCreateCpu = fireCreateMeter();
      const fireSettle = await settle(fireCreates.ok, t0 - 3000);
      const ready = { createdBeforeDue: fireCreates.ok, settledBeforeDue: fireSettle.settled, secondsToSpare: round((t0 - Date.now()) / 1000, 1) };
      log(`${fireCreates.ok} created (${fireCreates.perSecond}/s), ${fireSettle.settled} settled, ${ready.secondsToSpare} s before the first is due`);
      const notReady = fireCreates.ok < config.sameMinute || fireSettle.settled < fireCreates.ok;
      await sleep(Math.max(0, t0 - Date.now()));

      const fireMeter = cpuMeter(groups());
      // The delivery happens when the in-app notification is written (its created_at, set by the activity
      // as it inserts); the attempt log row is written after it and the delivery row's update.
      const notified = `FROM notifications n JOIN reminders r ON r.id::text = n.source_id
        WHERE n.tenant_id = :tenantId AND n.source_type = 'reminder' AND r.tenant_id = :tenantId AND r.subject LIKE :like`;
      const fired = async () => scalar(`SELECT count(*) AS n ${notified}`, { like: `${prefix} %` });
      const fireDeadline = t0 + 60_000 + config.fireWaitSeconds * 1000;
      let delivered = 0;
      while ((delivered = await fired()) < fireCreates.ok && Date.now() < fireDeadline && worker.alive()) await sleep(2000);
      const fireCpu = fireMeter();
      memory.workerAfterFiring = worker.memory();
      serverMemory.afterFiring = stack.temporalMemory();
      const lateness = (await sequelize.query<{ ms: number }>(`SELECT extract(epoch FROM (n.created_at - r.due_at)) * 1000 AS ms ${notified}`,
        { replacements: { tenantId, like: `${prefix} %` }, type: QueryTypes.SELECT })).map((r) => Number(r.ms));
      const late = latencyOf(lateness);
      const lastMs = Number((await sequelize.query<{ ms: number }>(`SELECT extract(epoch FROM max(n.created_at)) * 1000 AS ms ${notified}`,
        { replacements: { tenantId, like: `${prefix} %` }, type: QueryTypes.SELECT }))[0]?.ms ?? NaN);
      const firedOverSeconds = round((lastMs - t0) / 1000, 1);
      log(`${delivered}/${fireCreates.ok} delivered; lateness p50 ${late.p50} ms, p95 ${late.p95} ms, p99 ${late.p99} ms, max ${late.max} ms`);
      await bareRun('after');
      const workerPeak = Math.max(...Object.values(memory).map((m) => m.peakRssMb));
      // How long after the minute's start the last one fired: bare (the mean of before and after) / Docket. Only when
      // every reminder was delivered: a missing one would make Docket's look shorter.
      const bareOverSeconds = round(bare.reduce((sum, b) => sum + b.firedOverSeconds, 0) / bare.length, 1);
      const bareP99 = Math.max(...bare.map((b) => b.latenessMs.p99));
      const firingRatio = delivered === config.sameMinute ? round(bareOverSeconds / firedOverSeconds, 3) : NaN;

      const targets = [
        judge(`create rate through the API (${creates.ok} reminders; raw starts ${raw.perSecond}/s, ratio ${ratio})`, creates.perSecond, '>=', 300, 'reminders/s'),
        judge('reminder creates: Docket (POST /v1/reminders) / bare (client.workflow.start), no worker polling', ratio, '>=', 0.85, '×'),
        judge(`reminders created (of ${config.pending}, within ${config.createBudgetSeconds} s)`, creates.ok, '==', config.pending, 'reminders'),
        judge(`worker peak RSS with ${pending} pending reminders (issue: 100,000)`, workerPeak, '<', 1536, 'MB'),
        judge(`firing lateness p99 (${delivered} due in one minute; bare timers on this server: p99 ${bareP99} ms)`, lateness.length ? late.p99 : NaN, '<', 1000, 'ms'),
        judge(`firing: Docket / bare (the last fired ${firedOverSeconds} s after the minute's start; bare timers ${bare.map((b) => b.firedOverSeconds).join(' s, ')} s)`, firingRatio, '>=', 0.9, '×'),
        judge('same-minute reminders delivered', delivered, '==', config.sameMinute, 'reminders'),
      ];
      const cpuRows: [string, CpuUsage][] = [
        ['raw starts', phase1Cpu.raw], ['API creates', phase1Cpu.api], ['settling (pending)', phase1Cpu.settle],
        ['bare timers, before', bare[0].cpu], ['creates (same minute)', fireCreateCpu], ['settling (same minute)', fireSettle.cpu], ['firing', fireCpu],
        ['bare timers, after', bare[1].cpu],
      ];
      const names = ['api', 'worker', 'bare', 'postgres', 'temporal', 'bench', 'other'];
      const disturbed = cpuRows.filter(([, u]) => (u.cores.other ?? 0) > 20).map(([label, u]) => `${label} (${u.cores.other}% of a core)`);
      const summary = [
        ...(disturbed.length ? [`WARNING: other processes used CPU during ${disturbed.join(', ')}; rerun on a quiet machine.`, ''] : []),
        table(['phase', 'ok', 'failed', 'seconds', 'per s', 'p50 ms', 'p99 ms', 'settled', 'settle s'], [
          ...blocks.map((b) => [`  block ${b.mode}`, b.ok, b.failed, b.seconds, b.perSecond, b.latencyMs.p50, b.latencyMs.p99, b.settle?.settled ?? '', b.settle?.seconds ?? '']),
          [`raw client.workflow.start ×${config.createConcurrency} (unpolled queue)`, raw.ok, raw.failed, raw.seconds, raw.perSecond, raw.latencyMs.p50, raw.latencyMs.p99, '', ''],
          [`POST /v1/reminders ×${config.createConcurrency} (pending)`, creates.ok, creates.failed, creates.seconds, creates.perSecond, creates.latencyMs.p50, creates.latencyMs.p99, pending, ''],
          ['reminder creates: Docket / bare', '', '', '', ratio, '', '', '', ''],
          [`POST /v1/reminders ×${config.createConcurrency} (same minute)`, fireCreates.ok, fireCreates.failed, fireCreates.seconds, fireCreates.perSecond, fireCreates.latencyMs.p50, fireCreates.latencyMs.p99, fireSettle.settled, fireSettle.seconds],
        ]),
        ...(Object.keys(creates.errors).length ? [`create errors: ${JSON.stringify(creates.errors)}`] : []),
        `created + settled: ${pipelinePerSecond}/s (phase 1) → same-minute lead ${round(leadMs / 1000)} s; ${ready.secondsToSpare} s to spare`,
        ...(notReady ? ['WARNING: not every same-minute reminder was created and settled before the first fell due; lateness includes that backlog'] : []),
        `firing lateness (ms): p50 ${late.p50}, p95 ${late.p95}, p99 ${late.p99}, max ${late.max}, mean ${late.mean} over ${lateness.length} deliveries`,
        table([`${config.sameMinute} due over one minute, this server`, 'fired', 'last fired after (s)', 'lateness p50 ms', 'p99 ms'], [
          ['bare timers, before', bare[0].fired, bare[0].firedOverSeconds, bare[0].latenessMs.p50, bare[0].latenessMs.p99],
          ['Docket reminders', delivered, firedOverSeconds, late.p50, late.p99],
          ['bare timers, after', bare[1].fired, bare[1].firedOverSeconds, bare[1].latenessMs.p50, bare[1].latenessMs.p99],
          ['firing: Docket / bare', '', firingRatio, '', ''],
        ]),
        table(['worker memory (MB)', 'VmRSS', 'VmHWM (peak)'], Object.entries(memory).map(([k, v]) => [k, v.rssMb, v.peakRssMb])),
        table([`Temporal dev server (${stack.temporalStore}), MB`, 'VmRSS', 'VmHWM (peak)'], Object.entries(serverMemory).map(([k, v]) => [k, v.rssMb, v.peakRssMb])),
        table(['CPU, % of one core', 'seconds', 'machine busy %', ...names], cpuRows.map(([label, u]) => [label, u.seconds, u.machineBusyPct, ...names.map((n) => u.cores[n] ?? '')])),
      ].join('\n');
      return {
        suite: 'reminders', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: {
          disturbedBy: disturbed, creates, rawStarts: raw, 'reminder creates: Docket / bare': ratio, blocks, pendingSettled: pending, pipelinePerSecond, phase1Cpu,
          fireCreates, fireCreateCpu, fireSettle, ready, leadSeconds: round(leadMs / 1000), t0: new Date(t0).toISOString(),
          delivered, latenessMs: late, firedOverSeconds, bareTimers: bare, bareOverSeconds, 'firing: Docket / bare': firingRatio, fireCpu, memoryMb: memory, workerPeakRssMb: workerPeak,
          temporalStore: stack.temporalStore, temporalMemoryMb: serverMemory,
        },
        targets, summary,
      };
    } finally {
      await stopAll(stops);
    }
  },
};
