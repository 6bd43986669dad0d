// A decompression bomb served from loopback, and a measure of how much memory a call took: for the caps on reading
// tenant-given servers' answers (lib/notify/outbound.ts readBodyCapped).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';

export const MB = 1024 * 1024;

/** `inflatedMb` MB of 'a' as one gzip stream (~1 KB a MB), compressed from one reused MB so the test never holds it all. */
export async function gzipBomb(inflatedMb = 300): Promise<Buffer> {
  const gz = zlib.createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on('data', (c: Buffer) => out.push(c));
  const mb = Buffer.alloc(MB, 'a');
  for (let i = 0; i < inflatedMb; i++) if (!gz.write(mb)) await new Promise((r) => gz.once('drain', r));
  const ended = new Promise((r) => gz.once('end', r));
  gz.end();
  await ended;
  return Buffer.concat(out);
}

export interface BombServer {
  url: string;
  /** The Accept-Encoding of each request, in order. */
  asked: (string | undefined)[];
  close(): Promise<void>;
}

/**
 * Answers every request with the bomb as `Content-Encoding: gzip`, whatever the client asked for (the cap must hold
 * against a server that compresses anyway), with the status in `?status=` (default 200). 127.0.0.1 only.
 */
export async function startBombServer(bomb: Buffer): Promise<BombServer> {
  const asked: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    asked.push(req.headers['accept-encoding']);
    req.resume();
    req.on('end', () => {
      const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
      res.writeHead(status, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'content-length': bomb.length }).end(bomb);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    asked,
    close() {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * The largest rise of the heap plus ArrayBuffers (where fetch keeps body bytes) while `work` runs, sampled every 5 ms:
 * measured from the lowest point before it, so garbage of earlier work collected meanwhile does not hide a rise.
 */
export async function memoryRise<T>(work: () => Promise<T>): Promise<{ result: T; grewBy: number }> {
  const used = () => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
  let low = used();
  let grewBy = 0;
  const sample = () => { const now = used(); low = Math.min(low, now); grewBy = Math.max(grewBy, now - low); };
  const timer = setInterval(sample, 5);
  try {
    const result = await work();
    sample();
    return { result, grewBy };
  } finally {
    clearInterval(timer);
  }
}
