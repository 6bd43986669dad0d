// Outbound calls to tenant-given URLs (webhooks, the http job): the address the connection is opened to
// is checked, not only the one a check before the request saw (DNS rebinding).
import dnsPromises from 'node:dns/promises';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { isPublicAddress, OutboundBlockedError, outboundFetch } from '../../lib/notify/outbound';

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

describe('which addresses a tenant may have Docket call (asked of the classifier, never connected to)', () => {
  it.each([
    // IPv4: private, loopback, link-local (cloud metadata), carrier-grade NAT, "this network", multicast, broadcast,
    // reserved, the IETF protocol block, benchmarking and documentation ranges.
    '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1', '127.0.0.1', '127.255.0.9', '169.254.169.254', '100.64.0.1',
    '100.127.255.254', '0.0.0.0', '0.1.2.3', '224.0.0.251', '239.255.255.250', '255.255.255.255', '240.0.0.1', '192.0.0.170',
    '198.18.0.1', '198.19.255.1', '192.0.2.1', '198.51.100.7', '203.0.113.9',
    // IPv6: loopback, unspecified, unique-local, link-local, deprecated site-local, multicast, documentation, discard.
    '::1', '::', 'fd00::1', 'fc12:3456::1', 'fe80::1', 'febf::1', 'fec0::1', 'ff02::1', '2001:db8::1', '100::1',
    // IPv6 forms that reach a private IPv4 host: mapped, NAT64, 6to4, IPv4-compatible, IPv4-translated.
    '::ffff:127.0.0.1', '::ffff:10.0.0.1', '64:ff9b::a00:1', '64:ff9b::169.254.169.254', '2002:a00:1::1', '2002:7f00:1::',
    '::127.0.0.1', '::a9fe:a9fe', '::ffff:0:a00:1',
    // Transition ranges whose IPv4 host cannot be told or is local: Teredo, local-use NAT64.
    '2001:0:4136:e378:8000:63bf:3fff:fdd2', '64:ff9b:1::a00:1',
    // Not an address at all.
    'localhost', '', '10.0.0.1.5',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each([
    '93.184.216.34', '8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '192.169.0.1', '11.0.0.1',
    '2606:2800:220:1::1', '2a00:1450:4001:81b::200e', '::ffff:93.184.216.34', '64:ff9b::5db8:d822', '2002:5db8:d822::1',
  ])('allows %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });
});
