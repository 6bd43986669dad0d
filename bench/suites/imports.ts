// Suite "imports": the imports issue's targets, through the real API and a worker (WORKER_QUEUES=imports) as its
// own process, each run timed from POST /v1/imports to the status that says `finished` (the upload is timed apart):
//  1. the bare path: COPY of the generated 1,000,000-row contacts CSV into a same-shaped table with the same unique
//     index, no Docket code — measured before and after the Docket runs, the mean is the baseline;
//  2. 100,000 rows of the same shape into an empty tenant, with a fresh worker (its peak RSS is the small run's);
//  3. 1,000,000 rows into another empty tenant with another fresh worker (target ≤ 30 s, ≥ 50 % of bare COPY's
//     throughput), then the same file again as `merge` (every row unchanged, target ≤ 30 s); that worker's peak RSS
//     (target < 300 MB, and within 20 % of the small run's);
//  4. a 100,000-row XLSX into a third empty tenant with a fresh worker (target ≤ 20 s).
// Every count is checked (created, unchanged, the tenant's subscribers), so a fast wrong run cannot pass.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { bootstrapTenant } from '../../domains/identity/bootstrap';
import { withClient } from '../../domains/imports/pg';
import { IMPORTS_TASK_QUEUE } from '../../workflows/imports.api';
import { bareContactsCopy, CONTACT_MAPPING, writeContactsCsv, writeContactsXlsx } from '../lib/contacts';
import { cpuMeter, CpuUsage, processTree } from '../lib/cpu';
import { table } from '../lib/measure';
import { ApiProcess, BenchStack, log, round, stopAll } from '../lib/stack';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';
import { startWorker, waitForPoller, WorkerProcess } from '../lib/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Counts { read: number; valid: number; rejected: number; created: number; updated: number; unchanged: number; skipped: number }
interface Run {
  label: string;
  rows: number;
  bytes: number;
  uploadSeconds: number;
  /** POST /v1/imports → status `finished`. */
  seconds: number;
  /** Seconds from the POST at which the status first showed each phase (polled every 100 ms). */
  phases: Record<string, number>;
  counts: Counts;
  rowsPerSecond: number;
  cpu: CpuUsage;
}

export const imports: Suite = {
  name: 'imports',
  description: '1M-row subscribers CSV inserted and merged through the API vs bare COPY of the same file; worker RSS at 100k vs 1M rows; 100k-row XLSX',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      rows: envInt('BENCH_IMPORTS_ROWS', 1_000_000),
      smallRows: envInt('BENCH_IMPORTS_SMALL_ROWS', 100_000),
      xlsxRows: envInt('BENCH_IMPORTS_XLSX_ROWS', 100_000),
      runBudgetSeconds: envInt('BENCH_IMPORTS_RUN_BUDGET_SECONDS', 300),
      worker: { queues: 'imports', env: { NODE_ENV: 'production', LOG_LEVEL: 'warn' } },
    };
    const startedAt = new Date().toISOString();
    const { sequelize } = stack;
    const stops: (() => Promise<void>)[] = [];
    try {
      const dir = path.join(stack.dir, 'imports-bench');
      fs.mkdirSync(dir, { recursive: true });
      const files = { big: path.join(dir, 'contacts-1m.csv'), small: path.join(dir, 'contacts-100k.csv'), xlsx: path.join(dir, 'contacts-100k.xlsx') };
      log(`generating ${config.rows} + ${config.smallRows} CSV rows and ${config.xlsxRows} XLSX rows in ${dir}`);
      const bytes = {
        big: await writeContactsCsv(files.big, config.rows),
        small: await writeContactsCsv(files.small, config.smallRows),
        xlsx: await writeContactsXlsx(files.xlsx, config.xlsxRows),
      };
      log(`files: ${JSON.stringify(bytes)} bytes`);

      // The API with its defaults: a 1M-row export (~110 MB) must upload without raising any limit.
      // Production mode needs a link secret even though imports send no links.
      const linkSecret = { LINK_SIGNING_SECRET: process.env.LINK_SIGNING_SECRET ?? randomBytes(32).toString('hex') };
      const api = await stack.startApi(linkSecret);
      stops.push(api.stop);

      // 1. The bare path, twice (before and after the Docket runs), each into a fresh table.
      let bareNo = 0;
      const bareCopy = async (): Promise<number> => {
        const seconds = await withClient(sequelize, (db) => bareContactsCopy(db, `bare_contacts_${++bareNo}`, stack.tenantId, files.big));
        log(`bare COPY ${bareNo}: ${seconds.toFixed(2)} s`);
        return round(seconds, 2);
      };
      const bare = [await bareCopy()];

      const tenant = async (label: string) => {
        const boot = await bootstrapTenant(sequelize, { name: `Bench ${label}`, slug: `bench-imports-${label}`, adminEmail: `admin@${label}.bench.local` });
        return { id: boot.tenant.id, key: boot.apiKey };
      };
      const freshWorker = async (): Promise<WorkerProcess> => {
        const worker = await startWorker(stack, 'imports', linkSecret);
        stops.push(worker.stop);
        await waitForPoller(stack, worker, IMPORTS_TASK_QUEUE);
        return worker;
      };
      const groups = (worker: WorkerProcess) => ({ ...stack.processGroups(api), worker: () => processTree(worker.pid) });

      const runs: Run[] = [];
      const memory: Record<string, { peakRssMb: number; rssMb: number }> = {};

      // 2. 100,000 rows, fresh worker.
      let worker = await freshWorker();
      memory.smallIdle = worker.memory();
      const small = await tenant('small');
      runs.push(await importFile(api, small.key, files.small, 'insert100k', config.smallRows, bytes.small, 'text/csv', config.runBudgetSeconds, groups(worker)));
      memory.small = worker.memory();
      await worker.stop();

      // 3. 1,000,000 rows, another fresh worker: insert, then the same file as merge.
      worker = await freshWorker();
      memory.bigIdle = worker.memory();
      const big = await tenant('big');
      runs.push(await importFile(api, big.key, files.big, 'insert1m', config.rows, bytes.big, 'text/csv', config.runBudgetSeconds, groups(worker)));
      memory.bigInsert = worker.memory();
      runs.push(await importFile(api, big.key, files.big, 'merge1m', config.rows, bytes.big, 'text/csv', config.runBudgetSeconds, groups(worker)));
      memory.big = worker.memory();
      await worker.stop();

      bare.push(await bareCopy());

      // 4. XLSX, fresh worker.
      worker = await freshWorker();
      const xlsxTenant = await tenant('xlsx');
      runs.push(await importFile(api, xlsxTenant.key, files.xlsx, 'xlsx100k', config.xlsxRows, bytes.xlsx, 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', config.runBudgetSeconds, groups(worker)));
      memory.xlsx = worker.memory();
      await worker.stop();

      // What the runs left behind must be exactly what they reported.
      const subscribersOf = async (tenantId: string) => Number((await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM subscribers WHERE tenant_id = :tenantId', { replacements: { tenantId }, type: QueryTypes.SELECT }))[0].n);
      const byLabel = (l: string) => runs.find((r) => r.label === l)!;
      const checks = {
        insert100k: byLabel('insert100k').counts.created === config.smallRows && (await subscribersOf(small.id)) === config.smallRows,
        insert1m: byLabel('insert1m').counts.created === config.rows,
        merge1m: byLabel('merge1m').counts.unchanged === config.rows && byLabel('merge1m').counts.created === 0 && byLabel('merge1m').counts.updated === 0,
        tenant1m: (await subscribersOf(big.id)) === config.rows,
        xlsx100k: byLabel('xlsx100k').counts.created === config.xlsxRows && (await subscribersOf(xlsxTenant.id)) === config.xlsxRows,
      };

      const bareSeconds = round(bare.reduce((a, b) => a + b, 0) / bare.length, 2);
      const insert = byLabel('insert1m');
      const ratio = round(bareSeconds / insert.seconds, 3);
      const peakBig = Math.max(memory.big.peakRssMb, memory.bigInsert.peakRssMb);
      const peakSmall = memory.small.peakRssMb;
      const rssGrowth = round(Math.abs(peakBig - peakSmall) / peakSmall, 3);
      const peakAll = Math.max(peakBig, peakSmall, memory.xlsx.peakRssMb);

      const targets = [
        judge('every run left exactly the rows and counts it reported', Object.values(checks).every(Boolean) ? 1 : 0, '==', 1, 'bool'),
        judge(`${config.rows} rows inserted (POST → finished)`, insert.seconds, '<=', 30, 's'),
        judge(`${config.rows} rows again as merge (POST → finished)`, byLabel('merge1m').seconds, '<=', 30, 's'),
        judge('insert throughput / bare COPY throughput', ratio, '>=', 0.5, 'ratio'),
        judge('worker peak RSS (every run)', peakAll, '<', 300, 'MB'),
        judge(`worker peak RSS growth ${config.smallRows} → ${config.rows} rows`, rssGrowth, '<=', 0.2, 'ratio'),
        judge(`${config.xlsxRows}-row XLSX (POST → finished)`, byLabel('xlsx100k').seconds, '<=', 20, 's'),
      ];
      const summary = [
        `bare COPY of ${config.rows} rows (${(bytes.big / 1e6).toFixed(1)} MB): ${bare.join(' s, ')} s (mean ${bareSeconds} s)`,
        table(['run', 'rows', 'upload s', 'POST→finished s', 'rows/s', 'phases (s from POST)', 'counts', 'CPU % of a core (worker/pg/temporal/api)'], runs.map((r) => [
          r.label, String(r.rows), String(r.uploadSeconds), String(r.seconds), String(r.rowsPerSecond),
          Object.entries(r.phases).map(([p, s]) => `${p} ${s}`).join(', '),
          `created ${r.counts.created}, updated ${r.counts.updated}, unchanged ${r.counts.unchanged}, rejected ${r.counts.rejected}`,
          ['worker', 'postgres', 'temporal', 'api'].map((g) => r.cpu.cores[g] ?? 0).join('/'),
        ])),
        `worker peak RSS: 100k ${peakSmall} MB, 1M ${peakBig} MB (growth ${(rssGrowth * 100).toFixed(1)} %), XLSX ${memory.xlsx.peakRssMb} MB`,
        `checks: ${JSON.stringify(checks)}`,
      ].join('\n');
      return {
        suite: 'imports', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: { bytes, bare: { runs: bare, meanSeconds: bareSeconds, rowsPerSecond: Math.round(config.rows / bareSeconds) }, runs, memory, ratio, rssGrowth, checks },
        targets, summary,
      };
    } finally {
      await stopAll(stops);
    }
  },
};

/** Uploads `file`, POSTs the import and polls its status until `finished` (or fails the suite when it fails or runs out of budget). */
async function importFile(api: ApiProcess, key: string, file: string, label: string, rows: number, bytes: number, type: string, budgetSeconds: number, groups: Parameters<typeof cpuMeter>[0]): Promise<Run> {
  const headers = { 'x-api-key': key };
  const t0 = performance.now();
  const form = new FormData();
  form.append('file', await fs.openAsBlob(file, { type }), path.basename(file));
  const up = await fetch(`${api.url}/v1/files`, { method: 'POST', headers, body: form });
  const uploaded = await up.json() as { id?: string };
  if (up.status !== 201 || !uploaded.id) throw new Error(`${label}: upload answered ${up.status}: ${JSON.stringify(uploaded).slice(0, 300)}`);
  const uploadSeconds = round((performance.now() - t0) / 1000, 2);

  const meter = cpuMeter(groups);
  const t1 = performance.now();
  const since = () => round((performance.now() - t1) / 1000, 2);
  const res = await fetch(`${api.url}/v1/imports`, {
    method: 'POST', headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ fileId: uploaded.id, target: 'subscribers', columns: CONTACT_MAPPING, mergeStrategy: 'merge' }),
  });
  const started = await res.json() as { id?: string };
  if (res.status !== 202 || !started.id) throw new Error(`${label}: POST /v1/imports answered ${res.status}: ${JSON.stringify(started).slice(0, 300)}`);
  const phases: Record<string, number> = {};
  for (;;) {
    const s = await fetch(`${api.url}/v1/imports/${started.id}`, { headers });
    const status = await s.json() as { phase: string; counts: Counts; error: unknown };
    if (s.status !== 200) throw new Error(`${label}: GET status answered ${s.status}`);
    if (!(status.phase in phases)) phases[status.phase] = since();
    if (status.phase === 'finished') {
      const seconds = since();
      const cpu = meter();
      log(`${label}: ${rows} rows in ${seconds} s (${JSON.stringify(status.counts)})`);
      return { label, rows, bytes, uploadSeconds, seconds, phases, counts: status.counts, rowsPerSecond: Math.round(rows / seconds), cpu };
    }
    if (status.phase === 'failed' || status.phase === 'cancelled') throw new Error(`${label}: the import ended ${status.phase}: ${JSON.stringify(status.error)}`);
    if (since() > budgetSeconds) throw new Error(`${label}: not finished within ${budgetSeconds} s (phase ${status.phase}, counts ${JSON.stringify(status.counts)})`);
    await sleep(100);
  }
}
