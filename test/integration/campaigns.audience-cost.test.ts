// What a campaign's audience may cost: the send's audience check runs under the segment preview's time budget and
// per-tenant lock (422 SEGMENT_TOO_EXPENSIVE, 429), writing nothing; an audience has at most 1,000 conditions
// (422 AUDIENCE_TOO_COMPLEX at create, edit and send); the worker's snapshot has a statement_timeout of its own
// (the campaign fails with SNAPSHOT_TIMEOUT, nothing sent).
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { AuditEvent, Campaign, CampaignRecipient } from '../../db';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { CAMPAIGNS_DOMAIN } from '../../workflows/campaigns.api';
import { startTestApp, TestApp } from '../helpers/app';
import { BODY, createCampaign, seedList, setSendLimits } from '../helpers/campaigns';
import { holdAudienceLock } from '../helpers/audience-lock';
import { buildCaller } from '../helpers/factories';
import { verifiedSenderDomain } from '../helpers/sender-domains';
import { SmtpSink, startSmtpSink } from '../helpers/smtp-sink';
import { waitFor } from '../helpers/wait';

const SNAPSHOT_TIMEOUT_MS = 2_000;

let app: TestApp;
let smtp: SmtpSink;
beforeAll(async () => {
  smtp = await startSmtpSink();
  app = await startTestApp({ CAMPAIGN_BATCH_SIZE: '20', CAMPAIGN_CHUNK_MS: '300', CAMPAIGN_SNAPSHOT_TIMEOUT_MS: String(SNAPSHOT_TIMEOUT_MS) });
  await app.startWorker({ smtpUrl: smtp.url });
});
afterAll(async () => {
  await app.close();
  await smtp.close();
});

type Key = string;

/** `n` rules (one `any` of `contains` conditions on a long text attribute) that match no one: every one is tested on every row. */
const costlyRules = (n: number) => ({ any: Array.from({ length: n }, (_, i) => ({ field: 'attributes.note', op: 'contains', value: `never-${randomUUID()}-${i}` })) });
const segments = async (key: Key, count: number, rules: number) => {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await app.call('post', '/v1/segments', key).send({ name: `costly ${randomUUID()}`, rules: costlyRules(rules) }).expect(201)).body.id);
  return ids;
};
/** `n` active subscribers with a long `note`, all in one new list (and BODY's From verified for the tenant). */
async function bulkList(tenantId: string, n: number): Promise<string> {
  await setSendLimits(app.sequelize, tenantId);
  await verifiedSenderDomain(app.sequelize, tenantId);
  const listId = randomUUID();
  await app.sequelize.query('INSERT INTO lists (tenant_id, id, name) VALUES ($1, $2, $3)', { bind: [tenantId, listId, `bulk ${listId}`] });
  await app.sequelize.query(`WITH s AS (
      INSERT INTO subscribers (tenant_id, id, email, attributes)
      SELECT $1, gen_random_uuid(), 'bulk-' || g || '-' || $3 || '@example.test', jsonb_build_object('note', repeat('Some words of a note ', 10) || g)
      FROM generate_series(1, $2::int) g RETURNING id)
    INSERT INTO list_members (tenant_id, list_id, subscriber_id) SELECT $1, $4, id FROM s`, { bind: [tenantId, n, listId.slice(0, 8), listId] });
  return listId;
}

/** The campaign is the draft it was: version 1, never run, no send audited, no workflow. */
async function unchanged(tenantId: string, id: string) {
  const c = (await Campaign.findOne({ where: { tenantId, id } }))!;
  expect({ status: c.status, version: c.version, run: c.run, workflowId: c.workflowId, sendAt: c.sendAt }).toEqual({ status: 'draft', version: 1, run: 0, workflowId: null, sendAt: null });
  expect(await AuditEvent.count({ where: { tenantId, entityId: id, action: ['campaigns.campaign.send_requested', 'campaigns.campaign.scheduled'] } })).toBe(0);
  await expect(app.client.workflow.getHandle(businessWorkflowId({ domain: CAMPAIGNS_DOMAIN, tenantId, entityId: id })).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

async function ended(key: Key, id: string) {
  return waitFor(async () => {
    const res = await app.call('get', `/v1/campaigns/${id}`, key).expect(200);
    return ['finished', 'cancelled', 'failed'].includes(res.body.status) && res.body;
  }, { what: `campaign ${id} ended`, timeoutMs: 60_000, intervalMs: 100 });
}

describe('the audience check at send', () => {
  it('stops an audience that costs more than the preview budget with 422 SEGMENT_TOO_EXPENSIVE within it, changing nothing', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    await bulkList(tenant.id, 10_000);
    // 1,000 conditions, at the cap: allowed, and each tested on each of the 10,000 subscribers (no one matches): over
    // 5 s here without a budget.
    const id = await createCampaign(app, key, { audience: { segmentIds: await segments(key, 10, 100) } });
    const tight = await startTestApp({ SEGMENT_PREVIEW_BUDGET_MS: '300' });
    try {
      const t0 = Date.now();
      const res = await tight.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(422);
      const ms = Date.now() - t0;
      expect(res.body.code).toBe('SEGMENT_TOO_EXPENSIVE');
      expect(res.body.detail).toMatch(/^Checking this campaign's audience took longer than its budget of 300 ms/);
      // The budget, the few small reads around it and the HTTP round trip: nowhere near the query's full cost.
      expect(ms).toBeLessThan(3_000);
    } finally {
      await tight.close();
    }
    await unchanged(tenant.id, id);
    // The tenant's lock went with the check's transaction: a preview runs at once.
    await app.call('post', '/v1/segments/preview', key).send({ rules: { all: [{ field: 'status', op: 'eq', value: 'active' }] } }).expect(200);
  });

  it('answers 429 with Retry-After while an audience query of the tenant runs (as a preview does), other tenants not held up; sends once it is over', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const other = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId, emails } = await seedList(app.sequelize, tenant.id, 3);
    const { listId: theirList } = await seedList(app.sequelize, other.tenant.id, 2);
    const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
    const theirs = await createCampaign(app, other.key, { audience: { listIds: [theirList] } });
    // A preview in flight holds the tenant's lock (as withAudienceBudget takes it) until its transaction ends.
    const lock = await holdAudienceLock(app.sequelize, tenant.id);
    try {
      const busy = await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(429);
      expect(busy.body.code).toBe('RATE_LIMITED');
      expect(busy.headers['retry-after']).toBe('1');
      await unchanged(tenant.id, id);
      await app.call('post', `/v1/campaigns/${theirs}/send`, other.key).send({}).expect(202);
    } finally {
      await lock.release();
    }
    // A normal send: 202, snapshotted and sent.
    expect((await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202)).body.status).toBe('running');
    expect(await ended(key, id)).toMatchObject({ status: 'finished', stats: { audienceSize: 3, sent: 3 } });
    expect(smtp.messages.filter((m) => emails.includes(m.to[0]))).toHaveLength(3);
    expect(await ended(other.key, theirs)).toMatchObject({ status: 'finished', stats: { audienceSize: 2, sent: 2 } });
  });
});

describe('at most 1,000 conditions in an audience', () => {
  it('refuses a larger audience at create and edit with 422 AUDIENCE_TOO_COMPLEX, writing nothing; takes 1,000', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 2);
    const big = await segments(key, 10, 100);
    const small = await segments(key, 1, 1);
    const refused = await app.call('post', '/v1/campaigns', key).send({ ...BODY, audience: { listIds: [listId], segmentIds: big } }).expect(422);
    expect(refused.body).toMatchObject({ code: 'AUDIENCE_TOO_COMPLEX', count: 1001, errors: [{ path: '/requestBody/audience' }] });
    // Exclusions count as much.
    const excluded = await app.call('post', '/v1/campaigns', key).send({ ...BODY, audience: { segmentIds: big.slice(0, 5), excludeSegmentIds: [...big.slice(5), ...small] } }).expect(422);
    expect(excluded.body).toMatchObject({ code: 'AUDIENCE_TOO_COMPLEX', count: 1001 });
    expect(await Campaign.count({ where: { tenantId: tenant.id } })).toBe(0);

    const id = await createCampaign(app, key, { audience: { segmentIds: big } });
    const edit = await app.call('patch', `/v1/campaigns/${id}`, key).send({ audience: { segmentIds: big, excludeListIds: [listId] } }).expect(422);
    expect(edit.body).toMatchObject({ code: 'AUDIENCE_TOO_COMPLEX', count: 1001 });
    expect((await Campaign.findOne({ where: { id } }))!.version).toBe(1);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, entityId: id, action: 'campaigns.campaign.updated' } })).toBe(0);
    await app.call('patch', `/v1/campaigns/${id}`, key).send({ audience: { segmentIds: big.slice(1), listIds: [listId] } }).expect(200);
  });

  it('checks again at send: segments grown past it since are 422 AUDIENCE_TOO_COMPLEX, nothing changed', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const { listId } = await seedList(app.sequelize, tenant.id, 2);
    const ids = await segments(key, 11, 90);
    const id = await createCampaign(app, key, { audience: { listIds: [listId], segmentIds: ids } });
    for (const s of ids.slice(0, 2)) await app.call('patch', `/v1/segments/${s}`, key).send({ rules: costlyRules(100) }).expect(200);
    const res = await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(422);
    expect(res.body).toMatchObject({ code: 'AUDIENCE_TOO_COMPLEX', count: 1011 });
    await unchanged(tenant.id, id);
  });
});

describe('the snapshot', () => {
  it('fails the campaign with SNAPSHOT_TIMEOUT when it takes longer than CAMPAIGN_SNAPSHOT_TIMEOUT_MS, sending nothing', async () => {
    const { key, tenant } = await buildCaller(['campaigns.*', 'audience.*']);
    const listId = await bulkList(tenant.id, 10_000);
    // Anyone is found at once (the check at send), but the snapshot tests 900 conditions on each of 10,000 rows
    // (about half a minute here without the timeout).
    const id = await createCampaign(app, key, { audience: { listIds: [listId], excludeSegmentIds: await segments(key, 9, 100) } });
    await app.call('post', `/v1/campaigns/${id}/send`, key).send({}).expect(202);
    const failed = await ended(key, id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'SNAPSHOT_TIMEOUT' }, stats: { audienceSize: null, sent: 0 } });
    expect(failed.error.message).toMatch(new RegExp(`^Snapshotting the audience took longer than ${SNAPSHOT_TIMEOUT_MS} ms`));
    expect(await CampaignRecipient.count({ where: { campaignId: id } })).toBe(0);
  });
});
