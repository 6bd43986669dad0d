// Suite "approvals": the approvals issue's targets.
//  1. 10,000 open flows at once: start them through POST /v1/approval-flows (one quorum-2 stage whose
//     approvers are the 60 members of role "finance"), with a worker (WORKER_QUEUES=approvals,approval-notifications) running as
//     its own process; start rate, time until every flow is open (its read model written), worker RSS.
//  2. Listing pending flows (status filter, pendingFor filter, /v1/me/approvals): autocannon latency.
//  3. Signing at 50 concurrent approvers (each with their own key, each on a distinct open flow):
//     latency of POST /v1/approval-flows/{id}/sign, and a GET right after shows the signature.
// Every phase is bounded in time (BENCH_APPROVALS_* knobs), so the suite ends even when a target is far off.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import autocannon from 'autocannon';
import { QueryTypes } from 'sequelize';
import { ApiKey, Role, User, UserRole } from '../../db';
import { generateApiKey } from '../../api/auth';
import { APPROVALS_TASK_QUEUE } from '../../workflows/approvals.api';
import { cpuMeter, CpuUsage, processTree } from '../lib/cpu';
import { LoopResult, runConcurrent, table } from '../lib/measure';
import { ApiProcess, BenchStack, log, ProcMemory, round } from '../lib/stack';
import { latencyOf, Latency, Reply, request, startWorker, waitForPoller } from '../lib/worker';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';

interface Approver { id: string; key: string }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const approvals: Suite = {
  name: 'approvals',
  description: '10k open flows (start rate, worker RSS); list/filter pending flows; sign at 50 concurrent approvers',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      flows: envInt('BENCH_APPROVALS_FLOWS', 10_000),
      approvers: envInt('BENCH_APPROVALS_APPROVERS', 60),
      startConcurrency: envInt('BENCH_APPROVALS_START_CONCURRENCY', 50),
      /** The start phase stops taking new work after this long (the rest are reported as not started). */
      startBudgetSeconds: envInt('BENCH_APPROVALS_START_BUDGET_SECONDS', 90),
      /** How long to wait, after the last start, for every flow to be open. */
      openWaitSeconds: envInt('BENCH_APPROVALS_OPEN_WAIT_SECONDS', 30),
      listConnections: envInt('BENCH_APPROVALS_LIST_CONNECTIONS', 20),
      listWarmupSeconds: envInt('BENCH_APPROVALS_LIST_WARMUP_SECONDS', 2),
      listSeconds: envInt('BENCH_APPROVALS_LIST_SECONDS', 10),
      signs: envInt('BENCH_APPROVALS_SIGNS', 2000),
      signConcurrency: envInt('BENCH_APPROVALS_SIGN_CONCURRENCY', 50),
      /** The sign phase stops taking new work after this long. */
      signBudgetSeconds: envInt('BENCH_APPROVALS_SIGN_BUDGET_SECONDS', 45),
      signTimeoutMs: envInt('BENCH_APPROVALS_SIGN_TIMEOUT_MS', 15_000),
      readAfterSignSample: envInt('BENCH_APPROVALS_CHECK_SAMPLE', 100),
      /**
       * Before the 10k: this many flows are started and, once open, signed once each by as many approvers at
       * once — the sign path with no backlog of other flows' activities in the queue (a diagnostic).
       */
      calibrationFlows: envInt('BENCH_APPROVALS_CALIBRATION_FLOWS', 50),
      calibrationOpenWaitSeconds: envInt('BENCH_APPROVALS_CALIBRATION_OPEN_WAIT_SECONDS', 60),
      template: { name: 'Finance', approvers: { roles: ['finance'] }, rule: 'quorum', quorum: 2 },
      worker: { queues: 'approvals', env: { NODE_ENV: 'production', LOG_LEVEL: 'warn', SMTP_URL: 'unset (emails logged at info, suppressed)' } },
    };
    const startedAt = new Date().toISOString();
    const sequelize = stack.sequelize;
    const tenantId = stack.tenantId;
    const linkSecret = process.env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex');

    // Approvers: role "finance" (sign + read), N users holding it, an API key each — straight into the DB.
    const approvers: Approver[] = await sequelize.transaction(async (transaction) => {
      const role = await Role.create({ id: randomUUID(), tenantId, key: 'finance', title: 'Finance', permissions: ['approvals.flow.sign', 'approvals.flow.read'] }, { transaction });
      const out: Approver[] = [];
      const users = Array.from({ length: config.approvers }, (_, i) => ({ id: randomUUID(), tenantId, email: `finance-${i}@bench.local`, name: `Finance ${i}`, active: true }));
      await User.bulkCreate(users, { transaction });
      await UserRole.bulkCreate(users.map((u) => ({ userId: u.id, roleId: role.id, tenantId })), { transaction });
      const keys = users.map((u) => ({ u, k: generateApiKey() }));
      await ApiKey.bulkCreate(keys.map(({ u, k }) => ({
        id: randomUUID(), tenantId, userId: u.id, name: 'bench approver key', prefix: k.prefix, secretHash: k.secretHash, scopes: null, expiresAt: null,
      })), { transaction });
      for (const { u, k } of keys) out.push({ id: u.id, key: k.secret });
      return out;
    });
    log(`approvals: ${approvers.length} approvers in role "finance"`);

    const stops: (() => Promise<void>)[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(config.startConcurrency, config.signConcurrency) + 10 });
    stops.push(async () => { agent.destroy(); });
    try {
      const worker = await startWorker(stack, 'approvals,approval-notifications', { LINK_SIGNING_SECRET: linkSecret });
      stops.push(worker.stop);
      log(`worker pid ${worker.pid} started`);
      const api = await stack.startApi({ LINK_SIGNING_SECRET: linkSecret });
      stops.push(api.stop);
      log(`API pid ${api.pid} ready on ${api.url}`);
      const groups = () => ({ ...stack.processGroups(api), worker: () => processTree(worker.pid) });
      await waitForPoller(stack, worker, APPROVALS_TASK_QUEUE);
      log('worker is polling the approvals task queue');

      const call = (method: string, p: string, key: string, body?: unknown, timeoutMs = 30_000) => request(agent, api, method, p, key, body, timeoutMs);
      const tpl = await call('POST', '/v1/approval-templates', stack.apiKey, { name: 'Bench purchase orders', objectType: 'purchase_order', stages: [config.template] });
      if (tpl.status !== 201) throw new Error(`creating the template: HTTP ${tpl.status} ${tpl.body.slice(0, 300)}`);

      const memory: Record<string, ProcMemory> = { workerIdle: worker.memory() };
      const openCount = async (prefix = 'bench-'): Promise<number> => {
        const [row] = await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM approval_flows WHERE tenant_id = :tenantId AND state_version >= 0 AND object_id LIKE :like', { replacements: { tenantId, like: `${prefix}%` }, type: QueryTypes.SELECT });
        return Number(row.n);
      };

      // 0. Calibration: the sign path without a backlog -------------------------------------------------
      log(`calibration: starting ${config.calibrationFlows} flows, then one sign each once they are open`);
      const c0 = Date.now();
      const calStarts = await runUntil(config.calibrationFlows, config.startConcurrency, Date.now() + 60_000, async (i) => {
        const r = await call('POST', '/v1/approval-flows', stack.apiKey, { objectType: 'purchase_order', objectId: `calibration-${i}`, context: { total: 5000 } });
        if (r.status !== 201) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 150)}`);
      });
      let calOpen = 0;
      const calDeadline = Date.now() + config.calibrationOpenWaitSeconds * 1000;
      while ((calOpen = await openCount('calibration-')) < calStarts.ok && Date.now() < calDeadline && worker.alive()) await sleep(1000);
      const calibrationOpenSeconds = round((Date.now() - c0) / 1000, 1);
      log(`calibration: ${calOpen}/${calStarts.ok} flows open after ${calibrationOpenSeconds} s`);
      const calibration = {
        flows: calStarts.ok, open: calOpen, openAfterSeconds: calibrationOpenSeconds,
        signs: await benchSigns(stack, approvers, call, { ...config, signs: calOpen, readAfterSignSample: calOpen, signBudgetSeconds: 30 }, groups(), 'calibration-'),
      };
      memory.workerAfterCalibration = worker.memory();

      // 1. 10,000 flows ---------------------------------------------------------------------------
      log(`starting ${config.flows} flows, ${config.startConcurrency} in flight`);
      const t0 = Date.now();
      const startMeter = cpuMeter(groups());
      const starts = await runUntil(config.flows, config.startConcurrency, Date.now() + config.startBudgetSeconds * 1000, async (i) => {
        const r = await call('POST', '/v1/approval-flows', stack.apiKey, { objectType: 'purchase_order', objectId: `bench-${i}`, context: { total: 5000 } });
        if (r.status !== 201) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 150)}`);
      });
      const startCpu = startMeter();
      const openAtLastStart = await openCount();
      memory.workerAfterStarts = worker.memory();
      log(`started ${starts.ok}/${config.flows} in ${starts.seconds} s (${starts.perSecond}/s); ${openAtLastStart} open; worker RSS ${memory.workerAfterStarts.rssMb} MB`);

      // Wait (bounded) until every started flow is open.
      const openMeter = cpuMeter(groups());
      const openTimeline: { s: number; open: number; workerRssMb: number }[] = [];
      const waitDeadline = Date.now() + config.openWaitSeconds * 1000;
      let open = openAtLastStart;
      for (;;) {
        open = await openCount();
        openTimeline.push({ s: round((Date.now() - t0) / 1000, 1), open, workerRssMb: worker.alive() ? worker.memory().rssMb : 0 });
        if (open >= starts.ok || Date.now() > waitDeadline || !worker.alive()) break;
        await sleep(2000);
      }
      const openCpu = openMeter();
      const allOpenSeconds = open >= starts.ok ? round((Date.now() - t0) / 1000, 1) : null;
      if (!worker.alive()) throw new Error(`the worker exited:\n${worker.output()}`);
      memory.workerWithFlowsOpen = worker.memory();
      const deliveries = await scalar(stack, 'SELECT count(*) AS n FROM notification_deliveries WHERE tenant_id = :tenantId');
      // Opening a flow = its first persist, which comes after the stage's emails (one delivery row per approver).
      const deliveriesPerSecond = round(deliveries / ((Date.now() - t0) / 1000), 1);
      const deliveriesNeeded = config.flows * config.approvers;
      const projectedAllOpenSeconds = deliveriesPerSecond > 0 ? round(deliveriesNeeded / deliveriesPerSecond) : null;
      log(`${open}/${starts.ok} flows open ${allOpenSeconds !== null ? `after ${allOpenSeconds} s` : `(gave up after ${config.openWaitSeconds} s of waiting)`}; ${deliveries} notification rows; worker RSS ${memory.workerWithFlowsOpen.rssMb} MB, peak ${memory.workerWithFlowsOpen.peakRssMb} MB`);

      // 2. Lists --------------------------------------------------------------------------------------
      const lister = approvers[0];
      const lists = [
        { name: 'GET /v1/approval-flows?status=pending&limit=50', path: '/v1/approval-flows?status=pending&limit=50', key: stack.apiKey },
        { name: 'GET /v1/approval-flows?pendingFor=<user>&limit=50', path: `/v1/approval-flows?pendingFor=${lister.id}&limit=50`, key: stack.apiKey },
        { name: 'GET /v1/me/approvals?limit=50 (approver)', path: '/v1/me/approvals?limit=50', key: lister.key },
      ];
      const listResults = [];
      for (const l of lists) {
        const probe = await call('GET', l.path, l.key);
        const items = probe.status === 200 ? (JSON.parse(probe.body) as { items: unknown[] }).items.length : -1;
        if (probe.status !== 200) log(`WARNING: ${l.name} answered ${probe.status}: ${probe.body.slice(0, 200)}`);
        listResults.push({ ...(await benchList(api, l, config, groups())), itemsPerPage: items });
      }

      // 3. Signs ---------------------------------------------------------------------------------------
      const signed = await benchSigns(stack, approvers, call, config, groups(), 'bench-');
      memory.workerAfterSigns = worker.memory();
      memory.apiEnd = api.memory();

      const workerPeak = Math.max(...Object.entries(memory).filter(([k]) => k.startsWith('worker')).map(([, m]) => m.peakRssMb));
      const targets = [
        judge(`flows started (within ${config.startBudgetSeconds} s)`, starts.ok, '==', config.flows, 'flows'),
        judge(`flows open (within ${config.openWaitSeconds} s after the last start)`, open, '==', config.flows, 'flows'),
        judge('worker peak RSS (VmHWM) with the flows open', workerPeak, '<', 1024, 'MB'),
        ...listResults.map((l) => judge(`${l.name} p95`, l.latencyMs.p95, '<', 50, 'ms')),
        judge('list non-2xx + errors', listResults.reduce((s, l) => s + l.non2xx + l.errors + l.timeouts, 0), '==', 0, 'responses'),
        // No 200 at all is a failure, not a 0 ms p95 (NaN fails every comparison).
        judge('POST …/sign p95 (200s)', signed.ok ? signed.latencyMs.p95 : NaN, '<', 150, 'ms'),
        judge('signs answered 200', signed.ok, '>=', config.signs, 'signs'),
        judge('GET right after sign shows the signature', signed.readAfterSign.checked ? signed.readAfterSign.missing : NaN, '==', 0, 'flows missing it'),
        judge(`diagnostic: sign p95 with no backlog (${calibration.signs.ok} signs on ${calibration.open} open flows)`, calibration.signs.ok ? calibration.signs.latencyMs.p95 : NaN, '<', 150, 'ms'),
        judge('diagnostic: GET right after sign, no backlog', calibration.signs.readAfterSign.checked ? calibration.signs.readAfterSign.missing : NaN, '==', 0, 'flows missing it'),
      ];
      const summary = [
        `calibration (before the 10k, no backlog): ${calibration.flows} flows started (${calStarts.perSecond}/s, p50 ${calStarts.latencyMs.p50} ms), ${calibration.open} open after ${calibration.openAfterSeconds} s`,
        table(['sign, no backlog', 'ok (200)', 'other', 'seconds', 'signs/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'GET after: checked', 'missing'], [
          [`POST …/sign ×${Math.min(config.signConcurrency, calibration.open)}`, calibration.signs.ok, calibration.signs.failed, calibration.signs.seconds, calibration.signs.perSecond, calibration.signs.latencyMs.p50, calibration.signs.latencyMs.p95, calibration.signs.latencyMs.p99, calibration.signs.latencyMs.max, calibration.signs.readAfterSign.checked, calibration.signs.readAfterSign.missing],
        ]),
        ...(Object.keys(calibration.signs.statuses).length ? [`calibration sign outcomes: ${JSON.stringify(calibration.signs.statuses)}`] : []),
        '',
        table(['flow starts', 'started', 'failed', 'seconds', 'starts/s', 'p50 ms', 'p99 ms', 'open at last start', 'open at end', 'all open after s'], [
          [`POST /v1/approval-flows ×${config.startConcurrency}`, starts.ok, starts.failed, starts.seconds, starts.perSecond, starts.latencyMs.p50, starts.latencyMs.p99, openAtLastStart, open, allOpenSeconds ?? `> ${round((Date.now() - t0) / 1000)}`],
        ]),
        ...(Object.keys(starts.errors).length ? [`start errors: ${JSON.stringify(starts.errors)}`] : []),
        ...(starts.total < config.flows ? [`start budget (${config.startBudgetSeconds} s) ran out: ${starts.total} of ${config.flows} attempted; at ${starts.perSecond}/s all ${config.flows} would take ~${starts.perSecond > 0 ? round(config.flows / starts.perSecond) : '∞'} s`] : []),
        `notification deliveries: ${deliveries} rows of the ${deliveriesNeeded} that opening ${config.flows} flows needs (${config.approvers} per flow), ${deliveriesPerSecond}/s since the first start → all open after ~${projectedAllOpenSeconds ?? '∞'} s`,
        `open flows over time (s since first start: open): ${openTimeline.map((p) => `${p.s}:${p.open}`).join(' ')}`,
        '',
        table(['list (20 conns)', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'items', 'non-2xx', 'errors'],
          listResults.map((l) => [l.name, l.reqPerSec, l.latencyMs.p50, l.latencyMs.p95, l.latencyMs.p99, l.latencyMs.max, l.itemsPerPage, l.non2xx, l.errors + l.timeouts])),
        '',
        table(['sign', 'ok (200)', 'other', 'seconds', 'signs/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'], [
          [`POST …/sign ×${config.signConcurrency} approvers`, signed.ok, signed.failed, signed.seconds, signed.perSecond, signed.latencyMs.p50, signed.latencyMs.p95, signed.latencyMs.p99, signed.latencyMs.max],
        ]),
        ...(Object.keys(signed.statuses).length ? [`sign outcomes: ${JSON.stringify(signed.statuses)}`] : []),
        `GET right after sign: ${signed.readAfterSign.checked} checked, ${signed.readAfterSign.missing} without the signature`,
        '',
        table(['memory (MB)', 'VmRSS', 'VmHWM (peak)'], Object.entries(memory).map(([k, v]) => [k, v.rssMb, v.peakRssMb])),
        '',
        cpuTable([['flow starts', startCpu], ['waiting for open', openCpu], ...listResults.map((l) => [l.name.split('?')[0] + (l.name.includes('pendingFor') ? '?pendingFor' : l.name.includes('status') ? '?status' : ''), l.cpu] as [string, CpuUsage]), ['signs', signed.cpu]]),
      ].join('\n');

      return {
        suite: 'approvals', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: {
          starts, startCpu, openAtLastStart, open, allOpenSeconds, openTimeline, openCpu,
          notificationDeliveries: { rows: deliveries, neededForAllOpen: deliveriesNeeded, perSecond: deliveriesPerSecond, projectedAllOpenSeconds },
          calibration: { ...calibration, starts: calStarts }, lists: listResults, signs: signed, memoryMb: memory, workerPeakRssMb: workerPeak,
        },
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

/** runConcurrent with its deadline first, as the phases here read. */
const runUntil = (total: number, concurrency: number, deadline: number, op: (i: number) => Promise<void>): Promise<LoopResult> =>
  runConcurrent(total, concurrency, op, deadline);

async function scalar(stack: BenchStack, sql: string): Promise<number> {
  const [row] = await stack.sequelize.query<{ n: string }>(sql, { replacements: { tenantId: stack.tenantId }, type: QueryTypes.SELECT });
  return Number(row.n);
}

interface ListResult {
  name: string;
  reqPerSec: number;
  requests: number;
  latencyMs: Latency;
  /** autocannon's own histogram (p97.5, p99 …), for comparison. */
  autocannonLatencyMs: { p50: number; p97_5: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  cpu: CpuUsage;
}

async function benchList(api: ApiProcess, l: { name: string; path: string; key: string }, c: { listConnections: number; listWarmupSeconds: number; listSeconds: number }, groups: ReturnType<BenchStack['processGroups']>): Promise<ListResult> {
  const opts = { url: `${api.url}${l.path}`, connections: c.listConnections, headers: { 'x-api-key': l.key } };
  log(`${l.name}: ${c.listWarmupSeconds} s warm-up, ${c.listSeconds} s measured, ${c.listConnections} connections`);
  await autocannon({ ...opts, duration: c.listWarmupSeconds });
  const meter = cpuMeter(groups);
  const run = autocannon({ ...opts, duration: c.listSeconds });
  // autocannon's histogram has no p95: keep every response's latency and compute it.
  const samples: number[] = [];
  run.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => { samples.push(ms); });
  const r = await run;
  const cpu = meter();
  return {
    name: l.name, reqPerSec: r.requests.mean, requests: r.requests.total ?? samples.length, latencyMs: latencyOf(samples),
    autocannonLatencyMs: { p50: r.latency.p50, p97_5: r.latency.p97_5, p99: r.latency.p99 },
    non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, cpu,
  };
}

interface SignResult {
  attempted: number;
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  latencyMs: Latency;
  statuses: Record<string, number>;
  /** GET /v1/approval-flows/{id} right after a 200 sign: does it list the signature? */
  readAfterSign: { checked: number; missing: number; examples: string[] };
  openFlowsAvailable: number;
  cpu: CpuUsage;
}

type Call = (method: string, p: string, key: string, body?: unknown, timeoutMs?: number) => Promise<Reply>;

async function benchSigns(stack: BenchStack, approvers: Approver[], call: Call, c: { signs: number; signConcurrency: number; signBudgetSeconds: number; signTimeoutMs: number; readAfterSignSample: number }, groups: ReturnType<BenchStack['processGroups']>, prefix: string): Promise<SignResult> {
  // Open flows nobody has signed yet (oldest first: their start activity is long done).
  const rows = await stack.sequelize.query<{ id: string }>(
    `SELECT id FROM approval_flows WHERE tenant_id = :tenantId AND status = 'pending' AND state_version >= 0 AND object_id LIKE :like
     AND NOT EXISTS (SELECT 1 FROM approval_events e WHERE e.flow_id = approval_flows.id AND e.type = 'signed')
     ORDER BY created_at LIMIT :n`,
    { replacements: { tenantId: stack.tenantId, n: c.signs, like: `${prefix}%` }, type: QueryTypes.SELECT },
  );
  const flowIds = rows.map((r) => r.id);
  const lanes = Math.min(c.signConcurrency, approvers.length);
  log(`signs: ${flowIds.length} open flows available (wanted ${c.signs}); ${lanes} approvers signing, budget ${c.signBudgetSeconds} s`);
  const samples: number[] = [];
  const statuses: Record<string, number> = {};
  const readAfterSign = { checked: 0, missing: 0, examples: [] as string[] };
  const checkEvery = Math.max(1, Math.floor(flowIds.length / Math.max(1, c.readAfterSignSample)));
  let next = 0;
  let attempted = 0;
  const meter = cpuMeter(groups);
  const started = process.hrtime.bigint();
  const deadline = Date.now() + c.signBudgetSeconds * 1000;
  const lane = async (approver: Approver): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= flowIds.length || Date.now() > deadline) return;
      attempted++;
      const id = flowIds[i];
      try {
        const r = await call('POST', `/v1/approval-flows/${id}/sign`, approver.key, { decision: 'approve' }, c.signTimeoutMs);
        const label = r.status === 200 ? '200' : `${r.status} ${r.body.slice(0, 120)}`;
        statuses[label] = (statuses[label] ?? 0) + 1;
        if (r.status !== 200) continue;
        samples.push(r.ms);
        const inResponse = (JSON.parse(r.body) as { stages: { signatures: { userId: string }[] }[] }).stages[0].signatures.some((s) => s.userId === approver.id);
        if (i % checkEvery === 0 && readAfterSign.checked < c.readAfterSignSample) {
          readAfterSign.checked++;
          const g = await call('GET', `/v1/approval-flows/${id}`, approver.key);
          const shown = g.status === 200 && (JSON.parse(g.body) as { stages: { signatures: { userId: string }[] }[] }).stages[0].signatures.some((s) => s.userId === approver.id);
          if (!shown || !inResponse) {
            readAfterSign.missing++;
            if (readAfterSign.examples.length < 5) readAfterSign.examples.push(`${id}: response ${inResponse ? 'has' : 'lacks'} it, GET ${g.status} ${shown ? 'has' : 'lacks'} it`);
          }
        }
      } catch (err) {
        const label = (err as Error).message.slice(0, 120);
        statuses[label] = (statuses[label] ?? 0) + 1;
      }
    }
  };
  await Promise.all(approvers.slice(0, lanes).map(lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = meter();
  const ok = samples.length;
  delete statuses['200'];
  return {
    attempted, ok, failed: attempted - ok, seconds: round(seconds, 2), perSecond: round(ok / seconds, 1), latencyMs: latencyOf(samples),
    statuses, readAfterSign, openFlowsAvailable: flowIds.length, cpu,
  };
}

function cpuTable(rows: [string, CpuUsage][]): string {
  const names = ['api', 'worker', 'postgres', 'temporal', 'bench', 'other'];
  return table(['CPU, % of one core', 'machine busy %', ...names], rows.map(([label, u]) => [label, u.machineBusyPct, ...names.map((n) => u.cores[n] ?? '')]));
}
