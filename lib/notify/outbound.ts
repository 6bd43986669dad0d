// Outbound HTTP to tenant-given URLs (reminder webhooks, the http job) refuses private, loopback and
// link-local destinations unless allowed, so a tenant cannot make Docket call internal services (SSRF).
// Checked on every attempt (DNS may change); redirects are not followed by the callers.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const PRIVATE = new BlockList();
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv4');
}
// Loopback, unspecified, unique-local and link-local. (BlockList checks an IPv4-mapped IPv6 address,
// ::ffff:a.b.c.d, against the IPv4 rules itself.)
for (const [net, bits] of [['::1', 128], ['::', 128], ['fc00::', 7], ['fe80::', 10]] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv6');
}

/** Its name is stable so Temporal retry policies list it as non-retryable. */
export class OutboundBlockedError extends Error {
  override readonly name = 'OutboundBlockedError';
}

export async function assertPublicDestination(url: string): Promise<void> {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true });
  for (const a of addresses) {
    if (PRIVATE.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4')) {
      throw new OutboundBlockedError(`${new URL(url).host} resolves to a private address (${a.address}); set OUTBOUND_ALLOW_PRIVATE_NETWORKS=true to allow it`);
    }
  }
}
