// A real HTTP server on a free local port that receives webhooks, answers with a status the test
// chooses per request, and keeps what it received (headers and raw body) for assertions.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
  /** The status it was answered with; 0 while it is held unanswered. */
  status: number;
  /** When its body had arrived (epoch ms). */
  at: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Answers the next requests with these statuses in order, then 200. */
  respondWith(...statuses: number[]): void;
  /** Holds every answer for `ms` (a slow endpoint). */
  delay(ms: number): void;
  /**
   * Requests `pred` picks are kept (in `received`, status 0) and never answered: the sender waits on them
   * until it gives up or dies. `undefined` answers every request again.
   */
  hold(pred: ((h: ReceivedWebhook) => boolean) | undefined): void;
  /** Resolves with the first request (received already, or arriving within `timeoutMs`) that `pred` picks. */
  waitFor(pred: (h: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let queue: number[] = [];
  let delayMs = 0;
  let held: ((h: ReceivedWebhook) => boolean) | undefined;
  const pending = new Set<NodeJS.Timeout>();
  const waiters = new Set<{ pred: (h: ReceivedWebhook) => boolean; resolve: (h: ReceivedWebhook) => void }>();
  const notify = (h: ReceivedWebhook) => {
    for (const w of waiters) if (w.pred(h)) { waiters.delete(w); w.resolve(h); }
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> = {};
      try { json = JSON.parse(body); } catch { /* not JSON: kept raw */ }
      const hook: ReceivedWebhook = { path: req.url ?? '/', headers: req.headers, body, json, status: 0, at: Date.now() };
      if (held?.(hook)) {
        received.push(hook);
        return notify(hook);
      }
      const status = queue.shift() ?? 200;
      hook.status = status;
      received.push(hook);
      notify(hook);
      const timer = setTimeout(() => {
        pending.delete(timer);
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
      }, delayMs);
      pending.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    respondWith(...statuses) { queue = statuses; },
    delay(ms) { delayMs = ms; },
    hold(pred) { held = pred; },
    waitFor(pred, timeoutMs = 10_000) {
      const found = received.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = { pred, resolve: (h: ReceivedWebhook) => { clearTimeout(timer); resolve(h); } };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching webhook within ${timeoutMs} ms (received ${received.length})`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    close() {
      for (const t of pending) clearTimeout(t);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
