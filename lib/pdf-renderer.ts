// HTML → PDF on a pool of headless Chromium pages (playwright-core driving Debian's chromium).
// Each page lives in its own browser context with JavaScript off and every request refused except
// inline data: URLs, so a template can load nothing from the network. Each render has a deadline;
// a page that fails or hangs is thrown away and a crashed or hung browser is relaunched.
import type { Browser, BrowserContext, Page } from 'playwright-core';

/**
 * playwright-core is ~25 MB of heap once loaded: every worker process creates a renderer, but only one that
 * renders a document should pay for it (an imports worker's RSS budget is 300 MB), so it loads on first launch.
 */
const loadChromium = () => import('playwright-core').then((m) => m.chromium);
import type { TemplateSettings } from '../db/models/documents';

export interface RendererOptions {
  executablePath: string;
  /** Pages rendering at once (PDF_POOL_SIZE). */
  poolSize: number;
  /** Deadline for one render (PDF_RENDER_TIMEOUT_MS). */
  timeoutMs: number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface PdfLayout {
  settings: TemplateSettings;
  header: string;
  footer: string;
}

export class RenderTimeoutError extends Error {}

interface Slot { context: BrowserContext; page: Page }

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'];

/** Wraps a header/footer part: Chromium renders them apart from the page, unstyled, at font-size 0. */
const band = (html: string) => (html.trim() ? `<div style="font-size:9px;width:100%;margin:0 10mm;font-family:sans-serif">${html}</div>` : '<span></span>');

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new RenderTimeoutError(`${what} took longer than ${ms} ms`)), ms); }),
  ]);
}

export class PdfRenderer {
  private browser?: Promise<Browser>;
  private idle: Slot[] = [];
  private waiters: ((s: Slot | null) => void)[] = [];
  private live = 0;
  private closed = false;
  /** Browsers launched so far (1 + replacements); exposed for tests and metrics. */
  launches = 0;

  constructor(private readonly opts: RendererOptions) {}

  private launch(): Promise<Browser> {
    if (!this.browser) {
      this.launches++;
      const b = loadChromium().then((chromium) => chromium.launch({ executablePath: this.opts.executablePath, args: CHROMIUM_ARGS, timeout: 30_000 }));
      this.browser = b;
      b.then((browser) => browser.on('disconnected', () => {
        // Crashed or killed: forget it and its pages; the next render launches a new one.
        if (this.browser === b) this.dropBrowser();
      }), () => { if (this.browser === b) this.browser = undefined; });
    }
    return this.browser;
  }

  private dropBrowser(): void {
    this.browser = undefined;
    this.live -= this.idle.length;
    this.idle = [];
  }

  private async newSlot(): Promise<Slot> {
    const browser = await this.launch();
    // offline is a second wall behind the route: Chromium itself fails any network request.
    const context = await browser.newContext({ javaScriptEnabled: false, serviceWorkers: 'block', acceptDownloads: false, offline: true });
    await context.route('**/*', (route) => (route.request().url().startsWith('data:') ? route.continue() : route.abort('blockedbyclient')));
    return { context, page: await context.newPage() };
  }

  private async acquire(): Promise<Slot> {
    if (this.closed) throw new Error('renderer closed');
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.live < this.opts.poolSize) {
      this.live++;
      try {
        return await this.newSlot();
      } catch (err) {
        this.live--;
        throw err;
      }
    }
    const slot = await new Promise<Slot | null>((resolve) => this.waiters.push(resolve));
    return slot ?? this.acquire();
  }

  private release(slot: Slot): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(slot);
    else this.idle.push(slot);
  }

  /** A broken page is closed (the browser too if it does not answer) and its place freed. */
  private async discard(slot: Slot): Promise<void> {
    this.live--;
    const browser = this.browser;
    try {
      await withDeadline(slot.context.close(), 3_000, 'closing a page');
    } catch {
      this.opts.log?.('chromium did not answer; relaunching it');
      if (browser && this.browser === browser) {
        this.dropBrowser();
        void browser.then((b) => withDeadline(b.close(), 5_000, 'closing chromium')).catch(() => undefined);
      }
    }
    // Someone waiting for a page gets to make a new one.
    this.waiters.shift()?.(null);
  }

  /** Opens the pool's pages ahead of the first job. */
  async warm(): Promise<void> {
    const slots = await Promise.all(Array.from({ length: this.opts.poolSize - this.live - this.idle.length }, () => this.acquire()));
    for (const s of slots) this.release(s);
  }

  async pdf(html: string, layout: PdfLayout, opts: { timeoutMs?: number } = {}): Promise<Buffer> {
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs;
    const slot = await this.acquire();
    try {
      const { settings } = layout;
      const pdf = await withDeadline((async () => {
        await slot.page.setContent(html, { waitUntil: 'load', timeout: timeoutMs });
        return slot.page.pdf({
          format: settings.paperSize, landscape: settings.orientation === 'landscape', margin: settings.margins, printBackground: true,
          displayHeaderFooter: Boolean(layout.header.trim() || layout.footer.trim()), headerTemplate: band(layout.header), footerTemplate: band(layout.footer),
        });
      })(), timeoutMs, 'rendering the PDF');
      this.release(slot);
      return pdf;
    } catch (err) {
      await this.discard(slot);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w(null);
    const browser = this.browser;
    this.dropBrowser();
    if (browser) await browser.then((b) => withDeadline(b.close(), 5_000, 'closing chromium')).catch(() => undefined);
  }
}
