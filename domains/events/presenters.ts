// Domain event rows → the contract's Event.
import type { DomainEvent } from '../../db/models/events';
import type { Schemas } from '../schemas';

export function presentEvent(e: DomainEvent): Schemas['Event'] {
  return { id: e.id, type: e.type as Schemas['EventType'], occurredAt: e.occurredAt.toISOString(), subject: { type: e.subjectType, id: e.subjectId }, data: e.data };
}
