// The Chromium page pool on its own: concurrent renders share a bounded pool, a render that takes too
// long is stopped, and a crashed or hung browser is replaced by a new one.
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../../config';
import type { TemplateSettings } from '../../db';
import { PdfRenderer, RenderTimeoutError } from '../../lib/pdf-renderer';
import { pdfPages } from '../helpers/pdf';
import { waitFor } from '../helpers/wait';

const settings: TemplateSettings = { paperSize: 'A4', orientation: 'portrait', margins: { top: '20mm', right: '10mm', bottom: '20mm', left: '10mm' }, variables: 'lenient' };
const layout = { settings, header: 'H', footer: '<span class="pageNumber"></span>' };
let renderer: PdfRenderer;

/** Chromium browser processes started by this test process (the pool's browser). */
function browserPids(): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number)
      .filter((pid) => /chrom/.test(execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' })));
  } catch {
    return [];
  }
}

beforeEach(() => {
  renderer = new PdfRenderer({ executablePath: loadConfig().documents.chromiumPath, poolSize: 2, timeoutMs: 20_000 });
});
afterEach(async () => { await renderer.close(); });

it('renders many documents at once through a pool of two pages', async () => {
  const pdfs = await Promise.all(Array.from({ length: 6 }, (_, i) => renderer.pdf(`<p>Doc ${i}</p>`, layout)));
  pdfs.forEach((pdf, i) => expect(pdfPages(pdf)[0]).toContain(`Doc ${i}`));
  expect(renderer.launches).toBe(1);
});

it('stops a render that outlives its deadline and keeps serving', async () => {
  const huge = `<table>${'<tr><td>row</td><td>cell</td><td>cell</td></tr>'.repeat(30_000)}</table>`;
  await expect(renderer.pdf(huge, layout, { timeoutMs: 50 })).rejects.toBeInstanceOf(RenderTimeoutError);
  expect(pdfPages(await renderer.pdf('<p>after the timeout</p>', layout))[0]).toContain('after the timeout');
});

it('replaces a crashed browser', async () => {
  await renderer.pdf('<p>one</p>', layout);
  const [pid] = browserPids();
  expect(pid).toBeGreaterThan(0);
  process.kill(pid, 'SIGKILL');
  // Render until one succeeds: a render that races the crash may fail (at most that one); the pool
  // notices the dead browser by itself and the next render gets a new one, with no pause to guess.
  const failures: unknown[] = [];
  const pdf = await waitFor(() => renderer.pdf('<p>two</p>', layout).catch((err: unknown) => { failures.push(err); return undefined; }), { what: 'a render after the crash', intervalMs: 50, timeoutMs: 20_000 });
  expect(pdfPages(pdf)[0]).toContain('two');
  expect(failures.length).toBeLessThanOrEqual(1);
  expect(renderer.launches).toBe(2);
});

it('replaces a hung browser', async () => {
  await renderer.pdf('<p>one</p>', layout);
  const [pid] = browserPids();
  process.kill(pid, 'SIGSTOP');
  try {
    await expect(renderer.pdf('<p>stuck</p>', layout, { timeoutMs: 1_000 })).rejects.toBeInstanceOf(RenderTimeoutError);
    expect(pdfPages(await renderer.pdf('<p>fresh</p>', layout))[0]).toContain('fresh');
    expect(renderer.launches).toBe(2);
  } finally {
    process.kill(pid, 'SIGKILL');
  }
});
