// Sender domains through the API, verified against a DNS server on loopback: add a domain, publish its TXT record,
// verify it, and only then send campaigns From it; the refusals (bad domains, duplicates, the limit, DNS down), who
// may do what, tenant isolation, and campaigns refused From a domain that is not (or no longer) verified.
import { randomUUID } from 'node:crypto';
import { AuditEvent, Campaign } from '../../db';
import { SenderDomain } from '../../db/models/sender-domains';
import { SENDER_DOMAIN_LIMITS } from '../../domains/campaigns/sender-domains';
import { startTestApp, TestApp } from '../helpers/app';
import { waitForLockWaiters } from '../helpers/wait';
import { BODY, createCampaign, seedList } from '../helpers/campaigns';
import { buildApiKey, buildCaller } from '../helpers/factories';
import { startDnsServer, startSilentDnsServer, TestDnsServer, verifiedSenderDomain } from '../helpers/sender-domains';

const DNS_TIMEOUT_MS = 1000;
let dns: TestDnsServer;
let silent: Awaited<ReturnType<typeof startSilentDnsServer>>;
let app: TestApp;

beforeAll(async () => {
  dns = await startDnsServer();
  silent = await startSilentDnsServer();
  app = await startTestApp({ DNS_SERVERS: dns.address, DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS) });
});
afterAll(async () => {
  await app.close();
  await dns.close();
  await silent.close();
});

/** A domain no other test uses. */
const fresh = (label = 'mail') => `${label}-${randomUUID().slice(0, 8)}.example`;
const add = async (key: string, domain: string) => (await app.call('post', '/v1/sender-domains', key).send({ domain }).expect(201)).body;

describe('verifying a domain', () => {
  it('adds it pending with a TXT record to publish, verifies it once published, then campaigns may send From it', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const domain = fresh();
    const created = await app.call('post', '/v1/sender-domains', key).send({ domain: ` ${domain.toUpperCase()}. ` }).expect(201);
    const d = created.body;
    expect(created.headers.location).toBe(`/v1/sender-domains/${d.id}`);
    expect(d).toMatchObject({ domain, status: 'pending', verifiedAt: null, dnsRecord: { type: 'TXT', name: `_docket.${domain}`, value: expect.stringMatching(/^docket-verify=[A-Za-z0-9_-]{32}$/) } });

    // Not yet published: 422 naming the record expected, still pending; the campaign is refused meanwhile.
    const missing = await app.call('post', `/v1/sender-domains/${d.id}/verify`, key).expect(422);
    expect(missing.body.code).toBe('SENDER_DOMAIN_NOT_VERIFIED');
    expect(missing.body.detail).toContain(`_docket.${domain}`);
    expect(missing.body.detail).toContain(d.dnsRecord.value);
    expect((await app.call('post', '/v1/campaigns', key).send({ ...BODY, fromEmail: `news@${domain}` }).expect(422)).body.code).toBe('SENDER_DOMAIN_UNVERIFIED');

    // Someone else's token there (another account's record, or a stale one) does not verify it.
    dns.setTxt(`_docket.${domain}`, ['docket-verify=not-the-token', 'v=spf1 -all']);
    const wrong = await app.call('post', `/v1/sender-domains/${d.id}/verify`, key).expect(422);
    expect(wrong.body).toMatchObject({ code: 'SENDER_DOMAIN_NOT_VERIFIED', detail: expect.stringContaining('another docket-verify token') });
    expect((await app.call('get', `/v1/sender-domains/${d.id}`, key).expect(200)).body.status).toBe('pending');

    dns.setTxt(`_docket.${domain}`, ['v=spf1 -all', d.dnsRecord.value]);
    const verified = await app.call('post', `/v1/sender-domains/${d.id}/verify`, key).expect(200);
    expect(verified.body).toMatchObject({ id: d.id, status: 'verified', verifiedAt: expect.any(String), dnsRecord: d.dnsRecord });
    expect(dns.queries).toContain(`_docket.${domain}`);
    expect((await app.call('get', `/v1/sender-domains/${d.id}`, key).expect(200)).body.status).toBe('verified');
    expect((await app.call('get', '/v1/sender-domains?status=verified', key).expect(200)).body).toEqual({ items: [verified.body], nextCursor: null });
    expect((await app.call('get', '/v1/sender-domains?status=pending', key).expect(200)).body.items).toEqual([]);
    // Verifying again answers it as it is, even once the record is gone.
    dns.setTxt(`_docket.${domain}`, []);
    expect((await app.call('post', `/v1/sender-domains/${d.id}/verify`, key).expect(200)).body.verifiedAt).toBe(verified.body.verifiedAt);

    // Its addresses, in any case, and its subdomains' are accepted as From; the campaign is sent.
    const { listId } = await seedList(app.sequelize, tenant.id, 2);
    const id = await createCampaign(app, key, { fromEmail: `News@${domain.toUpperCase()}`, audience: { listIds: [listId] } });
    await createCampaign(app, key, { fromEmail: `news@eu.news.${domain}` });
    await app.call('patch', `/v1/campaigns/${id}`, key).send({ fromEmail: `hello@${domain}` }).expect(200);
    expect((await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202)).body.status).toBe('running');

    for (const action of ['campaigns.sender_domain.created', 'campaigns.sender_domain.verified']) {
      expect(await AuditEvent.count({ where: { tenantId: tenant.id, action, entityId: d.id } })).toBe(1);
    }
  });

  it('takes an internationalised domain as punycode and lists newest first, a page at a time', async () => {
    const { key } = await buildCaller(['campaigns.*']);
    const suffix = randomUUID().slice(0, 8);
    const idn = await add(key, `Bücher-${suffix}.Example`);
    expect(idn.dnsRecord.name).toBe(`_docket.${idn.domain}`);
    expect(idn.domain).toMatch(new RegExp(`^xn--bcher-${suffix}-[a-z0-9]+\\.example$`));
    const second = await add(key, fresh());
    const first = await app.call('get', '/v1/sender-domains?limit=1', key).expect(200);
    expect(first.body.items.map((d: { id: string }) => d.id)).toEqual([second.id]);
    const next = await app.call('get', `/v1/sender-domains?limit=1&cursor=${first.body.nextCursor}`, key).expect(200);
    expect(next.body).toEqual({ items: [idn], nextCursor: null });
  });

  it('lets two tenants each verify the same domain with their own token', async () => {
    const a = await buildCaller(['campaigns.*']);
    const b = await buildCaller(['campaigns.*']);
    const domain = fresh('shared');
    const da = await add(a.key, domain);
    const db = await add(b.key, domain);
    expect(db.dnsRecord.name).toBe(da.dnsRecord.name);
    expect(db.dnsRecord.value).not.toBe(da.dnsRecord.value);
    dns.setTxt(`_docket.${domain}`, [da.dnsRecord.value]);
    await app.call('post', `/v1/sender-domains/${da.id}/verify`, a.key).expect(200);
    // A's record proves nothing for B.
    expect((await app.call('post', `/v1/sender-domains/${db.id}/verify`, b.key).expect(422)).body.code).toBe('SENDER_DOMAIN_NOT_VERIFIED');
    expect((await app.call('post', '/v1/campaigns', b.key).send({ ...BODY, fromEmail: `x@${domain}` }).expect(422)).body.code).toBe('SENDER_DOMAIN_UNVERIFIED');
    dns.setTxt(`_docket.${domain}`, [da.dnsRecord.value, db.dnsRecord.value]);
    expect((await app.call('post', `/v1/sender-domains/${db.id}/verify`, b.key).expect(200)).body.status).toBe('verified');
    await createCampaign(app, b.key, { fromEmail: `x@${domain}` });
  });
});

describe('refusals', () => {
  it('refuses what is not a domain (422 INVALID_DOMAIN), a duplicate (409) and the 51st domain (422 SENDER_DOMAIN_LIMIT), writing nothing', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    for (const domain of ['localhost', 'com', '192.168.1.10', 'exa mple.example', '-bad.example', 'bad-.example', 'a_b.example', 'http://x.example', 'x@y.example',
      'x.example:25', `${'a'.repeat(64)}.example`, 'example.123', '..example', 'xn--.example']) {
      const res = await app.call('post', '/v1/sender-domains', key).send({ domain }).expect(422);
      expect([domain, res.body.code, res.body.errors]).toEqual([domain, 'INVALID_DOMAIN', [{ path: '/requestBody/domain', message: 'is not a domain name' }]]);
    }
    await app.call('post', '/v1/sender-domains', key).send({ domain: '' }).expect(400);
    await app.call('post', '/v1/sender-domains', key).send({ domain: 'x.example', extra: 1 }).expect(400);
    expect(await SenderDomain.count({ where: { tenantId: tenant.id } })).toBe(0);

    const domain = fresh();
    await add(key, domain);
    expect((await app.call('post', '/v1/sender-domains', key).send({ domain: domain.toUpperCase() }).expect(409)).body.code).toBe('ALREADY_EXISTS');
    for (let i = 1; i < SENDER_DOMAIN_LIMITS.maxPerTenant; i++) await add(key, `d${i}-${domain}`);
    const over = await app.call('post', '/v1/sender-domains', key).send({ domain: `over-${domain}` }).expect(422);
    expect(over.body).toMatchObject({ code: 'SENDER_DOMAIN_LIMIT', count: SENDER_DOMAIN_LIMITS.maxPerTenant });
    expect(await SenderDomain.count({ where: { tenantId: tenant.id } })).toBe(SENDER_DOMAIN_LIMITS.maxPerTenant);
    // Deleting one makes room.
    const [oldest] = (await app.call('get', '/v1/sender-domains?limit=200', key).expect(200)).body.items.slice(-1);
    await app.call('delete', `/v1/sender-domains/${oldest.id}`, key).expect(204);
    await add(key, `over-${domain}`);
  });

  it('answers 404 for an unknown id and for another tenant\'s domain, on every operation', async () => {
    const a = await buildCaller(['campaigns.*']);
    const b = await buildCaller(['campaigns.*']);
    const theirs = await add(a.key, fresh());
    for (const id of [randomUUID(), theirs.id]) {
      expect((await app.call('get', `/v1/sender-domains/${id}`, b.key).expect(404)).body.code).toBe('NOT_FOUND');
      await app.call('post', `/v1/sender-domains/${id}/verify`, b.key).expect(404);
      await app.call('delete', `/v1/sender-domains/${id}`, b.key).expect(404);
    }
    expect((await app.call('get', '/v1/sender-domains', b.key).expect(200)).body.items).toEqual([]);
    await app.call('get', '/v1/sender-domains/not-a-uuid', b.key).expect(400);
    expect((await app.call('get', `/v1/sender-domains/${theirs.id}`, a.key).expect(200)).body.status).toBe('pending');
  });

  it('asks the next DNS server when the first does not answer, within the same timeout', async () => {
    const { key } = await buildCaller(['campaigns.*']);
    const d = await add(key, fresh());
    dns.setTxt(`_docket.${d.domain}`, [d.dnsRecord.value]);
    // 3 s each (6 s in all): the test's DNS server answers from this process, whose event loop a busy machine (the app
    // just started beside it) can hold past a 500 ms share.
    const other = await startTestApp({ DNS_SERVERS: `${silent.address},${dns.address}`, DNS_TIMEOUT_MS: '6000' });
    try {
      expect((await other.call('post', `/v1/sender-domains/${d.id}/verify`, key).expect(200)).body.status).toBe('verified');
    } finally {
      await other.close();
    }
  });

  it('answers 503 with Retry-After within the DNS timeout when DNS does not answer or is down, leaving the domain pending', async () => {
    const { key } = await buildCaller(['campaigns.*']);
    const d = await add(key, fresh());
    const closedPort = await startSilentDnsServer();
    await closedPort.close();
    for (const [what, server] of [['unresponsive', silent.address], ['down', closedPort.address]]) {
      const other = await startTestApp({ DNS_SERVERS: server, DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS) });
      try {
        const t = Date.now();
        const res = await other.call('post', `/v1/sender-domains/${d.id}/verify`, key).expect(503);
        expect([what, res.body.code, Number(res.headers['retry-after']) > 0]).toEqual([what, 'SERVICE_UNAVAILABLE', true]);
        expect(Date.now() - t).toBeLessThan(DNS_TIMEOUT_MS + 1500);
      } finally {
        await other.close();
      }
    }
    expect((await app.call('get', `/v1/sender-domains/${d.id}`, key).expect(200)).body.status).toBe('pending');
  });
});

describe('campaigns From an unverified domain', () => {
  it('refuses create and edit with 422 SENDER_DOMAIN_UNVERIFIED; the reply-to stays free; a parent is not covered by its subdomain', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    await verifiedSenderDomain(app.sequelize, tenant.id); // acme.example, BODY's
    await verifiedSenderDomain(app.sequelize, tenant.id, 'news.other.example');
    const refuse = async (body: Record<string, unknown>) => {
      const res = await app.call('post', '/v1/campaigns', key).send({ ...BODY, ...body }).expect(422);
      expect(res.body).toMatchObject({ code: 'SENDER_DOMAIN_UNVERIFIED', errors: [{ path: '/requestBody/fromEmail' }] });
      return res.body;
    };
    expect((await refuse({ fromEmail: 'ceo@bigbank.example' })).detail).toContain('bigbank.example');
    await refuse({ fromEmail: 'security@other.example' });
    await refuse({ fromEmail: 'news@acme.example.evil.example' });
    await refuse({ fromEmail: 'news@notacme.example' });
    // A pending domain is not verified.
    await add(key, 'pending.example');
    await refuse({ fromEmail: 'news@pending.example' });
    expect(await Campaign.count({ where: { tenantId: tenant.id } })).toBe(0);

    const id = await createCampaign(app, key, { replyTo: 'anyone@elsewhere.example' });
    await createCampaign(app, key, { fromEmail: 'x@news.other.example' });
    const edit = await app.call('patch', `/v1/campaigns/${id}`, key).send({ fromEmail: 'security@tenant-b.example' }).expect(422);
    expect(edit.body.code).toBe('SENDER_DOMAIN_UNVERIFIED');
    expect((await Campaign.findOne({ where: { tenantId: tenant.id, id } }))!).toMatchObject({ version: 1, fromEmail: BODY.fromEmail });
  });

  it('refuses an edit whose domain is deleted while the edit is being checked (a scheduled campaign would go out From it)', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    await verifiedSenderDomain(app.sequelize, tenant.id);
    const id = await createCampaign(app, key, {});
    // A delete of the domain in flight: the row gone, uncommitted.
    const deleting = await app.sequelize.transaction();
    await app.sequelize.query('DELETE FROM sender_domains WHERE tenant_id = $1', { bind: [tenant.id], transaction: deleting });
    const edit = app.call('patch', `/v1/campaigns/${id}`, key).send({ fromEmail: 'hello@acme.example' }).then((r) => r);
    await waitForLockWaiters(app.sequelize, '%sender_domains%', 1, { timeoutMs: 30_000, intervalMs: 50, what: 'the edit waiting for the domain row' });
    await deleting.commit();
    const res = await edit;
    expect([res.status, res.body.code]).toEqual([422, 'SENDER_DOMAIN_UNVERIFIED']);
    expect((await Campaign.findOne({ where: { tenantId: tenant.id, id } }))!).toMatchObject({ version: 1, fromEmail: BODY.fromEmail });
  });

  it('refuses send, schedule, test send and edits once the domain is deleted, writing nothing; another tenant\'s verified domain does not count', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 2); // verifies acme.example for the tenant
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    const [row] = (await app.call('get', '/v1/sender-domains', key).expect(200)).body.items;
    expect(row).toMatchObject({ domain: 'acme.example', status: 'verified' });
    await app.call('delete', `/v1/sender-domains/${row.id}`, key).expect(204);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'campaigns.sender_domain.deleted', entityId: row.id } })).toBe(1);

    const at = new Date(Date.now() + 3600_000).toISOString();
    for (const [what, method, path, body] of [
      ['send', 'post', `/v1/campaigns/${id}/send`, {}], ['schedule', 'post', `/v1/campaigns/${id}/send`, { sendAt: at }],
      ['test send', 'post', `/v1/campaigns/${id}/test`, { emails: ['me@example.com'] }], ['edit', 'patch', `/v1/campaigns/${id}`, { name: 'renamed' }],
    ] as const) {
      const res = await app.call(method, path, key).send(body).expect(422);
      expect([what, res.body.code]).toEqual([what, 'SENDER_DOMAIN_UNVERIFIED']);
    }
    const c = (await Campaign.findOne({ where: { tenantId: tenant.id, id } }))!;
    expect({ status: c.status, version: c.version, run: c.run, workflowId: c.workflowId }).toEqual({ status: 'draft', version: 1, run: 0, workflowId: null });
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityId: id, action: ['campaigns.campaign.send_requested', 'campaigns.campaign.scheduled'] } })).toBe(0);

    // Verified again (by someone else too): the other tenant's does not count, the tenant's own does.
    const other = await buildCaller(['campaigns.*']);
    await verifiedSenderDomain(app.sequelize, other.tenant.id);
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(422);
    await verifiedSenderDomain(app.sequelize, tenant.id);
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({ sendAt: at }).expect(202);
  });

  it('lets any From through with SENDER_DOMAINS=any', async () => {
    const open = await startTestApp({ SENDER_DOMAINS: 'any' });
    try {
      const { key } = await buildCaller(['campaigns.*']);
      expect((await open.call('post', '/v1/campaigns', key).send({ ...BODY, fromEmail: 'someone@anywhere.example' }).expect(201)).body.fromEmail).toBe('someone@anywhere.example');
      await app.call('post', '/v1/campaigns', key).send({ ...BODY, fromEmail: 'someone@anywhere.example' }).expect(422);
    } finally {
      await open.close();
    }
  });
});

describe('permissions', () => {
  it('reading needs campaigns.read; adding, verifying and deleting campaigns.sender_domains.manage', async () => {
    const admin = await buildCaller(['*']);
    const as = async (perms: string[], scopes?: string[]) => {
      const c = await buildCaller(perms, admin.tenant);
      return scopes ? buildApiKey(c.user, { scopes }) : c.key;
    };
    const reader = await as(['campaigns.read']);
    const manager = await as(['campaigns.read', 'campaigns.sender_domains.manage']);
    const all = await as(['campaigns.*']);
    const writer = await as(['campaigns.write', 'campaigns.send']);
    const nobody = await as(['audience.read']);
    const scopedReader = await as(['*'], ['campaigns.read']);
    const keys = { reader, manager, all, writer, nobody, scopedReader };
    const d = await add(admin.key, fresh());
    dns.setTxt(d.dnsRecord.name, [d.dnsRecord.value]);

    const may = (allowed: (keyof typeof keys)[]) => allowed;
    const matrix: [string, 'get' | 'post' | 'delete', () => string, Record<string, unknown> | undefined, (keyof typeof keys)[]][] = [
      ['list', 'get', () => '/v1/sender-domains', undefined, may(['reader', 'manager', 'all', 'scopedReader'])],
      ['get', 'get', () => `/v1/sender-domains/${d.id}`, undefined, may(['reader', 'manager', 'all', 'scopedReader'])],
      ['create', 'post', () => '/v1/sender-domains', undefined, may(['manager', 'all'])],
      ['verify', 'post', () => `/v1/sender-domains/${d.id}/verify`, {}, may(['manager', 'all'])],
    ];
    for (const [op, method, url, body, allowed] of matrix) {
      for (const [who, key] of Object.entries(keys)) {
        const res = await app.call(method, url(), key).send(body ?? (op === 'create' ? { domain: fresh() } : undefined));
        if (allowed.includes(who as keyof typeof keys)) expect([op, who, res.status < 300]).toEqual([op, who, true]);
        else expect([op, who, res.status, res.body.permission]).toEqual([op, who, 403, method === 'get' ? 'campaigns.read' : 'campaigns.sender_domains.manage']);
      }
    }
    for (const who of ['reader', 'writer', 'nobody', 'scopedReader'] as const) {
      const res = await app.call('delete', `/v1/sender-domains/${d.id}`, keys[who]).expect(403);
      expect(res.body.permission).toBe('campaigns.sender_domains.manage');
    }
    await app.call('delete', `/v1/sender-domains/${d.id}`, manager).expect(204);
    // The permission is in the catalogue (grantable to roles).
    const catalogue = (await app.call('get', '/v1/permissions', admin.key).expect(200)).body;
    expect(JSON.stringify(catalogue)).toContain('campaigns.sender_domains.manage');
  });
});
