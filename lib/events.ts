// Domain events (the outbox): which audit actions are events an integrator is told of, their payloads, and the
// writers that put them in the transaction (or the statement) of the change they report.
import { QueryTypes, Transaction } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { DomainEvent } from '../db/models/events';
import type { AuditAction } from './audit-actions';
import type { AuditInput } from './audit';

/**
 * An event type of the contract's catalogue (openapi.yaml `EventType`, `x-event-types`; lib/ does not import the
 * generated types: test/unit/events.test.ts checks every type and payload built here against the contract).
 */
export type EventType = string;

/** An event to write: its type, what it is about and its payload (`data`, of the type's schema in openapi.yaml). */
export interface DomainEventInput {
  tenantId: string;
  type: EventType;
  subjectType: string;
  subjectId: string;
  data: object;
  /** Natural key of the change: a retried writer writes the event once. */
  eventKey?: string | null;
  occurredAt?: Date;
}

type After = Record<string, unknown>;
const obj = (v: unknown): After => (v && typeof v === 'object' ? v as After : {});
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const errorOf = (v: unknown) => { const e = obj(v); return typeof e.code === 'string' ? { code: e.code, message: String(e.message ?? '') } : null; };

interface FromAudit<T> {
  type: EventType;
  subjectType: string;
  data: (a: AuditInput) => T;
}
const fromAudit = <T>(type: EventType, subjectType: string, data: (a: AuditInput) => T): FromAudit<T> => ({ type, subjectType, data });

/**
 * Approval flows: the subject's object (objectType, objectId) is merged in by the writer from the flow's row
 * (activities/approvals.ts persistFlow), which the audit event does not carry.
 */
const flow = (type: EventType) => fromAudit(type, 'approval_flow', (a) => {
  const after = obj(a.after);
  return {
    flowId: a.entityId, status: after.status, stage: int(after.stage),
    actorId: a.actor.type === 'user' ? a.actor.id : null, comment: str(after.comment),
  };
});
const order = fromAudit('purchase_order.state_changed', 'purchase_order', (a) => ({
  orderId: a.entityId, from: obj(a.before).state,
  to: obj(a.after).state, approvalFlowId: str(obj(a.after).approvalFlowId),
}));
const importEnd = (type: EventType) => fromAudit(type, 'import', (a) => {
  const after = obj(a.after);
  return { importId: a.entityId, counts: after.counts, error: errorOf(after.error) };
});
const campaignEnd = (type: EventType) => fromAudit(type, 'campaign', (a) => {
  const after = obj(a.after);
  return {
    campaignId: a.entityId, run: int(after.run) ?? 0, audienceSize: int(after.audienceSize), sent: int(after.sent) ?? 0,
    failed: int(after.failed) ?? 0, skipped: int(after.skipped) ?? 0, error: errorOf(after.error),
  };
});

/** The audit actions that are also domain events: the event's type, subject and payload, built from the audit event. */
export const EVENTS_FROM_AUDIT: Partial<Record<AuditAction, FromAudit<object>>> = {
  'approvals.flow.created': flow('approval.flow.created'),
  'approvals.flow.approved': flow('approval.flow.approved'),
  'approvals.flow.rejected': flow('approval.flow.rejected'),
  'approvals.flow.expired': flow('approval.flow.expired'),
  'approvals.flow.cancelled': flow('approval.flow.cancelled'),
  'approvals.flow.escalated': flow('approval.flow.escalated'),
  'purchasing.order.submitted': order,
  'purchasing.order.state_changed': order,
  'purchasing.order.ordered': order,
  'documents.document.generated': fromAudit('document.ready', 'document', (a) => {
    const after = obj(a.after);
    return { documentId: a.entityId, fileId: String(after.fileId), templateCode: String(after.templateCode), templateVersion: Number(after.templateVersion) };
  }),
  'documents.document.failed': fromAudit('document.failed', 'document', (a) => ({
    documentId: a.entityId, error: String(obj(a.after).error ?? ''),
  })),
  'documents.batch.completed': fromAudit('document_batch.finished', 'document_batch', (a) => ({
    batchId: a.entityId, done: int(obj(a.after).done) ?? 0, failed: int(obj(a.after).failed) ?? 0,
  })),
  'imports.import.finished': importEnd('import.finished'),
  'imports.import.failed': importEnd('import.failed'),
  'campaigns.campaign.finished': campaignEnd('campaign.finished'),
  'campaigns.campaign.failed': campaignEnd('campaign.failed'),
};

/** The domain event an audit event is, if its action is one (keyed by the audit event's key). */
export function eventOfAudit(a: AuditInput): DomainEventInput | null {
  const spec = EVENTS_FROM_AUDIT[a.action];
  if (!spec) return null;
  return { tenantId: a.tenantId, type: spec.type, subjectType: spec.subjectType, subjectId: a.entityId, data: spec.data(a), eventKey: a.eventKey ?? null };
}

export const eventsOfAudits = (audits: AuditInput[]): DomainEventInput[] => audits.flatMap((a) => eventOfAudit(a) ?? []);

/** The rows as one jsonb parameter (jsonb_to_recordset): one placeholder however many events. */
function rowsParam(events: DomainEventInput[], at: Date): string {
  return JSON.stringify(events.map((e) => ({
    tenant_id: e.tenantId, id: uuidv7(), type: e.type, occurred_at: (e.occurredAt ?? at).toISOString(), subject_type: e.subjectType,
    subject_id: e.subjectId, data: e.data, event_key: e.eventKey ?? null,
  })));
}

/**
 * The INSERT of `events` (keyed ones once: ON CONFLICT DO NOTHING), its parameter appended to `bind`: a statement
 * of its own or a part of a data-modifying CTE written with the change. `mergeData`, an SQL jsonb expression,
 * is merged into each event's data (what the writer's statement knows and the event input does not).
 */
export function eventInsertSql(events: DomainEventInput[], bind: unknown[], opts: { at?: Date; mergeData?: string } = {}): string {
  bind.push(rowsParam(events, opts.at ?? new Date()));
  return `INSERT INTO events (tenant_id, id, type, occurred_at, subject_type, subject_id, data, event_key)
    SELECT v.tenant_id, v.id, v.type, v.occurred_at, v.subject_type, v.subject_id, v.data${opts.mergeData ? ` || ${opts.mergeData}` : ''}, v.event_key
    FROM jsonb_to_recordset($${bind.length}::jsonb) AS v(tenant_id uuid, id uuid, type text, occurred_at timestamptz, subject_type text, subject_id text, data jsonb, event_key text)
    ON CONFLICT DO NOTHING`;
}

/** Writes events in `transaction`, the one that writes the change they report (see recordAudit). */
export async function recordEvents(events: DomainEventInput[], transaction: Transaction): Promise<void> {
  if (!events.length) return;
  const bind: unknown[] = [];
  await DomainEvent.sequelize!.query(eventInsertSql(events, bind), { bind, transaction, type: QueryTypes.INSERT });
}
