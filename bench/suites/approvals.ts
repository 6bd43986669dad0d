// Suite "approvals": the approvals issue's targets, each measured in the situation it describes.
//
// Shape (realistic, not worst case): 20 teams, each a role of 3 users (60 approvers in all), and 20
// templates of one stage, "quorum 2 of the team's role". Flow i goes to template i mod 20 (its context
// says `team`, each template's condition picks its team: callers cannot name a template), so a flow
// notifies its team's 3 members (3 emails) and each approver
// has flows/20 (~500 at 10k) pending. Runs before 2026-11-30 used one role of 60 members for every flow:
// 60 emails per flow, 600k for 10k flows, and the worker was still drowning in them while lists and
// signs were measured, so those numbers said more about email than about the targets.
//
//  1. Setup (not judged): start BENCH_APPROVALS_FLOWS flows through POST /v1/approval-flows, 50 in flight,
//     in a generous time box; starts/s is reported. The worker (WORKER_QUEUES=approvals,approval-notifications)
//     is its own process with Docket's default sticky cache (WORKER_MAX_CACHED_WORKFLOWS, 250) unless
//     BENCH_APPROVALS_WORKER_MAX_CACHED is set, and it delivers every email over SMTP to a counting sink
//     in its own process (bench/lib/smtp-sink.ts; nothing parsed or written to disk).
//  2. Drain (bounded wait): until every started flow is in the read model as pending with its emails
//     sent (Postgres) and delivered (distinct messages counted at the sink), then worker RSS, current and
//     peak, with the flows open → < 1 GB; every flow's approver emails delivered at the sink is judged.
//  3. Lists with the flows open and the system otherwise idle: ?status=pending, ?pendingFor=<user>,
//     /v1/me/approvals (20 connections, 10 s each) → p95 < 50 ms each.
//  4. Signs: 50 distinct approvers, closed loop, ~2,000 signs. Each flow is signed by two members of its
//     team at about the same time, so one sign of each pair completes the quorum: it finishes the stage and
//     the flow, and the flow's outcome activity (flowFinished) runs before its workflow completes. → p95 of
//     request → response < 150 ms over all signs (first and completing, also reported apart); a sampled
//     GET right after shows the signature; every flow a sign completed is approved in the read model and
//     its workflow has completed (outcome ran) within BENCH_APPROVALS_OUTCOME_WAIT_SECONDS.
//     Its baseline, #18's "signs: Docket / bare" (target ≥ 0.85): as many Updates, as many in flight, to as many
//     open workflows of temporal-ceiling.workflow.ts's smallest kind (started after the drain, fired by the SDK's
//     minimal worker as its own process with Docket's cache of 250, so each Update misses it as each sign does), on
//     the same server just before and just after the signs; signs/s ÷ the mean of the two.
// Every phase is time-boxed (BENCH_APPROVALS_* knobs), so the suite ends even when a target is far off.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import autocannon from 'autocannon';
import { QueryTypes } from 'sequelize';
import { ApiKey, Role, User, UserRole } from '../../db';
import { generateApiKey } from '../../domains/identity/keys';
import { connectTemporal } from '../../lib/temporal';
import { SmtpSinkProcess, startSmtpSinkProcess } from '../lib/smtp-sink';
import { APPROVALS_TASK_QUEUE } from '../../workflows/approvals.api';
import { cpuMeter, CpuUsage, processTree } from '../lib/cpu';
import { LoopResult, runConcurrent, table } from '../lib/measure';
import { ApiProcess, BenchStack, log, ProcMemory, round, stopAll } from '../lib/stack';
import { runUpdates, spread, startCeilingWorkflows, UpdateRun } from '../lib/updates';
import { latencyOf, Latency, Reply, request, spawnMinimalWorker, startWorker, waitForPoller } from '../lib/worker';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';

interface Approver { id: string; key: string; team: number }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FLOW_PREFIX = 'bench-';
const BENCH_OBJECT_TYPE = 'bench_request';
const teamKey = (t: number) => `team-${String(t).padStart(2, '0')}`;
/** The bare Updates' queue, polled by the minimal worker. */
const BARE_QUEUE = 'docket-bench-bare-updates';

export const approvals: Suite = {
  name: 'approvals',
  description: '10k open flows (20 teams × 3 approvers), every approver email delivered over SMTP to a sink: worker RSS once drained; list/filter pending flows idle; sign at 50 concurrent approvers, half the signs completing a flow',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const workerMaxCached = process.env.BENCH_APPROVALS_WORKER_MAX_CACHED ? envInt('BENCH_APPROVALS_WORKER_MAX_CACHED', 0) : undefined;
    const config = {
      flows: envInt('BENCH_APPROVALS_FLOWS', 10_000),
      teams: envInt('BENCH_APPROVALS_TEAMS', 20),
      teamSize: envInt('BENCH_APPROVALS_TEAM_SIZE', 3),
      quorum: 2,
      startConcurrency: envInt('BENCH_APPROVALS_START_CONCURRENCY', 50),
      /** Setup: the start phase takes no new work after this long (the rest are reported as not started). */
      startBudgetSeconds: envInt('BENCH_APPROVALS_START_BUDGET_SECONDS', 600),
      /** After the last start: how long to wait for every flow to be open and its emails sent. */
      drainWaitSeconds: envInt('BENCH_APPROVALS_DRAIN_WAIT_SECONDS', 600),
      listConnections: envInt('BENCH_APPROVALS_LIST_CONNECTIONS', 20),
      listWarmupSeconds: envInt('BENCH_APPROVALS_LIST_WARMUP_SECONDS', 2),
      listSeconds: envInt('BENCH_APPROVALS_LIST_SECONDS', 10),
      signs: envInt('BENCH_APPROVALS_SIGNS', 2000),
      signConcurrency: envInt('BENCH_APPROVALS_SIGN_CONCURRENCY', 50),
      /** The sign phase takes no new work after this long. */
      signBudgetSeconds: envInt('BENCH_APPROVALS_SIGN_BUDGET_SECONDS', 60),
      signTimeoutMs: envInt('BENCH_APPROVALS_SIGN_TIMEOUT_MS', 15_000),
      readAfterSignSample: envInt('BENCH_APPROVALS_CHECK_SAMPLE', 100),
      /** After the signs: how long the flows they completed may take to finish (outcome activity, workflow completed). */
      outcomeWaitSeconds: envInt('BENCH_APPROVALS_OUTCOME_WAIT_SECONDS', 120),
      worker: {
        queues: 'approvals,approval-notifications',
        env: {
          NODE_ENV: 'production', LOG_LEVEL: 'warn', SMTP_URL: 'the counting sink, its own process (real SMTP delivery; before 2026-12 unset: emails logged, suppressed)',
          // A deployment setting when given: bounds each queue's sticky cache (workers/create.ts).
          WORKER_MAX_CACHED_WORKFLOWS: workerMaxCached ?? 'unset (Docket default, 250)',
        },
      },
    };
    const startedAt = new Date().toISOString();
    const sequelize = stack.sequelize;
    const tenantId = stack.tenantId;
    const linkSecret = process.env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex');

    // Teams: one role each (sign + read), teamSize users holding it, an API key each — straight into the DB.
    const approvers: Approver[] = await sequelize.transaction(async (transaction) => {
      const roles = Array.from({ length: config.teams }, (_, t) => ({ id: randomUUID(), tenantId, key: teamKey(t), title: `Team ${t}`, permissions: ['approvals.flow.sign', 'approvals.flow.read'] }));
      await Role.bulkCreate(roles, { transaction });
      const users = roles.flatMap((role, t) => Array.from({ length: config.teamSize }, (_, m) => ({
        id: randomUUID(), tenantId, email: `${role.key}-${m}@bench.local`, name: `Team ${t} member ${m}`, active: true, team: t, roleId: role.id,
      })));
      await User.bulkCreate(users.map(({ team: _t, roleId: _r, ...u }) => u), { transaction });
      await UserRole.bulkCreate(users.map((u) => ({ userId: u.id, roleId: u.roleId, tenantId })), { transaction });
      const keys = users.map((u) => ({ u, k: generateApiKey() }));
      await ApiKey.bulkCreate(keys.map(({ u, k }) => ({
        id: randomUUID(), tenantId, userId: u.id, name: 'bench approver key', prefix: k.prefix, secretHash: k.secretHash, scopes: null, expiresAt: null,
      })), { transaction });
      return keys.map(({ u, k }) => ({ id: u.id, key: k.secret, team: u.team }));
    });
    log(`approvals: ${config.teams} teams × ${config.teamSize} approvers`);

    const stops: (() => Promise<void>)[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(config.startConcurrency, config.signConcurrency) + 10 });
    stops.push(async () => { agent.destroy(); });
    try {
      const sink: SmtpSinkProcess = await startSmtpSinkProcess();
      stops.push(sink.stop);
      log(`SMTP sink pid ${sink.pid} on ${sink.url}`);
      const worker = await startWorker(stack, config.worker.queues, {
        LINK_SIGNING_SECRET: linkSecret, SMTP_URL: sink.url, ...(workerMaxCached ? { WORKER_MAX_CACHED_WORKFLOWS: String(workerMaxCached) } : {}),
      });
      stops.push(worker.stop);
      log(`worker pid ${worker.pid} started`);
      const api = await stack.startApi({ LINK_SIGNING_SECRET: linkSecret });
      stops.push(api.stop);
      log(`API pid ${api.pid} ready on ${api.url}`);
      // The bare Updates' worker: the SDK's defaults, Docket's cache size, nothing of Docket.
      const bareWorker = spawnMinimalWorker({ address: stack.temporalAddress, taskQueue: BARE_QUEUE, cache: workerMaxCached ?? 250 });
      stops.push(bareWorker.stop);
      const groups = () => ({ ...stack.processGroups(api), worker: () => processTree(worker.pid), smtp: () => [sink.pid], bare: () => processTree(bareWorker.pid) });
      await waitForPoller(stack, worker, APPROVALS_TASK_QUEUE);
      log('worker is polling the approvals task queue');

      const call = (method: string, p: string, key: string, body?: unknown, timeoutMs = 30_000) => request(agent, api, method, p, key, body, timeoutMs);
      // Requests of an object type Docket does not own (purchase orders are started only by their submit).
      for (let t = 0; t < config.teams; t++) {
        const tpl = await call('POST', '/v1/approval-templates', stack.apiKey, {
          name: `Team ${t} requests`, objectType: BENCH_OBJECT_TYPE, condition: `team == ${t}`,
          stages: [{ name: `Team ${t}`, approvers: { roles: [teamKey(t)] }, rule: 'quorum', quorum: config.quorum }],
        });
        if (tpl.status !== 201) throw new Error(`creating template ${t}: HTTP ${tpl.status} ${tpl.body.slice(0, 300)}`);
      }

      const memory: Record<string, ProcMemory> = { workerIdle: worker.memory() };
      const progress = async () => {
        const [f] = await sequelize.query<{ open: string }>(
          `SELECT count(*) AS open FROM approval_flows WHERE tenant_id = :tenantId AND status = 'pending' AND state_version >= 0 AND object_id LIKE :like`,
          { replacements: { tenantId, like: `${FLOW_PREFIX}%` }, type: QueryTypes.SELECT },
        );
        const [d] = await sequelize.query<{ sent: string; rows: string }>(
          `SELECT count(*) FILTER (WHERE status = 'sent') AS sent, count(*) AS rows FROM deliveries WHERE tenant_id = :tenantId AND subject_type = 'approval_flow'`,
          { replacements: { tenantId }, type: QueryTypes.SELECT },
        );
        const atSink = await sink.stats();
        return { open: Number(f.open), emailsSent: Number(d.sent), deliveryRows: Number(d.rows), delivered: atSink.distinct, atSink };
      };

      // 1. Setup: the flows (not judged) ----------------------------------------------------------------
      log(`starting ${config.flows} flows, ${config.startConcurrency} in flight, box ${config.startBudgetSeconds} s`);
      const t0 = Date.now();
      const startMeter = cpuMeter(groups());
      const starts = await runUntil(config.flows, config.startConcurrency, Date.now() + config.startBudgetSeconds * 1000, async (i) => {
        const r = await call('POST', '/v1/approval-flows', stack.apiKey, {
          objectType: BENCH_OBJECT_TYPE, objectId: `${FLOW_PREFIX}${i}`, context: { team: i % config.teams, total: 5000 },
        });
        if (r.status !== 201) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 150)}`);
      });
      const startCpu = startMeter();
      const atLastStart = await progress();
      memory.workerAfterStarts = worker.memory();
      log(`started ${starts.ok}/${config.flows} in ${starts.seconds} s (${starts.perSecond}/s); ${atLastStart.open} open, ${atLastStart.emailsSent} emails sent, ${atLastStart.delivered} at the sink; worker RSS ${memory.workerAfterStarts.rssMb} MB`);

      // 2. Drain: every started flow open with its emails sent, then the worker's memory -----------------
      const emailsNeeded = starts.ok * config.teamSize;
      const drainMeter = cpuMeter(groups());
      const drainTimeline: { s: number; open: number; emailsSent: number; delivered: number; workerRssMb: number }[] = [];
      const drainDeadline = Date.now() + config.drainWaitSeconds * 1000;
      let now = atLastStart;
      for (;;) {
        now = await progress();
        drainTimeline.push({ s: round((Date.now() - t0) / 1000, 1), open: now.open, emailsSent: now.emailsSent, delivered: now.delivered, workerRssMb: worker.alive() ? worker.memory().rssMb : 0 });
        if ((now.open >= starts.ok && now.emailsSent >= emailsNeeded && now.delivered >= emailsNeeded) || Date.now() > drainDeadline || !worker.alive()) break;
        await sleep(2000);
      }
      const drainCpu = drainMeter();
      if (!worker.alive()) throw new Error(`the worker exited:\n${worker.output()}`);
      const drained = now.open >= starts.ok && now.emailsSent >= emailsNeeded && now.delivered >= emailsNeeded;
      const sinkAfterDrain = now.atSink;
      const drainedAfterSeconds = drained ? round((Date.now() - t0) / 1000, 1) : null;
      memory.workerFlowsOpen = worker.memory();
      // Why not, when not: the worker logs at warn, so retried activities (e.g. a pool timeout) show here.
      const workerLogTail = drained ? undefined : worker.output().slice(-3000);
      if (workerLogTail) log(`not drained; the worker's last output:\n${workerLogTail}`);
      const stuck = drained ? [] : await stuckFlows(stack, config.teamSize);
      if (stuck.length) log(`flows without all their emails sent, as Temporal sees them: ${JSON.stringify(stuck)}`);
      log(`${now.open}/${starts.ok} flows open, ${now.emailsSent}/${emailsNeeded} emails sent, ${now.delivered} delivered at the sink (${now.atSink.duplicates} duplicates) ${drained ? `after ${drainedAfterSeconds} s` : `(gave up after ${config.drainWaitSeconds} s of waiting)`}; worker RSS ${memory.workerFlowsOpen.rssMb} MB, peak ${memory.workerFlowsOpen.peakRssMb} MB`);

      // The bare Updates' workflows, as many as the flows open, their first tasks run before the lists.
      const temporal = await connectTemporal(stack.temporalAddress, 'default');
      stops.push(() => temporal.connection.close());
      await waitForPoller(stack, bareWorker, BARE_QUEUE);
      const bareOpen = await startCeilingWorkflows(temporal.client, { count: Math.max(1, now.open), taskQueue: BARE_QUEUE, idPrefix: `bare-${randomUUID().slice(0, 8)}` });
      log(`bare: ${bareOpen.starts.ok} open workflows answering Updates (${bareOpen.starts.perSecond}/s started)`);

      // 3. Lists, idle ------------------------------------------------------------------------------
      const lister = approvers[0];
      const lists = [
        { name: 'GET /v1/approval-flows?status=pending&limit=50', short: '?status', path: '/v1/approval-flows?status=pending&limit=50', key: stack.apiKey },
        { name: 'GET /v1/approval-flows?pendingFor=<user>&limit=50', short: '?pendingFor', path: `/v1/approval-flows?pendingFor=${lister.id}&limit=50`, key: stack.apiKey },
        { name: 'GET /v1/me/approvals?limit=50 (approver)', short: '/v1/me/approvals', path: '/v1/me/approvals?limit=50', key: lister.key },
      ];
      const listResults = [];
      for (const l of lists) {
        const probe = await call('GET', l.path, l.key);
        const items = probe.status === 200 ? (JSON.parse(probe.body) as { items: unknown[] }).items.length : -1;
        if (probe.status !== 200) log(`WARNING: ${l.name} answered ${probe.status}: ${probe.body.slice(0, 200)}`);
        listResults.push({ ...(await benchList(api, l, config, groups())), short: l.short, itemsPerPage: items });
      }
      const [{ n: pendingForLister }] = await sequelize.query<{ n: string }>(
        `SELECT count(*) AS n FROM approval_flows WHERE tenant_id = :tenantId AND status = 'pending' AND pending_approvers @> ARRAY[:user]::uuid[]`,
        { replacements: { tenantId, user: lister.id }, type: QueryTypes.SELECT },
      );
      memory.workerAfterLists = worker.memory();

      // 4. Signs ---------------------------------------------------------------------------------------
      const bare: UpdateRun[] = [];
      const bareRun = async (label: string) => {
        const r = await runUpdates(temporal.client, { updates: config.signs, concurrency: config.signConcurrency, pick: spread(bareOpen.ids, bare.length * config.signs), groups: groups() });
        log(`bare Updates (${label}): ${r.ok}/${r.total} at ${r.perSecond}/s, p95 ${r.p95Ms} ms`);
        bare.push(r);
      };
      await bareRun('before');
      const signed = await benchSigns(stack, approvers, call, config, groups());
      await bareRun('after');
      const bareUpdatesPerSecond = round(bare.reduce((sum, b) => sum + b.perSecond, 0) / bare.length, 1);
      const signsRatio = round(signed.perSecond / Math.max(0.001, bareUpdatesPerSecond), 3);
      memory.workerAfterSigns = worker.memory();
      const outcomes = await waitForOutcomes(stack, signed.completedFlows, config.outcomeWaitSeconds, groups());
      log(`flows completed by a sign: ${signed.completedFlows.length}; approved in the read model ${outcomes.approved}, workflow completed (outcome ran) ${outcomes.workflowsCompleted}, after ${outcomes.seconds} s`);
      memory.workerAfterOutcomes = worker.memory();
      memory.apiEnd = api.memory();
      memory.smtpSink = sink.memory();
      const sinkEnd = await sink.stats();
      // What one flow costs Temporal: history events of a flow opened and signed once (a diagnostic).
      const signedFlowHistoryEvents = signed.firstSigned ? await historyLengthOf(stack, signed.firstSigned) : null;

      const workerPeak = Math.max(...Object.entries(memory).filter(([k]) => k.startsWith('worker')).map(([, m]) => m.peakRssMb));
      const completedSigns = signed.completedFlows.length;
      const targets = [
        judge('precondition: flows started and open (read model pending, emails sent and delivered) before measuring', drained ? now.open : Math.min(now.open, starts.ok, Math.floor(Math.min(now.emailsSent, now.delivered) / config.teamSize)), '==', config.flows, 'flows'),
        judge(`approver emails delivered over SMTP, distinct messages counted at the sink (${starts.ok} flows × ${config.teamSize})`, sinkAfterDrain.distinct, '==', emailsNeeded, 'emails'),
        judge(`worker peak RSS (VmHWM) with ${now.open} flows open, through every phase`, workerPeak, '<', 1024, 'MB'),
        ...listResults.map((l) => judge(`${l.name} p95`, l.latencyMs.p95, '<', 50, 'ms')),
        judge('list non-2xx + errors', listResults.reduce((s, l) => s + l.non2xx + l.errors + l.timeouts, 0), '==', 0, 'responses'),
        // No 200 at all is a failure, not a 0 ms p95 (NaN fails every comparison).
        judge(`POST …/sign p95 (200s) at ${signed.lanes} concurrent approvers`, signed.ok ? signed.latencyMs.p95 : NaN, '<', 150, 'ms'),
        judge('signs answered 200', signed.ok, '>=', config.signs, 'signs'),
        judge(`signs: Docket (POST …/sign, ${signed.perSecond}/s) / bare (Updates on uncached workflows, ${bare.map((b) => b.perSecond).join('/s, ')}/s)`, signsRatio, '>=', 0.85, '×'),
        judge('GET right after sign shows the signature', signed.readAfterSign.checked ? signed.readAfterSign.missing : NaN, '==', 0, 'flows missing it'),
        // No completing sign at all is a failure (the phase would not have measured what it claims).
        judge('precondition: flows completed by a sign (finished its stage and the flow), one per pair of signs', completedSigns, '>=', Math.floor(signed.ok / 2) - signed.lanes, 'flows'),
        judge(`flows completed by a sign whose outcome ran (approved, workflow completed, within ${config.outcomeWaitSeconds} s)`, completedSigns ? Math.min(outcomes.approved, outcomes.workflowsCompleted) : NaN, '==', completedSigns, 'flows'),
      ];
      const summary = [
        `shape: ${config.teams} teams × ${config.teamSize} approvers, one template per team (one stage, quorum ${config.quorum} of the team's role); ${config.teamSize} emails per flow; the lister has ${pendingForLister} pending flows`,
        table(['setup: flow starts', 'started', 'failed', 'seconds', 'starts/s', 'p50 ms', 'p99 ms', 'open at last start', 'emails sent then'], [
          [`POST /v1/approval-flows ×${config.startConcurrency}`, starts.ok, starts.failed, starts.seconds, starts.perSecond, starts.latencyMs.p50, starts.latencyMs.p99, atLastStart.open, atLastStart.emailsSent],
        ]),
        ...(Object.keys(starts.errors).length ? [`start errors: ${JSON.stringify(starts.errors)}`] : []),
        ...(starts.total < config.flows ? [`start box (${config.startBudgetSeconds} s) ran out: ${starts.total} of ${config.flows} attempted`] : []),
        `drain: ${now.open}/${starts.ok} open, ${now.emailsSent}/${emailsNeeded} emails sent (${now.deliveryRows} delivery rows), ${now.delivered} delivered at the SMTP sink (${now.atSink.messages} messages, ${now.atSink.duplicates} duplicates, ${round(now.atSink.bytes / 1e6, 1)} MB) ${drained ? `after ${drainedAfterSeconds} s since the first start` : `— not drained within ${config.drainWaitSeconds} s after the last start`}`,
        `drain over time (s since first start: open/emails sent/delivered): ${drainTimeline.map((p) => `${p.s}:${p.open}/${p.emailsSent}/${p.delivered}`).join(' ')}`,
        '',
        table(['list (idle, 20 conns)', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'items', 'non-2xx', 'errors'],
          listResults.map((l) => [l.name, l.reqPerSec, l.latencyMs.p50, l.latencyMs.p95, l.latencyMs.p99, l.latencyMs.max, l.itemsPerPage, l.non2xx, l.errors + l.timeouts])),
        '',
        table(['sign', 'ok (200)', 'other', 'seconds', 'signs/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'], [
          [`POST …/sign ×${signed.lanes} approvers`, signed.ok, signed.failed, signed.seconds, signed.perSecond, signed.latencyMs.p50, signed.latencyMs.p95, signed.latencyMs.p99, signed.latencyMs.max],
          ['  answered: flow still pending', signed.pendingAnswers, '', '', '', signed.pendingAnswerLatencyMs.p50, signed.pendingAnswerLatencyMs.p95, signed.pendingAnswerLatencyMs.p99, signed.pendingAnswerLatencyMs.max],
          ['  answered: flow approved (completing sign, or its partner in the same task)', signed.ok - signed.pendingAnswers, '', '', '', signed.approvedAnswerLatencyMs.p50, signed.approvedAnswerLatencyMs.p95, signed.approvedAnswerLatencyMs.p99, signed.approvedAnswerLatencyMs.max],
          ...bare.map((b, i) => [`bare Updates, ${i ? 'after' : 'before'} (×${config.signConcurrency}, ${bareOpen.ids.length} open)`, b.ok, b.total - b.ok, '', b.perSecond, b.p50Ms, b.p95Ms, b.p99Ms, '']),
          ['signs: Docket / bare', '', '', '', signsRatio, '', '', '', ''],
        ]),
        `outcomes: ${completedSigns} flows completed by a sign; ${outcomes.approved} approved in the read model, ${outcomes.workflowsCompleted} workflows completed (flowFinished ran) ${outcomes.seconds} s after the last sign`,
        `SMTP sink at the end: ${sinkEnd.messages} messages, ${sinkEnd.distinct} distinct, ${sinkEnd.duplicates} duplicates, ${round(sinkEnd.bytes / 1e6, 1)} MB`,
        ...(Object.keys(signed.statuses).length ? [`sign outcomes: ${JSON.stringify(signed.statuses)}`] : []),
        `history events of a flow opened and signed once: ${signedFlowHistoryEvents ?? 'n/a'}`,
        `GET right after sign: ${signed.readAfterSign.checked} checked, ${signed.readAfterSign.missing} without the signature${signed.readAfterSign.examples.length ? ` (${signed.readAfterSign.examples.join('; ')})` : ''}`,
        '',
        table(['memory (MB)', 'VmRSS', 'VmHWM (peak)'], Object.entries(memory).map(([k, v]) => [k, v.rssMb, v.peakRssMb])),
        `worker sticky cache: ${workerMaxCached ? `WORKER_MAX_CACHED_WORKFLOWS=${workerMaxCached}` : 'Docket default (WORKER_MAX_CACHED_WORKFLOWS unset = 250)'}`,
        '',
        cpuTable([['setup: flow starts', startCpu], ['drain', drainCpu], ...listResults.map((l) => [`list ${l.short}`, l.cpu] as [string, CpuUsage]), ['bare Updates, before', bare[0].cpu], ['signs', signed.cpu], ['bare Updates, after', bare[1].cpu], ['outcomes', outcomes.cpu]]),
      ].join('\n');

      return {
        suite: 'approvals', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: {
          starts, startCpu, atLastStart, drain: { ...now, drained, drainedAfterSeconds, emailsNeeded, timeline: drainTimeline, cpu: drainCpu, workerLogTail, stuck },
          lists: listResults, listerPendingFlows: Number(pendingForLister), signs: { ...signed, completedFlows: completedSigns }, outcomes, smtpSink: { afterDrain: sinkAfterDrain, end: sinkEnd },
          bareUpdates: bare, bareOpenWorkflows: bareOpen.ids.length, 'signs: Docket / bare': signsRatio,
          signedFlowHistoryEvents, memoryMb: memory, workerPeakRssMb: workerPeak,
        },
        targets, summary,
      };
    } finally {
      await stopAll(stops);
    }
  },
};

/** runConcurrent with its deadline first, as the phases here read. */
const runUntil = (total: number, concurrency: number, deadline: number, op: (i: number) => Promise<void>): Promise<LoopResult> =>
  runConcurrent(total, concurrency, op, deadline);

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
  /** Approvers signing at once, each on its own flows. */
  lanes: number;
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
  /** The workflow id of the first flow signed (200), for its history length. */
  firstSigned?: string;
  /**
   * Latency of signs answered with the flow still pending, and of those answered with it approved. Both
   * signs of a pair are answered "approved" when the workflow applied them in the same task, so the second
   * group is the completing signs plus some of their partners.
   */
  pendingAnswerLatencyMs: Latency;
  pendingAnswers: number;
  approvedAnswerLatencyMs: Latency;
  /** Flows (distinct ids) a sign approved: the pair's second signature completed the quorum, the stage and the flow. */
  completedFlows: string[];
  cpu: CpuUsage;
}

type Call = (method: string, p: string, key: string, body?: unknown, timeoutMs?: number) => Promise<Reply>;

async function benchSigns(stack: BenchStack, approvers: Approver[], call: Call, c: { teams: number; teamSize: number; signs: number; signConcurrency: number; signBudgetSeconds: number; signTimeoutMs: number; readAfterSignSample: number }, groups: ReturnType<BenchStack['processGroups']>): Promise<SignResult> {
  // Open flows nobody has signed yet, oldest first; flow bench-<i> belongs to team i mod teams.
  const rows = await stack.sequelize.query<{ id: string; objectId: string }>(
    `SELECT id, object_id AS "objectId" FROM approval_flows WHERE tenant_id = :tenantId AND status = 'pending' AND state_version >= 0 AND object_id LIKE :like
     AND NOT EXISTS (SELECT 1 FROM approval_events e WHERE e.flow_id = approval_flows.id AND e.type = 'signed')
     ORDER BY created_at`,
    { replacements: { tenantId: stack.tenantId, like: `${FLOW_PREFIX}%` }, type: QueryTypes.SELECT },
  );
  // Each lane is one approver. A team's flows are dealt out to pairs of its signing members: flow k of the
  // team is signed by member k mod L and member (k + 1) mod L (L = the team's members among the lanes), each
  // lane taking its flows in order, so the two signs of a flow come at about the same time and the later one
  // completes the quorum of 2 (the stage and the flow end, the outcome activity runs). No flow gets a third
  // sign, so no sign meets a closed flow.
  const byTeam = new Map<number, string[]>();
  for (const r of rows) {
    const team = Number(r.objectId.slice(FLOW_PREFIX.length)) % c.teams;
    byTeam.set(team, [...(byTeam.get(team) ?? []), r.id]);
  }
  const lanesOf = approvers.slice(0, Math.min(c.signConcurrency, approvers.length));
  const queueOf = (a: Approver) => {
    const mates = lanesOf.filter((x) => x.team === a.team);
    const m = mates.indexOf(a);
    const L = mates.length;
    return (byTeam.get(a.team) ?? []).filter((_, k) => k % L === m || (L > 1 && (k + 1) % L === m));
  };
  const queues = new Map(lanesOf.map((a) => [a, queueOf(a)]));
  const available = [...queues.values()].reduce((s, q) => s + q.length, 0);
  log(`signs: ${lanesOf.length} approvers signing in pairs, ${available} signs on their open flows available (${c.signs} wanted), budget ${c.signBudgetSeconds} s`);
  const samples: number[] = [];
  const pendingSamples: number[] = [];
  const approvedSamples: number[] = [];
  const completedFlows = new Set<string>();
  const statuses: Record<string, number> = {};
  const readAfterSign = { checked: 0, missing: 0, examples: [] as string[] };
  const checkEvery = Math.max(1, Math.floor(Math.min(c.signs, available) / Math.max(1, c.readAfterSignSample)));
  let attempted = 0;
  let firstSigned: string | undefined;
  const meter = cpuMeter(groups);
  const started = process.hrtime.bigint();
  const deadline = Date.now() + c.signBudgetSeconds * 1000;
  const lane = async (approver: Approver): Promise<void> => {
    for (const id of queues.get(approver)!) {
      if (attempted >= c.signs || Date.now() > deadline) return;
      const n = attempted++;
      try {
        const r = await call('POST', `/v1/approval-flows/${id}/sign`, approver.key, { decision: 'approve' }, c.signTimeoutMs);
        const label = r.status === 200 ? '200' : `${r.status} ${r.body.slice(0, 120)}`;
        statuses[label] = (statuses[label] ?? 0) + 1;
        if (r.status !== 200) continue;
        samples.push(r.ms);
        const flow = JSON.parse(r.body) as { workflowId: string; status: string; stages: { signatures: { userId: string }[] }[] };
        firstSigned ??= flow.workflowId;
        if (flow.status === 'approved') {
          approvedSamples.push(r.ms);
          completedFlows.add(id);
        } else {
          pendingSamples.push(r.ms);
        }
        const inResponse = flow.stages[0].signatures.some((s) => s.userId === approver.id);
        if (n % checkEvery === 0 && readAfterSign.checked < c.readAfterSignSample) {
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
  await Promise.all(lanesOf.map(lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = meter();
  const ok = samples.length;
  delete statuses['200'];
  return {
    lanes: lanesOf.length, attempted, ok, failed: attempted - ok, seconds: round(seconds, 2), perSecond: round(ok / seconds, 1), latencyMs: latencyOf(samples),
    statuses, readAfterSign, openFlowsAvailable: available, firstSigned,
    pendingAnswerLatencyMs: latencyOf(pendingSamples), pendingAnswers: pendingSamples.length, approvedAnswerLatencyMs: latencyOf(approvedSamples), completedFlows: [...completedFlows], cpu,
  };
}

/**
 * Until every flow a sign completed is `approved` in the read model and its workflow has completed — which it
 * does only after the outcome activity (flowFinished) returned — or `waitSeconds` have passed.
 */
async function waitForOutcomes(stack: BenchStack, flowIds: string[], waitSeconds: number, groups: ReturnType<BenchStack['processGroups']>): Promise<{ approved: number; workflowsCompleted: number; seconds: number; cpu: CpuUsage }> {
  const meter = cpuMeter(groups);
  const started = Date.now();
  if (!flowIds.length) return { approved: 0, workflowsCompleted: 0, seconds: 0, cpu: meter() };
  const rows = await stack.sequelize.query<{ workflowId: string }>(
    `SELECT workflow_id AS "workflowId" FROM approval_flows WHERE id IN (:ids)`, { replacements: { ids: flowIds }, type: QueryTypes.SELECT },
  );
  const temporal = await connectTemporal(stack.temporalAddress, 'default');
  try {
    const open = new Set(rows.map((r) => r.workflowId));
    let approved = 0;
    for (;;) {
      // Describe each workflow not yet seen completed, 20 at a time (not a visibility count, which is only
      // eventually consistent with the workflows' state).
      const ids = [...open];
      for (let i = 0; i < ids.length; i += 20) {
        await Promise.all(ids.slice(i, i + 20).map(async (wid) => {
          const d = await temporal.client.workflow.getHandle(wid).describe();
          if (d.status.name === 'COMPLETED') open.delete(wid);
        }));
      }
      const [a] = await stack.sequelize.query<{ n: string }>(
        `SELECT count(*) AS n FROM approval_flows WHERE id IN (:ids) AND status = 'approved'`, { replacements: { ids: flowIds }, type: QueryTypes.SELECT },
      );
      approved = Number(a.n);
      if ((!open.size && approved === flowIds.length) || Date.now() - started > waitSeconds * 1000) break;
      await sleep(1000);
    }
    return { approved, workflowsCompleted: rows.length - open.size, seconds: round((Date.now() - started) / 1000, 1), cpu: meter() };
  } finally {
    await temporal.connection.close();
  }
}

/** Up to 3 open flows whose emails are not all sent: what Temporal says is pending for each (a diagnostic). */
async function stuckFlows(stack: BenchStack, emailsPerFlow: number): Promise<unknown[]> {
  const rows = await stack.sequelize.query<{ workflowId: string }>(
    `SELECT f.workflow_id AS "workflowId" FROM approval_flows f WHERE f.tenant_id = :tenantId AND f.object_id LIKE :like AND f.status = 'pending'
     AND (SELECT count(*) FROM deliveries d WHERE d.subject_id = f.id::text AND d.status = 'sent') < :n LIMIT 3`,
    { replacements: { tenantId: stack.tenantId, like: `${FLOW_PREFIX}%`, n: emailsPerFlow }, type: QueryTypes.SELECT },
  );
  const temporal = await connectTemporal(stack.temporalAddress, 'default');
  try {
    return await Promise.all(rows.map(async ({ workflowId }) => {
      const d = await temporal.client.workflow.getHandle(workflowId).describe();
      return {
        workflowId, status: d.status.name, historyLength: d.historyLength, pendingWorkflowTask: d.raw.pendingWorkflowTask ?? null,
        pendingActivities: (d.raw.pendingActivities ?? []).map((a) => ({
          type: a.activityType?.name, state: a.state, attempt: a.attempt, lastFailure: a.lastFailure?.message ?? null, lastWorker: a.lastWorkerIdentity,
        })),
      };
    }));
  } finally {
    await temporal.connection.close();
  }
}

async function historyLengthOf(stack: BenchStack, workflowId: string): Promise<number> {
  const temporal = await connectTemporal(stack.temporalAddress, 'default');
  try {
    return (await temporal.client.workflow.getHandle(workflowId).describe()).historyLength;
  } finally {
    await temporal.connection.close();
  }
}

function cpuTable(rows: [string, CpuUsage][]): string {
  const names = ['api', 'worker', 'bare', 'smtp', 'postgres', 'temporal', 'bench', 'other'];
  return table(['CPU, % of one core', 'machine busy %', ...names], rows.map(([label, u]) => [label, u.machineBusyPct, ...names.map((n) => u.cores[n] ?? '')]));
}
