// Reminders: durable timers with recurrence, delivered by email, webhook and in-app notification.
import { createReminderActivities, DELIVERY_ATTEMPTS } from '../../activities/reminders';
import { reminderRoutes } from '../../api/routes/reminders';
import { initReminderModels } from '../../db/models/reminders';
import { REMINDERS_TASK_QUEUE } from '../../workflows/reminders.api';
import { defineDomain } from '../module';

export const reminders = defineDomain({
  name: 'reminders',
  models: initReminderModels,
  queues: { reminders: REMINDERS_TASK_QUEUE },
  activities: createReminderActivities,
  attempts: { deliverReminder: DELIVERY_ATTEMPTS },
  // Written with version -1, which the workflow's first write raises; a running reminder may not have written yet
  // (its first task writes nothing the API wrote), but a running workflow is never started again, and every
  // reminder writes its state when it ends, so -1 with no workflow means its start was never made.
  startIntents: { reminderWorkflow: { table: 'reminders', entityType: 'reminder', waiting: 'state_version = -1' } },
  routes: reminderRoutes,
});
