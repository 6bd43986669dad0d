// UUID helpers: one check for "is this a UUID", for ids that arrive as free text (an object id, a delivery recipient)
// before they reach a uuid column: there Postgres would refuse the whole query rather than match nothing.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string): boolean => UUID.test(s);

/** The smallest UUIDv7 of a millisecond: events are keyed by v7 ids, so `id >=` this is "written at or after". */
export function uuidV7Floor(ms: number): string {
  const h = Math.max(0, ms).toString(16).padStart(12, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-7000-8000-000000000000`;
}
