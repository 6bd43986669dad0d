// The dispatch preview: the next trigger times of a reminder from its current state, by the same
// rules the workflow follows (workflows/reminders.rules.ts), recurrences expanded in its time zone.
import type { ReminderPlan, ReminderSchedule, ReminderState } from '../../workflows/reminders.api';
import { nextTrigger, occurrenceSpan } from '../../workflows/reminders.rules';
import { nextOccurrence, RecurrenceError } from '../../lib/recurrence';

export interface PreviewItem {
  at: string;
  occurrence: string;
  trigger: string;
}

type Cursor = Pick<ReminderState, 'occurrence' | 'lastOccurrence' | 'handled' | 'snoozedUntil' | 'notBefore'>;

function followingOccurrence(schedule: ReminderSchedule, plan: ReminderPlan, c: Cursor): string | null {
  if (schedule.dueAt !== undefined) return c.lastOccurrence ? null : schedule.dueAt;
  const floor = Date.parse(c.notBefore) - occurrenceSpan(plan) - 1;
  const after = Math.max(c.lastOccurrence ? Date.parse(c.lastOccurrence) : -Infinity, floor);
  try {
    return nextOccurrence(schedule.recurrence, new Date(after))?.toISOString() ?? null;
  } catch (err) {
    // As the workflow does (activities/reminders.ts): a next occurrence beyond the search caps ends the rule.
    if (err instanceof RecurrenceError) return null;
    throw err;
  }
}

/** Up to `count` triggers still to come; none while paused or once closed. */
export function previewTriggers(state: ReminderState, plan: ReminderPlan, count: number): PreviewItem[] {
  if (state.status !== 'active') return [];
  const c: Cursor = { occurrence: state.occurrence, lastOccurrence: state.lastOccurrence, handled: [...state.handled], snoozedUntil: state.snoozedUntil, notBefore: state.notBefore };
  const out: PreviewItem[] = [];
  // Bounded: a rule whose occurrences all fall before notBefore must not loop for ever.
  for (let steps = 0; out.length < count && steps < count * 20 + 100; steps++) {
    if (!c.occurrence) {
      c.occurrence = followingOccurrence(state.schedule, plan, c);
      c.handled = [];
      c.snoozedUntil = null;
      if (!c.occurrence) break;
    }
    const t = nextTrigger(c, plan);
    if (t) {
      out.push({ at: new Date(t.at).toISOString(), occurrence: c.occurrence, trigger: t.key });
      c.handled.push(t.key);
      if (t.key.startsWith('snooze:')) c.snoozedUntil = null;
    } else {
      c.lastOccurrence = c.occurrence;
      c.occurrence = null;
    }
  }
  return out;
}

/** The state a reminder starts (or restarts, on reschedule) with: nothing fired, triggers before `now` skipped. */
export const freshState = (schedule: ReminderSchedule, now: Date): ReminderState => ({
  status: 'active', schedule, occurrence: null, lastOccurrence: null, handled: [], snoozedUntil: null, notBefore: now.toISOString(),
  nextTriggerAt: null, occurrenceCount: 0, acknowledgedAt: null, version: -1,
});

/**
 * The first trigger a (re)scheduled reminder will fire, or null when every trigger is already past. A
 * recurrence that is malformed or has no occurrence after `now` throws RecurrenceError.
 */
export function firstTrigger(schedule: ReminderSchedule, plan: ReminderPlan, now: Date): PreviewItem | null {
  if (schedule.recurrence && !nextOccurrence(schedule.recurrence, now)) throw new RecurrenceError('the rule has no occurrence after now');
  return previewTriggers(freshState(schedule, now), plan, 1)[0] ?? null;
}
