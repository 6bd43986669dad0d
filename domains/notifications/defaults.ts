// The notifications Docket sends, each with its channels, variables, sample data and built-in English texts (what a
// tenant's active template for the type, channel and locale replaces). Variables named in `dates` are shown as a
// local time in the recipient's time zone.
import type { NotificationChannel, NotificationParts } from '../../db/models/notifications';

export interface NotificationType {
  description: string;
  variables: Record<string, string>;
  /** Variables holding an instant (ISO 8601): rendered as "yyyy-MM-dd HH:mm (Zone)" in the recipient's zone. */
  dates: string[];
  sample: Record<string, unknown>;
  defaults: Partial<Record<NotificationChannel, NotificationParts>>;
  /**
   * A permission a caller needs, besides notifications.templates.manage, to create or change a template of this type:
   * its variables are credentials (one-click links that act as the recipient), and whoever writes the text decides
   * where they go — a remote image or a link of theirs would hand them over. So only someone who may already do what
   * the links do writes it.
   */
  permission?: string;
}

const RECIPIENT = { 'recipient.name': 'The recipient\'s name', 'recipient.email': 'The recipient\'s address', 'recipient.locale': 'The locale the text is rendered for', 'recipient.timeZone': 'The zone times are shown in' };
const SAMPLE_RECIPIENT = { name: 'Ada Lovelace', email: 'ada@example.com' };

const ASK_HEADING = '{% case kind %}{% when "reminder" %}Reminder: approval pending{% when "escalation" %}Escalated: approval needed{% when "reopened" %}Approval needed again{% else %}Approval requested{% endcase %}';
const OUTCOME_MESSAGE = '"{{ title }}" was {{ status }} at {{ decidedAt }}{% if status != "approved" and reason %}: {{ reason }}{% endif %}.';

export const NOTIFICATION_TYPES = {
  'approval.action_needed': {
    description: 'An approver is asked to decide a stage: when it opens (kind request), as a reminder, on escalation, or when it is reopened; with one-click links. Its templates carry the links, so writing one also needs approvals.flow.decide.',
    permission: 'approvals.flow.decide',
    variables: {
      ...RECIPIENT, kind: 'request, reminder, escalation or reopened', title: 'The flow\'s title', flowId: 'The flow', stage: 'The stage (0-based)',
      approveUrl: 'One-click approve link (works once, expires)', rejectUrl: 'One-click reject link (works once, expires)',
    },
    dates: [],
    sample: {
      recipient: SAMPLE_RECIPIENT, kind: 'request', title: 'PO-42', flowId: '7d3f1c2a-5b6e-4f70-8a91-0b2c3d4e5f60', stage: 0,
      approveUrl: 'https://docket.example.com/v1/approval-links/sample-approve', rejectUrl: 'https://docket.example.com/v1/approval-links/sample-reject',
    },
    defaults: {
      email: {
        subject: `${ASK_HEADING}: {{ title }}`,
        text: `Hello {{ recipient.name }},\n\n${ASK_HEADING}: {{ title }}\n\nApprove: {{ approveUrl }}\nReject:  {{ rejectUrl }}\n\nEach link works once and expires; it asks you to confirm before anything is signed.`,
        html: '',
      },
    },
  },
  'approval.outcome': {
    description: 'The requester hears how their flow ended (approved, rejected, expired, cancelled), by email and in the app.',
    variables: {
      ...RECIPIENT, status: 'approved, rejected, expired or cancelled', title: 'The flow\'s title', reason: 'Why (the rejecting approver\'s comment, an admin\'s reason), or empty',
      decidedAt: 'When it ended (local time in the recipient\'s zone)', flowId: 'The flow',
    },
    dates: ['decidedAt'],
    sample: { recipient: SAMPLE_RECIPIENT, status: 'rejected', title: 'PO-42', reason: 'Over budget', decidedAt: '2026-12-01T14:30:00Z', flowId: '7d3f1c2a-5b6e-4f70-8a91-0b2c3d4e5f60' },
    defaults: {
      email: { subject: 'Your request was {{ status }}: {{ title }}', text: `Hello {{ recipient.name }},\n\n${OUTCOME_MESSAGE}`, html: '' },
      in_app: { title: 'Your request was {{ status }}: {{ title }}', body: OUTCOME_MESSAGE },
    },
  },
  'approval.new_request': {
    description: 'A watcher of new requests (a role named in /v1/settings/approvals) hears of a new flow.',
    variables: { ...RECIPIENT, title: 'The flow\'s title', requesterName: 'Who requested it', autoApproved: 'true when it was approved at once', flowId: 'The flow' },
    dates: [],
    sample: { recipient: SAMPLE_RECIPIENT, title: 'PO-42', requesterName: 'Grace Hopper', autoApproved: false, flowId: '7d3f1c2a-5b6e-4f70-8a91-0b2c3d4e5f60' },
    defaults: {
      email: {
        subject: 'New approval request: {{ title }}',
        text: 'Hello {{ recipient.name }},\n\n{{ requesterName }} requested approval of "{{ title }}"{% if autoApproved %} (approved at once: the requester may approve it){% endif %}.\n\nFlow {{ flowId }}.',
        html: '',
      },
    },
  },
  'job.run_failed': {
    description: 'A run of a job schedule failed: the people its notifyOnFailure names are told.',
    variables: {
      ...RECIPIENT, scheduleName: 'The schedule\'s name', jobType: 'The job type', failedAt: 'When the run ended (local time in the recipient\'s zone)',
      error: 'The run\'s error', runId: 'The run', workflowId: 'The run\'s workflow',
    },
    dates: ['failedAt'],
    sample: {
      recipient: SAMPLE_RECIPIENT, scheduleName: 'Nightly purge', jobType: 'audit.retention_purge', failedAt: '2026-11-23T02:00:00Z', error: 'connection refused',
      runId: '1b4e28ba-2fa1-41d2-883f-0016d3cca427', workflowId: 'jobs:sample',
    },
    defaults: {
      email: {
        subject: 'Job failed: {{ scheduleName }}',
        text: 'Hello {{ recipient.name }},\n\nA run of the job schedule "{{ scheduleName }}" ({{ jobType }}) failed at {{ failedAt }}:\n\n{{ error }}\n\nRun {{ runId }}, workflow {{ workflowId }}.',
        html: '',
      },
    },
  },
  'job.run_succeeded': {
    description: 'A run of a job schedule succeeded: the people its notifyOnSuccess names are told.',
    variables: {
      ...RECIPIENT, scheduleName: 'The schedule\'s name', jobType: 'The job type', startedAt: 'When the run started', finishedAt: 'When it ended',
      durationSeconds: 'How long it ran, in seconds', runId: 'The run', workflowId: 'The run\'s workflow',
    },
    dates: ['startedAt', 'finishedAt'],
    sample: {
      recipient: SAMPLE_RECIPIENT, scheduleName: 'Nightly purge', jobType: 'audit.retention_purge', startedAt: '2026-11-23T02:00:00Z', finishedAt: '2026-11-23T02:03:10Z',
      durationSeconds: 190, runId: '1b4e28ba-2fa1-41d2-883f-0016d3cca427', workflowId: 'jobs:sample',
    },
    defaults: {
      email: {
        subject: 'Job succeeded: {{ scheduleName }}',
        text: 'Hello {{ recipient.name }},\n\nA run of the job schedule "{{ scheduleName }}" ({{ jobType }}) succeeded at {{ finishedAt }}, after {{ durationSeconds }} s.\n\nRun {{ runId }}, workflow {{ workflowId }}.',
        html: '',
      },
    },
  },
  'job.run_long': {
    description: 'A run of a job schedule is still going after its longRunAlert\'s afterSeconds: the people the alert names are told, once a run.',
    variables: {
      ...RECIPIENT, scheduleName: 'The schedule\'s name', jobType: 'The job type', startedAt: 'When the run started', runningSeconds: 'How long it has run, in seconds',
      runId: 'The run', workflowId: 'The run\'s workflow (find it in the Temporal UI)',
    },
    dates: ['startedAt'],
    sample: {
      recipient: SAMPLE_RECIPIENT, scheduleName: 'Nightly purge', jobType: 'audit.retention_purge', startedAt: '2026-11-23T02:00:00Z', runningSeconds: 3600,
      runId: '1b4e28ba-2fa1-41d2-883f-0016d3cca427', workflowId: 'jobs:sample',
    },
    defaults: {
      email: {
        subject: 'Job still running: {{ scheduleName }}',
        text: 'Hello {{ recipient.name }},\n\nA run of the job schedule "{{ scheduleName }}" ({{ jobType }}) started at {{ startedAt }} and is still running after {{ runningSeconds }} s.\n\nRun {{ runId }}, workflow {{ workflowId }}.',
        html: '',
      },
    },
  },
} satisfies Record<string, NotificationType>;

export type NotificationTypeName = keyof typeof NOTIFICATION_TYPES;

export const isNotificationType = (t: string): t is NotificationTypeName => Object.hasOwn(NOTIFICATION_TYPES, t);

/** The language every tenant falls back to (no per-tenant default locale yet: a user without a locale reads English). */
export const DEFAULT_LOCALE = 'en';
