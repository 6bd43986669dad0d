// Date-times Docket accepts from callers: RFC 3339 instants that both Postgres and JavaScript can hold.
import { fullFormats } from 'ajv-formats/dist/formats';

/** The earliest and latest instants accepted as `format: date-time`: years 0001–9999 in UTC. */
export const DATE_TIME_RANGE = { min: Date.parse('0001-01-01T00:00:00Z'), max: Date.parse('9999-12-31T23:59:59.999Z') };

const rfc3339 = fullFormats['date-time'] as { validate: (s: string) => boolean };

/**
 * `format: date-time` as Docket accepts it: RFC 3339 (what ajv-formats checks), an instant JavaScript
 * can parse (no leap second `:60`), and within years 0001–9999 UTC — Postgres has no year 0, and
 * `0000-01-01` or an offset that moves `0001-01-01` back into year 0 would otherwise reach it and fail.
 */
export function isDateTime(s: string): boolean {
  if (!rfc3339.validate(s)) return false;
  const t = Date.parse(s);
  return Number.isFinite(t) && t >= DATE_TIME_RANGE.min && t <= DATE_TIME_RANGE.max;
}
