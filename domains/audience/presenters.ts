// Subscribers, lists and segments as the API answers them.
import type { Segment, Subscriber, SubscriberList } from '../../db/models/audience';
import type { Schemas } from '../schemas';
import { memberCountOf } from './commands';

export const presentSubscriber = (s: Subscriber): Schemas['Subscriber'] => ({
  id: s.id, email: s.email, name: s.name, status: s.status, attributes: s.attributes as Schemas['Subscriber']['attributes'], importId: s.importId,
  erasedAt: s.erasedAt ? s.erasedAt.toISOString() : null, createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString(),
});

export const presentList = (l: SubscriberList): Schemas['SubscriberList'] => ({
  id: l.id, name: l.name, description: l.description, memberCount: memberCountOf(l), createdAt: l.createdAt.toISOString(), updatedAt: l.updatedAt.toISOString(),
});

export const presentSegment = (s: Segment): Schemas['Segment'] => ({
  id: s.id, name: s.name, description: s.description, rules: s.rules as Schemas['Segment']['rules'], version: s.version, createdBy: s.createdBy,
  createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString(),
});

export const presentSegmentPreview = (p: { count: number; sample: Subscriber[] }): Schemas['SegmentPreview'] => ({ count: p.count, sample: p.sample.map(presentSubscriber) });
