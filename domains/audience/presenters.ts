// Subscribers and lists as the API answers them.
import type { Subscriber, SubscriberList } from '../../db/models/audience';
import type { Schemas } from '../schemas';
import { memberCountOf } from './commands';

export const presentSubscriber = (s: Subscriber): Schemas['Subscriber'] => ({
  id: s.id, email: s.email, name: s.name, status: s.status, attributes: s.attributes as Schemas['Subscriber']['attributes'], importId: s.importId,
  erasedAt: s.erasedAt ? s.erasedAt.toISOString() : null, createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString(),
});

export const presentList = (l: SubscriberList): Schemas['SubscriberList'] => ({
  id: l.id, name: l.name, description: l.description, memberCount: memberCountOf(l), createdAt: l.createdAt.toISOString(), updatedAt: l.updatedAt.toISOString(),
});
