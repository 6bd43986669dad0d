// createWithAudit: the row and its audit event are written together or not at all, with the model's
// defaults and JSON columns exactly as Model.create() would store them.
import { randomUUID } from 'node:crypto';
import { AuditEvent, AuditExport, createSequelize } from '../../db';
import { createWithAudit } from '../../lib/audit';
import { buildTenant } from '../helpers/factories';

const sequelize = createSequelize(process.env.DATABASE_URL!);
afterAll(() => sequelize.close());

const actor = { type: 'user' as const, id: 'u-1' };

test('writes the row (defaults, timestamps, JSON) and its audit event', async () => {
  const tenant = await buildTenant();
  const id = randomUUID();
  const filters = { actions: ['files.file.uploaded'], entityId: 'x' };
  const created = await createWithAudit(AuditExport, { id, tenantId: tenant.id, status: 'queued', filters, workflowId: `w-${id}`, requestedBy: 'u-1' },
    { tenantId: tenant.id, actor, action: 'audit.export.requested', entityType: 'audit_export', entityId: id, after: { filters }, requestId: 'r-1' });
  expect(created).toBeInstanceOf(AuditExport);
  expect(created.id).toBe(id);
  const stored = await AuditExport.findByPk(id);
  expect(stored!.filters).toEqual(filters);
  expect(stored!.rowsWritten).toBe(0);
  expect(stored!.createdAt).toBeInstanceOf(Date);
  const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, entityId: id } });
  expect(events.map((e) => [e.action, e.actorId, e.requestId, e.after])).toEqual([['audit.export.requested', 'u-1', 'r-1', { filters }]]);
});

test('a failing audit insert leaves no row behind', async () => {
  const tenant = await buildTenant();
  const id = randomUUID();
  await expect(createWithAudit(AuditExport, { id, tenantId: tenant.id, status: 'queued', filters: {}, workflowId: `w-${id}`, requestedBy: null },
    // entity_id is NOT NULL: the second insert of the statement fails, so the first must not stick.
    { tenantId: tenant.id, actor, action: 'audit.export.requested', entityType: 'audit_export', entityId: null as unknown as string })).rejects.toThrow();
  expect(await AuditExport.findByPk(id)).toBeNull();
});
