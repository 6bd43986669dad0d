// Answers of tenant-given servers (webhook receivers, the http job) are read only up to a cap: a receiver answering a
// gzip bomb (~300 KB that fetch() would inflate to 300 MB) costs a KB or two of memory, not an out-of-memory crash.
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createJobActivities } from '../../activities/jobs';
import { outboundFetch, readBodyCapped } from '../../lib/notify/outbound';
import { postWebhook, RESPONSE_EXCERPT_BYTES } from '../../lib/notify/webhook';
import { sendStandardWebhook } from '../../lib/notify/standard-webhooks';
import { BombServer, gzipBomb, MB, memoryRise, startBombServer } from '../helpers/gzip-bomb';

let bombs: BombServer;
beforeAll(async () => {
  const bomb = await gzipBomb(300);
  expect(bomb.length).toBeLessThan(MB);
  bombs = await startBombServer(bomb);
});
afterAll(() => bombs.close());
beforeEach(() => { bombs.asked.length = 0; });

it('reads at most the cap of a gzip bomb, asking for no compression', async () => {
  const { result, grewBy } = await memoryRise(async () => readBodyCapped(await outboundFetch(`${bombs.url}/bomb`, { headers: { 'accept-encoding': 'gzip, br' } }, true), 4096));
  expect(result.equals(Buffer.alloc(4096, 'a'))).toBe(true);
  expect(grewBy).toBeLessThan(50 * MB);
  // Over the caller's own header.
  expect(bombs.asked).toEqual(['identity']);
});

it('reads a short body whole', async () => {
  const small = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => small.listen(0, '127.0.0.1', r));
  try {
    const res = await outboundFetch(`http://127.0.0.1:${(small.address() as AddressInfo).port}/`, {}, true);
    expect((await readBodyCapped(res, 1024)).toString()).toBe('ok');
  } finally {
    await new Promise((r) => small.close(r));
  }
});

it('a webhook receiver answering a gzip bomb: the POST is answered with the first KB of it, memory stays flat', async () => {
  const { result, grewBy } = await memoryRise(() => postWebhook(`${bombs.url}/hook`, '{}', {}, { allowPrivateNetworks: true }));
  expect(result).toEqual({ status: 200, excerpt: 'a'.repeat(RESPONSE_EXCERPT_BYTES) });
  expect(grewBy).toBeLessThan(50 * MB);
  expect(bombs.asked).toEqual(['identity']);
  // And through the signed send every delivery (activities/webhooks.ts) and test send use.
  const sent = await memoryRise(() => sendStandardWebhook({
    url: `${bombs.url}/hook?status=500`, secrets: [`whsec_${Buffer.alloc(32, 1).toString('base64')}`], id: 'msg_1', type: 'webhook.test', timestamp: new Date(),
    data: {}, timeoutMs: 10_000, allowPrivateNetworks: true,
  }));
  expect(sent.result).toMatchObject({ delivered: false, statusCode: 500, response: 'a'.repeat(RESPONSE_EXCERPT_BYTES), error: 'HTTP 500' });
  expect(sent.grewBy).toBeLessThan(50 * MB);
});

describe('the http job against a gzip bomb', () => {
  const acts = createJobActivities({ blobs: {} as never, email: {} as never, allowPrivateNetworks: true, secretsKey: Buffer.alloc(32) });
  // The failed run's warning is expected: not logged.
  const run = (params: Record<string, unknown>) => memoryRise(() => new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') })
    .run(acts.runJob, { tenantId: 't', jobType: 'http', params }).catch((e: Error) => e));

  it('a 2xx run keeps the first 500 characters', async () => {
    const { result, grewBy } = await run({ url: `${bombs.url}/job`, method: 'GET', headers: { 'accept-encoding': 'gzip' } });
    expect(result).toEqual({ status: 200, body: 'a'.repeat(500) });
    expect(grewBy).toBeLessThan(50 * MB);
    expect(bombs.asked).toEqual(['identity']);
  });

  it('a non-2xx run fails with the first 500 characters', async () => {
    const { result, grewBy } = await run({ url: `${bombs.url}/job?status=502`, method: 'POST', body: { a: 1 } });
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toBe(`HTTP 502 from ${bombs.url}/job?status=502: ${'a'.repeat(500)}`);
    expect(grewBy).toBeLessThan(50 * MB);
  });
});
