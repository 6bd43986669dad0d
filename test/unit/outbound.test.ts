// Outbound calls to tenant-given URLs (webhooks, the http job): the address the connection is opened to
// is checked, not only the one a check before the request saw (DNS rebinding).
import dnsPromises from 'node:dns/promises';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { OutboundBlockedError, outboundFetch } from '../../lib/notify/outbound';

let server: http.Server;
let received = 0;
let port: number;
beforeAll(async () => {
  server = http.createServer((_req, res) => { received++; res.end('ok'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise((r) => server.close(r)));
afterEach(() => jest.restoreAllMocks());

it('refuses a name that resolved to a public address for the check but connects to a private one', async () => {
  // The check before the request sees a public address; the connection itself resolves localhost → 127.0.0.1.
  jest.spyOn(dnsPromises, 'lookup').mockResolvedValue([{ address: '93.184.216.34', family: 4 }] as never);
  await expect(outboundFetch(`http://localhost:${port}/hook`, { method: 'POST', body: '{}' })).rejects.toBeInstanceOf(OutboundBlockedError);
  expect(received).toBe(0);
});

it('refuses a private IP literal before any connection, and allows it when private networks are allowed', async () => {
  await expect(outboundFetch(`http://127.0.0.1:${port}/hook`, {})).rejects.toThrow(/private address \(127\.0\.0\.1\)/);
  expect(received).toBe(0);
  const res = await outboundFetch(`http://localhost:${port}/hook`, {}, true);
  expect(await res.text()).toBe('ok');
  expect(received).toBe(1);
});
