// Sender domains without a database: what counts as a domain, which verified domains cover a From, and the
// operator's switch (SENDER_DOMAINS) and resolvers (DNS_SERVERS) as configuration reads them.
import { loadConfig } from '../../config';
import { assertVerifiedSender, coveringDomains, domainOfAddress, normalizeDomain } from '../../domains/campaigns/sender-domains';

const base = { NODE_ENV: 'test', DATABASE_URL: 'postgres://x@localhost/db', TEMPORAL_ADDRESS: 'localhost:7233' };

it('normalises a domain: lower case, no trailing dot, an IDN as punycode', () => {
  expect(normalizeDomain(' Mail.Example.COM. ')).toBe('mail.example.com');
  expect(normalizeDomain('bücher.example')).toBe('xn--bcher-kva.example');
  expect(normalizeDomain('xn--bcher-kva.example')).toBe('xn--bcher-kva.example');
  expect(normalizeDomain('例え.テスト')).toMatch(/^xn--[a-z0-9-]+\.xn--[a-z0-9-]+$/);
});

it('refuses what is not a host name of two labels or more', () => {
  for (const bad of ['', '.', 'com', 'localhost', '10.0.0.1', '[::1]', 'a_b.example', '-a.example', 'a-.example', 'a..example', 'user@example.com',
    'https://example.com', 'example.com/path', 'example.com:25', 'exa mple.com', `${'a'.repeat(64)}.example`, `${'a.'.repeat(127)}example`, 'example.42']) {
    expect([bad, normalizeDomain(bad)]).toEqual([bad, null]);
  }
});

it('reads an address\'s domain and the verified domains that would cover it (itself and its parents, never a bare TLD)', () => {
  expect(domainOfAddress('News@Eu.Example.COM')).toBe('eu.example.com');
  expect(domainOfAddress('"a@b"@example.com')).toBe('example.com');
  expect(domainOfAddress('no-at-sign')).toBeNull();
  expect(coveringDomains('news.eu.example.com')).toEqual(['news.eu.example.com', 'eu.example.com', 'example.com']);
  expect(coveringDomains('example.com')).toEqual(['example.com']);
});

describe('configuration', () => {
  it('checks sender domains by default, and lets any From through with SENDER_DOMAINS=any', () => {
    expect(loadConfig(base).senderDomains).toEqual({ mode: 'verified', dnsServers: [], dnsTimeoutMs: 3000 });
    expect(loadConfig({ ...base, SENDER_DOMAINS: 'any' }).senderDomains.mode).toBe('any');
    expect(() => loadConfig({ ...base, SENDER_DOMAINS: 'off' })).toThrow(/SENDER_DOMAINS must be verified or any, got "off"/);
  });

  it('reads DNS_SERVERS as IP addresses with optional ports, and DNS_TIMEOUT_MS', () => {
    const c = loadConfig({ ...base, DNS_SERVERS: '127.0.0.1:5353, 10.0.0.2,[::1]:53,::1', DNS_TIMEOUT_MS: '1500' }).senderDomains;
    expect(c).toEqual({ mode: 'verified', dnsServers: ['127.0.0.1:5353', '10.0.0.2', '[::1]:53', '::1'], dnsTimeoutMs: 1500 });
    for (const bad of ['dns.example:53', '127.0.0.1:0', '127.0.0.1:70000', '[::1', '300.1.1.1']) {
      expect(() => loadConfig({ ...base, DNS_SERVERS: bad })).toThrow(/DNS_SERVERS must be IP addresses/);
    }
  });

  it('with SENDER_DOMAINS=any, accepts any From without looking anything up', async () => {
    // No database here: a look-up would throw (the model is not initialised).
    const config = loadConfig({ ...base, SENDER_DOMAINS: 'any' });
    await expect(assertVerifiedSender({ config }, 'tenant', 'ceo@bigbank.example')).resolves.toBeUndefined();
    await expect(assertVerifiedSender({ config: loadConfig(base) }, 'tenant', 'ceo@bigbank.example')).rejects.toThrow();
  });
});
