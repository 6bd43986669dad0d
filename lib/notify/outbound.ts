// Outbound HTTP to tenant-given URLs (reminder webhooks, the http job) refuses every destination that is not global
// unicast (private, loopback, link-local, reserved …) unless allowed, so a tenant cannot make Docket call internal services (SSRF).
// Checked twice on every attempt: before the request (a clear error, also for IP literals) and again on
// the address the connection is actually opened to (a custom DNS lookup in the HTTP agent), so a name
// that resolves to a public address for the check and to a private one a moment later (DNS rebinding)
// is still refused. Redirects are not followed. Their answers are read only up to a cap (readBodyCapped), never whole.
import dns from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP, LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, fetch, Headers, RequestInit, Response } from 'undici';

/** The well-known NAT64 prefix (RFC 6052): on an IPv6-only network with DNS64 every IPv4-only host resolves into it. */
const NAT64 = ipaddr.IPv6.parse('64:ff9b::');

/**
 * The IPv4 address an IPv6 address stands for, where it is one of the forms that reach an IPv4 host: NAT64 (the
 * well-known prefix), 6to4, IPv4-translated and the deprecated IPv4-compatible `::a.b.c.d`. (IPv4-mapped
 * `::ffff:a.b.c.d` is unwrapped by ipaddr.process.)
 */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const b = ip.toByteArray();
  const v4 = (at: number) => new ipaddr.IPv4(b.slice(at, at + 4));
  const range = ip.range();
  if ((range === 'rfc6052' && ip.match(NAT64, 96)) || range === 'rfc6145') return v4(12);
  if (range === '6to4') return v4(2);
  if (b.slice(0, 12).every((x) => x === 0) && range === 'unicast') return v4(12);
  return undefined;
}

/**
 * Whether Docket may call an address for a tenant: only global unicast (ipaddr.js's ranges: not private, loopback,
 * link-local, carrier-grade NAT, multicast, reserved, documentation, benchmarking …); an IPv6 form that reaches an
 * IPv4 host is judged by that host's address; other transition ranges (Teredo, local-use NAT64) are refused.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.range() === 'unicast';
  const embedded = embeddedIPv4(ip as ipaddr.IPv6);
  return embedded ? embedded.range() === 'unicast' : ip.range() === 'unicast';
}

/** Its name is stable so Temporal retry policies list it as non-retryable. */
export class OutboundBlockedError extends Error {
  override readonly name = 'OutboundBlockedError';
}

function privateAddressError(host: string, addresses: { address: string }[]): OutboundBlockedError | undefined {
  const hit = addresses.find((a) => !isPublicAddress(a.address));
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
  // fetch() inflates a gzip/br/deflate answer on its own, whatever was asked for; asking for none (over any header the
  // caller gave) keeps honest servers from compressing. readBodyCapped is what bounds the bytes read either way.
  const headers = new Headers(init.headers);
  headers.set('accept-encoding', 'identity');
  if (allowPrivateNetworks) return fetch(url, { ...init, headers, redirect: 'manual' });
  await assertPublicDestination(url);
  try {
    return await fetch(url, { ...init, headers, redirect: 'manual', dispatcher: publicOnlyAgent });
  } catch (err) {
    // undici reports a refused connect as "fetch failed" with the lookup's error as its cause.
    const cause = (err as { cause?: unknown }).cause;
    throw cause instanceof OutboundBlockedError ? cause : err;
  }
}

/**
 * The first `maxBytes` of an answer's body (fewer if it is shorter), then the rest is cancelled unread. Never
 * res.text()/json()/arrayBuffer() on a tenant's server: fetch() inflates Content-Encoding itself, so a few hundred KB
 * of gzip would become hundreds of MB in memory (an out-of-memory crash of the API or worker, for every tenant).
 * Reading the stream chunk by chunk holds at most `maxBytes` plus one chunk (the inflating is paced by our reads).
 */
export async function readBodyCapped(res: Response, maxBytes: number): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    // Stops the download (and the inflating) here; a body read to its end is not affected.
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, maxBytes);
}
