// Outbound HTTP to tenant-given URLs (reminder webhooks, the http job) refuses private, loopback and
// link-local destinations unless allowed, so a tenant cannot make Docket call internal services (SSRF).
// Checked twice on every attempt: before the request (a clear error, also for IP literals) and again on
// the address the connection is actually opened to (a custom DNS lookup in the HTTP agent), so a name
// that resolves to a public address for the check and to a private one a moment later (DNS rebinding)
// is still refused. Redirects are not followed.
import dns from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, LookupFunction } from 'node:net';
import { Agent, fetch, RequestInit, Response } from 'undici';

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

function privateAddressError(host: string, addresses: { address: string; family: number }[]): OutboundBlockedError | undefined {
  const hit = addresses.find((a) => PRIVATE.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4'));
  return hit && new OutboundBlockedError(`${host} resolves to a private address (${hit.address}); set OUTBOUND_ALLOW_PRIVATE_NETWORKS=true to allow it`);
}

export async function assertPublicDestination(url: string): Promise<void> {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true });
  const blocked = privateAddressError(new URL(url).host, addresses);
  if (blocked) throw blocked;
}

/** The lookup the connection itself uses: refuses the connection when any address of the name is private. */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const blocked = privateAddressError(hostname, addresses);
    if (blocked) return callback(blocked, '', 0);
    if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
};

const publicOnlyAgent = new Agent({ connect: { lookup: publicOnlyLookup } });

/**
 * fetch() for tenant-given URLs: without `allowPrivateNetworks`, the destination is checked before the
 * request and the connection can only be opened to a public address. Redirects are never followed.
 */
export async function outboundFetch(url: string, init: Omit<RequestInit, 'dispatcher' | 'redirect'>, allowPrivateNetworks = false): Promise<Response> {
  if (allowPrivateNetworks) return fetch(url, { ...init, redirect: 'manual' });
  await assertPublicDestination(url);
  try {
    return await fetch(url, { ...init, redirect: 'manual', dispatcher: publicOnlyAgent });
  } catch (err) {
    // undici reports a refused connect as "fetch failed" with the lookup's error as its cause.
    const cause = (err as { cause?: unknown }).cause;
    throw cause instanceof OutboundBlockedError ? cause : err;
  }
}
