// A tenant's webhook endpoint answering a gzip bomb (~300 KB inflating to 300 MB) to a test send, which runs in the
// API process: answered with the first KB of it, and the API's memory does not rise by the inflated size.
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { BombServer, gzipBomb, MB, memoryRise, startBombServer } from '../helpers/gzip-bomb';

let app: TestApp;
let bombs: BombServer;
beforeAll(async () => {
  bombs = await startBombServer(await gzipBomb(300));
  app = await startTestApp({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' });
});
afterAll(async () => {
  await app.close();
  await bombs.close();
});

it('POST /v1/webhook-endpoints/{id}/test: the first KB of a gzip bomb, memory flat, no compression asked for', async () => {
  const { key } = await buildCaller(['*']);
  const e = (await app.call('post', '/v1/webhook-endpoints', key).send({ url: `${bombs.url}/hook`, eventTypes: ['*'], enabled: false }).expect(201)).body;
  const { result, grewBy } = await memoryRise(() => app.call('post', `/v1/webhook-endpoints/${e.id}/test`, key).expect(200));
  expect(result.body).toMatchObject({ delivered: true, statusCode: 200, response: 'a'.repeat(1024), error: null });
  expect(grewBy).toBeLessThan(50 * MB);
  expect(bombs.asked).toEqual(['identity']);
});
