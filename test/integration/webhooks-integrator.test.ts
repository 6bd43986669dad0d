// #17's "done when", end to end through the API, Postgres, Temporal and a real receiver: an integrator subscribes to
// approval.*, receives signed events for a purchase order's approval, rotates the secret without a gap (every request
// of the overlap verifies with the old secret and with the new one), and replays yesterday's events.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { buildProcurementTenant, createApprovalTemplate, submitOrder } from '../helpers/approvals';
import { TestApp } from '../helpers/app';
import { FAST_WEBHOOKS, Stack, startStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';
import type { ReceivedWebhook, WebhookReceiver } from '../helpers/webhook-receiver';

let stack: Stack;
let app: TestApp;
let hooks: WebhookReceiver;
beforeAll(async () => { ({ app, hooks } = stack = await startStack(FAST_WEBHOOKS)); });
afterAll(() => stack.close());

const headersOf = (h: ReceivedWebhook) => ({ 'webhook-id': String(h.headers['webhook-id']), 'webhook-timestamp': String(h.headers['webhook-timestamp']), 'webhook-signature': String(h.headers['webhook-signature']) });
interface Payload { type: string; timestamp: string; data: { flowId: string } }

it('subscribes to approval.*, gets a purchase order\'s approval signed, rotates without a gap, replays yesterday', async () => {
  const t = await buildProcurementTenant();
  await createApprovalTemplate(app, t.adminKey);
  const path = `/erp-${randomUUID().slice(0, 8)}`;
  const endpoint = (await app.call('post', '/v1/webhook-endpoints', t.adminKey).send({ url: `${hooks.url}${path}`, eventTypes: ['approval.*'], description: 'ERP' }).expect(201)).body;
  const before = new Webhook(endpoint.secret);
  const mine = () => hooks.received.filter((h) => h.path === path);
  const ofFlow = (flowId: string) => mine().filter((h) => (JSON.parse(h.body) as Payload).data.flowId === flowId);

  // A purchase order approved through both stages: every approval.* event arrives, signed; nothing else does.
  const first = await submitOrder(app, t);
  await app.call('post', `/v1/approval-flows/${first.flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(200);
  await app.call('post', `/v1/approval-flows/${first.flowId}/sign`, t.fin[1].key).send({ decision: 'approve' }).expect(200);
  await app.call('post', `/v1/approval-flows/${first.flowId}/sign`, t.chief.key).send({ decision: 'approve' }).expect(200);
  await hooks.waitFor((h) => h.path === path && (JSON.parse(h.body) as Payload).type === 'approval.flow.approved', 30_000);
  const firstPosts = await waitFor(async () => { const p = ofFlow(first.flowId); return p.length >= 4 && p; }, { what: 'the first flow\'s events' });
  const firstEvents = firstPosts.map((h) => before.verify(h.body, headersOf(h)) as Payload);
  expect(firstEvents.map((e) => e.type).sort()).toEqual(['approval.flow.approved', 'approval.flow.created', 'approval.stage.opened', 'approval.stage.opened']);
  expect(mine().every((h) => (JSON.parse(h.body) as Payload).type.startsWith('approval.'))).toBe(true);
  const firstIds = firstPosts.map((h) => String(h.headers['webhook-id']));
  expect(new Set(firstIds).size).toBe(4);

  // Rotation with a day's overlap: the next flow's events verify with the old secret and with the new one.
  const rotated = (await app.call('post', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, t.adminKey).send({ overlapHours: 24 }).expect(200)).body;
  expect(rotated.secret).not.toBe(endpoint.secret);
  const after = new Webhook(rotated.secret);
  const second = await submitOrder(app, t);
  await app.call('post', `/v1/approval-flows/${second.flowId}/decide`, t.adminKey).send({ decision: 'approve', reason: 'Urgent' }).expect(200);
  const secondPosts = await waitFor(async () => {
    const p = ofFlow(second.flowId);
    return p.some((h) => (JSON.parse(h.body) as Payload).type === 'approval.flow.approved') && p;
  }, { what: 'the second flow approved', timeoutMs: 30_000 });
  for (const h of secondPosts) {
    expect(before.verify(h.body, headersOf(h))).toEqual(after.verify(h.body, headersOf(h)));
  }

  // Yesterday's events (the first flow's, moved back a day) replayed: delivered again, same webhook-ids, signed now.
  await app.sequelize.query("UPDATE events SET occurred_at = occurred_at - interval '1 day' WHERE tenant_id = $1 AND subject_id = $2", { bind: [t.tenant.id, first.flowId] });
  const startOfYesterday = new Date(Date.now() - 36 * 3_600_000).toISOString();
  const endOfYesterday = new Date(Date.now() - 12 * 3_600_000).toISOString();
  const replay = await app.call('post', `/v1/webhook-endpoints/${endpoint.id}/replay`, t.adminKey).send({ since: startOfYesterday, until: endOfYesterday }).expect(202);
  expect(replay.body).toEqual({ deliveries: 4 });
  const again = await waitFor(async () => { const p = ofFlow(first.flowId); return p.length === 8 && p.slice(4); }, { what: 'the replayed events', timeoutMs: 30_000 });
  expect(again.map((h) => String(h.headers['webhook-id'])).sort()).toEqual([...firstIds].sort());
  for (const h of again) expect(after.verify(h.body, headersOf(h))).toMatchObject({ data: { flowId: first.flowId } });
});
