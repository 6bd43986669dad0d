// Reading recorded workflow histories (the replay tests' fixtures).
import type { temporal } from '@temporalio/proto';

/** Whether every activity scheduled before `name` was closed (completed, failed, cancelled, timed out) before it was scheduled. */
export function scheduledAfterTheOthersClosed(events: temporal.api.history.v1.IHistoryEvent[], name: string): boolean {
  const at = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name);
  const before = events.slice(0, at);
  const closed = before.filter((e) => e.activityTaskCompletedEventAttributes || e.activityTaskFailedEventAttributes || e.activityTaskCanceledEventAttributes || e.activityTaskTimedOutEventAttributes);
  return at > 0 && closed.length === before.filter((e) => e.activityTaskScheduledEventAttributes).length;
}
