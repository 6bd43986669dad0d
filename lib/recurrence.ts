// Recurrence (RFC 5545 RRULE) in a time zone, DST-correct and bounded: the rule is expanded on wall-clock
// ("floating") times, and each wall-clock time is then placed in the zone, so a weekly 09:00 stays 09:00
// local across a DST change while its UTC instant moves by the offset change. Every search is capped in
// recurrence periods and candidate times (rrule-temporal counts them), so a rule that never occurs
// (31 February) is refused after a bounded amount of work instead of being searched until the year 9999.
import { DateTime, IANAZone } from 'luxon';
import type { RRuleTemporal as RRuleTemporalClass } from 'rrule-temporal' with { 'resolution-mode': 'require' };

// rrule-temporal ships CommonJS (index.cjs), but its "types" export points at ESM typings, which a CommonJS
// file may only import as types.
const { RRuleTemporal } = require('rrule-temporal') as { RRuleTemporal: typeof RRuleTemporalClass };

export interface Recurrence {
  /** RRULE body without DTSTART, e.g. `FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0`. */
  rrule: string;
  /** IANA zone the rule's wall-clock times are in, e.g. `Europe/Berlin`. */
  timezone: string;
  /** First possible occurrence (an instant); its local time supplies missing BYHOUR/BYMINUTE/BYSECOND. */
  start: string;
}

/** The rule is malformed, or it has no occurrence within the search caps. */
export class RecurrenceError extends Error {}

/**
 * What one search for the next occurrence may cost: recurrence periods advanced (a DAILY rule's days, a
 * MINUTELY rule's minutes — sub-daily rules skip whole days their date parts exclude) and candidate times
 * looked at. A rule that finds nothing within them is treated as having no occurrence. Every occurrence
 * a reasonable reminder has is found well within them (test/unit/reminders.test.ts), and the worst case
 * costs about a quarter of a second of CPU (the worker expands in-thread, one search per occurrence). The API expands on its work pool (lib/work-pool.ts), where `budgetMs`
 * also bounds the time of a whole request's expansion.
 */
export const RECURRENCE_LIMITS = { periods: 5_000, candidates: 20_000, budgetMs: 2_000 };

// A caller asking for N occurrences gets at most this many searches (a search that lands before `after` is
// not counted as an occurrence but still costs one).
const MAX_SEARCHES = 100_000;

const FREQS = ['YEARLY', 'MONTHLY', 'WEEKLY', 'DAILY', 'HOURLY', 'MINUTELY', 'SECONDLY'] as const;
const DAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];
const NUMBER_LISTS: Record<string, [number, number]> = {
  BYSECOND: [0, 59], BYMINUTE: [0, 59], BYHOUR: [0, 23], BYMONTH: [1, 12], BYMONTHDAY: [-31, 31], BYYEARDAY: [-366, 366],
  BYWEEKNO: [-53, 53], BYSETPOS: [-366, 366],
};
const NUMBERS: Record<string, [number, number]> = { INTERVAL: [1, 10_000], COUNT: [1, 100_000] };

function wholeNumber(name: string, raw: string, [min, max]: [number, number]): number {
  const v = /^[+-]?\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(v) || v < min || v > max || (v === 0 && min < 0)) throw new RecurrenceError(`rrule: ${name} must be whole numbers from ${min} to ${max}${min < 0 ? ' (not 0)' : ''}`);
  return v;
}

/** Wall-clock time of a zoned DateTime as an RFC 5545 "floating" basic date-time, e.g. 20270301T090000. */
const basic = (dt: DateTime) => dt.toFormat("yyyyMMdd'T'HHmmss");

/**
 * Checks every part of the rule (the RRULE grammar of RFC 5545 §3.3.10, FREQ MINUTELY or slower) and
 * answers it in the form the expansion reads, UNTIL turned into the zone's wall-clock time. rrule-temporal
 * drops out-of-range values silently; they are refused here instead, naming the part.
 */
function normalise(rrule: string, timezone: string): string {
  const body = rrule.trim().replace(/^RRULE:/i, '').toUpperCase();
  if (/(^|;)\s*(DTSTART|TZID)\b/.test(body)) throw new RecurrenceError('rrule: give the start and timezone as fields, not DTSTART/TZID in the rule');
  const parts = new Map<string, string>();
  for (const part of body.split(';').filter((p) => p.trim() !== '')) {
    const m = /^\s*([A-Z]+)\s*=\s*([^=]*?)\s*$/.exec(part);
    if (!m) throw new RecurrenceError(`rrule: "${part.slice(0, 40)}" is not NAME=VALUE`);
    if (parts.has(m[1])) throw new RecurrenceError(`rrule: ${m[1]} is given twice`);
    parts.set(m[1], m[2]);
  }
  const freq = parts.get('FREQ');
  if (freq === undefined) throw new RecurrenceError('rrule: FREQ is required');
  if (!(FREQS as readonly string[]).includes(freq)) throw new RecurrenceError(`rrule: FREQ must be one of ${FREQS.join(', ')}`);
  if (freq === 'SECONDLY') throw new RecurrenceError('rrule: FREQ must be MINUTELY or slower');
  if (parts.has('COUNT') && parts.has('UNTIL')) throw new RecurrenceError('rrule: give COUNT or UNTIL, not both');
  const out: string[] = [];
  for (const [name, value] of parts) {
    if (name === 'FREQ') out.push(`FREQ=${value}`);
    else if (NUMBERS[name]) out.push(`${name}=${wholeNumber(name, value, NUMBERS[name])}`);
    else if (NUMBER_LISTS[name]) out.push(`${name}=${value.split(',').map((v) => wholeNumber(name, v, NUMBER_LISTS[name])).join(',')}`);
    else if (name === 'BYDAY') {
      for (const d of value.split(',')) {
        const m = /^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$/.exec(d);
        if (!m || (m[1] !== undefined && (Number(m[1]) === 0 || Math.abs(Number(m[1])) > 53))) {
          throw new RecurrenceError('rrule: BYDAY must name days as MO, TU, WE, TH, FR, SA, SU (optionally with a number, e.g. 1MO)');
        }
      }
      out.push(`BYDAY=${value}`);
    } else if (name === 'WKST') {
      if (!DAYS.includes(value)) throw new RecurrenceError('rrule: WKST must be one of MO, TU, WE, TH, FR, SA, SU');
      out.push(`WKST=${value}`);
    } else if (name === 'UNTIL') {
      const m = /^(\d{8})(T\d{6})?(Z)?$/.exec(value);
      const until = m && (m[3]
        ? DateTime.fromFormat(`${m[1]}${m[2] ?? 'T000000'}`, "yyyyMMdd'T'HHmmss", { zone: 'UTC' }).setZone(timezone)
        : DateTime.fromFormat(`${m[1]}${m[2] ?? 'T235959'}`, "yyyyMMdd'T'HHmmss", { zone: 'UTC' }));
      if (!until?.isValid) throw new RecurrenceError('rrule: UNTIL must be a date (20301231) or a date-time (20301231T235959Z)');
      out.push(`UNTIL=${basic(until)}Z`);
    } else {
      throw new RecurrenceError(`rrule: ${name} is not a part of an RRULE`);
    }
  }
  return out.join(';');
}

/** A parsed rule, ready to expand: checked once, searched many times. */
export interface CompiledRecurrence {
  rule: RRuleTemporalClass;
  timezone: string;
}

/** Parses and checks the rule; a RecurrenceError names the part that is wrong. */
export function parseRecurrence(r: Recurrence): CompiledRecurrence {
  if (typeof r.timezone !== 'string' || !IANAZone.isValidZone(r.timezone)) throw new RecurrenceError(`timezone: "${r.timezone}" is not an IANA time zone`);
  const start = DateTime.fromISO(r.start, { zone: r.timezone });
  if (!start.isValid) throw new RecurrenceError(`start: "${r.start}" is not an ISO date-time`);
  if (start.year < 1900 || start.year > 9000) throw new RecurrenceError('start: must be between the years 1900 and 9000');
  const rrule = normalise(r.rrule, r.timezone);
  try {
    // Floating times are expanded as UTC (a zone without DST), then placed in the real zone by placeInZone.
    const rule = new RRuleTemporal({
      rruleString: `DTSTART:${basic(start)}Z\nRRULE:${rrule}`,
      maxIterations: RECURRENCE_LIMITS.periods, maxCandidateEvaluations: RECURRENCE_LIMITS.candidates, cache: false,
    });
    return { rule, timezone: r.timezone };
  } catch (err) {
    throw new RecurrenceError(`rrule: ${(err as Error).message}`);
  }
}

/** A wall-clock time (carried as a UTC instant) as the wall-clock fields of that time. */
function wallFields(wallMs: number) {
  const d = new Date(wallMs);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
}

/**
 * A wall-clock time placed in the zone, as RFC 5545 §3.3.5 reads a local time: a time that occurs twice
 * (the autumn change) is the FIRST of the two instants; a time skipped by the spring change is read with
 * the offset before the gap, so it moves forward by the gap (02:30 → 03:30).
 */
export function placeInZone(wallMs: number, zone: string): Date {
  const z = IANAZone.create(zone);
  const HOUR = 3_600_000;
  // Every zone changes its offset at most once in any 24 hours, so the offsets 12 h either side are the two
  // offsets a wall time can be read with.
  const before = z.offset(wallMs - 12 * HOUR);
  const after = z.offset(wallMs + 12 * HOUR);
  const candidates = [wallMs - before * 60_000, wallMs - after * 60_000].filter((t) => {
    const local = DateTime.fromMillis(t, { zone });
    const f = wallFields(wallMs);
    return local.year === f.year && local.month === f.month && local.day === f.day && local.hour === f.hour && local.minute === f.minute && local.second === f.second;
  });
  return new Date(candidates.length ? Math.min(...candidates) : wallMs - before * 60_000);
}

const capped = (err: unknown) => /maximum (iterations|candidate)/i.test((err as Error)?.message ?? '');

/** Up to `count` occurrence instants strictly after `after`, in order. */
export function occurrencesAfter(r: Recurrence | CompiledRecurrence, after: Date, count: number): Date[] {
  const { rule, timezone } = 'rule' in r ? r : parseRecurrence(r);
  const out: Date[] = [];
  // The search runs on wall-clock time from `after`'s wall-clock time. Near a DST change a wall time a little
  // earlier can still be placed after `after` (the autumn hour repeats), so there it starts 3 h earlier (no
  // zone shifts by more than 2 h); elsewhere every earlier wall time is an earlier instant too.
  const zone = IANAZone.create(timezone);
  const changing = zone.offset(after.getTime() - 3 * 3_600_000) !== zone.offset(after.getTime() + 3 * 3_600_000);
  let cursor = after.getTime() + zone.offset(after.getTime()) * 60_000 - (changing ? 3 * 3_600_000 : 0);
  for (let searches = 0; out.length < count && searches < MAX_SEARCHES; searches++) {
    let next;
    try {
      next = rule.next(new Date(cursor), false);
    } catch (err) {
      if (!capped(err)) throw err;
      throw new RecurrenceError(`rrule: no occurrence found after ${new Date(cursor).toISOString().slice(0, 16)} (wall-clock) within ${RECURRENCE_LIMITS.periods} periods of the rule; `
        + 'a rule that never occurs (e.g. BYMONTH=2;BYMONTHDAY=31) or occurs that rarely is refused');
    }
    if (!next) break;
    cursor = next.epochMilliseconds;
    const instant = placeInZone(cursor, timezone);
    if (instant.getTime() > after.getTime() && (!out.length || instant.getTime() > out[out.length - 1].getTime())) out.push(instant);
  }
  return out;
}

/** The first occurrence strictly after `after`, or null when the rule has ended. */
export function nextOccurrence(r: Recurrence | CompiledRecurrence, after: Date): Date | null {
  return occurrencesAfter(r, after, 1)[0] ?? null;
}

/** The start a recurrence without one gets: now, to the whole minute (RRULE takes missing seconds from it). */
export function defaultStart(now: Date): string {
  return new Date(Math.floor(now.getTime() / 60_000) * 60_000).toISOString();
}
