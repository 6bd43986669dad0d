// Experiment, not a suite: where the gap between a reminder created through the API and a raw Temporal start goes
// (#18's "reminder creates: Docket / bare", judged ≥ 0.85). On one 2-core box every path shares the CPU with the
// Temporal server, so each layer is measured as throughput against raw starts on the same server, same run:
//   raw     — startBusinessWorkflow of reminderWorkflow (the API's options) from this process, nothing else;
//   floor   — one INSERT of a minimal row into Postgres, then the same start: the least that records the reminder
//             durably before its workflow exists (what any design that writes the row first pays);
//   command — createReminder(), the API's own command, called in this process (under tsx, a pool of 20 as the API's):
//             the user check, the row with its audit event and start intent in one statement, the start — all but HTTP;
//   api     — POST /v1/reminders to the compiled API process (HTTP, validation, auth, rate limit, logging).
// Blocks of BENCH_CREATE_FLOOR_N (1,000), 50 in flight, in the order raw floor command api api command floor raw, so
// the server's growth falls on every path alike. No worker polls: every path ends with a started workflow.
//
//   npx tsx bench/experiments/create-floor.ts
//
// Writes bench/results/create-floor-<time>-<revision>.json with each path's rate, ratio to raw and CPU split.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createSequelize, User } from '../../db';
import type { Config } from '../../config';
import { createReminder } from '../../domains/reminders/commands';
import type { CommandDeps } from '../../domains/command';
import { PROJECT_ROOT } from '../../lib/paths';
import { connectTemporal, startBusinessWorkflow } from '../../lib/temporal';
import type { reminderWorkflow } from '../../workflows/reminders';
import { REMINDER_PATCHES, REMINDERS_DOMAIN } from '../../workflows/reminders.api';
import { cpuMeter, CpuUsage, machineBusyPct, meanCpu } from '../lib/cpu';
import { LoopResult, runConcurrent, samplesOf, summarize } from '../lib/measure';
import { gitRevision, writeResultFile } from '../lib/provenance';
import { log, round, startStack, stopAll } from '../lib/stack';
import { envInt } from '../lib/suite';
import { request } from '../lib/worker';

type Mode = 'raw' | 'floor' | 'command' | 'api';
const ORDER: Mode[] = ['raw', 'floor', 'command', 'api', 'api', 'command', 'floor', 'raw'];
/** Nobody polls it: a raw or floor start only waits. The API's and the command's go to the reminders queue, unpolled here too. */
const UNPOLLED_QUEUE = 'docket-bench-unpolled';

async function main(): Promise<void> {
  const n = envInt('BENCH_CREATE_FLOOR_N', 1000);
  const concurrency = envInt('BENCH_CREATE_FLOOR_CONCURRENCY', 50);
  const startedAt = new Date().toISOString();
  const busyBefore = await machineBusyPct();
  const stack = await startStack();
  const stops: (() => Promise<void>)[] = [stack.stop];
  try {
    const { tenantId } = stack;
    // A pool as large as the API's (20; the stack's own has 5): the models are bound to the last one created.
    const sequelize = createSequelize(stack.databaseUrl, { poolMax: 20 });
    stops.push(() => sequelize.close());
    const recipient = await User.create({ id: randomUUID(), tenantId, email: 'floor@bench.local', name: 'Floor', active: true });
    await sequelize.query('CREATE UNLOGGED TABLE IF NOT EXISTS bench_floor_rows (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
    await sequelize.query('ALTER TABLE bench_floor_rows SET LOGGED'); // durable, as the reminders table is
    const api = await stack.startApi();
    stops.push(api.stop);
    const temporal = await connectTemporal(stack.temporalAddress, 'default');
    stops.push(() => temporal.connection.close());
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency + 10 });
    stops.push(async () => { agent.destroy(); });

    const due = new Date(Date.now() + 86_400_000).toISOString();
    const args = (id: string) => [{
      tenantId, reminderId: id, channels: ['in_app' as const], recipients: { users: [recipient.id], emails: [], webhooks: 0 },
      schedule: { dueAt: due }, plan: { offsets: [60, 0] }, createdAt: new Date().toISOString(),
      written: { occurrence: due, nextTriggerAt: new Date(Date.parse(due) - 3_600_000).toISOString() }, patches: REMINDER_PATCHES,
    }] as Parameters<typeof reminderWorkflow>;
    const start = (id: string) => startBusinessWorkflow<typeof reminderWorkflow>(temporal.client, {
      workflowType: 'reminderWorkflow', taskQueue: UNPOLLED_QUEUE, domain: REMINDERS_DOMAIN, tenantId, entityType: 'reminder', entityId: id, initialStatus: 'active', args: args(id),
    });
    // createReminder needs of its deps only the database, the client and a start counter (no webhooks, no recurrence).
    const deps = { config: {} as Config, sequelize, temporal: { client: temporal.client }, blobs: undefined as never, metrics: { workflowStarts: { inc: () => undefined } } } as unknown as CommandDeps;
    const caller = { tenantId, userId: recipient.id, roles: [], permissions: undefined as never, actor: { type: 'api_key' as const, id: null }, requestId: null };
    let made = 0;
    const body = () => ({ subject: `floor ${made++}`, channels: ['in_app'], recipients: { users: [recipient.id] }, dueAt: due, offsets: [60, 0] });
    const ops: Record<Mode, () => Promise<void>> = {
      raw: async () => { await start(randomUUID()); },
      floor: async () => {
        const id = randomUUID();
        await sequelize.query('INSERT INTO bench_floor_rows (id, tenant_id) VALUES ($1, $2)', { bind: [id, tenantId] });
        await start(id);
      },
      command: async () => { await createReminder(deps, caller, body() as never); },
      api: async () => {
        const r = await request(agent, api, 'POST', '/v1/reminders', stack.apiKey, body(), 30_000);
        if (r.status !== 201) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 150)}`);
      },
    };

    // Warm-up: every path's code and connections, outside the measured blocks.
    for (const mode of ['raw', 'floor', 'command', 'api'] as const) await runConcurrent(100, concurrency, ops[mode]);

    const blocks: (LoopResult & { mode: Mode; cpu: CpuUsage })[] = [];
    for (const mode of ORDER) {
      const meter = cpuMeter(stack.processGroups(api));
      const r = await runConcurrent(n, concurrency, ops[mode], Date.now() + 120_000);
      blocks.push(Object.assign(r, { mode, cpu: meter() }));
      log(`${mode.padEnd(7)} ${r.ok}/${n} in ${r.seconds} s: ${r.perSecond}/s, p50 ${r.latencyMs.p50} ms${r.failed ? `, ${r.failed} failed` : ''}`);
    }
    const paths = Object.fromEntries((['raw', 'floor', 'command', 'api'] as const).map((mode) => {
      const bs = blocks.filter((b) => b.mode === mode);
      const all = summarize(bs.reduce((s, b) => s + b.total, 0), bs.reduce((s, b) => s + b.seconds, 0), bs.flatMap(samplesOf), {});
      return [mode, { ...all, cpu: meanCpu(bs.map((b) => b.cpu)) }];
    })) as Record<Mode, LoopResult & { cpu: CpuUsage }>;
    const ratio = (m: Mode) => round(paths[m].perSecond / paths.raw.perSecond, 3);
    const result = {
      experiment: 'create-floor', startedAt, finishedAt: new Date().toISOString(), revision: gitRevision().label, machineBusyPctBeforeRun: busyBefore,
      config: { n, concurrency, order: ORDER }, paths, blocks,
      'floor (row + start): floor / raw': ratio('floor'),
      'command (no HTTP): command / raw': ratio('command'),
      'reminder creates: Docket / bare': ratio('api'),
    };
    for (const m of ['floor', 'command', 'api'] as const) {
      const c = paths[m].cpu.cores;
      log(`${m}: ${paths[m].perSecond}/s = ${ratio(m)} of raw ${paths.raw.perSecond}/s; % of a core: temporal ${c.temporal} api ${c.api ?? 0} postgres ${c.postgres} bench ${c.bench}`);
    }
    const file = writeResultFile(path.join(PROJECT_ROOT, 'bench', 'results'), { suite: 'create-floor', startedAt, revision: gitRevision(), processes: {}, tag: '' }, `${JSON.stringify(result, null, 2)}\n`);
    log(`results written to ${file}`);
  } finally {
    await stopAll(stops);
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
