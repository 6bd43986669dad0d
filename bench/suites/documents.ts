// Suite "documents": the documents issue's targets.
//  1. Documents/s END TO END, judged against the bare loop: POST /v1/documents → document workflow → worker
//     renders (pool = BENCH_DOCUMENTS_POOL) → PDF stored → status ready, counted by when documents become
//     ready (their completed_at), with BENCH_DOCUMENTS_IN_FLIGHT documents outstanding at every moment;
//     against a bare Chromium loop in the same run (same Chromium, same number of pages, setContent +
//     page.pdf of the same invoice's HTML, no Docket): the practical limit on this machine. Also, as a
//     diagnostic (not judged), the renderer alone in this process (PdfRenderer, Liquid render included).
//     Phases run bare, renderer, end to end, renderer, bare, so that drift falls on all alike.
//  2. POST /v1/documents → ready, p50 when idle (one document at a time).
//  3. A batch end to end (API → batch workflow → worker → file store): documents/s, a diagnostic.
//  4. Worker memory (node + its Chromium processes) with a pool of 4 while a batch renders.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, PdfRenderer } from '../../lib/documents/renderer';
import { renderTemplate } from '../../lib/documents/templates';
import type { TemplateParts, TemplateSettings } from '../../db';
import { DOCUMENTS_TASK_QUEUE } from '../../workflows/documents.api';
import { ensureChromium } from '../../scripts/tools';
import { QueryTypes } from 'sequelize';
import { chromiumProcesses, cpuMeter, CpuUsage, meanCpu, ProcessGroups, processTree } from '../lib/cpu';
import { percentile, table } from '../lib/measure';
import { ApiProcess, BenchStack, log, readProcMemory, round } from '../lib/stack';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';
import { latencyOf, startWorker, waitForPoller, WorkerProcess } from '../lib/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The judged floor of documents/s end to end over the bare loop's rate (bench/README.md says why this number). */
const E2E_RATIO_TARGET = 0.7;

const INVOICE: TemplateParts = {
  base: `<h1>Invoice {{ number }}</h1><p>{{ customer.name }}<br>{{ customer.street }}<br>{{ customer.city }}</p>
<table><tr><th>Item</th><th>Qty</th><th>Price</th><th>Amount</th></tr>{% for l in lines %}{% render "line", l: l %}{% endfor %}</table>
<p class="total">Total {{ total }} EUR</p>`,
  header: '<span>ACME Ltd · Invoice {{ number }}</span>',
  footer: '<span>Page <span class="pageNumber"></span> of <span class="totalPages"></span></span>',
  css: 'body { font-family: sans-serif; font-size: 11pt } table { width: 100%; border-collapse: collapse } td, th { border-bottom: 1px solid #ccc; padding: 4px } .total { font-weight: bold; text-align: right }',
  partials: { line: '<tr><td>{{ l.description }}</td><td>{{ l.quantity }}</td><td>{{ l.unitPrice }}</td><td>{{ l.amount }}</td></tr>' },
};
const SETTINGS: TemplateSettings = { paperSize: 'A4', orientation: 'portrait', margins: { top: '20mm', right: '15mm', bottom: '20mm', left: '15mm' }, variables: 'strict' };

function invoiceData(i: number) {
  const lines = Array.from({ length: 8 }, (_, j) => ({ description: `Item ${j + 1}`, quantity: j + 1, unitPrice: 9.5, amount: round((j + 1) * 9.5, 2) }));
  return { number: `INV-${i}`, customer: { name: `Customer ${i}`, street: '1 Main St', city: 'Springfield' }, lines, total: round(lines.reduce((s, l) => s + l.amount, 0), 2) };
}

/** Runs `op` in `lanes` parallel loops for `seconds`; returns completions per second. */
async function loopFor(seconds: number, lanes: number, op: (i: number) => Promise<void>): Promise<{ count: number; perSecond: number }> {
  const end = Date.now() + seconds * 1000;
  let count = 0;
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (Date.now() < end) {
      await op(next++);
      count++;
    }
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { count, perSecond: round(count / s, 1) };
}

async function api(a: ApiProcess, key: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${a.url}${p}`, { method, headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

/** Proportional set size of a process (shared pages split among their sharers), MB; 0 once gone. */
function pssMb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Memory of the worker and every process under it (its Chromium). RSS summed over Chromium's many
 * processes counts the shared pages (the browser binary, fonts, shared memory) once per process, so
 * the sum of PSS (each shared page split among its sharers) is what the tree really costs; both are kept.
 */
function treeMemory(pid: number): { rssSumMb: number; pssSumMb: number; processes: number } {
  const pids = processTree(pid);
  const rss = pids.reduce((sum, p) => { try { return sum + readProcMemory(p).rssMb; } catch { return sum; } }, 0);
  return { rssSumMb: round(rss, 1), pssSumMb: round(pids.reduce((sum, p) => sum + pssMb(p), 0), 1), processes: pids.length };
}

async function runBatch(a: ApiProcess, key: string, code: string, n: number, sample?: () => void): Promise<{ seconds: number; perSecond: number; done: number }> {
  const items = Array.from({ length: n }, (_, i) => ({ fileName: `inv-${i}.pdf`, data: invoiceData(i) }));
  const t0 = Date.now();
  const started = await api(a, key, 'POST', '/v1/document-batches', { templateCode: code, items });
  if (started.status !== 202) throw new Error(`batch start answered ${started.status}: ${JSON.stringify(started.json)}`);
  for (;;) {
    sample?.();
    const b = (await api(a, key, 'GET', `/v1/document-batches/${started.json.id}`)).json;
    if (b.status === 'ready') {
      const seconds = (Date.now() - t0) / 1000;
      return { seconds: round(seconds, 2), perSecond: round(Number(b.done) / seconds, 1), done: Number(b.done) };
    }
    if (Date.now() - t0 > 15 * 60_000) throw new Error('batch not done within 15 minutes');
    await sleep(250);
  }
}

/**
 * Resolves when documents become ready: one query for every outstanding id every `everyMs` (from this
 * process, straight to Postgres), instead of a GET per document through the API that is being measured.
 */
class ReadyWatcher {
  private readonly waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  private polling = false;

  constructor(private readonly stack: BenchStack, private readonly timeoutMs: number, private readonly everyMs = 20) {}

  /** Resolves once the document is ready; rejects if it failed, or is neither after `timeoutMs` (a stuck pipeline ends the phase). */
  wait(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`not ready within ${this.timeoutMs / 1000} s`));
      }, this.timeoutMs);
      this.waiting.set(id, {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      });
      if (!this.polling) void this.poll();
    });
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      while (this.waiting.size) {
        const rows = await this.stack.sequelize.query<{ id: string; status: string; error: string | null }>(
          `SELECT id, status, error FROM documents WHERE id IN (:ids) AND status IN ('ready', 'failed')`,
          { replacements: { ids: [...this.waiting.keys()] }, type: QueryTypes.SELECT },
        );
        for (const r of rows) {
          const w = this.waiting.get(r.id);
          this.waiting.delete(r.id);
          if (r.status === 'ready') w?.resolve();
          else w?.reject(new Error(`document failed: ${r.error ?? 'no reason'}`));
        }
        await sleep(this.everyMs);
      }
    } catch (err) {
      for (const w of this.waiting.values()) w.reject(err as Error);
      this.waiting.clear();
    } finally {
      this.polling = false;
    }
  }
}

interface EndToEnd {
  /** Documents whose completed_at fell inside the measured window, per second of the window. */
  perSecond: number;
  readyInWindow: number;
  windowSeconds: number;
  posted: number;
  failed: number;
  errors: Record<string, number>;
  /** POST → seen ready, with `inFlight` outstanding: what a caller waits under this load. */
  postToReadyMs: ReturnType<typeof latencyOf>;
  /** The POST's own answer (202), to tell the API's share of that wait from the pipeline's behind it. */
  postMs: ReturnType<typeof latencyOf>;
  cpu?: CpuUsage;
  /** Ids of documents ready in the window (a few), for the stored-PDF check. */
  sample: string[];
}

/**
 * Keeps `inFlight` documents outstanding (POST, wait until ready, POST the next) for `rampSeconds` +
 * `seconds`; the rate is the number of documents that became ready (completed_at, written by the worker as
 * it marks the document ready) inside the last `seconds`, so the pipeline is full when the window opens.
 */
async function endToEnd(a: ApiProcess, stack: BenchStack, watcher: ReadyWatcher, code: string, c: { inFlight: number; rampSeconds: number; seconds: number }, groups: ProcessGroups): Promise<EndToEnd> {
  const phaseStart = new Date();
  const windowStart = new Date(phaseStart.getTime() + c.rampSeconds * 1000);
  const windowEnd = new Date(windowStart.getTime() + c.seconds * 1000);
  const latencies: number[] = [];
  const postLatencies: number[] = [];
  const errors: Record<string, number> = {};
  let posted = 0;
  let cpu: CpuUsage | undefined;
  let meter: (() => CpuUsage) | undefined;
  const open = setTimeout(() => { meter = cpuMeter(groups); }, c.rampSeconds * 1000);
  const close = setTimeout(() => { cpu = meter?.(); }, (c.rampSeconds + c.seconds) * 1000);
  await Promise.all(Array.from({ length: c.inFlight }, async () => {
    while (Date.now() < windowEnd.getTime()) {
      const t0 = process.hrtime.bigint();
      const n = posted++;
      try {
        const d = await api(a, stack.apiKey, 'POST', '/v1/documents', { templateCode: code, data: invoiceData(n) });
        if (d.status !== 202) throw new Error(`POST /v1/documents answered ${d.status}`);
        postLatencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        await watcher.wait(String(d.json.id));
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        const msg = (err as Error).message.slice(0, 200);
        errors[msg] = (errors[msg] ?? 0) + 1;
      }
    }
  }));
  clearTimeout(open);
  clearTimeout(close);
  const rows = await stack.sequelize.query<{ id: string }>(
    `SELECT id FROM documents WHERE tenant_id = :tenantId AND created_at >= :phaseStart AND status = 'ready' AND completed_at >= :windowStart AND completed_at < :windowEnd`,
    { replacements: { tenantId: stack.tenantId, phaseStart, windowStart, windowEnd }, type: QueryTypes.SELECT },
  );
  const failed = Object.values(errors).reduce((s, x) => s + x, 0);
  return {
    perSecond: round(rows.length / c.seconds, 1), readyInWindow: rows.length, windowSeconds: c.seconds, posted, failed, errors,
    postToReadyMs: latencyOf(latencies), postMs: latencyOf(postLatencies), cpu, sample: rows.slice(0, 5).map((r) => r.id),
  };
}

/** Each sampled document, fetched through the API as a client would: `ready`, and its content is a PDF. */
async function checkStored(a: ApiProcess, key: string, ids: string[]): Promise<{ checked: number; bad: string[] }> {
  const bad: string[] = [];
  for (const id of ids) {
    const doc = await api(a, key, 'GET', `/v1/documents/${id}`);
    const res = await fetch(`${a.url}/v1/documents/${id}/content`, { headers: { 'x-api-key': key } });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (doc.json.status !== 'ready' || res.status !== 200 || bytes.subarray(0, 5).toString('latin1') !== '%PDF-') {
      bad.push(`${id}: status ${String(doc.json.status)}, content ${res.status}, ${bytes.length} bytes`);
    }
  }
  return { checked: ids.length, bad };
}

export const documents: Suite = {
  name: 'documents',
  description: 'one-page invoices end to end (POST → ready) per second vs a bare Chromium loop; POST→ready p50 idle; batch docs/s; worker memory with pool 4',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      pool: envInt('BENCH_DOCUMENTS_POOL', 2),
      /** Measured seconds of each kind (end to end, bare, renderer); bare and renderer in two halves each. */
      seconds: envInt('BENCH_DOCUMENTS_SECONDS', 15),
      warmupSeconds: envInt('BENCH_DOCUMENTS_WARMUP_SECONDS', 3),
      /** End to end: documents outstanding at every moment, and the ramp before the window opens. */
      inFlight: envInt('BENCH_DOCUMENTS_IN_FLIGHT', 16),
      rampSeconds: envInt('BENCH_DOCUMENTS_RAMP_SECONDS', 2),
      /** End to end: a document not ready this long after its POST counts as failed. */
      readyTimeoutSeconds: envInt('BENCH_DOCUMENTS_READY_TIMEOUT_SECONDS', 60),
      latencySamples: envInt('BENCH_DOCUMENTS_LATENCY_SAMPLES', 30),
      batch: envInt('BENCH_DOCUMENTS_BATCH', 1000),
      rssPool: envInt('BENCH_DOCUMENTS_RSS_POOL', 4),
    };
    const startedAt = new Date().toISOString();
    // Production mode needs a signing secret even though documents send no links.
    const linkSecret = randomBytes(32).toString('hex');
    const executablePath = ensureChromium(log);
    const page = await renderTemplate(INVOICE, SETTINGS, invoiceData(1));
    const pdfOptions = {
      format: 'A4' as const, margin: SETTINGS.margins, printBackground: true, displayHeaderFooter: true,
      headerTemplate: `<div style="font-size:9px">${page.header}</div>`, footerTemplate: `<div style="font-size:9px">${page.footer}</div>`,
    };

    const a = await stack.startApi();
    let worker: WorkerProcess | undefined;
    const watcher = new ReadyWatcher(stack, config.readyTimeoutSeconds * 1000);
    try {
      const code = 'invoice';
      const t = await api(a, stack.apiKey, 'POST', '/v1/document-templates', { code, name: 'Invoice', variables: 'strict', parts: INVOICE, margins: SETTINGS.margins });
      if (t.status !== 201) throw new Error(`template create answered ${t.status}: ${JSON.stringify(t.json)}`);
      worker = await startWorker(stack, 'documents', { PDF_POOL_SIZE: String(config.pool), CHROMIUM_PATH: executablePath, LINK_SIGNING_SECRET: linkSecret });
      await waitForPoller(stack, worker, DOCUMENTS_TASK_QUEUE);
      const w = worker;
      // Chromium is its own group (the bench's browser in bare/renderer phases, the worker's end to end).
      const groups: ProcessGroups = { ...stack.processGroups(a), worker: () => [w.pid], chromium: chromiumProcesses };

      // 1. End to end vs bare vs the renderer alone ------------------------------------------------------------
      const half = config.seconds / 2;
      log(`documents/s: bare Chromium loop and PdfRenderer (${config.pool} pages each, 2 × ${half} s), end to end through API + worker (${config.inFlight} outstanding, ${config.seconds} s after a ${config.rampSeconds} s ramp)`);
      const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
      const renderer = new PdfRenderer({ executablePath, poolSize: config.pool, timeoutMs: 30_000 });
      const bare = { count: 0, seconds: 0, perSecond: 0, cpu: [] as CpuUsage[] };
      const pool = { count: 0, seconds: 0, perSecond: 0, cpu: [] as CpuUsage[] };
      let e2e: EndToEnd;
      try {
        const pages = await Promise.all(Array.from({ length: config.pool }, async () => (await browser.newContext({ javaScriptEnabled: false })).newPage()));
        // Each page runs its own loop (a page renders one thing at a time).
        const bareRound = async (seconds: number) => {
          const cpu = cpuMeter(groups);
          const r = await Promise.all(pages.map((p) => loopFor(seconds, 1, async () => { await p.setContent(page.html); await p.pdf(pdfOptions); })));
          return { count: r.reduce((s, x) => s + x.count, 0), cpu: cpu() };
        };
        const poolRound = async (seconds: number) => {
          const cpu = cpuMeter(groups);
          const r = await loopFor(seconds, config.pool, async (i) => {
            const rendered = await renderTemplate(INVOICE, SETTINGS, invoiceData(i), 'bench:1');
            await renderer.pdf(rendered.html, { settings: SETTINGS, header: rendered.header, footer: rendered.footer });
          });
          return { count: r.count, cpu: cpu() };
        };
        const add = (into: typeof bare, seconds: number, r: { count: number; cpu: CpuUsage }) => { into.count += r.count; into.seconds += seconds; into.cpu.push(r.cpu); };
        await renderer.warm();
        await bareRound(config.warmupSeconds);
        await poolRound(config.warmupSeconds);
        const warm = await endToEnd(a, stack, watcher, code, { inFlight: config.inFlight, rampSeconds: 0, seconds: config.warmupSeconds }, groups);
        if (warm.failed) throw new Error(`end-to-end warm-up: ${JSON.stringify(warm.errors)}`);
        add(bare, half, await bareRound(half));
        add(pool, half, await poolRound(half));
        e2e = await endToEnd(a, stack, watcher, code, { inFlight: config.inFlight, rampSeconds: config.rampSeconds, seconds: config.seconds }, groups);
        add(pool, half, await poolRound(half));
        add(bare, half, await bareRound(half));
        bare.perSecond = round(bare.count / bare.seconds, 1);
        pool.perSecond = round(pool.count / pool.seconds, 1);
      } finally {
        await renderer.close();
        await browser.close();
      }
      const ratio = round(e2e.perSecond / Math.max(0.001, bare.perSecond), 3);
      const rendererRatio = round(pool.perSecond / Math.max(0.001, bare.perSecond), 3);
      const stored = await checkStored(a, stack.apiKey, e2e.sample);
      log(`end to end ${e2e.perSecond} docs/s, bare ${bare.perSecond}, renderer ${pool.perSecond}: Docket / bare ${ratio}`);

      // 2. POST → ready, idle --------------------------------------------------------------------------------
      log(`POST → ready, ${config.latencySamples} documents one after another`);
      const samples: number[] = [];
      for (let i = 0; i < config.latencySamples + 3; i++) {
        const t0 = process.hrtime.bigint();
        const d = await api(a, stack.apiKey, 'POST', '/v1/documents', { templateCode: code, data: invoiceData(i) });
        if (d.status !== 202) throw new Error(`POST /v1/documents answered ${d.status}`);
        for (;;) {
          const s = (await api(a, stack.apiKey, 'GET', `/v1/documents/${d.json.id}`)).json.status;
          if (s === 'ready') break;
          if (s === 'failed') throw new Error('a document failed');
          await sleep(5);
        }
        // The first three warm the worker's pool and caches.
        if (i >= 3) samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const sorted = samples.sort((x, y) => x - y);
      const latency = { p50: round(percentile(sorted, 50), 1), p95: round(percentile(sorted, 95), 1), max: round(sorted[sorted.length - 1], 1) };

      // 3. A batch (diagnostic) ------------------------------------------------------------------------------
      log(`batch of ${config.batch}, pool ${config.pool}`);
      const batch = await runBatch(a, stack.apiKey, code, config.batch);

      // 4. Memory with pool 4 ------------------------------------------------------------------------------------
      await worker.stop();
      worker = await startWorker(stack, 'documents', { PDF_POOL_SIZE: String(config.rssPool), CHROMIUM_PATH: executablePath, LINK_SIGNING_SECRET: linkSecret });
      await waitForPoller(stack, worker, DOCUMENTS_TASK_QUEUE);
      log(`batch of ${config.batch}, pool ${config.rssPool}, sampling the worker's RSS`);
      const peak = { rssSumMb: 0, pssSumMb: 0, processes: 0 };
      const w4 = worker;
      const rssBatch = await runBatch(a, stack.apiKey, code, config.batch, () => {
        const m = treeMemory(w4.pid);
        peak.rssSumMb = Math.max(peak.rssSumMb, m.rssSumMb);
        peak.pssSumMb = Math.max(peak.pssSumMb, m.pssSumMb);
        peak.processes = Math.max(peak.processes, m.processes);
      });
      const rss = { peak, nodePeakRssMb: w4.memory().peakRssMb, batch: rssBatch };

      const targets = [
        judge('documents/s end to end: Docket / bare Chromium', ratio, '>=', E2E_RATIO_TARGET, '×'),
        judge(`end-to-end documents failed, or sampled and not a stored PDF (${e2e.posted} posted, ${stored.checked} fetched)`, e2e.failed + stored.bad.length, '==', 0, 'documents'),
        judge('POST → ready p50 (idle)', latency.p50, '<', 500, 'ms'),
        judge(`worker memory with pool ${config.rssPool} (node + chromium, PSS)`, rss.peak.pssSumMb, '<', 1536, 'MB'),
      ];
      const phaseCpu: [string, CpuUsage | undefined][] = [['bare Chromium loop', meanCpu(bare.cpu)], ['renderer alone', meanCpu(pool.cpu)], ['end to end (window)', e2e.cpu]];
      const summary = [
        table(['documents/s (one-page invoice)', 'per second', 'count', 'seconds', 'vs bare'], [
          [`end to end: POST → ready, ${config.inFlight} outstanding, worker pool ${config.pool}`, e2e.perSecond, e2e.readyInWindow, e2e.windowSeconds, ratio],
          [`bare Chromium: ${config.pool} pages, setContent + page.pdf`, bare.perSecond, bare.count, bare.seconds, 1],
          ['renderer alone in the bench (diagnostic, not judged)', pool.perSecond, pool.count, pool.seconds, rendererRatio],
        ]),
        `end to end under load: POST → ready p50 ${e2e.postToReadyMs.p50} ms, p95 ${e2e.postToReadyMs.p95} ms, max ${e2e.postToReadyMs.max} ms (the POST's own 202: p50 ${e2e.postMs.p50} ms, p95 ${e2e.postMs.p95} ms); ${e2e.posted} posted, ${e2e.failed} failed${e2e.failed ? ` ${JSON.stringify(e2e.errors)}` : ''}`,
        `stored PDFs fetched through the API: ${stored.checked - stored.bad.length} of ${stored.checked} ready and %PDF${stored.bad.length ? ` (${stored.bad.join('; ')})` : ''}`,
        `POST → ready (idle): p50 ${latency.p50} ms, p95 ${latency.p95} ms, max ${latency.max} ms`,
        `batch of ${config.batch} (pool ${config.pool}) through API + worker: ${batch.perSecond} docs/s (${batch.seconds} s) — diagnostic`,
        `pool ${config.rssPool}: worker tree peak PSS ${rss.peak.pssSumMb} MB (RSS summed over ${rss.peak.processes} processes ${rss.peak.rssSumMb} MB; node alone ${rss.nodePeakRssMb} MB), batch ${rss.batch.perSecond} docs/s`,
        '',
        cpuTable(phaseCpu),
      ].join('\n');
      return {
        suite: 'documents', startedAt, finishedAt: new Date().toISOString(), config,
        measurements: {
          endToEnd: e2e, bare, ratio, diagnostics: { rendererAlone: pool, rendererToBare: rendererRatio }, stored,
          postToReadyMs: latency, batch, rss,
        },
        targets, summary,
      };
    } finally {
      await worker?.stop();
      await a.stop();
    }
  },
};

function cpuTable(rows: [string, CpuUsage | undefined][]): string {
  const names = ['api', 'worker', 'chromium', 'postgres', 'temporal', 'bench', 'other'];
  return table(['CPU, % of one core', 'machine busy %', ...names], rows.filter((r): r is [string, CpuUsage] => !!r[1]).map(([label, u]) => [label, u.machineBusyPct, ...names.map((n) => u.cores[n] ?? '')]));
}
