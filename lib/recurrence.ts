// Recurrence (RFC 5545 RRULE) in a time zone, DST-correct: the rule is expanded on wall-clock
// ("floating") times, and each wall-clock time is then placed in the zone, so a weekly 09:00 stays
// 09:00 local across a DST change while its UTC instant moves by the offset change.
import { DateTime, IANAZone } from 'luxon';
import { RRule } from 'rrule';

export interface Recurrence {
  /** RRULE body without DTSTART, e.g. `FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0`. */
  rrule: string;
  /** IANA zone the rule's wall-clock times are in, e.g. `Europe/Berlin`. */
  timezone: string;
  /** First possible occurrence (an instant); its local time supplies missing BYHOUR/BYMINUTE/BYSECOND. */
  start: string;
}

export class RecurrenceError extends Error {}

// RRule frequencies run YEARLY=0 … SECONDLY=6. Occurrences are counted in a loop on the caller's side; a pathological rule must not spin forever.
const MAX_SCAN = 100_000;

function floating(dt: DateTime): Date {
  return new Date(Date.UTC(dt.year, dt.month - 1, dt.day, dt.hour, dt.minute, dt.second));
}

/** A wall-clock time (carried in a Date's UTC fields) placed in the zone; a time skipped by DST moves forward. */
function placeInZone(wall: Date, zone: string): Date {
  const dt = DateTime.fromObject({
    year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate(),
    hour: wall.getUTCHours(), minute: wall.getUTCMinutes(), second: wall.getUTCSeconds(),
  }, { zone });
  return dt.toJSDate();
}

// rrule's parser accepts out-of-range and non-numeric values silently; they are refused here instead.
const RANGES: Record<string, [string, number, number]> = {
  interval: ['INTERVAL', 1, 10_000], count: ['COUNT', 1, 100_000], byhour: ['BYHOUR', 0, 23], byminute: ['BYMINUTE', 0, 59],
  bysecond: ['BYSECOND', 0, 59], bymonth: ['BYMONTH', 1, 12], bymonthday: ['BYMONTHDAY', -31, 31], byyearday: ['BYYEARDAY', -366, 366],
  byweekno: ['BYWEEKNO', -53, 53], bysetpos: ['BYSETPOS', -366, 366],
};

function checkRanges(options: Record<string, unknown>): void {
  for (const [key, [name, min, max]] of Object.entries(RANGES)) {
    const value = options[key];
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (!Number.isInteger(v) || v < min || v > max || (v === 0 && min < 0)) throw new RecurrenceError(`rrule: ${name} must be whole numbers from ${min} to ${max}`);
    }
  }
  const weekdays = options.byweekday;
  if (weekdays !== undefined && weekdays !== null && (Array.isArray(weekdays) ? weekdays : [weekdays]).some((d) => d === null || d === undefined)) {
    throw new RecurrenceError('rrule: BYDAY must name days as MO, TU, WE, TH, FR, SA, SU (optionally with a number, e.g. 1MO)');
  }
}

export function parseRecurrence(r: Recurrence): RRule {
  if (!IANAZone.isValidZone(r.timezone)) throw new RecurrenceError(`timezone: "${r.timezone}" is not an IANA time zone`);
  const start = DateTime.fromISO(r.start, { zone: r.timezone });
  if (!start.isValid) throw new RecurrenceError(`start: "${r.start}" is not an ISO date-time`);
  if (/(^|;)\s*(DTSTART|TZID)\b/i.test(r.rrule)) throw new RecurrenceError('rrule: give the start and timezone as fields, not DTSTART/TZID in the rule');
  let options;
  try {
    options = RRule.parseString(r.rrule.replace(/^RRULE:/i, ''));
  } catch (err) {
    throw new RecurrenceError(`rrule: ${(err as Error).message}`);
  }
  if (options.freq === undefined) throw new RecurrenceError('rrule: FREQ is required');
  checkRanges(options as unknown as Record<string, unknown>);
  if (options.freq > RRule.MINUTELY) throw new RecurrenceError('rrule: FREQ must be MINUTELY or slower');
  try {
    return new RRule({ ...options, dtstart: floating(start), tzid: null });
  } catch (err) {
    throw new RecurrenceError(`rrule: ${(err as Error).message}`);
  }
}

/** Up to `count` occurrence instants strictly after `after`, in order. */
export function occurrencesAfter(r: Recurrence, after: Date, count: number): Date[] {
  const rule = parseRecurrence(r);
  const out: Date[] = [];
  // Start the wall-clock search a day early: the zone's offset is at most ±14 h.
  let cursor = new Date(floating(DateTime.fromJSDate(after, { zone: r.timezone })).getTime() - 86_400_000);
  let scanned = 0;
  while (out.length < count && scanned < MAX_SCAN) {
    const wall = rule.after(cursor, false);
    if (!wall) break;
    scanned++;
    cursor = wall;
    const instant = placeInZone(wall, r.timezone);
    if (instant.getTime() > after.getTime() && (!out.length || instant.getTime() > out[out.length - 1].getTime())) out.push(instant);
  }
  return out;
}

/** The first occurrence strictly after `after`, or null when the rule has ended. */
export function nextOccurrence(r: Recurrence, after: Date): Date | null {
  return occurrencesAfter(r, after, 1)[0] ?? null;
}
