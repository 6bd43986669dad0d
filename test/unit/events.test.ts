// The event catalogue and the payloads lib/events.ts builds from audit events: every type is in the contract, every
// payload (as each writer's audit event carries it) validates against its type's schema as GET /v1/event-types serves it.
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { randomUUID } from 'node:crypto';
import { loadContract } from '../../api/contract';
import { eventCatalogue, typesMatching } from '../../domains/events/catalogue';
import type { AuditInput } from '../../lib/audit';
import { eventOfAudit, EVENTS_FROM_AUDIT } from '../../lib/events';

const definition = loadContract().definition as { components: { schemas: { EventType: { enum: string[] } } } } & Record<string, unknown>;
const catalogue = eventCatalogue(definition);
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const validate = new Map(catalogue.map((t) => [t.type, ajv.compile(t.schema)]));

const system = { type: 'system' as const, id: null };
const user = { type: 'user' as const, id: randomUUID() };
const id = randomUUID();
const counts = { read: 3, valid: 2, rejected: 1, created: 2, updated: 0, unchanged: 0, skipped: 0 };
// Each mapped action's audit event as its writer writes it (activities/*, domains/purchasing/commands.ts).
const audits: Partial<Record<keyof typeof EVENTS_FROM_AUDIT, Partial<AuditInput>>> = {
  'approvals.flow.created': { actor: user, entityType: 'approval_flow', after: { type: 'created', status: 'pending' } },
  'approvals.flow.approved': { entityType: 'approval_flow', after: { type: 'approved', status: 'approved', comment: 'every stage approved' } },
  'approvals.flow.rejected': { entityType: 'approval_flow', after: { type: 'rejected', stage: 1, status: 'rejected', comment: 'too dear' } },
  'approvals.flow.expired': { entityType: 'approval_flow', after: { type: 'expired', status: 'expired' } },
  'approvals.flow.cancelled': { actor: user, entityType: 'approval_flow', after: { type: 'cancelled', status: 'cancelled', comment: 'not needed' } },
  'approvals.flow.escalated': { entityType: 'approval_flow', after: { type: 'escalated', stage: 0, status: 'pending' } },
  'purchasing.order.submitted': { actor: user, before: { state: 'draft' }, after: { state: 'pending_approval', approvalFlowId: randomUUID() } },
  'purchasing.order.state_changed': { before: { state: 'pending_approval' }, after: { state: 'rejected', approvalFlowId: randomUUID() } },
  'purchasing.order.ordered': { actor: user, before: { state: 'approved' }, after: { state: 'ordered' } },
  'documents.document.generated': { after: { fileId: randomUUID(), templateCode: 'invoice', templateVersion: 2 } },
  'documents.document.failed': { after: { error: 'Liquid error' } },
  'documents.batch.completed': { after: { done: 9, failed: 1 } },
  'imports.import.finished': { after: { counts } },
  'imports.import.failed': { after: { counts, error: { code: 'IMPORT_FILE_UNREADABLE', message: 'not a CSV' } } },
  'campaigns.campaign.finished': { after: { run: 1, audienceSize: 10, sent: 9, failed: 1, skipped: 0 } },
  'campaigns.campaign.failed': { after: { run: 2, audienceSize: null, sent: 0, failed: 0, skipped: 0, error: { code: 'SMTP_REFUSED', message: 'refused' } } },
};

it('serves exactly the contract\'s EventType values, each with a compiling schema', () => {
  expect(catalogue.map((t) => t.type).sort()).toEqual([...definition.components.schemas.EventType.enum].sort());
  expect(validate.size).toBe(catalogue.length);
});

it('builds, for every audit action that is an event, a payload its type\'s schema accepts', () => {
  expect(Object.keys(audits).sort()).toEqual(Object.keys(EVENTS_FROM_AUDIT).sort());
  for (const [action, a] of Object.entries(audits)) {
    const e = eventOfAudit({ tenantId: randomUUID(), actor: system, action: action as AuditInput['action'], entityType: 'x', entityId: id, eventKey: 'k', ...a })!;
    // Approval flows get their object merged in by the writer (persistFlow).
    const data = e.type.startsWith('approval.') ? { ...e.data, objectType: 'purchase_order', objectId: randomUUID() } : e.data;
    const check = validate.get(e.type)!;
    expect({ action, type: e.type, valid: check(data), errors: check.errors ?? null }).toEqual({ action, type: e.type, valid: true, errors: null });
    expect([e.subjectId, e.eventKey, catalogue.find((t) => t.type === e.type)!.subjectType]).toEqual([id, 'k', e.subjectType]);
  }
  expect(eventOfAudit({ tenantId: id, actor: system, action: 'files.file.uploaded', entityType: 'file', entityId: id })).toBeNull();
});

it('matches a type exactly or by a prefix.* up to a dot', () => {
  expect(typesMatching(catalogue, 'document.*')).toEqual(['document.ready', 'document.failed']);
  expect(typesMatching(catalogue, 'approval.flow.*')).toHaveLength(6);
  expect(typesMatching(catalogue, 'job.run.failed')).toEqual(['job.run.failed']);
  expect(typesMatching(catalogue, 'job.run')).toEqual([]);
});
