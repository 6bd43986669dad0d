// One send batch (domains/campaigns/sending.ts sendBatch) against real Postgres and the real send limiter, without a
// workflow: how much one lease may carry when the tenant's slots are taken, and who is skipped for unsubscribing
// while the batch waited for its grant.
import { QueryTypes } from 'sequelize';
import { Campaign, CampaignRecipient } from '../../db';
import { snapshotAudience } from '../../domains/campaigns/audience';
import { sendBatch, SendOptions } from '../../domains/campaigns/sending';
import { UnsubscribeLinks } from '../../domains/campaigns/unsubscribe';
import { createSendLimiter, SendLimiter } from '../../lib/send-limiter';
import { startTestApp, TestApp } from '../helpers/app';
import { createCampaign, seedList, setSendLimits } from '../helpers/campaigns';
import { buildCaller } from '../helpers/factories';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(() => app.close());

/** A campaign to a fresh list of `n`, its recipients snapshotted as a send's first activity does. */
async function campaignTo(n: number, limits: { maxPerMinute: number; maxConcurrent: number }) {
  const { key, tenant } = await buildCaller(['campaigns.*']);
  const { listId, emails } = await seedList(app.sequelize, tenant.id, n);
  await setSendLimits(app.sequelize, tenant.id, limits.maxPerMinute, limits.maxConcurrent);
  const id = await createCampaign(app, key, { audience: { listIds: [listId] } });
  await app.sequelize.transaction((t) => snapshotAudience(app.sequelize, tenant.id, id, { listIds: [listId], segmentIds: [], excludeListIds: [], excludeSegmentIds: [] }, t));
  return { campaign: (await Campaign.findOne({ where: { tenantId: tenant.id, id } }))!, emails };
}

function options(limiter: SendLimiter, sent: string[]): SendOptions {
  return {
    email: { send: async (m) => { sent.push(String(m.to)); return { messageId: `<${sent.length}@test>` }; }, close: async () => {} },
    links: new UnsubscribeLinks('x'.repeat(32), 'http://127.0.0.1:1'), limiter, batchSize: 500, concurrency: 10, maxWaitMs: 5_000,
  };
}

test('given one slot where it asked for ten, a batch sends at most 50 on that lease; the rest stay pending for the next', async () => {
  const { campaign } = await campaignTo(120, { maxPerMinute: 600_000, maxConcurrent: 1 });
  const sent: string[] = [];
  const first = await sendBatch(app.sequelize, campaign, { after: 0, until: null }, options(createSendLimiter(app.sequelize), sent));
  expect(first).toEqual({ last: 50, done: false });
  expect(sent).toHaveLength(50);
  expect(await CampaignRecipient.count({ where: { campaignId: campaign.id, status: 'pending' } })).toBe(70);

  const second = await sendBatch(app.sequelize, campaign, { after: first.last, until: null }, options(createSendLimiter(app.sequelize), sent));
  const third = await sendBatch(app.sequelize, campaign, { after: second.last, until: null }, options(createSendLimiter(app.sequelize), sent));
  expect([second, third]).toEqual([{ last: 100, done: false }, { last: 120, done: true }]);
  expect(new Set(sent).size).toBe(120);
});

test('a subscriber who unsubscribes while the batch waits for its grant is skipped, not mailed', async () => {
  const { campaign, emails } = await campaignTo(20, { maxPerMinute: 600_000, maxConcurrent: 500 });
  const real = createSendLimiter(app.sequelize);
  const gone = emails.slice(2, 5);
  // The limiter is slow to grant, and meanwhile three recipients unsubscribe (and one is erased).
  const slow: SendLimiter = {
    largestGrant: (tenantId) => real.largestGrant(tenantId),
    acquire: async (...args) => {
      await app.sequelize.query(`UPDATE subscribers SET status = 'unsubscribed' WHERE tenant_id = $1 AND email = ANY($2)`, { bind: [campaign.tenantId, gone.slice(0, 2)] });
      await app.sequelize.query(`UPDATE subscribers SET erased_at = now() WHERE tenant_id = $1 AND email = $2`, { bind: [campaign.tenantId, gone[2]] });
      return real.acquire(...args);
    },
  };
  const sent: string[] = [];
  expect(await sendBatch(app.sequelize, campaign, { after: 0, until: null }, options(slow, sent))).toEqual({ last: 20, done: true });
  expect(sent.sort()).toEqual(emails.filter((e) => !gone.includes(e)).sort());
  const skipped = await CampaignRecipient.findAll({ where: { campaignId: campaign.id, status: 'skipped' }, attributes: ['email'] });
  expect(skipped.map((r) => r.email).sort()).toEqual([...gone].sort());
  await campaign.reload();
  expect([campaign.sent, campaign.skipped]).toEqual([17, 3]);
});

test('a lease lost mid-batch sends no more under it; what it did not send stays pending for the next batch, nobody is mailed twice', async () => {
  const { campaign, emails } = await campaignTo(40, { maxPerMinute: 600_000, maxConcurrent: 2 });
  const real = createSendLimiter(app.sequelize);
  const lost = new AbortController();
  // The real lease, but its renewal "fails" after the fifth send: as a worker whose event loop stalled past the expiry.
  const losing: SendLimiter = { largestGrant: (tenantId) => real.largestGrant(tenantId), acquire: async (...args) => ({ ...(await real.acquire(...args)), lost: lost.signal }) };
  const sent: string[] = [];
  const o = options(losing, sent);
  const send = o.email.send;
  o.email = { ...o.email, send: async (m) => { const r = await send(m); if (sent.length >= 5) lost.abort(); return r; } };
  const first = await sendBatch(app.sequelize, campaign, { after: 0, until: null }, o);
  // At most the sends already in flight (two slots) finish after the loss.
  expect(sent.length).toBeGreaterThanOrEqual(5);
  expect(sent.length).toBeLessThanOrEqual(7);
  expect(first).toEqual({ last: 0, done: false });
  expect(await CampaignRecipient.count({ where: { campaignId: campaign.id, status: 'sent' } })).toBe(sent.length);
  expect(await CampaignRecipient.count({ where: { campaignId: campaign.id, status: 'pending' } })).toBe(40 - sent.length);

  const next = await sendBatch(app.sequelize, campaign, { after: first.last, until: null }, options(real, sent));
  expect(next).toEqual({ last: 40, done: true });
  expect(sent).toHaveLength(40);
  expect(new Set(sent)).toEqual(new Set(emails));
});

test('a batch that fails after its grant (the re-check query) releases its lease: none is left renewing itself', async () => {
  const { campaign } = await campaignTo(10, { maxPerMinute: 600_000, maxConcurrent: 5 });
  // The re-check of who is still subscribed fails (a connection reset); every other statement goes through.
  const failing = new Proxy(app.sequelize, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver);
      return (sql: string, opts: unknown) => (String(sql).startsWith('SELECT id FROM subscribers') ? Promise.reject(new Error('connection reset')) : target.query(sql, opts as never));
    },
  });
  const sent: string[] = [];
  await expect(sendBatch(failing, campaign, { after: 0, until: null }, options(createSendLimiter(app.sequelize), sent))).rejects.toThrow('connection reset');
  const [{ leases }] = await app.sequelize.query<{ leases: number }>('SELECT count(*)::int AS leases FROM send_leases WHERE tenant_id = $1', { bind: [campaign.tenantId], type: QueryTypes.SELECT });
  expect(leases).toBe(0);
  expect(sent).toHaveLength(0);
  expect(await CampaignRecipient.count({ where: { campaignId: campaign.id, status: 'pending' } })).toBe(10);
});

test('a batch renders and asks for no more than the tenant\'s pace can grant at once: 11 at 600 a minute, then 1 at 30 a minute', async () => {
  const { campaign } = await campaignTo(40, { maxPerMinute: 600, maxConcurrent: 10 });
  const real = createSendLimiter(app.sequelize);
  const asked: number[] = [];
  const counting: SendLimiter = { largestGrant: (tenantId) => real.largestGrant(tenantId), acquire: async (tenantId, wanted, opts) => { asked.push(wanted); return real.acquire(tenantId, wanted, opts); } };
  const sent: string[] = [];
  const first = await sendBatch(app.sequelize, campaign, { after: 0, until: null }, options(counting, sent));
  // One second's worth and the one the pace allows on top (docket_send_acquire); not the 40 pending.
  expect(asked).toEqual([11]);
  expect(first).toEqual({ last: 11, done: false });
  expect(sent).toHaveLength(11);
  await setSendLimits(app.sequelize, campaign.tenantId, 30, 10);
  expect(await real.largestGrant(campaign.tenantId)).toBe(1);
});
