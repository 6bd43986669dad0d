// Pure reminder rules (no I/O, deterministic): which triggers an occurrence has and which comes next.
// Shared by the workflow and the API (which shows nextTriggerAt and the dispatch preview).
import type { ReminderChannel, ReminderPlan, ReminderRecipients, ReminderState } from './reminders.api';

const MINUTE = 60_000;

export interface Trigger {
  /** Stable within an occurrence: part of each delivery's natural key. */
  key: string;
  at: number;
}

export function occurrenceTriggers(occurrence: number, plan: ReminderPlan): Trigger[] {
  const triggers = plan.offsets.map((m) => ({ key: `before:${m}m`, at: occurrence - m * MINUTE }));
  for (let k = 1; plan.repeat && k <= plan.repeat.times; k++) triggers.push({ key: `repeat:${k}`, at: occurrence + k * plan.repeat.everyMinutes * MINUTE });
  return triggers.sort((a, b) => a.at - b.at);
}

/** How long after an occurrence its last trigger can fire (repeats). */
export function occurrenceSpan(plan: ReminderPlan): number {
  return plan.repeat ? plan.repeat.times * plan.repeat.everyMinutes * MINUTE : 0;
}

/** A snooze until `until` skips the occurrence's triggers up to then: they are handled, not sent. */
export function snoozedTriggers(state: Pick<ReminderState, 'occurrence' | 'handled'>, plan: ReminderPlan, until: string): string[] {
  if (!state.occurrence) return [];
  return occurrenceTriggers(Date.parse(state.occurrence), plan).filter((t) => t.at <= Date.parse(until) && !state.handled.includes(t.key)).map((t) => t.key);
}

/** The current occurrence's next unhandled trigger, a snooze included; null when the occurrence is done. */
export function nextTrigger(state: Pick<ReminderState, 'occurrence' | 'handled' | 'notBefore' | 'snoozedUntil'>, plan: ReminderPlan): Trigger | null {
  if (!state.occurrence) return null;
  const notBefore = Date.parse(state.notBefore);
  const candidates = occurrenceTriggers(Date.parse(state.occurrence), plan).filter((t) => !state.handled.includes(t.key) && t.at >= notBefore);
  if (state.snoozedUntil) candidates.push({ key: `snooze:${state.snoozedUntil}`, at: Date.parse(state.snoozedUntil) });
  return candidates.sort((a, b) => a.at - b.at)[0] ?? null;
}

/** Every (channel, recipient) a trigger delivers to. */
export function deliveryTargets(channels: ReminderChannel[], r: ReminderRecipients): { channel: ReminderChannel; recipient: string }[] {
  const out: { channel: ReminderChannel; recipient: string }[] = [];
  const add = (channel: ReminderChannel, recipients: string[]) => out.push(...recipients.map((recipient) => ({ channel, recipient })));
  for (const channel of channels) {
    if (channel === 'email') add(channel, [...r.users.map((u) => `user:${u}`), ...r.emails.map((e) => `email:${e}`)]);
    if (channel === 'in_app') add(channel, r.users.map((u) => `user:${u}`));
    if (channel === 'webhook') add(channel, Array.from({ length: r.webhooks }, (_, i) => `webhook:${i}`));
  }
  return out;
}
