// Domain events (the outbox) on the real stack: a change that commits writes exactly one event with the documented
// payload, one that rolls back writes none; every payload validates against its type's schema as GET /v1/event-types
// serves it; the list filters, pages, refuses bad input, never shows another tenant's events, and needs events.read.
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { randomUUID } from 'node:crypto';
import { AuditEvent, DomainEvent, Role, UserRole } from '../../db';
import { recordAudit } from '../../lib/audit';
import { recordEvents, type DomainEventInput } from '../../lib/events';
import { TestApp } from '../helpers/app';
import { Stack, startStack } from '../helpers/stack';
import { createDueSoon } from '../helpers/due';
import { buildApiKey, buildCaller, buildUser } from '../helpers/factories';
import type { WebhookReceiver } from '../helpers/webhook-receiver';
import { waitFor } from '../helpers/wait';

let stack: Stack;
let app: TestApp;
let hooks: WebhookReceiver;
beforeAll(async () => { ({ app, hooks } = stack = await startStack({ IMPORT_CHUNK_MS: '300' })); });
afterAll(() => stack.close());

interface Ev { id: string; type: string; occurredAt: string; subject: { type: string; id: string }; data: Record<string, unknown> }

/** Every event of the tenant, oldest first, read through the API (every page). */
async function eventsOf(key: string, query = ''): Promise<Ev[]> {
  const out: Ev[] = [];
  let cursor: string | null = null;
  do {
    const res: { body: { items: Ev[]; nextCursor: string | null } } = await app.call('get', `/v1/events?order=asc&limit=200${query}${cursor ? `&cursor=${cursor}` : ''}`, key).expect(200);
    out.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return out;
}

/** A validator per event type, from the schemas GET /v1/event-types serves. */
async function validators(key: string) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const items = (await app.call('get', '/v1/event-types', key).expect(200)).body.items as { type: string; schema: object }[];
  return new Map(items.map((t) => [t.type, ajv.compile(t.schema)]));
}

async function expectValidPayloads(key: string, events: Ev[]) {
  const v = await validators(key);
  for (const e of events) {
    const validate = v.get(e.type)!;
    expect({ type: e.type, valid: validate(e.data), errors: validate.errors ?? null }).toEqual({ type: e.type, valid: true, errors: null });
  }
}

/** An admin and an approver; orders need the approver's sign-off (one stage). */
async function shop() {
  const { tenant, key: admin } = await buildCaller(['*']);
  const buyerRole = await Role.create({ id: randomUUID(), tenantId: tenant.id, key: 'buyer', title: 'Buyer', permissions: ['purchasing.order.*', 'approvals.flow.read'] });
  const buyer = await buildUser(tenant, { name: 'Buyer' });
  await UserRole.create({ userId: buyer.id, roleId: buyerRole.id, tenantId: tenant.id });
  const approver = await buildUser(tenant, { name: 'Approver', permissions: ['approvals.flow.sign', 'approvals.flow.read'] });
  await app.call('post', '/v1/approval-templates', admin).send({
    name: 'Orders', objectType: 'purchase_order', stages: [{ name: 'Approver', approvers: { users: [approver.id] }, rule: 'any' }],
  }).expect(201);
  return { tenant, admin, buyer, buyerKey: await buildApiKey(buyer), approver, approverKey: await buildApiKey(approver) };
}

describe('events written with their change', () => {
  it('an order submitted and approved: one event per change, in order, with the documented payloads', async () => {
    const s = await shop();
    const po = (await app.call('post', '/v1/purchase-orders', s.buyerKey).send({
      number: `PO-${randomUUID().slice(0, 8)}`, supplier: 'Contoso', currency: 'EUR', lines: [{ description: 'Laptop', quantity: 1, unitPrice: 900 }],
    }).expect(201)).body;
    const flowId = (await app.call('post', `/v1/purchase-orders/${po.id}/submit`, s.buyerKey).expect(202)).body.approvalFlowId as string;
    await waitFor(async () => (await eventsOf(s.admin, '&type=approval.stage.opened')).length > 0, { what: 'stage opened' });
    await app.call('post', `/v1/approval-flows/${flowId}/sign`, s.approverKey).send({ decision: 'approve', comment: 'Fine' }).expect(200);
    const wanted = ['purchase_order.state_changed', 'approval.flow.created', 'approval.stage.opened', 'approval.flow.approved', 'purchase_order.state_changed'];
    const events = await waitFor(async () => {
      const all = (await eventsOf(s.admin)).filter((e) => e.type.startsWith('approval.') || e.type.startsWith('purchase_order.'));
      return all.length >= wanted.length && all;
    }, { what: 'the approval events' });
    expect(events.map((e) => e.type)).toEqual(wanted);
    const object = { objectType: 'purchase_order', objectId: po.id };
    expect(events.map((e) => [e.subject, e.data])).toEqual([
      [{ type: 'purchase_order', id: po.id }, { orderId: po.id, from: 'draft', to: 'pending_approval', approvalFlowId: flowId }],
      [{ type: 'approval_flow', id: flowId }, { flowId, status: 'pending', stage: null, actorId: s.buyer.id, comment: null, ...object }],
      [{ type: 'approval_flow', id: flowId }, { flowId, stage: 0, ...object }],
      [{ type: 'approval_flow', id: flowId }, { flowId, status: 'approved', stage: null, actorId: null, comment: 'every stage approved', ...object }],
      [{ type: 'purchase_order', id: po.id }, { orderId: po.id, from: 'pending_approval', to: 'approved', approvalFlowId: flowId }],
    ]);
    await expectValidPayloads(s.admin, events);
    // Exactly one of each, however often the activities behind them ran; the subject filter finds the flow's.
    expect((await eventsOf(s.admin, `&subjectId=${flowId}`)).map((e) => e.type)).toEqual(['approval.flow.created', 'approval.stage.opened', 'approval.flow.approved']);
    expect(await DomainEvent.count({ where: { tenantId: s.tenant.id } })).toBeGreaterThanOrEqual(wanted.length);
  });

  it('a document rendered: document.ready with its file, template code and version', async () => {
    const { key } = await buildCaller(['*']);
    const t = (await app.call('post', '/v1/document-templates', key).send({ code: `n-${randomUUID().slice(0, 8)}`, name: 'Note', parts: { base: '<p>{{ n }}</p>' } }).expect(201)).body;
    const doc = (await app.call('post', '/v1/documents', key).send({ templateCode: t.code, output: 'html', data: { n: 1 } }).expect(202)).body;
    const ready = await waitFor(async () => {
      const d = (await app.call('get', `/v1/documents/${doc.id}`, key).expect(200)).body;
      return d.status === 'ready' && d;
    }, { what: 'document ready' });
    const events = await eventsOf(key, '&type=document.*');
    expect(events.map((e) => [e.type, e.subject, e.data])).toEqual([
      ['document.ready', { type: 'document', id: doc.id }, { documentId: doc.id, fileId: ready.fileId, templateCode: t.code, templateVersion: 1 }],
    ]);
    await expectValidPayloads(key, events);
  });

  it('an import finished: import.finished with its counts', async () => {
    const { key } = await buildCaller(['*']);
    const fileId = (await app.call('post', '/v1/files', key).attach('file', Buffer.from('E-mail,Name\nada@x.com,Ada\nnot-an-address,Bob\n'), { filename: 'c.csv', contentType: 'text/csv' }).expect(201)).body.id;
    const run = (await app.call('post', '/v1/imports', key).send({ fileId, target: 'subscribers', columns: [{ source: 'E-mail', field: 'email' }, { source: 'Name', field: 'name' }] }).expect(202)).body;
    const events = await waitFor(async () => { const e = await eventsOf(key, '&type=import.*'); return e.length > 0 && e; }, { what: 'import event', timeoutMs: 60_000 });
    expect(events.map((e) => [e.type, e.subject, e.data])).toEqual([
      ['import.finished', { type: 'import', id: run.id }, { importId: run.id, counts: { read: 2, valid: 1, rejected: 1, created: 1, updated: 0, unchanged: 0, skipped: 0 }, error: null }],
    ]);
    await expectValidPayloads(key, events);
  });

  it('a job run that fails: job.run.failed with its error; one that succeeds: job.run.succeeded', async () => {
    const { key } = await buildCaller(['*']);
    const schedule = async (path: string) => (await app.call('post', '/v1/job-schedules', key).send({
      name: `call ${path}`, jobType: 'http', params: { url: `${hooks.url}${path}`, method: 'POST' }, cron: '0 3 * * *', timezone: 'UTC', retry: { maximumAttempts: 1, initialIntervalSeconds: 1 },
    }).expect(201)).body;
    hooks.respondWith(500, 500);
    const failing = await schedule('/fail');
    await app.call('post', `/v1/job-schedules/${failing.id}/run`, key).expect(202);
    const failed = await waitFor(async () => { const e = await eventsOf(key, '&type=job.run.*'); return e.length > 0 && e; }, { what: 'job event', timeoutMs: 60_000 });
    expect(failed.map((e) => [e.type, e.data.scheduleId, e.data.jobType])).toEqual([['job.run.failed', failing.id, 'http']]);
    expect(failed[0].data.error).toContain('HTTP 500');
    expect(failed[0].subject).toEqual({ type: 'job_run', id: failed[0].data.runId });
    hooks.respondWith(200, 200);
    const ok = await schedule('/ok');
    await app.call('post', `/v1/job-schedules/${ok.id}/run`, key).expect(202);
    const all = await waitFor(async () => { const e = await eventsOf(key, '&type=job.run.*'); return e.length > 1 && e; }, { what: 'second job event', timeoutMs: 60_000 });
    expect(all.map((e) => [e.type, e.data.scheduleId, e.data.error])).toEqual([['job.run.failed', failing.id, failed[0].data.error], ['job.run.succeeded', ok.id, null]]);
    await expectValidPayloads(key, all);
    for (const id of [failing.id, ok.id]) await app.call('delete', `/v1/job-schedules/${id}`, key).expect(204);
  }, 120_000);

  it('a reminder that fires: reminder.fired once, with its occurrence and trigger', async () => {
    const { key, user } = await buildCaller(['*']);
    const created = await createDueSoon((dueAt) => app.call('post', '/v1/reminders', key).send({
      subject: 'Renew the lease', message: 'Before Friday', channels: ['in_app'], recipients: { users: [user.id] }, dueAt,
    }), [2000, 5000, 10_000]);
    expect(created.status).toBe(201);
    const id = created.body.id;
    const fired = await waitFor(async () => { const e = await eventsOf(key, '&type=reminder.fired'); return e.length > 0 && e; }, { what: 'reminder.fired', timeoutMs: 60_000 });
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ subject: { type: 'reminder', id }, data: { reminderId: id, occurrence: created.body.dueAt, subject: 'Renew the lease', message: 'Before Friday', object: null } });
    expect(typeof fired[0].data.trigger).toBe('string');
    await expectValidPayloads(key, fired);
    // The reminder completes (its state written again): still one event.
    await waitFor(async () => (await app.call('get', `/v1/reminders/${id}`, key).expect(200)).body.status === 'completed', { what: 'completed' });
    expect(await eventsOf(key, '&type=reminder.fired')).toHaveLength(1);
  }, 90_000);

  it('a change that rolls back leaves neither its audit event nor its domain event', async () => {
    const { tenant } = await buildCaller(['*']);
    const audit = {
      tenantId: tenant.id, actor: { type: 'system' as const, id: null }, action: 'documents.batch.completed' as const, entityType: 'document_batch',
      entityId: randomUUID(), after: { done: 3, failed: 1 }, eventKey: `test:${randomUUID()}`,
    };
    await expect(app.sequelize.transaction(async (transaction) => {
      await recordAudit(audit, transaction);
      expect(await DomainEvent.count({ where: { tenantId: tenant.id }, transaction })).toBe(1);
      throw new Error('the change fails after its audit');
    })).rejects.toThrow('the change fails after its audit');
    expect(await DomainEvent.count({ where: { tenantId: tenant.id } })).toBe(0);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id } })).toBe(0);
    // Committed, it is there once, however often it is written (the audit event's key).
    for (let i = 0; i < 2; i++) await app.sequelize.transaction((transaction) => recordAudit(audit, transaction));
    const rows = await DomainEvent.findAll({ where: { tenantId: tenant.id } });
    expect(rows.map((r) => [r.type, r.subjectType, r.subjectId, r.data])).toEqual([['document_batch.finished', 'document_batch', audit.entityId, { batchId: audit.entityId, done: 3, failed: 1 }]]);
  });
});

describe('the catalogue', () => {
  it('lists every type of the issue with a description, a subject type and a compiling JSON Schema', async () => {
    const { key } = await buildCaller(['events.read']);
    const items = (await app.call('get', '/v1/event-types', key).expect(200)).body.items as { type: string; description: string; subjectType: string; schema: Record<string, unknown> }[];
    expect(items.map((t) => t.type).sort()).toEqual([
      'approval.flow.approved', 'approval.flow.cancelled', 'approval.flow.created', 'approval.flow.escalated', 'approval.flow.expired', 'approval.flow.rejected',
      'approval.stage.opened', 'campaign.failed', 'campaign.finished', 'document.failed', 'document.ready', 'document_batch.finished',
      'import.failed', 'import.finished', 'job.run.failed', 'job.run.long_running', 'job.run.succeeded', 'purchase_order.state_changed', 'reminder.fired',
    ]);
    const v = await validators(key);
    expect(v.size).toBe(items.length);
    // The served schema is plain JSON Schema: refs inlined, nullable as a null type; it refuses a wrong payload.
    const imp = items.find((t) => t.type === 'import.failed')!;
    expect(JSON.stringify(imp.schema)).not.toContain('$ref');
    expect(JSON.stringify(imp.schema)).not.toContain('nullable');
    expect(v.get('import.failed')!({ importId: randomUUID(), counts: { read: 1 }, error: null })).toBe(false);
    expect(v.get('document_batch.finished')!({ batchId: randomUUID(), done: 1, failed: 0 })).toBe(true);
  });
});

describe('listing events', () => {
  const at = (iso: string) => new Date(iso);
  async function seed(tenantId: string) {
    const ev = (type: DomainEventInput['type'], subjectId: string, occurredAt: Date): DomainEventInput => ({
      tenantId, type, subjectType: 'x', subjectId, data: { n: subjectId }, occurredAt,
    });
    // One by one, so ids (UUIDv7) follow the order written.
    for (const e of [
      ev('approval.flow.created', 'f1', at('2026-01-01T10:00:00Z')), ev('approval.stage.opened', 'f1', at('2026-01-01T10:00:01Z')),
      ev('approval.flow.approved', 'f1', at('2026-01-02T10:00:00Z')), ev('document.ready', 'd1', at('2026-01-03T10:00:00Z')),
      ev('document_batch.finished', 'b1', at('2026-01-04T10:00:00Z')),
    ]) await app.sequelize.transaction((transaction) => recordEvents([e], transaction));
  }

  it('filters by type, prefix wildcard, subject and time; newest first by default; pages with the cursor', async () => {
    const { key, tenant } = await buildCaller(['events.read']);
    await seed(tenant.id);
    const types = (r: { body: { items: Ev[] } }) => r.body.items.map((e) => e.type);
    expect(types(await app.call('get', '/v1/events', key).expect(200))).toEqual(['document_batch.finished', 'document.ready', 'approval.flow.approved', 'approval.stage.opened', 'approval.flow.created']);
    expect(types(await app.call('get', '/v1/events?type=approval.*&order=asc', key).expect(200))).toEqual(['approval.flow.created', 'approval.stage.opened', 'approval.flow.approved']);
    expect(types(await app.call('get', '/v1/events?type=approval.flow.*', key).expect(200))).toEqual(['approval.flow.approved', 'approval.flow.created']);
    // `document.*` is document.ready, not document_batch.finished.
    expect(types(await app.call('get', '/v1/events?type=document.*', key).expect(200))).toEqual(['document.ready']);
    expect(types(await app.call('get', '/v1/events?type=document_batch.finished', key).expect(200))).toEqual(['document_batch.finished']);
    expect(types(await app.call('get', '/v1/events?subjectId=f1&type=approval.stage.opened', key).expect(200))).toEqual(['approval.stage.opened']);
    expect(types(await app.call('get', '/v1/events?since=2026-01-02T10:00:00Z&until=2026-01-04T10:00:00Z', key).expect(200))).toEqual(['document.ready', 'approval.flow.approved']);
    const first = await app.call('get', '/v1/events?limit=2', key).expect(200);
    expect(types(first)).toEqual(['document_batch.finished', 'document.ready']);
    const second = await app.call('get', `/v1/events?limit=2&cursor=${first.body.nextCursor}`, key).expect(200);
    expect(types(second)).toEqual(['approval.flow.approved', 'approval.stage.opened']);
    const third = await app.call('get', `/v1/events?limit=2&cursor=${second.body.nextCursor}`, key).expect(200);
    expect([types(third), third.body.nextCursor]).toEqual([['approval.flow.created'], null]);
    expect(first.body.items[0]).toEqual({ id: expect.any(String), type: 'document_batch.finished', occurredAt: '2026-01-04T10:00:00.000Z', subject: { type: 'x', id: 'b1' }, data: { n: 'b1' } });
  });

  it('refuses a bad type pattern, an unknown type, a bad date, a bad cursor (400) and a reversed range (422)', async () => {
    const { key } = await buildCaller(['events.read']);
    for (const q of ['type=Approval.*', 'type=approval.*.flow', 'type=*', 'type=approval.flow.nope', 'type=nope.*', 'since=yesterday', 'until=2026-13-01', 'cursor=garbage', 'order=sideways', 'limit=0']) {
      const res = await app.call('get', `/v1/events?${q}`, key).expect(400);
      expect([q, res.body.code]).toEqual([q, 'VALIDATION_FAILED']);
    }
    expect((await app.call('get', '/v1/events?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', key).expect(422)).body.code).toBe('INVALID_RANGE');
  });

  it("never lists another tenant's events", async () => {
    const a = await buildCaller(['events.read']);
    const b = await buildCaller(['events.read']);
    await seed(b.tenant.id);
    expect((await app.call('get', '/v1/events', a.key).expect(200)).body.items).toEqual([]);
    expect((await app.call('get', '/v1/events?subjectId=f1', a.key).expect(200)).body.items).toEqual([]);
    expect((await app.call('get', '/v1/events', b.key).expect(200)).body.items).toHaveLength(5);
  });

  it('needs events.read (or a role granting it): others get 403', async () => {
    const cases: [string[], number][] = [[['events.read'], 200], [['events.*'], 200], [['*'], 200], [[], 403], [['audit.read'], 403], [['events.write'], 403]];
    for (const [permissions, status] of cases) {
      const { key } = await buildCaller(permissions);
      for (const path of ['/v1/events', '/v1/event-types']) {
        const res = await app.call('get', path, key);
        expect([permissions, path, res.status]).toEqual([permissions, path, status]);
        if (status === 403) expect(res.body.code).toBe('PERMISSION_DENIED');
      }
    }
    await app.call('get', '/v1/events').expect(401);
  });
});
