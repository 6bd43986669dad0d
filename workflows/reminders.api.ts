// Reminders: the shared definitions of the reminder workflow (API, worker and workflow import these).
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { CommandAuthor } from '../lib/audit';
import type { AuditAction } from '../lib/audit-actions';
import type { Recurrence } from '../lib/recurrence';
import { CANCELLED_WRITE_PATCH, STATUS_UPSERT_PATCH } from './patches';

export const REMINDERS_TASK_QUEUE = 'docket-reminders';
export const REMINDERS_DOMAIN = 'reminders';
/** Delivery errors a retry cannot change (by error name): the delivery fails at once; anything else is retried. */
export const FINAL_DELIVERY_ERRORS = ['WebhookRejectedError', 'EmailRejectedError', 'RecipientGoneError', 'OutboundBlockedError'];

/** Histories written before the writes became local activities replay with activity tasks. */
export const LOCAL_WRITES_PATCH = 'reminders-local-writes';
/**
 * The last firing of a reminder that only delivers in-app goes with its final state write: one local activity where
 * there were two (each round trip costs the worker more than its SQL: bench/README, reminders). Histories from before
 * deliver, then write.
 */
export const FINAL_WRITE_DELIVERS_PATCH = 'reminders-final-write-delivers';
/**
 * Before continuing as new, a reminder writes the commands accepted while its deliveries finished and lets their
 * callers have their answer (and a last firing's in-app deliveries go with the final write first). Before, a command
 * accepted then waited for a write that came only after every handler had answered: the reminder hung.
 */
export const CONTINUE_AFTER_WRITES_PATCH = 'reminders-continue-after-writes';
/** The patches the reminder workflow's code has, named in the input the API starts it with (workflows/patches.ts). */
export const REMINDER_PATCHES = [LOCAL_WRITES_PATCH, FINAL_WRITE_DELIVERS_PATCH, STATUS_UPSERT_PATCH, CONTINUE_AFTER_WRITES_PATCH, CANCELLED_WRITE_PATCH];

export type ReminderChannel = 'email' | 'webhook' | 'in_app';
export type ReminderStatus = 'active' | 'paused' | 'completed' | 'cancelled';

/** A one-off due time, or a recurrence (RRULE in a time zone). */
export type ReminderSchedule = { dueAt: string; recurrence?: undefined } | { recurrence: Recurrence; dueAt?: undefined };

/** Who is reminded. Webhooks are named by their index; their URL and secret stay in Postgres. */
export interface ReminderRecipients {
  users: string[];
  emails: string[];
  webhooks: number;
}

/** After the occurrence, repeat every `everyMinutes` up to `times` times until acknowledged. */
export interface RepeatPolicy {
  everyMinutes: number;
  times: number;
}

export interface ReminderPlan {
  /** Minutes before each occurrence at which to remind (0 = at the occurrence). */
  offsets: number[];
  repeat?: RepeatPolicy;
}

export interface ReminderState {
  status: ReminderStatus;
  schedule: ReminderSchedule;
  /** The occurrence being reminded of now (ISO), null between occurrences or once done. */
  occurrence: string | null;
  lastOccurrence: string | null;
  /** Trigger keys of the current occurrence already fired or skipped. */
  handled: string[];
  snoozedUntil: string | null;
  /** Triggers before this instant are skipped (set at creation, reschedule and resume). */
  notBefore: string;
  nextTriggerAt: string | null;
  occurrenceCount: number;
  acknowledgedAt: string | null;
  /** Incremented by every change; the read model keeps the newest. */
  version: number;
}

export interface ReminderInput {
  tenantId: string;
  reminderId: string;
  channels: ReminderChannel[];
  recipients: ReminderRecipients;
  schedule: ReminderSchedule;
  plan: ReminderPlan;
  createdAt: string;
  /**
   * The first occurrence and trigger the API wrote in the reminder's row when it created it (by the same rules,
   * reminders.rules.ts). A first round that arrives at the same has nothing to write. Absent in histories from
   * before it, which write their first state as they did.
   */
  written?: { occurrence: string; nextTriggerAt: string };
  /** The patches the starting code had (REMINDER_PATCHES): their new paths are taken without patched(). */
  patches?: string[];
  /** Deliveries started per run before continue-as-new (default 500); tests lower it. */
  deliveriesPerRun?: number;
  /** Set by continue-as-new: the state carried into the new run. */
  resume?: { state: ReminderState };
}

/** One delivery: its natural key parts (reminder, occurrence, trigger, channel, recipient). */
export interface DeliveryRef {
  tenantId: string;
  reminderId: string;
  occurrence: string;
  trigger: string;
  channel: ReminderChannel;
  /** `user:<id>`, `email:<address>` or `webhook:<index>`. */
  recipient: string;
}

/**
 * Every command names who sent it (`by`): the activity that persists the change writes its audit event in
 * the same transaction. Commands sent without it (by an API from before, which audited them itself, or with
 * no argument at all) are not audited by the workflow.
 */
export interface ReminderCommand { by?: CommandAuthor }
export interface RescheduleCommand extends ReminderCommand { schedule: ReminderSchedule }
export interface SnoozeCommand extends ReminderCommand { until: string }

export const rescheduleUpdate = defineUpdate<ReminderState, [RescheduleCommand]>('reschedule');
export const snoozeUpdate = defineUpdate<ReminderState, [SnoozeCommand]>('snooze');
export const acknowledgeUpdate = defineUpdate<ReminderState, [ReminderCommand]>('acknowledge');
export const pauseUpdate = defineUpdate<ReminderState, [ReminderCommand]>('pause');
export const resumeUpdate = defineUpdate<ReminderState, [ReminderCommand]>('resume');
export const cancelReminderUpdate = defineUpdate<ReminderState, [ReminderCommand]>('cancel');

/** A command's audit event, written with the state it produced (persistReminder). */
export interface ReminderAudit {
  action: AuditAction;
  by: CommandAuthor;
  /** The state's version the command produced: with the action, the event's natural key. */
  version: number;
  before: Partial<ReminderState>;
  command?: unknown;
}
export const reminderStateQuery = defineQuery<ReminderState>('state');

/** Refusals of the update validators: the ApplicationFailure type → HTTP status the API answers. */
export const REMINDER_REFUSALS = {
  REMINDER_CLOSED: 409,
  REMINDER_PAUSED: 409,
  REMINDER_NOT_PAUSED: 409,
  TIME_IN_PAST: 422,
} as const;
export type ReminderRefusal = keyof typeof REMINDER_REFUSALS;
