// Writes audit events: one shape for the API (inside its transaction) and for activities (by event key).
import { Transaction } from 'sequelize';
import { AuditEvent } from '../db';
import { AuditAction } from './audit-actions';

export interface Actor {
  type: 'user' | 'api_key' | 'system';
  id: string | null;
}

export interface AuditInput {
  tenantId: string;
  actor: Actor;
  action: AuditAction;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
  requestId?: string | null;
  workflowId?: string | null;
  /** Natural key: an activity retried after a crash writes its event once. */
  eventKey?: string;
}

export async function recordAudit(e: AuditInput, transaction?: Transaction): Promise<void> {
  const row = {
    tenantId: e.tenantId, actorType: e.actor.type, actorId: e.actor.id, action: e.action,
    entityType: e.entityType, entityId: e.entityId, before: e.before ?? null, after: e.after ?? null,
    requestId: e.requestId ?? null, workflowId: e.workflowId ?? null, eventKey: e.eventKey ?? null,
  };
  if (e.eventKey) await AuditEvent.bulkCreate([row], { ignoreDuplicates: true, transaction });
  else await AuditEvent.create(row, { transaction });
}
