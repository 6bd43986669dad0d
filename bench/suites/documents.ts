// Suite "documents": the documents issue's targets.
//  1. PDFs/s of a one-page invoice on a warm pool (PdfRenderer, pool = BENCH_DOCUMENTS_POOL, Liquid render
//     included), against a bare playwright loop (same Chromium, same pages count, setContent + page.pdf of
//     the pre-rendered HTML) measured in the same run: the practical limit on this machine.
//  2. POST /v1/documents → ready, p50 when idle (API and a worker process, pool 2, one job at a time).
//  3. A batch end to end (API → batch workflow → worker → file store): documents/s.
//  4. Worker RSS (node + its Chromium processes) with a pool of 4 while a batch renders.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, PdfRenderer } from '../../lib/pdf-renderer';
import { renderTemplate } from '../../domains/documents/templates';
import type { TemplateParts, TemplateSettings } from '../../db';
import { DOCUMENTS_TASK_QUEUE } from '../../workflows/documents.api';
import { ensureChromium } from '../../scripts/tools';
import { cpuMeter, processTree } from '../lib/cpu';
import { percentile } from '../lib/measure';
import { ApiProcess, BenchStack, log, readProcMemory, round } from '../lib/stack';
import { envInt, judge, Suite, SuiteResult } from '../lib/suite';
import { startWorker, waitForPoller, WorkerProcess } from '../lib/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

export const documents: Suite = {
  name: 'documents',
  description: 'one-page invoice PDFs/s on a warm pool vs a bare page.pdf() loop; POST→ready p50; batch docs/s; worker RSS with pool 4',
  async run(stack: BenchStack): Promise<SuiteResult> {
    const config = {
      pool: envInt('BENCH_DOCUMENTS_POOL', 2),
      seconds: envInt('BENCH_DOCUMENTS_SECONDS', 15),
      warmupSeconds: envInt('BENCH_DOCUMENTS_WARMUP_SECONDS', 3),
      latencySamples: envInt('BENCH_DOCUMENTS_LATENCY_SAMPLES', 30),
      batch: envInt('BENCH_DOCUMENTS_BATCH', 1000),
      rssPool: envInt('BENCH_DOCUMENTS_RSS_POOL', 4),
    };
    const startedAt = new Date().toISOString();
    // Production mode needs a signing secret even though documents send no links.
    const linkSecret = randomBytes(32).toString('hex');
    const executablePath = ensureChromium(log);
    const groups = { bench: () => processTree(process.pid) };

    // 1. The bare loop and the pool, in alternating rounds so that load from other work on this shared
    // machine falls on both alike. Bare: N pages of one browser, setContent + pdf of the same pre-rendered
    // page. Pool: Liquid render + PdfRenderer.pdf, as the worker's activity does (minus storage).
    const page = await renderTemplate(INVOICE, SETTINGS, invoiceData(1));
    const pdfOptions = {
      format: 'A4' as const, margin: SETTINGS.margins, printBackground: true, displayHeaderFooter: true,
      headerTemplate: `<div style="font-size:9px">${page.header}</div>`, footerTemplate: `<div style="font-size:9px">${page.footer}</div>`,
    };
    const rounds = Math.max(1, Math.round(config.seconds / 5));
    const roundSeconds = config.seconds / rounds;
    log(`bare playwright loop vs PdfRenderer, ${config.pool} pages each, ${rounds} alternating rounds of ${roundSeconds} s`);
    const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    const renderer = new PdfRenderer({ executablePath, poolSize: config.pool, timeoutMs: 30_000 });
    const bare = { count: 0, seconds: 0, perSecond: 0, cpu: [] as unknown[] };
    const pool = { count: 0, seconds: 0, perSecond: 0, cpu: [] as unknown[] };
    try {
      const pages = await Promise.all(Array.from({ length: config.pool }, async () => (await browser.newContext({ javaScriptEnabled: false })).newPage()));
      // Each page runs its own loop (a page renders one thing at a time).
      const bareRound = (seconds: number) => Promise.all(pages.map((p) => loopFor(seconds, 1, async () => { await p.setContent(page.html); await p.pdf(pdfOptions); })));
      const poolRound = (seconds: number) => loopFor(seconds, config.pool, async (i) => {
        const r = await renderTemplate(INVOICE, SETTINGS, invoiceData(i), 'bench:1');
        await renderer.pdf(r.html, { settings: SETTINGS, header: r.header, footer: r.footer });
      });
      await renderer.warm();
      await bareRound(config.warmupSeconds);
      await poolRound(config.warmupSeconds);
      for (let i = 0; i < rounds; i++) {
        let cpu = cpuMeter(groups);
        const b = await bareRound(roundSeconds);
        bare.count += b.reduce((s, x) => s + x.count, 0);
        bare.seconds += roundSeconds;
        bare.cpu.push(cpu());
        cpu = cpuMeter(groups);
        const p = await poolRound(roundSeconds);
        pool.count += p.count;
        pool.seconds += roundSeconds;
        pool.cpu.push(cpu());
      }
      bare.perSecond = round(bare.count / bare.seconds, 1);
      pool.perSecond = round(pool.count / pool.seconds, 1);
    } finally {
      await renderer.close();
      await browser.close();
    }
    const ratio = round(pool.perSecond / Math.max(0.001, bare.perSecond), 3);

    // 2–4. Through the API and a worker process.
    const a = await stack.startApi();
    let worker: WorkerProcess | undefined;
    let latency;
    let batch;
    let rss;
    try {
      const code = 'invoice';
      const t = await api(a, stack.apiKey, 'POST', '/v1/document-templates', { code, name: 'Invoice', variables: 'strict', parts: INVOICE, margins: SETTINGS.margins });
      if (t.status !== 201) throw new Error(`template create answered ${t.status}: ${JSON.stringify(t.json)}`);
      worker = await startWorker(stack, 'documents', { PDF_POOL_SIZE: String(config.pool), CHROMIUM_PATH: executablePath, LINK_SIGNING_SECRET: linkSecret });
      await waitForPoller(stack, worker, DOCUMENTS_TASK_QUEUE);

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
      latency = { p50: round(percentile(sorted, 50), 1), p95: round(percentile(sorted, 95), 1), max: round(sorted[sorted.length - 1], 1) };

      log(`batch of ${config.batch}, pool ${config.pool}`);
      batch = await runBatch(a, stack.apiKey, code, config.batch);

      await worker.stop();
      worker = await startWorker(stack, 'documents', { PDF_POOL_SIZE: String(config.rssPool), CHROMIUM_PATH: executablePath, LINK_SIGNING_SECRET: linkSecret });
      await waitForPoller(stack, worker, DOCUMENTS_TASK_QUEUE);
      log(`batch of ${config.batch}, pool ${config.rssPool}, sampling the worker's RSS`);
      const peak = { rssSumMb: 0, pssSumMb: 0, processes: 0 };
      const w = worker;
      const rssBatch = await runBatch(a, stack.apiKey, code, config.batch, () => {
        const m = treeMemory(w.pid);
        peak.rssSumMb = Math.max(peak.rssSumMb, m.rssSumMb);
        peak.pssSumMb = Math.max(peak.pssSumMb, m.pssSumMb);
        peak.processes = Math.max(peak.processes, m.processes);
      });
      rss = { peak, nodePeakRssMb: w.memory().peakRssMb, batch: rssBatch };
    } finally {
      await worker?.stop();
      await a.stop();
    }

    const targets = [
      judge('one-page invoice PDFs/s, warm pool', pool.perSecond, '>=', 20, 'PDF/s'),
      judge('pool rate / bare page.pdf() loop rate', ratio, '>=', 0.7, ''),
      judge('POST → ready p50 (idle)', latency.p50, '<', 500, 'ms'),
      judge(`worker memory with pool ${config.rssPool} (node + chromium, PSS)`, rss.peak.pssSumMb, '<', 1536, 'MB'),
    ];
    const summary = [
      `bare loop ${bare.perSecond} PDF/s (${bare.count} in ${config.seconds} s); pool ${pool.perSecond} PDF/s (${pool.count}); ratio ${ratio}`,
      `POST → ready: p50 ${latency.p50} ms, p95 ${latency.p95} ms, max ${latency.max} ms`,
      `batch of ${config.batch} (pool ${config.pool}) through API + worker: ${batch.perSecond} docs/s (${batch.seconds} s)`,
      `pool ${config.rssPool}: worker tree peak PSS ${rss.peak.pssSumMb} MB (RSS summed over ${rss.peak.processes} processes ${rss.peak.rssSumMb} MB; node alone ${rss.nodePeakRssMb} MB), batch ${rss.batch.perSecond} docs/s`,
    ].join('\n');
    return {
      suite: 'documents', startedAt, finishedAt: new Date().toISOString(), config,
      measurements: { bare, pool, ratio, postToReadyMs: latency, batch, rss }, targets, summary,
    };
  },
};
