// Suite "imports": the imports issue's targets, through the real API and a worker (WORKER_QUEUES=imports) as its
// own process, each run timed from POST /v1/imports to the status that says `finished` (the upload is timed apart):
//  1. the bare path: COPY of the generated 1,000,000-row contacts CSV into a same-shaped table with the same unique
//     index, no Docket code — measured before and after the Docket runs, the mean is the baseline;
//  2. 100,000 rows of the same shape into an empty tenant, with a fresh worker (its peak RSS is the small run's);
//  3. 1,000,000 rows into another empty tenant with another fresh worker (target ≤ 30 s, ≥ 50 % of bare COPY's
//     throughput), then the same file again as `merge` (every row unchanged, target ≤ 30 s); that worker's peak RSS
//     (target < 300 MB, and within 20 % of the small run's); then the 1M-row insert reverted through the API (its own
//     workflow: how long POST …/revert took to answer, and until the import's revert read `reverted`; every row gone);
//     before the revert, the 1M subscribers are exported to CSV through the API and downloaded (reported);
//  4. a 100,000-row XLSX into a third empty tenant with a fresh worker (target ≤ 20 s);
//  5. a 1,000,000-row XLSX (the same contacts, ~57 MB; 78 MB of shared strings) into a fourth empty tenant with a
//     fresh worker: time reported, that worker's peak RSS (target < 300 MB: the shared strings live on disk).
// BENCH_IMPORTS_STEPS picks steps (comma list of `csv` = 1–3, `xlsx` = 4, `xlsx-large` = 5; default all).
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
import { envInt, judge, Suite, SuiteResult, Target } from '../lib/suite';
import { startWorker, waitForPoller, WorkerProcess } from '../lib/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Counts { read: number; valid: number; rejected: number; created: number; updated: number; unchanged: number; skipped: number }
interface Run {
  id: string;
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
  description: '1M-row subscribers CSV inserted and merged through the API vs bare COPY of the same file; worker RSS at 100k vs 1M rows; 100k-row and 1M-row XLSX (time, worker RSS)',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      rows: envInt('BENCH_IMPORTS_ROWS', 1_000_000),
      smallRows: envInt('BENCH_IMPORTS_SMALL_ROWS', 100_000),
      xlsxRows: envInt('BENCH_IMPORTS_XLSX_ROWS', 100_000),
      xlsxLargeRows: envInt('BENCH_IMPORTS_XLSX_ROWS_LARGE', 1_000_000),
      steps: (process.env.BENCH_IMPORTS_STEPS || 'csv,xlsx,xlsx-large').split(',').map((x) => x.trim()),
      runBudgetSeconds: envInt('BENCH_IMPORTS_RUN_BUDGET_SECONDS', 300),
      worker: { queues: 'imports', env: { NODE_ENV: 'production', LOG_LEVEL: 'warn' } },
    };
    const startedAt = new Date().toISOString();
    const { sequelize } = stack;
    const stops: (() => Promise<void>)[] = [];
    try {
      const dir = path.join(stack.dir, 'imports-bench');
      fs.mkdirSync(dir, { recursive: true });
      const unknownStep = config.steps.find((x) => !['csv', 'xlsx', 'xlsx-large'].includes(x));
      if (unknownStep) throw new Error(`BENCH_IMPORTS_STEPS: unknown step "${unknownStep}" (steps: csv, xlsx, xlsx-large)`);
      const step = (name: string) => config.steps.includes(name);
      const files = {
        big: path.join(dir, 'contacts-1m.csv'), small: path.join(dir, 'contacts-100k.csv'), xlsx: path.join(dir, 'contacts-100k.xlsx'), xlsxLarge: path.join(dir, 'contacts-1m.xlsx'),
      };
      log(`generating the files of steps ${config.steps.join(', ')} in ${dir}`);
      const bytes = {
        big: step('csv') ? await writeContactsCsv(files.big, config.rows) : 0,
        small: step('csv') ? await writeContactsCsv(files.small, config.smallRows) : 0,
        xlsx: step('xlsx') ? await writeContactsXlsx(files.xlsx, config.xlsxRows) : 0,
        xlsxLarge: step('xlsx-large') ? await writeContactsXlsx(files.xlsxLarge, config.xlsxLargeRows) : 0,
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
      const bare = step('csv') ? [await bareCopy()] : [];

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

      const xlsxType = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
      const subscribersOf = async (tenantId: string) => Number((await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM subscribers WHERE tenant_id = :tenantId', { replacements: { tenantId }, type: QueryTypes.SELECT }))[0].n);
      const byLabel = (l: string) => runs.find((r) => r.label === l)!;
      const checks: Record<string, boolean> = {};
      let revert: Reverted | undefined;
      let exported: Exported | undefined;
      const targets: Target[] = [];
      const summary: string[] = [];

      if (step('csv')) {
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
        checks.tenant1m = (await subscribersOf(big.id)) === config.rows;
        // The 1M subscribers exported back to CSV (reported, not judged: no issue sets a target for it).
        exported = await exportSubscribers(api, big.key, config.runBudgetSeconds, groups(worker));
        checks.export1m = exported.rows === config.rows && exported.lines === config.rows + 1;
        revert = await revertImport(api, big.key, byLabel('insert1m').id, config.runBudgetSeconds, groups(worker));
        memory.big = worker.memory();
        await worker.stop();

        bare.push(await bareCopy());

        // What the runs left behind must be exactly what they reported.
        checks.insert100k = byLabel('insert100k').counts.created === config.smallRows && (await subscribersOf(small.id)) === config.smallRows;
        checks.insert1m = byLabel('insert1m').counts.created === config.rows;
        checks.merge1m = byLabel('merge1m').counts.unchanged === config.rows && byLabel('merge1m').counts.created === 0 && byLabel('merge1m').counts.updated === 0;
        checks.revert1m = revert.deleted === config.rows && revert.restored === 0 && (await subscribersOf(big.id)) === 0;
      }

      if (step('xlsx')) {
        // 4. XLSX, fresh worker.
        const worker = await freshWorker();
        const xlsxTenant = await tenant('xlsx');
        runs.push(await importFile(api, xlsxTenant.key, files.xlsx, 'xlsx100k', config.xlsxRows, bytes.xlsx, xlsxType, config.runBudgetSeconds, groups(worker)));
        memory.xlsx = worker.memory();
        await worker.stop();
        checks.xlsx100k = byLabel('xlsx100k').counts.created === config.xlsxRows && (await subscribersOf(xlsxTenant.id)) === config.xlsxRows;
      }

      if (step('xlsx-large')) {
        // 5. The 1M-row XLSX, fresh worker.
        const worker = await freshWorker();
        memory.xlsxLargeIdle = worker.memory();
        const xlsxTenant = await tenant('xlsx-large');
        runs.push(await importFile(api, xlsxTenant.key, files.xlsxLarge, 'xlsx1m', config.xlsxLargeRows, bytes.xlsxLarge, xlsxType, config.runBudgetSeconds, groups(worker)));
        memory.xlsxLarge = worker.memory();
        await worker.stop();
        checks.xlsx1m = byLabel('xlsx1m').counts.created === config.xlsxLargeRows && (await subscribersOf(xlsxTenant.id)) === config.xlsxLargeRows;
      }

      targets.push(judge('every run left exactly the rows and counts it reported', Object.values(checks).every(Boolean) ? 1 : 0, '==', 1, 'bool'));
      let bareSeconds: number | undefined;
      let ratio: number | undefined;
      let rssGrowth: number | undefined;
      if (step('csv')) {
        bareSeconds = round(bare.reduce((a, b) => a + b, 0) / bare.length, 2);
        const insert = byLabel('insert1m');
        ratio = round(bareSeconds / insert.seconds, 3);
        const peakBig = Math.max(memory.big.peakRssMb, memory.bigInsert.peakRssMb);
        const peakSmall = memory.small.peakRssMb;
        rssGrowth = round(Math.abs(peakBig - peakSmall) / peakSmall, 3);
        targets.push(
          judge(`${config.rows} rows inserted (POST → finished)`, insert.seconds, '<=', 30, 's'),
          judge(`${config.rows} rows again as merge (POST → finished)`, byLabel('merge1m').seconds, '<=', 30, 's'),
          judge('insert throughput / bare COPY throughput', ratio, '>=', 0.5, 'ratio'),
          judge(`worker peak RSS growth ${config.smallRows} → ${config.rows} rows`, rssGrowth, '<=', 0.2, 'ratio'),
        );
        summary.push(`export of the ${config.rows} subscribers to CSV: ready in ${exported!.seconds} s (${exported!.rows} rows), downloaded ${exported!.megabytes} MB in ${exported!.downloadSeconds} s (CPU % of a core worker/pg/temporal/api ${['worker', 'postgres', 'temporal', 'api'].map((g) => exported!.cpu.cores[g] ?? 0).join('/')})`);
        summary.push(`revert of the ${config.rows}-row insert: answered ${revert!.answerStatus} in ${revert!.answerSeconds} s, reverted in ${revert!.seconds} s (deleted ${revert!.deleted}; CPU % of a core worker/pg/temporal/api ${['worker', 'postgres', 'temporal', 'api'].map((g) => revert!.cpu.cores[g] ?? 0).join('/')})`);
        summary.push(`bare COPY of ${config.rows} rows (${(bytes.big / 1e6).toFixed(1)} MB): ${bare.join(' s, ')} s (mean ${bareSeconds} s)`);
      }
      targets.push(judge('worker peak RSS (every run)', Math.max(...Object.entries(memory).filter(([k]) => !k.endsWith('Idle')).map(([, m]) => m.peakRssMb)), '<', 300, 'MB'));
      if (step('xlsx')) targets.push(judge(`${config.xlsxRows}-row XLSX (POST → finished)`, byLabel('xlsx100k').seconds, '<=', 20, 's'));
      if (step('xlsx-large')) targets.push(judge(`${config.xlsxLargeRows}-row XLSX: worker peak RSS`, memory.xlsxLarge.peakRssMb, '<', 300, 'MB'));
      summary.push(
        table(['run', 'rows', 'upload s', 'POST→finished s', 'rows/s', 'phases (s from POST)', 'counts', 'CPU % of a core (worker/pg/temporal/api)'], runs.map((r) => [
          r.label, String(r.rows), String(r.uploadSeconds), String(r.seconds), String(r.rowsPerSecond),
          Object.entries(r.phases).map(([p, s]) => `${p} ${s}`).join(', '),
          `created ${r.counts.created}, updated ${r.counts.updated}, unchanged ${r.counts.unchanged}, rejected ${r.counts.rejected}`,
          ['worker', 'postgres', 'temporal', 'api'].map((g) => r.cpu.cores[g] ?? 0).join('/'),
        ])),
        `worker peak RSS: ${Object.entries(memory).map(([k, m]) => `${k} ${m.peakRssMb} MB`).join(', ')}`,
        `checks: ${JSON.stringify(checks)}`,
      );
      return {
        suite: 'imports', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: { bytes, export: exported ?? null, revert: revert ?? null, bare: bareSeconds === undefined ? null : { runs: bare, meanSeconds: bareSeconds, rowsPerSecond: Math.round(config.rows / bareSeconds) }, runs, memory, ratio, rssGrowth, checks },
        targets, summary: summary.join('\n'),
      };
    } finally {
      await stopAll(stops);
    }
  },
};

interface Exported {
  /** POST /v1/subscriber-exports → its status reads `ready`. */
  seconds: number;
  rows: number;
  /** The download: its size, how long it took, and its lines (the header and one per subscriber). */
  megabytes: number;
  downloadSeconds: number;
  lines: number;
  cpu: ReturnType<ReturnType<typeof cpuMeter>>;
}

/** Exports every subscriber of the tenant of `key` and downloads the CSV (or fails the suite). */
async function exportSubscribers(api: ApiProcess, key: string, budgetSeconds: number, groups: Parameters<typeof cpuMeter>[0]): Promise<Exported> {
  const headers = { 'x-api-key': key, 'content-type': 'application/json' };
  const meter = cpuMeter(groups);
  const t0 = performance.now();
  const since = (from = t0) => round((performance.now() - from) / 1000, 2);
  const res = await fetch(`${api.url}/v1/subscriber-exports`, { method: 'POST', headers, body: '{}' });
  if (res.status !== 202) throw new Error(`export: POST answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  const { id } = await res.json() as { id: string };
  for (;;) {
    const x = await (await fetch(`${api.url}/v1/subscriber-exports/${id}`, { headers })).json() as { status: string; rowsWritten: number; downloadUrl: string | null; error: string | null };
    if (x.status === 'ready') {
      const seconds = since();
      const cpu = meter();
      const d0 = performance.now();
      const download = await fetch(`${api.url}${x.downloadUrl}`, { headers });
      let bytes = 0;
      let lines = 0;
      for await (const chunk of download.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        for (const b of chunk) if (b === 10) lines++;
      }
      const result = { seconds, rows: x.rowsWritten, megabytes: round(bytes / 1e6, 1), downloadSeconds: since(d0), lines, cpu };
      log(`export: ready in ${seconds} s (${x.rowsWritten} rows), downloaded ${result.megabytes} MB in ${result.downloadSeconds} s`);
      return result;
    }
    if (x.status === 'failed') throw new Error(`export: failed: ${x.error}`);
    if (since() > budgetSeconds) throw new Error(`export: not ready within ${budgetSeconds} s`);
    await sleep(200);
  }
}

interface Reverted {
  answerStatus: number;
  /** POST …/revert → its answer (at most IMPORT_REVERT_WAIT_MS, then 202). */
  answerSeconds: number;
  /** POST …/revert → the import's revert reads `reverted`. */
  seconds: number;
  deleted: number | null;
  restored: number | null;
  cpu: ReturnType<ReturnType<typeof cpuMeter>>;
}

/** POSTs the revert of import `id` and polls the import until its revert is `reverted` (or fails the suite). */
async function revertImport(api: ApiProcess, key: string, id: string, budgetSeconds: number, groups: Parameters<typeof cpuMeter>[0]): Promise<Reverted> {
  const headers = { 'x-api-key': key };
  const meter = cpuMeter(groups);
  const t0 = performance.now();
  const since = () => round((performance.now() - t0) / 1000, 2);
  const res = await fetch(`${api.url}/v1/imports/${id}/revert`, { method: 'POST', headers });
  const answerSeconds = since();
  if (res.status !== 200 && res.status !== 202) throw new Error(`revert: POST answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  for (;;) {
    const s = await fetch(`${api.url}/v1/imports/${id}`, { headers });
    const { revert } = await s.json() as { revert: { status: string; deleted: number | null; restored: number | null; error: unknown } | null };
    if (revert?.status === 'reverted') {
      const seconds = since();
      log(`revert: answered ${res.status} in ${answerSeconds} s, reverted in ${seconds} s (deleted ${revert.deleted})`);
      return { answerStatus: res.status, answerSeconds, seconds, deleted: revert.deleted, restored: revert.restored, cpu: meter() };
    }
    if (revert?.status === 'refused') throw new Error(`revert: refused: ${JSON.stringify(revert.error)}`);
    if (since() > budgetSeconds) throw new Error(`revert: not done within ${budgetSeconds} s`);
    await sleep(100);
  }
}

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
      return { id: started.id, label, rows, bytes, uploadSeconds, seconds, phases, counts: status.counts, rowsPerSecond: Math.round(rows / seconds), cpu };
    }
    if (status.phase === 'failed' || status.phase === 'cancelled') throw new Error(`${label}: the import ended ${status.phase}: ${JSON.stringify(status.error)}`);
    if (since() > budgetSeconds) throw new Error(`${label}: not finished within ${budgetSeconds} s (phase ${status.phase}, counts ${JSON.stringify(status.counts)})`);
    await sleep(100);
  }
}
