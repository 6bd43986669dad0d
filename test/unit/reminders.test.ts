// The pure parts of reminders: RRULE expansion in a time zone (DST), trigger rules, the dispatch
// preview, and which outbound destinations are refused.
import { assertPublicDestination, OutboundBlockedError } from '../../lib/notify/outbound';
import { defaultStart, occurrencesAfter, parseRecurrence, placeInZone, RecurrenceError } from '../../lib/recurrence';
import { previewTriggers } from '../../domains/reminders/preview';
import type { ReminderState } from '../../workflows/reminders.api';
import { deliveryTargets, nextTrigger, snoozedTriggers } from '../../workflows/reminders.rules';

const isos = (ds: Date[]) => ds.map((d) => d.toISOString());

describe('recurrence', () => {
  it('keeps a weekly 09:00 Berlin at 09:00 local across both DST changes', () => {
    const r = { rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0', timezone: 'Europe/Berlin', start: '2027-03-01T00:00:00Z' };
    expect(isos(occurrencesAfter(r, new Date('2027-03-20T00:00:00Z'), 2))).toEqual(['2027-03-22T08:00:00.000Z', '2027-03-29T07:00:00.000Z']);
    expect(isos(occurrencesAfter(r, new Date('2027-10-24T00:00:00Z'), 2))).toEqual(['2027-10-25T07:00:00.000Z', '2027-11-01T08:00:00.000Z']); // back to CET on 31 October
  });

  it('moves a time skipped by DST forward and takes the time of day from start', () => {
    const r = { rrule: 'FREQ=DAILY;COUNT=3', timezone: 'America/New_York', start: '2027-03-13T02:30:00-05:00' };
    expect(isos(occurrencesAfter(r, new Date('2027-01-01'), 5))).toEqual(['2027-03-13T07:30:00.000Z', '2027-03-14T07:30:00.000Z', '2027-03-15T06:30:00.000Z']);
  });

  it('takes the FIRST of the two 02:30s on the autumn change (RFC 5545 §3.3.5), in both zones of the year', () => {
    const r = { rrule: 'FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0', timezone: 'Europe/Berlin', start: '2027-10-28T00:00:00Z' };
    // 31 October 2027: 02:30 happens at 00:30Z (still CEST, +02:00) and again at 01:30Z (CET); the first one counts.
    expect(isos(occurrencesAfter(r, new Date('2027-10-29T12:00:00Z'), 3))).toEqual(['2027-10-30T00:30:00.000Z', '2027-10-31T00:30:00.000Z', '2027-11-01T01:30:00.000Z']);
    expect(placeInZone(Date.parse('2027-10-31T02:30:00Z'), 'Europe/Berlin').toISOString()).toBe('2027-10-31T00:30:00.000Z');
    expect(placeInZone(Date.parse('2027-11-07T01:30:00Z'), 'America/New_York').toISOString()).toBe('2027-11-07T05:30:00.000Z'); // EDT, the first 01:30
  });

  it('reads a wall time skipped by the spring change with the offset before the gap (02:30 → 03:30)', () => {
    const r = { rrule: 'FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0', timezone: 'Europe/Berlin', start: '2027-03-20T00:00:00Z' };
    // 28 March 2027 has no 02:30 in Berlin: that day's occurrence is 03:30 CEST = 01:30Z, the day after 02:30 CEST = 00:30Z.
    expect(isos(occurrencesAfter(r, new Date('2027-03-26T12:00:00Z'), 3))).toEqual(['2027-03-27T01:30:00.000Z', '2027-03-28T01:30:00.000Z', '2027-03-29T00:30:00.000Z']);
    expect(placeInZone(Date.parse('2027-03-14T02:30:00Z'), 'America/New_York').toISOString()).toBe('2027-03-14T07:30:00.000Z');
    // Asked at 03:10 CEST that day, the moved 02:30 (03:30 CEST) is still ahead, though its wall time is behind.
    expect(isos(occurrencesAfter(r, new Date('2027-03-28T01:10:00Z'), 1))).toEqual(['2027-03-28T01:30:00.000Z']);
    // Asked inside the repeated autumn hour, before the first 02:30: that one is next.
    expect(isos(occurrencesAfter({ ...r, start: '2027-10-20T00:00:00Z' }, new Date('2027-10-31T00:20:00Z'), 1))).toEqual(['2027-10-31T00:30:00.000Z']);
  });

  it('fires on the whole minute when the start is defaulted (README: the weekly 09:00 fires at 09:00:00)', () => {
    const start = defaultStart(new Date('2027-03-01T10:17:49.123Z'));
    expect(start).toBe('2027-03-01T10:17:00.000Z');
    const r = { rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0', timezone: 'Europe/Berlin', start };
    expect(isos(occurrencesAfter(r, new Date(start), 1))).toEqual(['2027-03-08T08:00:00.000Z']);
  });

  it('refuses a rule that never occurs after a bounded search, quickly', () => {
    for (const rrule of ['FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=31;BYHOUR=23', 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30', 'FREQ=MINUTELY;BYSETPOS=2', 'FREQ=YEARLY;BYWEEKNO=53;BYMONTH=6']) {
      const t0 = Date.now();
      expect(() => occurrencesAfter({ rrule, timezone: 'Europe/Berlin', start: '2027-01-01T00:00:00Z' }, new Date('2027-01-01T00:00:00Z'), 1)).toThrow(/no occurrence found/);
      expect(Date.now() - t0).toBeLessThan(5_000); // unbounded, the first of these took over 10 minutes
    }
    // Rare but real: 29 February on a Monday (2044), Christmas at 09:00 from an hourly rule.
    expect(isos(occurrencesAfter({ rrule: 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0', timezone: 'UTC', start: '2027-01-01T00:00:00Z' }, new Date('2027-01-01'), 1))).toEqual(['2044-02-29T09:00:00.000Z']);
    expect(isos(occurrencesAfter({ rrule: 'FREQ=HOURLY;BYMONTH=12;BYMONTHDAY=25;BYHOUR=9', timezone: 'UTC', start: '2027-01-01T00:00:00Z' }, new Date('2027-01-01'), 1))).toEqual(['2027-12-25T09:00:00.000Z']);
  });

  it('refuses what rrule would silently accept', () => {
    const bad = (rrule: string, timezone = 'UTC') => () => parseRecurrence({ rrule, timezone, start: '2030-01-01T00:00:00Z' });
    expect(bad('FREQ=DAILY;BYHOUR=25')).toThrow(/BYHOUR/);
    expect(bad('FREQ=DAILY;BYDAY=XX')).toThrow(/BYDAY/);
    expect(bad('FREQ=DAILY;INTERVAL=abc')).toThrow(/INTERVAL/);
    expect(bad('FREQ=SECONDLY')).toThrow(/MINUTELY or slower/);
    expect(bad('INTERVAL=2')).toThrow(/FREQ is required/);
    expect(bad('DTSTART:20300101T000000Z;FREQ=DAILY')).toThrow(RecurrenceError);
    expect(bad('FREQ=DAILY', 'Europe/Nowhere')).toThrow(/timezone/);
    expect(bad('FREQ=DAILY;BYMONTHDAY=0')).toThrow(/BYMONTHDAY/);
    expect(bad('FREQ=DAILY;COLOUR=RED')).toThrow(/COLOUR is not a part/);
    expect(bad('FREQ=DAILY;FREQ=WEEKLY')).toThrow(/twice/);
    expect(bad('FREQ=DAILY;UNTIL=tomorrow')).toThrow(/UNTIL/);
  });
});

describe('trigger rules and preview', () => {
  const plan = { offsets: [1440, 15], repeat: { everyMinutes: 10, times: 2 } };
  const base: ReminderState = {
    status: 'active', schedule: { dueAt: '2030-01-02T09:00:00.000Z' }, occurrence: '2030-01-02T09:00:00.000Z', lastOccurrence: null,
    handled: [], snoozedUntil: null, notBefore: '2030-01-01T00:00:00.000Z', nextTriggerAt: null, occurrenceCount: 0, acknowledgedAt: null, version: 0,
  };

  it('orders offsets before and repeats after the occurrence; skips triggers before notBefore', () => {
    expect(nextTrigger(base, plan)).toEqual({ key: 'before:1440m', at: Date.parse('2030-01-01T09:00:00Z') });
    expect(nextTrigger({ ...base, notBefore: '2030-01-02T00:00:00Z' }, plan)?.key).toBe('before:15m');
    expect(nextTrigger({ ...base, handled: ['before:1440m', 'before:15m', 'repeat:1', 'repeat:2'] }, plan)).toBeNull();
  });

  it('a snooze skips the triggers up to its time and adds its own', () => {
    const until = '2030-01-02T09:05:00.000Z';
    const skipped = snoozedTriggers(base, plan, until);
    expect(skipped).toEqual(['before:1440m', 'before:15m']);
    expect(nextTrigger({ ...base, handled: skipped, snoozedUntil: until }, plan)?.key).toBe(`snooze:${until}`);
  });

  it('previews the next triggers of a one-off and of a recurrence; nothing while paused', () => {
    expect(previewTriggers(base, plan, 10).map((p) => p.trigger)).toEqual(['before:1440m', 'before:15m', 'repeat:1', 'repeat:2']);
    expect(previewTriggers({ ...base, status: 'paused' }, plan, 10)).toEqual([]);
    const weekly: ReminderState = { ...base, occurrence: null, notBefore: '2027-03-01T00:00:00.000Z', schedule: { recurrence: { rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0', timezone: 'Europe/Berlin', start: '2027-03-20T00:00:00Z' } } };
    expect(previewTriggers(weekly, { offsets: [0] }, 2).map((p) => p.at)).toEqual(['2027-03-22T08:00:00.000Z', '2027-03-29T07:00:00.000Z']);
  });

  it('delivers email to users and addresses, in-app to users, webhooks by index', () => {
    expect(deliveryTargets(['email', 'in_app', 'webhook'], { users: ['u1'], emails: ['a@x.test'], webhooks: 2 })).toEqual([
      { channel: 'email', recipient: 'user:u1' }, { channel: 'email', recipient: 'email:a@x.test' }, { channel: 'in_app', recipient: 'user:u1' },
      { channel: 'webhook', recipient: 'webhook:0' }, { channel: 'webhook', recipient: 'webhook:1' },
    ]);
  });
});

describe('outbound destinations', () => {
  it('refuses private, loopback, link-local and mapped addresses; allows public ones', async () => {
    for (const url of ['http://127.0.0.1:8080/x', 'https://10.1.2.3/', 'http://192.168.1.1', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:3000/', 'http://[::ffff:127.0.0.1]/', 'http://[fd00::1]/']) {
      await expect(assertPublicDestination(url)).rejects.toBeInstanceOf(OutboundBlockedError);
    }
    await expect(assertPublicDestination('https://93.184.216.34/hook')).resolves.toBeUndefined();
    await expect(assertPublicDestination('https://[2606:2800:220:1::1]/hook')).resolves.toBeUndefined();
  });
});
