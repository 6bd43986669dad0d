// A real HTTP server on a free local port that receives webhooks, answers with a status the test
// chooses per request, and keeps what it received (headers and raw body) for assertions.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Answers the next requests with these statuses in order, then 200. */
  respondWith(...statuses: number[]): void;
  /** Holds every answer for `ms` (a slow endpoint). */
  delay(ms: number): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let queue: number[] = [];
  let delayMs = 0;
  const pending = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = queue.shift() ?? 200;
      let json: Record<string, unknown> = {};
      try { json = JSON.parse(body); } catch { /* not JSON: kept raw */ }
      received.push({ path: req.url ?? '/', headers: req.headers, body, json, status });
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
    close() {
      for (const t of pending) clearTimeout(t);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
