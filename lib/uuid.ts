// One check for "is this a UUID", for ids that arrive as free text (an object id, a delivery recipient)
// before they reach a uuid column: there Postgres would refuse the whole query rather than match nothing.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string): boolean => UUID.test(s);
