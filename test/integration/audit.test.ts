// The audit log: filters, the action catalogue, and exports as real workflows, end to end.
import { parse } from 'csv-parse/sync';
import { randomUUID } from 'node:crypto';
import { AuditEvent, AuditExport } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { waitFor } from '../helpers/wait';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorker({ exportPageSize: 7 });
});
afterAll(() => app.close());

async function seedEvents(tenantId: string, n: number, action: 'files.file.uploaded' | 'files.file.deleted' = 'files.file.uploaded', at?: Date) {
  await AuditEvent.bulkCreate(Array.from({ length: n }, (_, i) => ({
    tenantId, actorType: 'user' as const, actorId: `user-${i % 3}`, action, entityType: 'file', entityId: `f-${i}`,
    before: null, after: { i }, requestId: null, workflowId: null, eventKey: null, ...(at ? { createdAt: at } : {}),
  })));
}

describe('listing the audit log', () => {
  it('filters by action, actor, entity and time range, newest first, paged', async () => {
    const { key, tenant } = await buildCaller(['audit.read']);
    await seedEvents(tenant.id, 5, 'files.file.uploaded', new Date('2026-01-01T10:00:00Z'));
    await seedEvents(tenant.id, 4, 'files.file.deleted', new Date('2026-02-01T10:00:00Z'));
    const deleted = await app.call('get', '/v1/audit-events?action=files.file.deleted&limit=3', key).expect(200);
    expect(deleted.body.items).toHaveLength(3);
    expect(deleted.body.items.every((e: { action: string }) => e.action === 'files.file.deleted')).toBe(true);
    const rest = await app.call('get', `/v1/audit-events?action=files.file.deleted&limit=3&cursor=${deleted.body.nextCursor}`, key).expect(200);
    expect(rest.body.items).toHaveLength(1);
    expect(Number(deleted.body.items[0].id)).toBeGreaterThan(Number(rest.body.items[0].id));
    const january = await app.call('get', '/v1/audit-events?from=2026-01-01T00:00:00Z&to=2026-01-31T00:00:00Z', key).expect(200);
    expect(january.body.items).toHaveLength(5);
    const byActor = await app.call('get', '/v1/audit-events?actorId=user-0&entityType=file', key).expect(200);
    expect(byActor.body.items.every((e: { actorId: string }) => e.actorId === 'user-0')).toBe(true);
    const one = await app.call('get', '/v1/audit-events?entityType=file&entityId=f-2', key).expect(200);
    expect(one.body.items).toHaveLength(2);
  });

  it('refuses a reversed time range with 422 and a malformed date with 400', async () => {
    const { key } = await buildCaller(['audit.read']);
    expect((await app.call('get', '/v1/audit-events?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', key).expect(422)).body.code).toBe('INVALID_RANGE');
    await app.call('get', '/v1/audit-events?from=yesterday', key).expect(400);
  });

  it('never shows another tenant\'s events', async () => {
    const a = await buildCaller(['audit.read']);
    const b = await buildCaller(['audit.read']);
    await seedEvents(a.tenant.id, 2, 'files.file.deleted');
    await seedEvents(b.tenant.id, 3);
    // A sees exactly its own events, with any filter; B's are never among them.
    const mine = (await app.call('get', '/v1/audit-events', a.key).expect(200)).body.items;
    expect(mine.map((e: { action: string; entityId: string }) => `${e.action} ${e.entityId}`).sort()).toEqual(['files.file.deleted f-0', 'files.file.deleted f-1']);
    expect((await app.call('get', '/v1/audit-events?action=files.file.uploaded', a.key).expect(200)).body.items).toEqual([]);
    expect((await app.call('get', '/v1/audit-events?entityType=file&entityId=f-2', a.key).expect(200)).body.items).toEqual([]);
    expect((await app.call('get', '/v1/audit-events', b.key).expect(200)).body.items).toHaveLength(3);
  });

  it('lists every action that can appear', async () => {
    const { key } = await buildCaller(['audit.read']);
    const res = await app.call('get', '/v1/audit-events/actions', key).expect(200);
    expect(res.body.items.map((a: { action: string }) => a.action)).toEqual(expect.arrayContaining(['identity.role.updated', 'audit.export.completed']));
  });
});

describe('exporting the audit log', () => {
  it('runs the export as a workflow: progress, a CSV in the file store, findable in Temporal by tenant and status', async () => {
    const { key, tenant } = await buildCaller(['audit.*', 'files.read']);
    await seedEvents(tenant.id, 30);
    const started = await app.call('post', '/v1/audit-exports', key).send({ action: 'files.file.uploaded' }).expect(202);
    expect(started.headers.location).toBe(`/v1/audit-exports/${started.body.id}`);
    expect(started.body.status).toBe('queued');
    const done = await waitFor(async () => {
      const res = await app.call('get', started.headers.location, key).expect(200);
      return res.body.status === 'ready' && res.body;
    }, { what: 'export ready' });
    expect(done).toMatchObject({ totalRows: 30, rowsWritten: 30, progress: 1 });
    const csv = await app.call('get', done.downloadUrl, key).expect(200).expect('Content-Type', /text\/csv/);
    const rows = parse(csv.text, { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(30);
    expect(new Set(rows.map((r) => r.id)).size).toBe(30);
    expect(rows.every((r) => r.action === 'files.file.uploaded')).toBe(true);
    // The CSV is an ordinary file of the tenant too.
    await app.call('get', `/v1/files/${done.fileId}`, key).expect(200);
    // Operators find it in Temporal by the search attributes.
    const found = await waitFor(async () => {
      const ids: string[] = [];
      for await (const wf of app.client.workflow.list({ query: `TenantId="${tenant.id}" AND EntityType="audit_export" AND \`Status\`="ready"` })) ids.push(wf.workflowId);
      return ids.length > 0 && ids;
    }, { what: 'workflow in visibility' });
    expect(found).toEqual([done.workflowId]);
    expect(done.workflowId).toBe(`audit-export:${tenant.id}:${done.id}`);
    const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, entityId: done.id } });
    expect(events.map((e) => e.action).sort()).toEqual(['audit.export.completed', 'audit.export.requested']);
  });

  it('answers 409 EXPORT_NOT_READY for the download of an unfinished export', async () => {
    const { key, tenant } = await buildCaller(['audit.*']);
    // An export still running (its row as the workflow leaves it mid-way).
    const running = await AuditExport.create({ id: randomUUID(), tenantId: tenant.id, status: 'running', filters: {}, workflowId: 'audit-export:test', requestedBy: null });
    const res = await app.call('get', `/v1/audit-exports/${running.id}/download`, key).expect(409);
    expect(res.body.code).toBe('EXPORT_NOT_READY');
    expect((await app.call('get', `/v1/audit-exports/${running.id}`, key).expect(200)).body).toMatchObject({ status: 'running', downloadUrl: null });
  });

  it('with an Idempotency-Key: the same request returns the same export, a different one is refused', async () => {
    const { key, tenant } = await buildCaller(['audit.*']);
    await seedEvents(tenant.id, 2);
    const first = await app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', 'exp-1').send({ action: 'files.file.uploaded' }).expect(202);
    const again = await app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', 'exp-1').send({ action: 'files.file.uploaded' }).expect(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const other = await app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', 'exp-1').send({ action: 'files.file.deleted' }).expect(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const exports = await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audit.export.requested' } });
    expect(exports).toBe(1);
  });

  it('refuses bad filters, a missing permission and another tenant\'s export', async () => {
    const a = await buildCaller(['audit.*']);
    const reader = await buildCaller(['audit.read']);
    await app.call('post', '/v1/audit-exports', a.key).send({ colour: 'red' }).expect(400);
    expect((await app.call('post', '/v1/audit-exports', a.key).send({ from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }).expect(422)).body.code).toBe('INVALID_RANGE');
    expect((await app.call('post', '/v1/audit-exports', reader.key).send({}).expect(403)).body.permission).toBe('audit.export');
    const started = await app.call('post', '/v1/audit-exports', a.key).send({}).expect(202);
    await app.call('get', `/v1/audit-exports/${started.body.id}`, reader.key).expect(404);
    await app.call('get', `/v1/audit-exports/${started.body.id}/download`, reader.key).expect(404);
  });
});
