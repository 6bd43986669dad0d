// The dispatch preview: the next trigger times of a reminder from its current state, by the same
// rules the workflow follows (workflows/reminders.rules.ts), recurrences expanded in its time zone.
import type { ReminderPlan, ReminderSchedule, ReminderState } from '../workflows/reminders.api';
import { nextTrigger, occurrenceSpan } from '../workflows/reminders.rules';
import { nextOccurrence } from './recurrence';

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
  return nextOccurrence(schedule.recurrence, new Date(after))?.toISOString() ?? null;
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
